"""Benchmark: import and reconcile 100,000 bank lines against a million open invoices.

Seeds (or reuses) a PostgreSQL bench database with bench/ledger_seed.py's COPY loader,
opens every invoice, writes a bank statement file with a realistic mix of lines, then
imports and reconciles it through integrations.bank.importer exactly as the command does,
and prints lines/s, the shares matched, sent to review and unmatched, the time per phase
and the peak RSS. See bench/README.md.

    .venv/bin/python bench/reconcile.py --customers 2000 --invoices 10000 --lines 1000  # smoke
    .venv/bin/python bench/reconcile.py                          # 200k / 1M / 100k lines
    .venv/bin/python bench/reconcile.py --reuse                  # keep the seeded ledger
"""

import argparse
import csv
import io
import os
import random
import resource
import sys
import time
from collections import defaultdict
from decimal import Decimal

import psycopg
from admin_changelist import configure_django, ensure_database, ensure_users
from ledger_seed import (
    ACTIVITY_COLUMNS,
    CONTACT_COLUMNS,
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    LedgerSeeder,
    ledger_counts,
    truncate_ledger,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_recon"
TARGET_SECONDS = 60.0
# The mix of lines: (kind, share).
MIX = [
    ("number", 0.60),  # quotes an invoice number (one in ten pays a different amount)
    ("exact", 0.20),  # a known payer pays the exact amount of one of its invoices
    ("sum", 0.05),  # a known payer pays 2-3 of its invoices at once, no reference
    ("partial", 0.10),  # a known payer pays something on account
    ("noise", 0.05),  # an unknown payer, no reference
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_RECON_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--reuse", action="store_true", help="keep a ledger of the right size")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep-file", help="also write the generated statement here")
    return parser.parse_args()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


SEEDED_COLUMNS = {
    "accounts_customer": CUSTOMER_COLUMNS,
    "accounts_contact": CONTACT_COLUMNS,
    "accounts_invoice": INVOICE_COLUMNS,
    "accounts_activity": ACTIVITY_COLUMNS,
}
EMPTY_BY_TYPE = {
    "boolean": "false",
    "character varying": "''",
    "text": "''",
    "integer": "0",
    "smallint": "0",
    "bigint": "0",
    "numeric": "0",
    "jsonb": "'{}'",
}


def cpu_seconds(backend_pid: int | None) -> tuple[float, float | None]:
    """CPU time used so far by this process and by its PostgreSQL backend (when the
    server runs on this host): steadier than wall time on a machine shared with others."""
    times = os.times()
    mine = times.user + times.system
    try:
        with open(f"/proc/{backend_pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, TypeError, ValueError, IndexError):
        backend = None
    return mine, backend


def default_unseeded_columns(conn: psycopg.Connection) -> None:
    """Columns added to the ledger after ledger_seed.py was written (NOT NULL, no database
    default) would refuse its COPY; give them their empty value as a default in this bench
    database only, so the seeder keeps working while the models grow."""
    for table, columns in SEEDED_COLUMNS.items():
        seeded = {c.strip() for c in columns.split(",")}
        rows = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s AND is_nullable = 'NO' AND column_default IS NULL "
            "AND is_identity = 'NO'",
            [table],
        ).fetchall()
        for column, data_type in rows:
            if column not in seeded and data_type in EMPTY_BY_TYPE:
                conn.execute(
                    f'ALTER TABLE {table} ALTER COLUMN "{column}" '
                    f"SET DEFAULT {EMPTY_BY_TYPE[data_type]}"
                )
                print(f"  {table}.{column}: not seeded by ledger_seed, defaulted in the bench")
    conn.commit()


def seed(args, agent_ids) -> None:
    """The ledger_seed ledger with every invoice open (the seeder pays ~70% of them), and
    no bank lines, payments, allocations or their timeline entries left from an earlier run."""
    from django.utils import timezone

    with psycopg.connect(args.database_url) as conn:
        if "bench" not in conn.info.dbname:
            sys.exit(f"{conn.info.dbname} is not a bench database; not emptying it")
        counts = ledger_counts(conn)
        wanted = {"customers": args.customers, "invoices": args.invoices}
        if not (args.reuse and counts == wanted):
            print(f"seeding {args.customers:,} customers / {args.invoices:,} invoices ...")
            started = time.perf_counter()
            truncate_ledger(conn)
            default_unseeded_columns(conn)
            conn.execute("SET work_mem = '256MB'")
            conn.execute("SET maintenance_work_mem = '512MB'")
            LedgerSeeder(
                conn,
                customers=args.customers,
                invoices=args.invoices,
                agent_ids=agent_ids,
                today=timezone.localdate(),
                seed=42,
            ).run()
            print(f"seeded in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        # Earlier runs' bank data first (it references payments), then reopen everything.
        conn.execute(
            "TRUNCATE integrations_matchproposal, integrations_bankline, "
            "integrations_bankstatement, integrations_rejection, integrations_intakebatch, "
            "accounts_allocation, accounts_payment CASCADE"
        )
        conn.execute(
            "UPDATE accounts_invoice SET status = 'open', open_balance = amount "
            "WHERE status <> 'open' OR open_balance <> amount"
        )
        # Their timeline entries too, or every run inserts into a bigger timeline than the
        # last. The append-only trigger refuses DELETE; in this bench database only, it is
        # set aside for the statement.
        conn.execute("ALTER TABLE accounts_activity DISABLE TRIGGER accounts_activity_append_only")
        conn.execute("DELETE FROM accounts_activity WHERE kind IN ('payment', 'allocation')")
        conn.execute("ALTER TABLE accounts_activity ENABLE TRIGGER accounts_activity_append_only")
        conn.commit()
        conn.autocommit = True
        for table in (
            "accounts_invoice",
            "accounts_payment",
            "integrations_bankline",
            "accounts_activity",
        ):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        print(f"all invoices open, bank data cleared in {time.perf_counter() - started:.1f} s")


def statement(args) -> tuple[bytes, dict[str, int]]:
    """A CSV statement: `args.lines` credits in the MIX, plus a few bank fees (debits)."""
    from accounts.models import Customer, Invoice

    rng = random.Random(args.seed)
    # Invoices to pay, at random across the book; each is used by at most one line.
    sample_ids = rng.sample(range(1, args.invoices + 1), min(args.invoices, args.lines * 3))
    rows = Invoice.objects.filter(pk__in=sample_ids).values_list(
        "pk", "customer_id", "number", "currency", "open_balance", "due_on"
    )
    by_customer = defaultdict(list)
    for row in rows:
        by_customer[row[1]].append(row)
    refs = dict(Customer.objects.filter(pk__in=by_customer).values_list("pk", "external_ref"))
    customers = list(by_customer)
    rng.shuffle(customers)
    multi = [c for c in customers if len(by_customer[c]) >= 3]
    single = [c for c in customers if len(by_customer[c]) < 3]
    kinds = rng.choices([k for k, _ in MIX], [w for _, w in MIX], k=args.lines)
    buffer = io.StringIO()
    out = csv.writer(buffer)
    out.writerow(["date", "amount", "currency", "name", "iban", "reference", "bank reference"])
    today = "2026-11-20"
    counts: dict[str, int] = defaultdict(int)
    for number, kind in enumerate(kinds, start=1):
        pool = multi if kind == "sum" and multi else (single or multi)
        if kind != "noise" and not pool:
            kind = "noise"
        if kind == "noise":
            amount = Decimal(rng.randint(500, 500_000)) / 100
            name, reference, currency = f"Payer {rng.randint(1, 10**6)}", "thank you", "EUR"
        else:
            customer_id = pool.pop()
            invoices = sorted(by_customer[customer_id], key=lambda r: (r[5], r[0]))
            name = f"Customer {customer_id}"  # bank names rarely match the ledger's
            currency = invoices[0][3]
            if kind == "number":
                invoice = invoices[0]
                amount = invoice[4]
                if rng.random() < 0.1:
                    amount = (amount * Decimal("0.9")).quantize(Decimal("0.01"))
                reference = f"Invoice {invoice[2]}"
            elif kind == "exact":
                amount = invoices[0][4]
                reference = f"Cust {refs[customer_id]} payment"
            elif kind == "sum":
                chosen = invoices[: rng.choice([2, 3])]
                amount = sum(row[4] for row in chosen)
                reference = f"{refs[customer_id]}"
            else:  # partial: something on account
                amount = (invoices[0][4] * Decimal("0.37")).quantize(Decimal("0.01"))
                reference = f"{refs[customer_id]} on account"
        counts[kind] += 1
        out.writerow([today, f"{amount:.2f}", currency, name, "", reference, f"BNK{number:09d}"])
    for fee in range(max(1, args.lines // 1000)):
        out.writerow([today, "-2.50", "EUR", "Bank", "", "fee", f"FEE{fee:06d}"])
    return buffer.getvalue().encode(), dict(counts)


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    configure_django(args.database_url)
    from django.core.management import call_command
    from django.db import connection, reset_queries

    call_command("migrate", interactive=False, verbosity=0)
    _manager, agent_ids = ensure_users()
    seed(args, agent_ids)
    connection.close()  # the TRUNCATE and UPDATE ran on another connection

    started = time.perf_counter()
    content, mix = statement(args)
    generated = time.perf_counter() - started
    if args.keep_file:
        with open(args.keep_file, "wb") as handle:
            handle.write(content)
    print(f"statement: {len(content) / 1e6:.1f} MB, mix {mix}, generated in {generated:.1f} s")
    print(f"peak RSS before import: {peak_rss_mb():.0f} MB")

    from integrations.bank.importer import import_statement

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    load_before = os.getloadavg()
    reset_queries()
    cpu = [cpu_seconds(backend_pid)]
    started = time.perf_counter()
    result = import_statement(content=content, filename="bench.csv", reconcile=False)
    loaded = time.perf_counter() - started
    cpu.append(cpu_seconds(backend_pid))
    from integrations.reconciliation import matching

    started = time.perf_counter()
    result.outcome = matching.reconcile(result.payment_ids)
    matched = time.perf_counter() - started
    cpu.append(cpu_seconds(backend_pid))
    total = loaded + matched
    outcome = result.outcome
    payments = result.payments or 1
    booked = outcome.matched + outcome.partially_matched
    print()
    print(f"lines read:          {result.lines:,} ({result.payments:,} payments)")
    print(f"import (parse, payments, lines): {loaded:6.1f} s")
    print(f"reconcile (match and book):      {matched:6.1f} s")
    print(f"total:               {total:6.1f} s  ({result.lines / total:,.0f} lines/s)")
    for phase, (before, after) in (("import", cpu[0:2]), ("reconcile", cpu[1:3])):
        server = (
            f", its PostgreSQL backend {after[1] - before[1]:.1f} s"
            if after[1] is not None and before[1] is not None
            else ""
        )
        print(f"CPU, {phase}: this process {after[0] - before[0]:.1f} s{server}")
    print(
        f"booked automatically: {booked:,} ({booked / payments:.1%})"
        f"  [in full {outcome.matched:,}, leaving credit {outcome.partially_matched:,}]"
    )
    print(f"sent to review:      {outcome.review:,} ({outcome.review / payments:.1%})")
    print(f"unmatched:           {outcome.unmatched:,} ({outcome.unmatched / payments:.1%})")
    print(f"by rule:             {dict(sorted(outcome.by_rule.items()))}")
    print(f"rejected lines:      {result.rejected}")
    print(f"peak RSS:            {peak_rss_mb():.0f} MB")
    print(
        "load average:        {:.2f} {:.2f} {:.2f} before, {:.2f} {:.2f} {:.2f} after"
        " (other work on the machine)".format(*load_before, *os.getloadavg())
    )
    verdict = "PASS" if total < TARGET_SECONDS else "FAIL"
    print(f"target < {TARGET_SECONDS:.0f} s for the import and reconciliation: {verdict}")
    print(result.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
