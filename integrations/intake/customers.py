"""Customer rows: read, keyed by source + external_ref, written through save_customer.

Columns (each header as named here, any case): source, external_ref, name, kind, segment,
industry, country, timezone, language, currency, credit_limit, and region (or state,
province) and postal_code (or zip, postcode), read only to infer a missing time zone. Only
external_ref is required. A column the file lacks leaves the stored value alone; an empty
cell of kind, segment, language or currency sets that field's default, and an empty source
means "spreadsheet" (the source the generic invoice profile gives customers).

A new customer without a time zone gets one inferred from its country, region and postal
code (accounts/timezones.py; "ambiguous" where the place spans zones); so does a stored
customer whose zone was inferred when its country, region or postal code comes again. A
zone given once is kept until a file gives another.

A new customer is created, and a changed one saved, by `accounts.services.save_customer`,
which validates it and writes "Customer created" or each tracked change to the timeline.
"""

import copy
from collections.abc import Iterable, Mapping

from django.db.models import Q

from accounts import services, timezones
from accounts.models import Customer

from ..models import IntakeBatch
from . import records
from .batches import RowRejected, Tally
from .parsing import CACHE_SIZE, Cells, whole_text
from .records import DEFAULT_SOURCE, KEY_REQUIRED, Record, RecordUpserter

FIELDS = (
    "source",
    "external_ref",
    "name",
    "kind",
    "segment",
    "industry",
    "country",
    "timezone",
    "language",
    "currency",
    "credit_limit",
)
# Read only to infer a missing time zone; not stored.
HINTS = {
    "region": ["region", "state", "province"],
    "postal_code": ["postal_code", "zip", "postcode"],
}
COLUMNS = {**{name: [name] for name in FIELDS}, **HINTS}
REQUIRED = ("external_ref",)
DEFAULTS = {
    "source": DEFAULT_SOURCE,
    "kind": Customer.Kind.BUSINESS,
    "segment": Customer.Segment.STANDARD,
    "language": "en",
    "currency": "USD",
}


class CustomerParser:
    """One customer row into a Record, or RowRejected with the reasons per column."""

    def __init__(self, profile=None):
        self.cells = Cells(exact_cents=True)
        # (field, value) -> its errors: a time zone's check reads the tz database.
        self.checked: dict[tuple, dict] = {}

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
        if cleaned.get("timezone") == "":
            del cleaned["timezone"]  # inferred when applied
        hints = {name: cleaned.pop(name) for name in HINTS if name in cleaned}
        source = cleaned.pop("source", DEFAULT_SOURCE)
        external_ref = cleaned.pop("external_ref", "")
        if not external_ref and "external_ref" not in errors:
            errors["external_ref"] = [KEY_REQUIRED]
        for name, value in (("source", source), ("external_ref", external_ref), *cleaned.items()):
            if name not in errors:
                self.check(name, value, errors)
        if errors:
            raise RowRejected(errors)
        return Record(
            key=(source, external_ref),
            values={**cleaned, **hints},
            label=external_ref,
            row_number=row_number,
            raw=raw if raw is not None else values,
        )

    def read(self, name: str, cell):
        if name == "credit_limit":
            return None if whole_text(cell) == "" else self.cells.amount(cell)
        if name == "currency":
            return self.cells.currency(cell)
        if name == "country":
            # A code or a known country name becomes its code; anything else is kept as
            # typed (upper case) for the model to judge.
            typed = whole_text(cell)
            return self.cells.country(typed) or typed.upper()
        return whole_text(cell)

    def check(self, name: str, value, errors: dict) -> None:
        known = self.checked.get((name, value))
        if known is None:
            known = {}
            records.check_fields(Customer, {name: value}, known, {})
            if len(self.checked) >= CACHE_SIZE:
                self.checked.clear()
            self.checked[(name, value)] = known
        errors.update(known)


class CustomerUpserter(RecordUpserter):
    """Creates and updates customers through `accounts.services.save_customer`."""

    def load(self, batch_records: list[Record]) -> dict[tuple, Customer]:
        keys = {record.key for record in batch_records}
        by_source: dict[str, list[str]] = {}
        for source, external_ref in keys:
            by_source.setdefault(source, []).append(external_ref)
        query = Q()
        for source, refs in by_source.items():
            query |= Q(source=source, external_ref__in=refs)
        found = {}
        customers = Customer.objects.filter(query).select_related("merged_into")
        for customer in customers.order_by("pk"):
            # A merged customer's key reaches the customer it was merged into.
            found.setdefault(
                (customer.source, customer.external_ref), customer.merged_into or customer
            )
        return found

    def apply(self, record: Record, found: dict) -> tuple[str, dict]:
        values = dict(record.values)
        hints = {name: values.pop(name) for name in HINTS if name in values}
        stored = found.get(record.key)
        values = timezones.settle(values, stored=stored, **hints)
        if stored is None:
            source, external_ref = record.key
            customer = Customer(source=source, external_ref=external_ref, **values)
            services.save_customer(customer=customer, by=self.by)
            found[record.key] = customer
            return "created", {}
        changes = records.changes_of(stored, values)
        if not changes:
            return "unchanged", {}
        # A copy: if the ledger refuses the row, later rows still see the stored customer.
        customer = copy.copy(stored)
        for name, (_old, new) in changes.items():
            setattr(customer, name, new)
        services.save_customer(customer=customer, by=self.by)
        found[record.key] = customer
        return "updated", changes


def upsert_customers(
    customer_records: Iterable[Record],
    *,
    batch: IntakeBatch,
    by=None,
    tally: Tally | None = None,
    chunk_size: int = records.CHUNK_SIZE,
) -> Tally:
    """Apply customer records (from `CustomerParser`) to the ledger; returns the counts."""
    return records.upsert(
        CustomerUpserter, customer_records, batch=batch, by=by, tally=tally, chunk_size=chunk_size
    )
