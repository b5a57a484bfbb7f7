"""Payment rows: read, keyed by source + external_id, recorded once through the ledger.

Columns (each header as named here, any case): source, external_id, customer_ref,
customer_source, kind, amount, currency, received_on, method, remittance_reference,
payer_name, payer_account (who sent the money, as the bank named them). Only
external_id is required; a new payment also needs an amount, a currency and a date. Amounts
are exact (more than two decimals is an error, never rounded); dates are YYYY-MM-DD,
DD/MM/YYYY or DD.MM.YYYY. An empty source means "spreadsheet", an empty kind a payment, an
empty method a bank transfer.

A new payment is recorded by `accounts.services.save_new_payment` (wholly unallocated, with
its timeline entry when the payer is known). A recorded payment's money and payer never
change: a row that says otherwise is refused (record a refund or a new payment instead);
its date, method, remittance reference and payer's name and account may be corrected.
"""

import copy
from collections.abc import Iterable, Mapping

from django.db.models import Q
from django.utils.translation import gettext as _

from accounts import services
from accounts.models import Payment

from ..models import IntakeBatch
from . import batches, records
from .batches import RowRejected, Tally
from .contacts import customers_by_reference, the_customer
from .parsing import Cells, whole_text
from .records import DEFAULT_SOURCE, KEY_REQUIRED, Record, RecordUpserter

FIELDS = (
    "source",
    "external_id",
    "customer_ref",
    "customer_source",
    "kind",
    "amount",
    "currency",
    "received_on",
    "method",
    "remittance_reference",
    "payer_name",
    "payer_account",
)
COLUMNS = {name: [name] for name in FIELDS}
REQUIRED = ("external_id",)
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y")
DEFAULTS = {
    "source": DEFAULT_SOURCE,
    "kind": Payment.Kind.PAYMENT,
    "method": Payment.Method.BANK_TRANSFER,
}
# Never changed on a recorded payment: its money, and whose money it is.
FIXED = ("amount", "currency", "kind", "customer")
# What a row may correct on a recorded payment.
CORRECTABLE = ("received_on", "method", "remittance_reference", "payer_name", "payer_account")
NEEDED = ("amount", "currency", "received_on")  # by a new payment


class PaymentParser:
    """One payment row into a Record, or RowRejected with the reasons per column."""

    def __init__(self, profile=None):
        self.cells = Cells(date_formats=DATE_FORMATS, exact_cents=True)

    def parse(self, values: dict, *, row_number: int = 0, raw: Mapping | None = None) -> Record:
        errors: dict[str, list[str]] = {}
        cleaned: dict = {}
        for name, cell in values.items():
            try:
                cleaned[name] = self.read(name, cell)
            except ValueError as exc:
                errors[name] = [str(exc)]
                continue
            if cleaned[name] in ("", None) and name in DEFAULTS:
                cleaned[name] = DEFAULTS[name]
        source = cleaned.pop("source", DEFAULT_SOURCE)
        external_id = cleaned.pop("external_id", "")
        if not external_id and "external_id" not in errors:
            errors["external_id"] = [KEY_REQUIRED]
        for name in ("amount", "received_on"):
            if name in cleaned and cleaned[name] is None:
                errors[name] = [_("Required.")]
        if cleaned.get("amount") is not None and cleaned["amount"] <= 0:
            errors["amount"] = [_("A payment must be more than zero.")]
        fields = {"source": source, "external_id": external_id}
        fields.update(
            (name, value)
            for name, value in cleaned.items()
            # An empty cell is judged by the upserter: required of a new payment, and a
            # change of money on a recorded one.
            if name not in ("customer_ref", "customer_source") and value not in (None, "")
        )
        records.check_fields(Payment, fields, errors, {})
        if errors:
            raise RowRejected(errors)
        return Record(
            key=(source, external_id),
            values=cleaned,
            label=external_id,
            row_number=row_number,
            raw=raw if raw is not None else values,
        )

    def at_stake(self, values: dict):
        """A refused row's amount and currency, if they can be read (to rank the refusal)."""
        try:
            amount = self.cells.amount(values["amount"])
            currency = self.cells.currency(values.get("currency"))
        except (KeyError, ValueError):
            return None
        return batches.amount_at_stake(amount, currency)

    def read(self, name: str, cell):
        if name == "amount":
            return None if whole_text(cell) == "" else self.cells.amount(cell)
        if name == "received_on":
            return None if whole_text(cell) == "" else self.cells.date(cell)
        if name == "currency":
            return self.cells.currency(cell)
        return whole_text(cell)


class PaymentUpserter(RecordUpserter):
    """Records new payments through `accounts.services.save_new_payment`, once each."""

    COLUMNS = {"customer": "customer_ref"}

    def load(self, batch_records: list[Record]) -> tuple[dict, dict]:
        refs = [r.values["customer_ref"] for r in batch_records if r.values.get("customer_ref")]
        customers = customers_by_reference(refs)
        by_source: dict[str, list[str]] = {}
        for source, external_id in {record.key for record in batch_records}:
            by_source.setdefault(source, []).append(external_id)
        query = Q()
        for source, ids in by_source.items():
            query |= Q(source=source, external_id__in=ids)
        payments: dict[tuple, Payment] = {}
        for payment in Payment.objects.filter(query).select_related("customer").order_by("pk"):
            payments.setdefault((payment.source, payment.external_id), payment)
        return customers, payments

    def apply(self, record: Record, found: tuple[dict, dict]) -> tuple[str, dict]:
        customers, payments = found
        values = dict(record.values)
        customer_ref = values.pop("customer_ref", None)
        customer_source = values.pop("customer_source", "")
        if customer_ref is not None:
            values["customer"] = (
                the_customer(customers, customer_ref, customer_source) if customer_ref else None
            )
        stored = payments.get(record.key)
        if stored is None:
            return self._record_new(record, values, payments)
        errors = {}
        for name in FIXED:
            if name in values and values[name] != getattr(stored, name):
                before = getattr(stored, name)
                errors[self.COLUMNS.get(name, name)] = [
                    _(
                        "Payment %(id)s was recorded with %(field)s %(before)s; a recorded "
                        "payment's %(field)s never changes (record a refund or a new payment)."
                    )
                    % {"id": stored.external_id, "field": name, "before": before or "—"}
                ]
        if errors:
            raise RowRejected(errors)
        changes = records.changes_of(stored, values)
        if not changes:
            return "unchanged", {}
        payment = copy.copy(stored)
        for name in CORRECTABLE:
            if name in values:
                setattr(payment, name, values[name])
        payment.full_clean()
        payment.save(update_fields=list(CORRECTABLE))
        payments[record.key] = payment
        return "updated", changes

    def _record_new(self, record: Record, values: dict, payments: dict) -> tuple[str, dict]:
        missing = [name for name in NEEDED if values.get(name) in (None, "")]
        if missing:
            raise RowRejected({name: [_("Required.")] for name in missing})
        source, external_id = record.key
        payment = Payment(source=source, external_id=external_id, **values)
        services.save_new_payment(payment=payment, by=self.by)
        payments[record.key] = payment
        return "created", {}


def upsert_payments(
    payment_records: Iterable[Record],
    *,
    batch: IntakeBatch,
    by=None,
    tally: Tally | None = None,
    chunk_size: int = records.CHUNK_SIZE,
) -> Tally:
    """Apply payment records (from `PaymentParser`) to the ledger; returns the counts."""
    return records.upsert(
        PaymentUpserter, payment_records, batch=batch, by=by, tally=tally, chunk_size=chunk_size
    )
