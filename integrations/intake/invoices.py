"""The governed intake pipeline for invoices: parse a source's row, upsert records in chunks.

Every source adapter (spreadsheet, REST API, billing sync) ends here:

1. `parsing.ColumnMap.bind(headers, ...)` matches the file's headers to ledger fields
   through the import profile's aliases (case-, space- and leading-`*`-insensitive).
2. `InvoiceParser.parse(values, row_number=...)` turns one row into an `InvoiceRecord` (a
   plain, validated dataclass; cells read by `parsing.Cells` in the profile's formats) or
   raises `RowRejected` with a reason per field.
3. `InvoiceUpserter.add(record)` queues records; every `chunk_size` records it applies them
   set-based in one transaction (a handful of queries per chunk, not per row) and counts
   each row as created, updated, unchanged or rejected in the batch's `Tally`.

Keys:
- a customer is found (`InvoiceUpserter._load_customers`) by, in this order:
  1. (profile source, external_ref), where external_ref is the customer reference column
     when the file has one and otherwise the customer name; a customer merged into
     another (accounts/merging.py) leads to the one it was merged into;
  2. the reference alone, in any source, when the file has a reference column and
     exactly one customer has it;
  3. the normalised name (accounts/customer_names.py: case, accents, punctuation,
     spacing and legal forms such as SA, GmbH, Ltd, Inc set aside), through its index;
     when the file has a reference column, a customer the same source knows under
     another reference is another account and is not taken, and consumers (people, who
     may share a name) are never taken by name. Two or more customers with the name: the
     row is rejected, naming them, and nothing is guessed;
  4. otherwise the customer is new, created from the row;
- an invoice is found by (profile source, number);
- the customer's primary contact is created or updated when the row has an e-mail or phone.

Validation is tuned by the import profile: a bad value in one of its `warn_only` fields
(e-mail, phone, contact name) is dropped and noted as a warning on the row, which loads;
the warnings are kept per row (`RowWarning`) and counted on the batch. In any other field
a bad value rejects the row.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import bulk, services, timeline, timezones
from accounts.customer_names import normalized_name
from accounts.models import Activity, Contact, Customer, Invoice, Payment

from ..models import ImportProfile, IntakeBatch
from . import batches, parsing
from .batches import RowOutcome, RowRejected, Tally
from .parsing import Cells

CHUNK_SIZE = 20_000
TRACKED_FIELDS = ("issued_on", "due_on", "amount", "reference")
FIELD_LABELS = {
    "issued_on": "issue date",
    "due_on": "due date",
    "amount": "amount",
    "reference": "reference",
}


# The fields an import profile maps headers onto, in the order a person reads a row.
PROFILE_FIELDS = {
    "number": gettext_lazy("Invoice number"),
    "customer_ref": gettext_lazy("Customer reference"),
    "customer_name": gettext_lazy("Customer name"),
    "contact_name": gettext_lazy("Contact name"),
    "email": gettext_lazy("Contact e-mail"),
    "phone": gettext_lazy("Contact phone"),
    "country": gettext_lazy("Country"),
    "issued_on": gettext_lazy("Issue date"),
    "due_on": gettext_lazy("Due date"),
    "currency": gettext_lazy("Currency"),
    "amount": gettext_lazy("Amount"),
    "amount_due": gettext_lazy("Amount due"),
    "reference": gettext_lazy("Reference"),
    "transaction_type": gettext_lazy("Transaction type (only rows of type Invoice load)"),
    "paid_on": gettext_lazy("Paid date (books a dated payment)"),
    "amount_paid": gettext_lazy("Amount paid (with the paid date; the whole amount if blank)"),
    "disputed": gettext_lazy("Disputed (yes/no: opens a dispute)"),
}

# How a "disputed" cell says yes or no (case-insensitive); anything else rejects the row.
YES = frozenset(("yes", "y", "true", "1", "x", "disputed"))
NO = frozenset(("", "no", "n", "false", "0", "-"))


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """One validated invoice row, ready for the ledger; the REST API builds these too."""

    number: str
    customer_key: str
    customer_name: str
    issued_on: dt.date
    due_on: dt.date
    currency: str
    amount: Decimal
    amount_due: Decimal | None = None
    reference: str = ""
    email: str = ""
    phone: str = ""
    contact_name: str = ""
    country: str = ""
    # Settlement history: paid in the source on `paid_on`, `amount_paid` in all (booked as
    # a dated payment and allocation); `disputed` opens a dispute once.
    paid_on: dt.date | None = None
    amount_paid: Decimal | None = None
    disputed: bool = False
    row_number: int = 0
    raw: Mapping = field(default_factory=dict, compare=False)
    # {field: [messages]}: values the profile lets go with a warning (the row still loads).
    warnings: Mapping = field(default_factory=dict, compare=False)

    def signature(self) -> tuple:
        """What two rows for the same invoice must agree on to count as one invoice."""
        return (
            self.customer_key,
            self.issued_on,
            self.due_on,
            self.currency,
            self.amount,
            self.amount_due,
            self.reference,
            self.paid_on,
            self.amount_paid,
            self.disputed,
        )


class InvoiceParser:
    """Profile-driven validation of one row: dates, amounts, currency, required fields."""

    LIMITS = (
        ("number", 64),
        ("customer_name", 200),
        ("customer_ref", 100),
        ("reference", 100),
        ("contact_name", 200),
    )

    def __init__(self, profile: ImportProfile):
        self.profile = profile
        self.required = set(profile.required)
        self.warn_only = set(profile.warn_only or ())
        self.default_currency = profile.default_currency
        self.cells = cells = Cells(
            date_formats=profile.date_formats,
            decimal_separator=profile.decimal_separator,
            thousands_separator=profile.thousands_separator,
        )
        # Bound once: these run for every row, and most cells are found in their caches.
        self.dates, self.currencies, self.valid_emails = (
            cells.dates,
            cells.currencies,
            cells.valid_emails,
        )
        self.parse_date, self.parse_amount = cells.date, cells.amount
        self.currency, self.email, self.country = cells.currency, cells.email, cells.country

    def at_stake(self, values: dict) -> tuple[Decimal, str] | None:
        """A refused row's amount and currency, if they can be read (to rank the refusal)."""
        try:
            amount = self.parse_amount(values["amount"])
            currency = self.currency(parsing.text(values.get("currency")) or self.default_currency)
        except (KeyError, ValueError):
            return None
        return batches.amount_at_stake(amount, currency)

    def parse(self, values: dict, *, row_number: int = 0, raw: Mapping | None = None):
        """Validate `values` ({ledger field: cell}) into an InvoiceRecord or raise RowRejected."""
        errors: dict[str, list[str]] = {}
        warnings: dict[str, list[str]] = {}
        cleaned: dict = {}

        def fail(name: str, message: str) -> None:
            errors.setdefault(name, []).append(message)

        def fail_or_warn(name: str, message: str) -> bool:
            """True if the profile lets this field go with a warning (drop the value)."""
            if name in self.warn_only:
                warnings.setdefault(name, []).append(message)
                return True
            fail(name, message)
            return False

        try:  # a CSV row: every cell is text, stripped in one C loop
            text = dict(zip(values, map(str.strip, values.values()), strict=True))
        except TypeError:  # a workbook row: numbers and dates among the text
            text = {name: parsing.text(value) for name, value in values.items()}
        get = text.get
        for name in self.required:
            if not get(name) and not (name == "currency" and self.default_currency):
                fail(name, _("This field is required."))

        kind = get("transaction_type", "")
        if kind and kind.lower() != "invoice":
            raise RowRejected(
                {
                    "transaction_type": [
                        _("'%(kind)s' rows are not invoices; load payments separately.")
                        % {"kind": kind}
                    ]
                }
            )

        limits = self.LIMITS
        for name, limit in limits:
            value = get(name, "")
            if len(value) > limit and fail_or_warn(
                name, _("Longer than %(n)d characters.") % {"n": limit}
            ):
                value = ""
            cleaned[name] = value

        dates = self.dates
        for name in ("issued_on", "due_on", "paid_on"):
            if get(name):
                value = values[name]
                date = dates.get(value) if value.__class__ is str else None
                if date is not None:
                    cleaned[name] = date
                    continue
                try:
                    cleaned[name] = self.parse_date(value)
                except ValueError as exc:
                    fail(name, str(exc))

        typed = text.get("currency") or self.default_currency
        currency = self.currencies.get(typed)
        if currency is None:
            try:
                currency = self.currency(typed)
            except ValueError as exc:
                fail("currency", str(exc))
        if not currency and "currency" not in errors:
            fail("currency", _("A currency is required; this profile has no default."))

        for name in ("amount", "amount_due", "amount_paid"):
            if text.get(name):
                try:
                    cleaned[name] = self.parse_amount(values[name])
                except ValueError as exc:
                    fail(name, str(exc))
        amount, amount_due = cleaned.get("amount"), cleaned.get("amount_due")
        if amount is not None and amount <= 0:
            fail(
                "amount",
                _("An invoice amount must be more than zero; load credit notes as payments."),
            )
        if amount_due is not None and amount_due < 0:
            fail("amount_due", _("The amount due cannot be negative."))
        elif amount_due is not None and amount is not None and amount_due > amount:
            fail(
                "amount_due",
                _("The amount due %(due)s is more than the invoice amount %(amount)s.")
                % {"due": amount_due, "amount": amount},
            )

        paid_on, amount_paid = self._paid(cleaned, errors, fail)
        disputed = values.get("disputed")
        if disputed.__class__ is not bool:
            word = (get("disputed") or "").lower()
            disputed = word in YES
            if not disputed and word not in NO:
                fail("disputed", _("Say yes or no, not '%(value)s'.") % {"value": word[:20]})

        issued_on, due_on = cleaned.get("issued_on"), cleaned.get("due_on")
        if issued_on and not due_on and "due_on" not in errors and "due_on" not in self.required:
            due_on = issued_on + dt.timedelta(days=self.profile.default_terms_days)
        if issued_on and due_on and due_on < issued_on:
            fail(
                "due_on",
                _("The due date %(due)s is before the issue date %(issued)s.")
                % {"due": due_on, "issued": issued_on},
            )

        email = text.get("email", "")
        if email and email not in self.valid_emails:
            try:
                self.email(email)
            except ValueError as exc:
                if fail_or_warn("email", str(exc)):
                    email = ""
        phone = text.get("phone", "")
        if len(phone) > 40 and fail_or_warn(
            "phone", _("Longer than %(n)d characters.") % {"n": 40}
        ):
            phone = ""

        customer_key = cleaned["customer_ref"] or cleaned["customer_name"]
        if not cleaned["customer_ref"] and len(customer_key) > 100:
            fail(
                "customer_name",
                _("Names over 100 characters need a customer reference column to key on."),
            )
        if errors:
            raise RowRejected(errors)
        return InvoiceRecord(
            number=cleaned["number"],
            customer_key=customer_key,
            customer_name=cleaned["customer_name"] or customer_key,
            issued_on=issued_on,
            due_on=due_on,
            currency=currency,
            amount=amount,
            amount_due=amount_due,
            reference=cleaned["reference"],
            email=email.lower(),
            phone=phone,
            contact_name=cleaned["contact_name"],
            country=self.country(get("country", "")),
            paid_on=paid_on,
            amount_paid=amount_paid,
            disputed=disputed,
            row_number=row_number,
            raw=raw if raw is not None else values,
            warnings=warnings,
        )

    def _paid(self, cleaned: dict, errors: dict, fail) -> tuple[dt.date | None, Decimal | None]:
        """The row's (paid date, amount paid), checked; (None, None) when nothing was paid.

        A paid date alone means the whole amount was paid; an amount paid without a date
        cannot be dated and is left to the amount due column (settled as of today)."""
        paid_on, amount_paid = cleaned.get("paid_on"), cleaned.get("amount_paid")
        problems = services.paid_history_problems(
            paid_on=paid_on,
            amount_paid=amount_paid,
            amount=cleaned.get("amount"),
            issued_on=cleaned.get("issued_on"),
        )
        for name, why in problems.items():
            fail(name, why)
        amount = cleaned.get("amount")
        if "paid_on" in errors or "amount_paid" in errors or paid_on is None:
            return None, None
        if amount_paid is None:
            amount_paid = amount
        if not amount_paid:
            return None, None
        return paid_on, amount_paid


class _Customer:
    """A customer as the pipeline needs it: a plain row, not a model instance.

    `match` says how the row found it: "key" (source and reference, or name), "reference"
    (the reference in another source), "name" (the normalised name) or "new"; `ref` and
    `source` are the customer's own, for the preview.
    """

    __slots__ = ("country", "currency", "key", "match", "name", "pk", "ref", "source")

    def __init__(self, pk, key, name, country, currency, *, match="key", ref="", source=""):
        self.pk, self.key, self.name, self.country, self.currency = (
            pk,
            key,
            name,
            country,
            currency,
        )
        self.match, self.ref, self.source = match, ref or key, source

    def shown(self) -> dict:
        """The customer as a preview row shows it."""
        if self.match == "new":
            return {"id": None, "name": self.name, "ref": "", "match": "new"}
        return {"id": self.pk, "name": self.name, "ref": self.ref, "match": self.match}


# The customer columns `_load_customers` reads.
CUSTOMER_STATE = (
    "pk",
    "external_ref",
    "name",
    "country",
    "currency",
    "source",
    "merged_into_id",
    "normalized_name",
    "kind",
)


class _Contact:
    """A customer's primary contact as a plain row."""

    __slots__ = ("customer", "email", "name", "phone", "pk")

    def __init__(self, pk, customer, name, email, phone):
        self.pk, self.customer, self.name, self.email, self.phone = (
            pk,
            customer,
            name,
            email,
            phone,
        )


# The columns of an existing invoice that the pipeline reads (and locks).
INVOICE_STATE = (
    "pk",
    "customer_id",
    "currency",
    "issued_on",
    "due_on",
    "amount",
    "reference",
    "open_balance",
    "status",
)


@dataclass
class _Plan:
    """One chunk's writes, decided in memory before anything is written."""

    new_customers: dict = field(default_factory=dict)  # key -> _Customer
    changed_customers: dict = field(default_factory=dict)  # pk -> _Customer
    new_contacts: dict = field(default_factory=dict)  # customer key -> _Contact
    changed_contacts: dict = field(default_factory=dict)  # pk -> _Contact
    new_invoices: list = field(default_factory=list)  # (record, _Customer)
    changed_invoices: dict = field(default_factory=dict)  # pk -> Invoice
    activities: list = field(default_factory=list)
    settlements: list = field(default_factory=list)  # (invoice, amount, external_id)
    paid: list = field(default_factory=list)  # (record, amount to book, external_id)
    # (number, paid date or None) of the invoices to dispute
    disputed: list = field(default_factory=list)
    counts: dict = field(
        default_factory=lambda: dict.fromkeys(("created", "updated", "unchanged"), 0)
    )
    outcomes: list = field(default_factory=list)  # RowOutcome, only when someone listens
    rejections: list = field(default_factory=list)  # (record, errors)
    warnings: list = field(default_factory=list)  # (record, warnings): loaded, value dropped


class InvoiceUpserter:
    """Applies validated InvoiceRecords to the ledger in chunks, set-based.

    Per chunk, in one transaction wrapped in `batches.with_retries` (so the source's health
    is recorded and a transient failure re-runs the whole chunk from a fresh read):

    1. fetch the chunk's customers by (source, external_ref) in one query (customers seen
       earlier in the batch are cached), and their primary contacts in one query;
    2. fetch the chunk's existing invoices by (source, number) in one query, locked
       (`SELECT ... FOR UPDATE`, in id order) so a concurrent allocation cannot be lost;
    3. decide every row in memory: new, changed (with timeline entries), unchanged,
       settled in the source (a payment to record), or rejected with a reason per field;
    4. COPY new customers, contacts and invoices; bulk_update changed ones; bulk_create
       the timeline entries; record source settlements through `accounts.services`.

    Rows are read as plain tuples, not model instances (a model instance costs more than
    the row's whole decision); only a changed invoice becomes an Invoice, for its timeline.
    Counts reach the Tally only after the chunk committed, so a retried chunk is counted once.
    New invoices get one "import" timeline entry per customer per batch, written by `finish`.
    """

    def __init__(
        self,
        *,
        batch: IntakeBatch,
        tally: Tally,
        source: str,
        by=None,
        chunk_size: int = CHUNK_SIZE,
        on_row: Callable[[RowOutcome], None] | None = None,
        flush_rejections: bool = True,
    ):
        self.batch, self.tally, self.source, self.by = batch, tally, source, by
        self.chunk_size = chunk_size
        self.on_row = on_row
        self.flush_rejections = flush_rejections
        self.pending: list[InvoiceRecord] = []
        # number -> (row, amount, hash of signature): repeats in one load (Xero line items).
        self.seen: dict[str, tuple[int, Decimal, int]] = {}
        self.customers: dict[str, _Customer] = {}  # external_ref -> customer, for the batch
        self.created_per_customer: dict[int, list] = defaultdict(list)
        self.today = timezone.localdate()
        # Fields whose bad value only warns: the profile's (the API's batches have none).
        self.warn_only = frozenset(batch.profile.warn_only or ()) if batch.profile_id else ()

    # -- feeding -----------------------------------------------------------------------

    def add(self, record: InvoiceRecord) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.chunk_size:
            self.apply_pending()

    def reject(
        self,
        row_number: int,
        raw: Mapping,
        errors: dict,
        number: str = "",
        at_stake: tuple[Decimal, str] | None = None,
    ) -> None:
        """A row refused before it became a record (by the parser): an invoice blocked."""
        batches.reject(
            self.tally,
            self.batch,
            row_number=row_number,
            raw=raw,
            errors=errors,
            at_stake=at_stake,
            invoices_blocked=1,
        )
        self._report(RowOutcome(row_number, number, "rejected", errors))

    def finish(self) -> Tally:
        self.apply_pending()
        if self.created_per_customer:
            batches.with_retries(self._write_import_summaries, source=self.source)
        if self.flush_rejections:
            batches.flush_rejections(self.tally)
        return self.tally

    # -- one chunk ---------------------------------------------------------------------

    def apply_pending(self) -> None:
        if not self.pending:
            return
        records, self.pending = self.pending, []
        records = self._drop_repeats(records)
        if records:
            attempts = []

            def attempt() -> _Plan:
                if attempts:  # a retry: rows cached by the failed attempt may be stale
                    self.customers = {}
                attempts.append(1)
                return self._apply(records)

            plan = batches.with_retries(attempt, source=self.source)
            self.customers.update(plan.new_customers)
            for record, errors in plan.rejections:
                batches.reject(
                    self.tally,
                    self.batch,
                    row_number=record.row_number,
                    raw=record.raw,
                    errors=errors,
                    at_stake=(record.amount, record.currency),
                    invoices_blocked=1,
                )
            for record, warnings in plan.warnings:
                batches.warn(
                    self.tally,
                    self.batch,
                    row_number=record.row_number,
                    number=record.number,
                    warnings=warnings,
                )
            created = self.created_per_customer
            for record, customer in plan.new_invoices:
                created[customer.pk].append(record.number)
            for outcome, n in plan.counts.items():
                setattr(self.tally, outcome, getattr(self.tally, outcome) + n)
            if self.on_row is not None:
                for outcome in sorted(plan.outcomes, key=lambda o: o.row_number):
                    self._report(outcome)
                for record, errors in plan.rejections:
                    self._report(RowOutcome(record.row_number, record.number, "rejected", errors))
        if self.flush_rejections:
            batches.flush_rejections(self.tally)

    def _drop_repeats(self, records: list[InvoiceRecord]) -> list[InvoiceRecord]:
        """Identical repeats of an invoice count as unchanged; conflicting ones are rejected."""
        kept = []
        seen = self.seen
        for record in records:
            signature = hash(record.signature())
            first = seen.get(record.number)
            if first is None:
                seen[record.number] = (record.row_number, record.amount, signature)
                kept.append(record)
            elif first[2] == signature:
                self.tally.unchanged += 1
                self._report(RowOutcome(record.row_number, record.number, "unchanged"))
            else:
                if first[1] != record.amount:
                    errors = {
                        "amount": [
                            _(
                                "Invoice %(n)s already appears on row %(row)d with amount "
                                "%(first)s; this row says %(this)s."
                            )
                            % {
                                "n": record.number,
                                "row": first[0],
                                "first": first[1],
                                "this": record.amount,
                            }
                        ]
                    }
                else:
                    errors = {
                        "number": [
                            _(
                                "Invoice %(n)s already appears on row %(row)d with a different "
                                "customer, date, currency, amount due or reference."
                            )
                            % {"n": record.number, "row": first[0]}
                        ]
                    }
                self.reject(
                    record.row_number,
                    record.raw,
                    errors,
                    record.number,
                    at_stake=(record.amount, record.currency),
                )
        return kept

    @transaction.atomic
    def _apply(self, records: list[InvoiceRecord]) -> _Plan:
        plan = _Plan()
        customers, ambiguous = self._load_customers(records, plan)
        if ambiguous:
            plan.rejections.extend(
                (r, ambiguous[r.customer_key]) for r in records if r.customer_key in ambiguous
            )
            records = [r for r in records if r.customer_key not in ambiguous]
        known = [c.pk for c in customers.values() if c.pk is not None]
        contacts = {
            customer_id: _Contact(pk, None, name, email, phone)
            for customer_id, pk, name, email, phone in select_rows(
                Contact,
                ("customer_id", "pk", "name", "email", "phone"),
                key="customer_id",
                keys=known,
                where=[("is_primary", True)],
                order_by=("name", "pk"),  # Contact.Meta.ordering: the last primary wins
            )
        }
        existing = {
            number: state
            for number, *state in select_rows(
                Invoice,
                ("number", *INVOICE_STATE),
                key="number",
                keys=[r.number for r in records],
                where=[("source", self.source)],
                order_by=("pk",),
                lock=True,
            )
        }
        for record in records:
            self._plan_row(record, customers, contacts, existing, plan)
        self._write(plan)
        return plan

    def _load_customers(self, records, plan: _Plan) -> tuple[dict[str, _Customer], dict]:
        """Each record's customer, by key, then reference, then normalised name (see the
        module's docstring), in at most four queries per chunk; and the keys whose name
        matches several customers, with the row's error naming them."""
        cached = self.customers
        missing = {r.customer_key for r in records if r.customer_key not in cached}
        rows = select_rows(
            Customer,
            CUSTOMER_STATE,
            key="external_ref",
            keys=list(missing),
            where=[("source", self.source)],
        )
        by_key = {row[1]: row for row in rows}
        unmatched = [
            r for r in records if r.customer_key in missing and r.customer_key not in by_key
        ]
        ambiguous: dict[str, dict] = {}
        by_ref, by_name = self._match_elsewhere(unmatched, ambiguous) if unmatched else ({}, {})
        # A merged customer leads to its survivor.
        merged = {row[6] for row in (*by_key.values(), *by_ref.values()) if row[6] is not None}
        survivors = {
            row[0]: row
            for row in select_rows(Customer, CUSTOMER_STATE, key="pk", keys=list(merged))
        }
        for key, matches in (("key", by_key), ("reference", by_ref), ("name", by_name)):
            for customer_key, row in matches.items():
                row = survivors.get(row[6], row)
                pk, ref, name, country, currency, source = row[:6]
                cached[customer_key] = _Customer(
                    pk, customer_key, name, country, currency, match=key, ref=ref, source=source
                )
        found = {}
        for record in records:
            key = record.customer_key
            if key in found or key in ambiguous:
                continue
            customer = cached.get(key) or plan.new_customers.get(key)
            if customer is None:
                customer = _Customer(
                    None, key, record.customer_name, record.country, record.currency, match="new"
                )
                plan.new_customers[key] = customer
            found[key] = customer
        return found, ambiguous

    def _match_elsewhere(self, records, ambiguous: dict) -> tuple[dict, dict]:
        """Customers for rows their key did not find: by the reference in another source
        (exactly one customer has it), then by the normalised name. Fills `ambiguous`."""
        by_ref: dict[str, tuple] = {}
        refs = {r.customer_key for r in records if _has_ref(r)}
        if refs:
            candidates: dict[str, list] = defaultdict(list)
            for row in select_rows(Customer, CUSTOMER_STATE, key="external_ref", keys=list(refs)):
                candidates[row[1]].append(row)
            for ref, rows in candidates.items():
                if len({row[6] or row[0] for row in rows}) == 1:
                    by_ref[ref] = rows[0]
        wanted: dict[str, str] = {}  # customer key -> normalised name
        for record in records:
            if record.customer_key in by_ref:
                continue
            name = normalized_name(record.customer_name)
            if name:
                wanted[record.customer_key] = name
        by_name: dict[str, tuple] = {}
        if not wanted:
            return by_ref, by_name
        named: dict[str, list] = defaultdict(list)
        for row in select_rows(
            Customer, CUSTOMER_STATE, key="normalized_name", keys=sorted(set(wanted.values()))
        ):
            # A merged customer is reached through its survivor; a consumer (a person)
            # is found by reference only: two people may share a name.
            if row[6] is None and row[8] != Customer.Kind.CONSUMER:
                named[row[7]].append(row)
        has_ref = {r.customer_key: _has_ref(r) for r in records}
        for customer_key, name in wanted.items():
            rows = named.get(name, [])
            if has_ref[customer_key]:
                # The same source knows this customer under another reference: another
                # account that happens to share the name (a name-keyed one does not count).
                rows = [
                    row
                    for row in rows
                    if row[5] != self.source or normalized_name(row[1]) == row[7] or not row[1]
                ]
            if len(rows) == 1:
                by_name[customer_key] = rows[0]
            elif len(rows) > 1:
                ambiguous[customer_key] = {
                    "customer_name": [
                        _(
                            "%(n)d customers match this name: %(names)s. Nothing is guessed: "
                            "add a customer reference column, or merge the duplicates."
                        )
                        % {
                            "n": len(rows),
                            "names": "; ".join(
                                f"#{row[0]} {row[2]}" + (f" ({row[1]})" if row[1] else "")
                                for row in sorted(rows)[:5]
                            ),
                        }
                    ]
                }
        return by_ref, by_name

    def _plan_row(self, record, customers, contacts, existing, plan: _Plan) -> None:
        customer = customers[record.customer_key]
        errors: dict[str, list[str]] = {}
        warnings = record.warnings
        customer_changes = self._customer_changes(customer, record)
        phone = ""
        if record.phone:
            phone, phone_errors = parsing.phone(record.phone, record.country or customer.country)
            if phone_errors and "phone" in self.warn_only:
                warnings = {**warnings, "phone": list(phone_errors)}
            elif phone_errors:
                errors["phone"] = list(phone_errors)
        state = existing.get(record.number)
        invoice_changes, settlement, paid = {}, None, None
        if state is None:
            balance = record.amount
            if record.amount_paid:
                paid = record.amount_paid
                balance -= paid
            if record.amount_due is not None and record.amount_due < balance:
                settlement = balance - record.amount_due
        else:
            invoice_changes, settlement, paid = self._invoice_changes(
                state, customer, record, errors
            )
        if errors:
            plan.rejections.append((record, errors))
            return

        if customer_changes:
            for name, (_old, new) in customer_changes.items():
                setattr(customer, name, new)
            plan.changed_customers[customer.pk] = customer
        contact_changed = (record.email or phone) and self._plan_contact(
            customer, record, phone, contacts, plan
        )

        if warnings:
            plan.warnings.append((record, warnings))
        outcome = "unchanged"
        if state is None:
            plan.new_invoices.append((record, customer))
            outcome = "created"
        elif invoice_changes or settlement or paid or customer_changes or contact_changed:
            outcome = "updated"
        plan.counts[outcome] += 1
        if invoice_changes:
            self._apply_invoice_changes(record.number, state, invoice_changes, plan)
        if settlement:
            external_id = f"{record.number}:settled-in-{self.source}:{record.amount_due}"
            plan.settlements.append((record.number, settlement, external_id[:100]))
        if paid:
            plan.paid.append((record, paid, payment_key(self.source, record)))
        if record.disputed:
            plan.disputed.append((record.number, record.paid_on))
        if self.on_row is None:
            return
        changes = {name: [str(a), str(b)] for name, (a, b) in invoice_changes.items()}
        if settlement:
            changes["amount_due"] = [str(record.amount_due + settlement), str(record.amount_due)]
        if paid:
            changes["amount_paid"] = [str(record.amount_paid - paid), str(record.amount_paid)]
        if customer_changes:
            changes.update({f"customer {k}": [a, b] for k, (a, b) in customer_changes.items()})
        if contact_changed:
            changes["contact"] = ["", record.email or phone]
        plan.outcomes.append(
            RowOutcome(
                record.row_number,
                record.number,
                outcome,
                changes,
                warnings=dict(warnings),
                customer=customer.shown(),
            )
        )

    @staticmethod
    def _customer_changes(customer: _Customer, record) -> dict:
        if customer.pk is None:
            return {}
        changes = {}
        if customer.match in ("reference", "name"):
            # Found by its reference elsewhere or by its name: this file does not own the
            # customer; it only fills a missing country.
            if record.country and not customer.country:
                changes["country"] = (customer.country, record.country)
            return changes
        if _has_ref(record) and customer.name != record.customer_name:
            changes["name"] = (customer.name, record.customer_name)
        if record.country and customer.country != record.country:
            changes["country"] = (customer.country, record.country)
        return changes

    def _invoice_changes(
        self, state, customer, record, errors
    ) -> tuple[dict, Decimal | None, Decimal | None]:
        _pk, customer_id, currency, issued_on, due_on, amount, reference, open_balance, status = (
            state
        )
        if customer_id != customer.pk:
            errors["customer_name"] = [
                _("Invoice %(n)s belongs to another customer in the ledger.") % {"n": record.number}
            ]
            return {}, None, None
        if currency != record.currency:
            errors["currency"] = [
                _("Invoice %(n)s is in %(was)s; the currency of an issued invoice cannot change.")
                % {"n": record.number, "was": currency}
            ]
            return {}, None, None
        changes = {}
        if (issued_on, due_on, amount, reference) != (
            record.issued_on,
            record.due_on,
            record.amount,
            record.reference,
        ):
            for name, old in zip(
                TRACKED_FIELDS, (issued_on, due_on, amount, reference), strict=True
            ):
                new = getattr(record, name)
                if old != new:
                    changes[name] = (old, new)
        balance = open_balance
        if "amount" in changes:
            paid = amount - open_balance
            balance = open_balance + (record.amount - amount)
            if balance < 0:
                errors["amount"] = [
                    _("amount %(new)s is below the %(paid)s already paid.")
                    % {"new": record.amount, "paid": paid}
                ]
                return {}, None, None
        if status in (Invoice.Status.CANCELLED, Invoice.Status.WRITTEN_OFF):
            if "amount" in changes:
                errors["amount"] = [
                    _("Invoice %(n)s is %(status)s; its amount cannot change.")
                    % {"n": record.number, "status": str(Invoice.Status(status).label).lower()}
                ]
            return ({k: v for k, v in changes.items() if k != "amount"}, None, None)
        # Paid in the source: book what the ledger does not hold yet (a later file with a
        # larger amount paid books the difference; the same file again books nothing).
        paid = None
        if record.amount_paid:
            already = record.amount - balance
            if record.amount_paid > already:
                paid = min(record.amount_paid - already, balance)
                balance -= paid
        settlement = None
        if record.amount_due is not None and record.amount_due != balance:
            if record.amount_due > balance:
                errors["amount_due"] = [
                    _(
                        "%(source)s says %(due)s is due but the ledger has %(open)s open; "
                        "refunds and reversals must be recorded in the ledger, not imported."
                    )
                    % {"source": self.source, "due": record.amount_due, "open": balance}
                ]
                return {}, None, None
            settlement = balance - record.amount_due
        return changes, settlement, paid

    def _apply_invoice_changes(self, number, state, changes, plan: _Plan) -> None:
        pk, customer_id, currency, issued_on, due_on, amount, reference, open_balance, status = (
            state
        )
        invoice = Invoice(
            pk=pk,
            customer_id=customer_id,
            number=number,
            source=self.source,
            currency=currency,
            issued_on=issued_on,
            due_on=due_on,
            amount=amount,
            reference=reference,
            open_balance=open_balance,
            status=status,
        )
        invoice._state.adding = False
        if "amount" in changes:
            old, new = changes["amount"]
            invoice.open_balance = invoice.open_balance + (new - old)
        for name, (_old, new) in changes.items():
            setattr(invoice, name, new)
        invoice.status = invoice.status_for_balance(invoice.open_balance)
        invoice.updated_at = timezone.now()
        plan.changed_invoices[invoice.pk] = invoice
        for name, (old, new) in changes.items():
            plan.activities.append(
                timeline.entry(
                    Activity.Kind.STATUS_CHANGE,
                    customer=invoice.customer_id,
                    invoice=invoice,
                    by=self.by,
                    text=_("%(n)s %(field)s: %(old)s → %(new)s (import batch %(batch)s)")
                    % {
                        "n": invoice.number,
                        "field": _(FIELD_LABELS[name]),
                        "old": "—" if old in (None, "") else old,
                        "new": new,
                        "batch": self.batch.pk,
                    },
                    details={
                        "field": name,
                        "from": _plain(old),
                        "to": _plain(new),
                        "batch": self.batch.pk,
                    },
                )
            )

    def _plan_contact(self, customer, record, phone, contacts, plan: _Plan) -> bool:
        contact = contacts.get(customer.pk) if customer.pk else None
        contact = contact or plan.new_contacts.get(record.customer_key)
        if contact is None:
            plan.new_contacts[record.customer_key] = _Contact(
                None,
                customer,
                record.contact_name or record.email or customer.name,
                record.email,
                phone,
            )
            return True
        changed = False
        if record.email and contact.email != record.email:
            contact.email, changed = record.email, True
        if phone and contact.phone != phone:
            contact.phone, changed = phone, True
        if record.contact_name and contact.name != record.contact_name:
            contact.name, changed = record.contact_name, True
        if changed and contact.pk:
            plan.changed_contacts[contact.pk] = contact
        return changed

    def _write(self, plan: _Plan) -> None:
        now = timezone.now()
        if plan.new_customers:
            zones = {}  # country -> (zone, source, region): invoice rows carry no time zone
            for c in plan.new_customers.values():
                if c.country not in zones:
                    found = timezones.infer(c.country)
                    zones[c.country] = (found.zone, str(found.source), found.region)
            bulk.insert_rows(
                Customer,
                (
                    *("name", "source", "external_ref", "country", "currency"),
                    *("timezone", "timezone_source", "timezone_region"),
                ),
                (
                    (c.name, self.source, c.key, c.country, c.currency, *zones[c.country])
                    for c in plan.new_customers.values()
                ),
                returning=False,
            )
            ids = select_rows(
                Customer,
                ("external_ref", "pk"),
                key="external_ref",
                keys=list(plan.new_customers),
                where=[("source", self.source)],
            )
            for key, pk in ids:
                plan.new_customers[key].pk = pk
        if plan.changed_customers:
            Customer.objects.bulk_update(
                [
                    Customer(pk=c.pk, name=c.name, country=c.country, updated_at=now)
                    for c in plan.changed_customers.values()
                ],
                ["name", "country", "updated_at"],
                batch_size=1000,
            )
        if plan.new_contacts:
            bulk.insert_rows(
                Contact,
                ("customer_id", "name", "email", "phone", "is_primary"),
                (
                    (c.customer.pk, c.name, c.email, c.phone, True)
                    for c in plan.new_contacts.values()
                ),
                returning=False,
            )
        if plan.changed_contacts:
            # write_rows keeps the e-mail and phone lookup hashes in step.
            bulk.write_rows(
                Contact,
                [
                    Contact(pk=c.pk, name=c.name, email=c.email, phone=c.phone)
                    for c in plan.changed_contacts.values()
                ],
                ["name", "email", "phone"],
            )
        if plan.new_invoices:
            source, status, stamp = self.source, Invoice.Status.OPEN.value, copy_timestamp(now)
            bulk.insert_rows(
                Invoice,
                INVOICE_COLUMNS,
                (
                    (
                        *(customer.pk, record.number, source, record.issued_on),
                        *(record.due_on, record.currency, record.amount, record.amount),
                        *(status, record.reference, "", "", stamp, stamp),
                    )
                    for record, customer in plan.new_invoices
                ),
                returning=False,
            )
        if plan.changed_invoices:
            Invoice.objects.bulk_update(
                plan.changed_invoices.values(),
                [
                    "issued_on",
                    "due_on",
                    "amount",
                    "open_balance",
                    "status",
                    "reference",
                    "updated_at",
                ],
                batch_size=1000,
            )
        if plan.activities:
            timeline.add_all(plan.activities)
        if plan.settlements:
            numbers = [number for number, _amount, _external_id in plan.settlements]
            invoices = {
                invoice.number: invoice
                for invoice in Invoice.objects.select_related("customer").filter(
                    source=self.source, number__in=numbers
                )
            }
            for number, amount, external_id in plan.settlements:
                self._settle(invoices[number], amount, external_id)
        if plan.paid:
            self._book_paid(plan.paid)
        if plan.disputed:
            self._dispute(plan.disputed)
        touched = {customer.pk for _record, customer in plan.new_invoices}
        touched |= {invoice.customer_id for invoice in plan.changed_invoices.values()}
        services.refresh_past_due_later(customer_ids=touched)

    def _settle(self, invoice: Invoice, amount: Decimal, external_id: str) -> None:
        """The source says less is due than our balance: it was paid there; book it here."""
        payment = Payment.objects.filter(source=self.source, external_id=external_id).first()
        if payment is None:
            payment = services.record_payment(
                amount=amount,
                currency=invoice.currency,
                received_on=self.today,
                customer=invoice.customer,
                method=Payment.Method.OTHER,
                remittance_reference=_("Settled in %(source)s (import batch %(batch)s)")
                % {"source": self.source, "batch": self.batch.pk},
                source=self.source,
                external_id=external_id,
                by=self.by,
            )
        if payment.unallocated_amount > 0:
            services.allocate(
                payment=payment,
                invoice=invoice,
                amount=min(amount, payment.unallocated_amount),
                by=self.by,
                on=self.today,
                rule="source-sync",
            )

    def _book_paid(self, paid: list) -> None:
        """Book what the source says was paid, dated: one payment per row, received on the
        paid date, and its allocation on that date; set-based (record_payments and
        allocate_many write each table with one statement). A payment key already in the
        ledger (the same row loaded twice at once) books nothing."""
        ids = {
            number: (pk, customer_id)
            for number, pk, customer_id in select_rows(
                Invoice,
                ("number", "pk", "customer_id"),
                key="number",
                keys=[record.number for record, _amount, _key in paid],
                where=[("source", self.source)],
            )
        }
        note = _("Paid in %(source)s (import batch %(batch)s)") % {
            "source": self.source,
            "batch": self.batch.pk,
        }
        results = services.record_payments(
            [
                {
                    "amount": amount,
                    "currency": record.currency,
                    "received_on": record.paid_on,
                    "customer_id": ids[record.number][1],
                    "method": Payment.Method.OTHER,
                    "remittance_reference": note,
                    "source": self.source,
                    "external_id": key,
                }
                for record, amount, key in paid
            ],
            by=self.by,
        )
        plans = [
            (payment.pk, [(ids[record.number][0], amount)], "import-paid", record.paid_on)
            for (record, amount, _key), payment in zip(paid, results, strict=True)
            if isinstance(payment, Payment)
        ]
        if plans:
            services.allocate_many(plans, by=self.by)

    def _dispute(self, disputed: list[tuple[str, dt.date | None]]) -> None:
        """Record, once, the dispute the source marks on each invoice (keyed by source and
        number, so a re-import records none); one query finds those already recorded.

        The dispute was raised in the source: the import records it as the system does
        (by=None; the owner is the customer's agent), with the batch named, so a loader
        who may import but not open disputes still loads the history. An open invoice gets
        an open dispute (dunning holds for it). An invoice the history says was paid gets
        a dispute already resolved, dated as the history allows: raised no later than its
        due date (or its payment, if earlier) and resolved on the day it was paid, so the
        predictor's point-in-time features see a customer's past disputes on the days
        they were known, and never the invoice's own dispute before its due date. A
        cancelled or written-off invoice is not disputed."""
        from cases.disputes import DISPUTABLE, open_dispute
        from cases.models import Dispute

        paid_on = dict(disputed)
        keys = {
            number: services.short_key(f"import:{self.source}:{number}", 60) for number in paid_on
        }
        opened = set(
            Dispute.objects.filter(bulk.one_of("source", keys.values())).values_list(
                "source", flat=True
            )
        )
        wanted = [number for number, key in keys.items() if key not in opened]
        if not wanted:
            return
        description = _("Marked disputed in %(source)s (import batch %(batch)s)") % {
            "source": self.source,
            "batch": self.batch.pk,
        }
        for invoice in Invoice.objects.select_related("customer").filter(
            bulk.one_of("number", wanted),
            source=self.source,
            status__in=(*DISPUTABLE, Invoice.Status.PAID),
        ):
            if invoice.status == Invoice.Status.PAID:
                paid = paid_on.get(invoice.number)
                if paid is None:
                    continue  # paid in this product, not in the history: nothing to date
                dispute = Dispute.objects.create(
                    customer=invoice.customer,
                    reason=Dispute.Reason.OTHER,
                    description=description,
                    status=Dispute.Status.RESOLVED_US,
                    owner=invoice.customer.assigned_agent,
                    source=keys[invoice.number],
                )
                dispute.invoices.add(invoice)
                Dispute.objects.filter(pk=dispute.pk).update(
                    opened_at=_start_of(min(invoice.due_on, paid)),
                    resolved_at=_start_of(paid),
                )
                continue
            open_dispute(
                customer=invoice.customer,
                invoices=[invoice],
                reason=Dispute.Reason.OTHER,
                description=description,
                by=None,
                source=keys[invoice.number],
            )

    @transaction.atomic
    def _write_import_summaries(self) -> None:
        now = copy_timestamp(timezone.now())
        actor = self.by.pk if self.by is not None else None
        summary = _("%(n)d invoice(s) imported from %(source)s (batch %(batch)s)")
        source, batch, kind = self.source, self.batch.pk, Activity.Kind.IMPORT.value
        timeline.copy_rows(
            (
                customer_id,
                None,
                kind,
                actor,
                summary % {"n": len(numbers), "source": source, "batch": batch},
                {"batch": batch, "created": len(numbers), "numbers": numbers[:20]},
                now,
            )
            for customer_id, numbers in self.created_per_customer.items()
        )
        self.created_per_customer.clear()

    def _report(self, outcome: RowOutcome) -> None:
        if self.on_row is not None:
            self.on_row(outcome)


INVOICE_COLUMNS = (
    "customer_id",
    "number",
    "source",
    "issued_on",
    "due_on",
    "currency",
    "amount",
    "open_balance",
    "status",
    "reference",
    "external_id",
    "pay_link",
    "created_at",
    "updated_at",
)


def copy_timestamp(moment: dt.datetime) -> str:
    """An aware datetime as COPY text: psycopg dumps a datetime object 5x slower than a str."""
    return moment.isoformat()


def select_rows(
    model, columns: tuple[str, ...], *, key: str, keys: list, where=(), order_by=(), lock=False
) -> list[tuple]:
    """The `columns` of the rows whose `key` is one of `keys`, as plain tuples; one query.

    On PostgreSQL the keys travel as one array (`= ANY(%s)`): building the ORM's `IN` with
    thousands of placeholders costs more than the query. `lock` adds FOR UPDATE.
    """
    if not keys:
        return []
    if connection.vendor != "postgresql":
        queryset = model.objects.filter(**dict(where), **{f"{key}__in": keys}).order_by(*order_by)
        if lock:
            queryset = queryset.select_for_update(of=("self",))
        return list(queryset.values_list(*columns))
    from psycopg import sql as pg_sql

    opts = model._meta

    def column(name: str) -> pg_sql.Identifier:
        return pg_sql.Identifier((opts.pk if name == "pk" else opts.get_field(name)).column)

    conditions = [pg_sql.SQL("{} = %s").format(column(name)) for name, _value in where]
    conditions.append(pg_sql.SQL("{} = ANY(%s)").format(column(key)))
    statement = pg_sql.SQL("SELECT {} FROM {} WHERE {}").format(
        pg_sql.SQL(", ").join(map(column, columns)),
        pg_sql.Identifier(opts.db_table),
        pg_sql.SQL(" AND ").join(conditions),
    )
    if order_by:
        statement += pg_sql.SQL(" ORDER BY {}").format(pg_sql.SQL(", ").join(map(column, order_by)))
    if lock:
        statement += pg_sql.SQL(" FOR UPDATE")
    with connection.cursor() as cursor:
        cursor.execute(
            statement.as_string(cursor.cursor.connection),
            [*(value for _name, value in where), list(keys)],
        )
        rows = cursor.fetchall()
    # Encrypted personal columns (accounts/crypto.py) come back as their plaintext.
    readers = [
        (i, field.from_db_value)
        for i, name in enumerate(columns)
        if name != "pk" and getattr(field := opts.get_field(name), "is_encrypted", False)
    ]
    if readers:
        rows = [list(row) for row in rows]
        for i, read in readers:
            for row in rows:
                row[i] = read(row[i], None, connection)
        rows = [tuple(row) for row in rows]
    return rows


def payment_key(source: str, record: InvoiceRecord) -> str:
    """The external id of the payment a row's paid date and amount book."""
    return services.paid_history_key(
        source=source, number=record.number, paid_on=record.paid_on, amount=record.amount_paid
    )


def _has_ref(record: InvoiceRecord) -> bool:
    """Whether the row named its customer by a reference (a column of its own), not by
    the name alone."""
    return bool(record.customer_name) and record.customer_key != record.customer_name


def _plain(value):
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return value


def upsert_invoices(
    records: Iterable[InvoiceRecord],
    *,
    batch: IntakeBatch,
    by=None,
    source: str | None = None,
    tally: Tally | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_row: Callable[[RowOutcome], None] | None = None,
) -> Tally:
    """Apply already-validated records (e.g. from the REST API) to the ledger; returns counts.

    The caller opens and closes the batch; rows it rejected itself go through `batches.reject`.
    `on_row` hears what happened to each row (the rows this pipeline rejects among them).
    """
    tally = tally if tally is not None else Tally()
    source = source or (batch.profile.source if batch.profile_id else batch.source)
    upserter = InvoiceUpserter(
        batch=batch, tally=tally, source=source, by=by, chunk_size=chunk_size, on_row=on_row
    )
    for record in records:
        upserter.add(record)
    return upserter.finish()


def _start_of(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))
