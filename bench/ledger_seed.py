"""A synthetic collections ledger loaded into PostgreSQL with COPY, for the benchmarks.

Plain psycopg, no ORM: a million model saves would take an hour, COPY takes a minute or
two. Rows respect every constraint in accounts/models.py (the database checks them during
the load), and the shape follows a real book of debt:

- due dates run from 18 months ago to six weeks ahead, in invoice-number order, so every
  aging bucket is populated and the table's physical order follows time as in production;
- the older an invoice, the likelier it is paid, so the 120+ bucket is a thin tail;
- invoices per customer are skewed (a few large accounts, many small ones), and customer
  KEY_ACCOUNT_ID is a large account with a long timeline for the change-page benchmark;
- the highest customer ids are the locations of a chain onboarded last month
  (NEW_CHAIN_NAME): a search for it matches a hundred customers whose invoices are all
  recent, the case where "ORDER BY due_on LIMIT 50" plans walk most of the due-date index.
"""

import datetime as dt
import random
import time
from array import array
from collections.abc import Callable, Iterator

import psycopg

KEY_ACCOUNT_ID = 1
LEDGER_TABLES = (
    "accounts_activity",
    "accounts_allocation",
    "accounts_payment",
    "accounts_invoice",
    "accounts_contact",
    "accounts_customer",
)
HISTORY_DAYS = 548  # 18 months of due dates behind today
AHEAD_DAYS = 45  # and six weeks of not-yet-due invoices
ACTIVITY_SHARE = 0.2  # one timeline entry for every fifth invoice
KEY_ACCOUNT_SHARE = 0.0004  # 400 of a million invoices
NEW_CHAIN_NAME = "Brightside Clinics"
NEW_CHAIN_DAYS = 30  # the chain's first invoices fell due at most this many days ago

SURNAMES = """
Abbott Acosta Adler Alder Ashford Atwood Bailey Barlow Baxter Beckett Bellamy Bishop
Blackwood Bradford Brennan Brooks Calloway Carver Chandler Clayton Coleman Conway Crane
Dalton Davenport Dempsey Donovan Draper Dunmore Easton Ellison Emerson Everett Fairbanks
Farrow Fenwick Fletcher Forsyth Garland Garrison Gilmore Goodwin Granger Hadley Halloway
Hartwell Hawthorne Holloway Hopkins Huxley Ingram Irving Jarvis Keaton Kendall Kingsley
Lambert Langley Lockhart Lowell Maddox Marlowe Mercer Merritt Montague Norwood Oakley
Ogden Pemberton Prescott Quincy Radcliffe Ramsey Redford Rowland Sawyer Sheffield
Sinclair Stafford Sterling Sutton Thornton Townsend Underwood Vance Wakefield Walsh
Warwick Whitaker Whitmore Winslow Wolcott Yardley Yates Zimmerman
""".split()
TRADES = """
Logistics Timber Foods Textiles Plastics Engineering Pharmacy Printing Roofing Dairy
Bakery Hardware Marine Motors Electrical Plumbing Glass Steel Paper Furniture Optics
Ceramics Packaging Bottling Brewing Catering Freight Farms Garden Lighting Medical
Dental Software Security Cleaning Couriers Interiors Machinery Coatings Fabrics Seeds
""".split()
SUFFIXES = ["Ltd", "LLC", "Inc", "GmbH", "& Sons", "Group", "Co", "Partners", "SARL", "Supply"]
FIRST_NAMES = """
Alice Ben Carla Dev Elena Farid Grace Hugo Ines Jonas Kira Liam Maya Noah Olga Pavel
Quinn Rosa Sam Tariq Uma Victor Wen Xavier Yara Zoe
""".split()
# (country, time zone, language, currency) for the customer's locale.
LOCALES = [
    ("US", "America/New_York", "en", "USD"),
    ("US", "America/Chicago", "en", "USD"),
    ("US", "America/Los_Angeles", "en", "USD"),
    ("GB", "Europe/London", "en", "GBP"),
    ("DE", "Europe/Berlin", "de", "EUR"),
    ("FR", "Europe/Paris", "fr", "EUR"),
    ("ES", "Europe/Madrid", "es", "EUR"),
]
LOCALE_WEIGHTS = [30, 20, 20, 10, 10, 6, 4]
INDUSTRIES = ["Retail", "Manufacturing", "Wholesale", "Healthcare", "Construction", "Services"]
# 20 area codes x 10,000 line numbers: a distinct E.164 number for each of 200,000 contacts.
AREA_CODES = [
    "212", "213", "214", "303", "305", "312", "404", "415", "503", "512",
    "602", "615", "617", "702", "704", "713", "801", "816", "919", "952",
]  # fmt: skip
PAYMENT_TERMS = [14, 30, 30, 30, 45, 60]
CALL_OUTCOMES = ["reached", "no_answer", "left_voicemail", "promise_to_pay", "dispute"]

CUSTOMER_COLUMNS = (
    "id, name, source, external_ref, kind, segment, industry, country, timezone, language, "
    "currency, credit_limit, assigned_agent_id, status, dunning_paused_until, "
    "dunning_pause_reason, do_not_contact, cease_communication, is_in_dispute, "
    "is_in_payment_plan, is_bankrupt, is_excluded_from_automation, created_at, updated_at"
)
CONTACT_COLUMNS = (
    "id, customer_id, name, role, email, phone, email_hash, phone_hash, is_primary, "
    "email_opted_out_at, "
    "email_opt_out_source, sms_opted_out_at, sms_opt_out_source, call_opted_out_at, "
    "call_opt_out_source, created_at, updated_at"
)
INVOICE_COLUMNS = (
    "id, customer_id, number, source, external_id, issued_on, due_on, currency, amount, "
    "open_balance, status, reference, pay_link, created_at, updated_at"
)
ACTIVITY_COLUMNS = (
    "customer_id, invoice_id, kind, channel, outcome, actor_id, text, details, occurred_at"
)


def new_chain(customers: int) -> range:
    """Ids of the chain's locations: the last 0.05% of customers (100 of 200,000)."""
    size = max(5, customers // 2_000)
    return range(customers - size + 1, customers + 1)


def customer_name(customer_id: int, customers: int) -> str:
    """Deterministic from the id, so a benchmark can name a customer without a query."""
    chain = new_chain(customers)
    if customer_id in chain:
        return f"{NEW_CHAIN_NAME} #{customer_id - chain.start + 1:03d}"
    rng = random.Random(customer_id)
    return f"{rng.choice(SURNAMES)} {rng.choice(TRADES)} {rng.choice(SUFFIXES)}"


def contact_email(customer_id: int, customers: int) -> str:
    first = FIRST_NAMES[customer_id % len(FIRST_NAMES)].lower()
    if customer_id in new_chain(customers):
        domain = NEW_CHAIN_NAME.lower().replace(" ", "-")
    else:
        domain = customer_name(customer_id, customers).split()[0].lower()
    return f"{first}.ap{customer_id}@{domain}.example.com"


def contact_phone(customer_id: int) -> str:
    area = AREA_CODES[(customer_id // 10_000) % len(AREA_CODES)]
    return f"+1{area}555{customer_id % 10_000:04d}"


def invoice_number(invoice_id: int) -> str:
    return f"INV-{invoice_id:07d}"


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def ledger_counts(conn: psycopg.Connection) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM accounts_customer),"
            " (SELECT count(*) FROM accounts_invoice)"
        )
        customers, invoices = cur.fetchone()
    return {"customers": customers, "invoices": invoices}


def truncate_ledger(conn: psycopg.Connection) -> None:
    """Empty the ledger tables. TRUNCATE fires no row triggers, so the append-only
    timeline trigger (which refuses DELETE) does not stand in the way."""
    with conn.cursor() as cur:
        cur.execute(f"TRUNCATE {', '.join(LEDGER_TABLES)} RESTART IDENTITY CASCADE")
    conn.commit()


class LedgerSeeder:
    """Loads customers, contacts, invoices and activities, one COPY per table."""

    def __init__(
        self,
        conn: psycopg.Connection,
        *,
        customers: int,
        invoices: int,
        agent_ids: list[int],
        today: dt.date,
        seed: int = 42,
        log: Callable[[str], None] = print,
    ):
        self.conn = conn
        self.customers = customers
        self.invoices = invoices
        self.agent_ids = agent_ids
        self.today = today
        self.rng = random.Random(seed)
        self.log = log
        self.now = dt.datetime.now(dt.UTC)
        self.currency_of = bytearray(customers + 1)  # index into LOCALES, per customer id
        # Invoices picked for a timeline entry: three parallel arrays, not a million tuples.
        self.sampled_customer = array("q")
        self.sampled_invoice = array("q")
        self.sampled_due = array("l")  # due date as days before today
        self.key_account_invoices = array("q")

    def run(self) -> dict[str, float]:
        timings = {}
        for table, columns, rows in [
            ("accounts_customer", CUSTOMER_COLUMNS, self.customer_rows),
            ("accounts_contact", CONTACT_COLUMNS, self.contact_rows),
            ("accounts_invoice", INVOICE_COLUMNS, self.invoice_rows),
            ("accounts_activity", ACTIVITY_COLUMNS, self.activity_rows),
        ]:
            started = time.perf_counter()
            count = self.copy(table, columns, rows())
            self.conn.commit()  # deferred foreign keys are checked here, inside the timing
            timings[table] = time.perf_counter() - started
            self.log(f"  {table:<18} {count:>10,} rows in {timings[table]:6.1f} s")
        started = time.perf_counter()
        self.reset_sequences()
        self.vacuum_analyze()
        timings["vacuum analyze"] = time.perf_counter() - started
        self.log(f"  vacuum + analyze                   in {timings['vacuum analyze']:6.1f} s")
        return timings

    def copy(self, table: str, columns: str, rows: Iterator[tuple]) -> int:
        count = 0
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
                count += 1
        return count

    def customer_rows(self) -> Iterator[tuple]:
        rng, now = self.rng, self.now
        locale_ids = list(range(len(LOCALES)))
        for customer_id in range(1, self.customers + 1):
            locale = rng.choices(locale_ids, LOCALE_WEIGHTS)[0]
            self.currency_of[customer_id] = locale
            country, zone, language, currency = LOCALES[locale]
            is_paused = rng.random() < 0.02
            status_roll = rng.random()
            status = (
                "active"
                if status_roll < 0.92
                else "placed_with_agency"
                if status_roll < 0.95
                else "written_off"
                if status_roll < 0.97
                else "closed"
            )
            segment = (
                "strategic"
                if customer_id == KEY_ACCOUNT_ID or rng.random() < 0.05
                else "high_risk"
                if rng.random() < 0.15
                else "standard"
            )
            assigned = self.agent_ids and rng.random() < 0.85
            yield (
                customer_id,
                customer_name(customer_id, self.customers),
                "crm",
                f"CRM-{customer_id:07d}",
                "business" if rng.random() < 0.85 else "consumer",
                segment,
                rng.choice(INDUSTRIES),
                country,
                zone,
                language,
                currency,
                money(rng.randrange(10, 500) * 100_000) if rng.random() < 0.5 else None,
                rng.choice(self.agent_ids) if assigned else None,
                status,
                self.today + dt.timedelta(days=rng.randint(1, 30)) if is_paused else None,
                "Promise to pay" if is_paused else "",
                rng.random() < 0.01,
                rng.random() < 0.005,
                rng.random() < 0.03,
                rng.random() < 0.04,
                rng.random() < 0.002,
                False,
                now,
                now,
            )

    def contact_rows(self) -> Iterator[tuple]:
        """One primary contact per customer, with an e-mail and an E.164 phone, encrypted
        with their lookup hashes as the product stores them (accounts/crypto.py: the
        benchmarks run with Django set up, so the keys are the settings')."""
        from accounts.crypto import encrypt, lookup_hash

        now = self.now
        for customer_id in range(1, self.customers + 1):
            first = FIRST_NAMES[customer_id % len(FIRST_NAMES)]
            last = SURNAMES[customer_id % len(SURNAMES)]
            email, phone = contact_email(customer_id, self.customers), contact_phone(customer_id)
            yield (customer_id, customer_id, f"{first} {last}", "Accounts payable",
                   encrypt(email), encrypt(phone), lookup_hash("email", email),
                   lookup_hash("phone", phone), True, None, "", None, "", None, "", now,
                   now)  # fmt: skip

    def customer_weights(self) -> list[float]:
        """Cumulative invoice weights per customer: Pareto-skewed, plus the key account.
        The chain's locations buy more than most, but only for the last few weeks."""
        rng = self.rng
        weights = [min(rng.paretovariate(1.8), 60.0) for _ in range(self.customers)]
        for customer_id in new_chain(self.customers):
            weights[customer_id - 1] *= 5
        others = sum(weights) - weights[KEY_ACCOUNT_ID - 1]
        weights[KEY_ACCOUNT_ID - 1] = others * KEY_ACCOUNT_SHARE / (1 - KEY_ACCOUNT_SHARE)
        cumulative, total = [], 0.0
        for weight in weights:
            total += weight
            cumulative.append(total)
        return cumulative

    def status_and_balance(self, days_late: int, cents: int) -> tuple[str, int]:
        """A status for an invoice this late, and an open balance the constraints accept."""
        rng = self.rng
        paid_share = 0.08 if days_late <= 0 else min(0.9, 0.35 + days_late / 500)
        roll = rng.random()
        if roll < paid_share:
            return "paid", 0
        roll = (roll - paid_share) / (1 - paid_share)
        if roll < 0.05:
            return "cancelled", 0
        if roll < 0.15 and days_late > 120:
            return "written_off", rng.randint(1, cents)
        if roll < 0.25:
            return "disputed", cents
        if roll < 0.45:
            return "partially_paid", rng.randint(1, cents - 1)
        return "open", cents

    def invoice_rows(self) -> Iterator[tuple]:
        rng, now, today = self.rng, self.now, self.today
        cumulative = self.customer_weights()
        customer_ids = range(1, self.customers + 1)
        established = new_chain(self.customers).start - 1  # customers before the chain
        before_chain = customer_ids[:established], cumulative[:established]
        span = HISTORY_DAYS + AHEAD_DAYS
        batch = max(100, min(10_000, self.invoices // 100))  # one due-date step each
        for first_id in range(1, self.invoices + 1, batch):
            last_id = min(first_id + batch, self.invoices + 1)
            if HISTORY_DAYS - first_id * span // self.invoices > NEW_CHAIN_DAYS:
                candidates, weights = before_chain
            else:
                candidates, weights = customer_ids, cumulative
            owners = rng.choices(candidates, cum_weights=weights, k=last_id - first_id)
            for invoice_id, customer_id in zip(range(first_id, last_id), owners, strict=True):
                # Due dates advance with the invoice number, with a little jitter.
                days_late = HISTORY_DAYS - (invoice_id - 1) * span // self.invoices
                days_late = max(-AHEAD_DAYS, min(HISTORY_DAYS, days_late + rng.randint(-3, 3)))
                due_on = today - dt.timedelta(days=days_late)
                cents = max(1_000, min(50_000_000, int(rng.lognormvariate(11.3, 1.0))))
                status, open_cents = self.status_and_balance(days_late, cents)
                number = invoice_number(invoice_id)
                yield (
                    invoice_id,
                    customer_id,
                    number,
                    "erp",
                    f"ERP{invoice_id:09d}",
                    due_on - dt.timedelta(days=rng.choice(PAYMENT_TERMS)),
                    due_on,
                    LOCALES[self.currency_of[customer_id]][3],
                    money(cents),
                    money(open_cents),
                    status,
                    f"PO-{rng.randrange(10**6):06d}" if rng.random() < 0.3 else "",
                    f"https://pay.example.com/i/{number}" if rng.random() < 0.5 else "",
                    now,
                    now,
                )
                if customer_id == KEY_ACCOUNT_ID:
                    self.key_account_invoices.append(invoice_id)
                elif rng.random() < ACTIVITY_SHARE:
                    self.sampled_customer.append(customer_id)
                    self.sampled_invoice.append(invoice_id)
                    self.sampled_due.append(days_late)

    def activity(self, customer_id: int, invoice_id: int | None, days_late: int) -> tuple:
        """A reminder, call or note about the invoice, some time after it fell due."""
        rng = self.rng
        about = invoice_number(invoice_id) if invoice_id else "the account"
        actor = rng.choice(self.agent_ids) if self.agent_ids else None
        kind = rng.choice(["email", "email", "sms", "call", "note", "letter"])
        channel, outcome, details = kind, "", "{}"
        if kind == "call":
            channel, outcome = "phone", rng.choice(CALL_OUTCOMES)
            text = f"Called about {about}: {outcome.replace('_', ' ')}."
        elif kind == "note":
            channel, text = "", f"Customer asked for a copy of {about}."
        else:
            step = rng.randint(1, 3)
            actor, text, details = None, f"Reminder {step} for {about}.", f'{{"step": {step}}}'
        midnight = dt.datetime.combine(self.today, dt.time(), tzinfo=dt.UTC)
        days_ago = rng.randint(1, max(1, days_late))
        occurred_at = midnight - dt.timedelta(days=days_ago, hours=-rng.uniform(8, 18))
        return (customer_id, invoice_id, kind, channel, outcome, actor, text, details, occurred_at)

    def activity_rows(self) -> Iterator[tuple]:
        rng = self.rng
        for customer_id, invoice_id, days_late in zip(
            self.sampled_customer, self.sampled_invoice, self.sampled_due, strict=True
        ):
            yield self.activity(customer_id, invoice_id, days_late)
        key_invoices = self.key_account_invoices
        for _ in range(min(5_000, max(200, self.invoices // 200))):
            invoice_id = rng.choice(key_invoices) if key_invoices and rng.random() < 0.7 else None
            yield self.activity(KEY_ACCOUNT_ID, invoice_id, HISTORY_DAYS)

    def reset_sequences(self) -> None:
        """Ids were given explicitly; move each identity past them for later inserts."""
        with self.conn.cursor() as cur:
            for table in ("accounts_customer", "accounts_contact", "accounts_invoice"):
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        self.conn.commit()

    def vacuum_analyze(self) -> None:
        """Statistics for the planner, the visibility map for index-only scans, and the
        GIN pending lists merged (otherwise every trigram search scans them linearly)."""
        autocommit = self.conn.autocommit
        self.conn.autocommit = True
        try:
            with self.conn.cursor() as cur:
                for table in LEDGER_TABLES:
                    cur.execute(f"VACUUM (ANALYZE) {table}")
        finally:
            self.conn.autocommit = autocommit
