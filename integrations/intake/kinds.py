"""The four kinds of intake row, and the one loop that takes any of them into the ledger.

Every kind follows the same path: `parsing.ColumnMap` finds its columns, its parser turns
each row into a record (or a rejection with a reason per column), its upserter writes the
records and counts each row as created, updated, unchanged or rejected in the batch's
Tally. What differs between kinds is said here, once:

- invoices take their columns, formats and source from an import profile and are written
  set-based, a chunk per transaction (a file can hold a million rows);
- customers, contacts and payments have fixed columns (each named as its field) and are
  written row by row through the ledger's services; their load is all or nothing.
"""

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from ..models import ImportProfile, IntakeBatch
from . import contacts, customers, invoices, parsing, payments, records
from .batches import RowOutcome, RowRejected, Tally
from .parsing import ColumnMap, RawRow


@dataclass(frozen=True)
class Kind:
    """What one kind of row needs on its way into the ledger."""

    name: str  # IntakeBatch.Kind
    key_field: str  # names a row in previews and rejections
    key_label: str  # that field, as the preview's column heading
    parser: Callable  # (profile) -> parser with .parse(values, row_number=, raw=)
    upserter: type
    chunk_size: int
    # Fixed columns ({field: [header aliases]}) and the required ones; None: the profile's.
    columns: Mapping[str, Sequence[str]] | None = None
    required: tuple[str, ...] = ()
    # The model permission needed to import this kind, besides integrations.add_intakebatch.
    permission: str = ""
    # All or nothing: the whole load in one transaction. Invoices commit chunk by chunk.
    is_atomic: bool = True

    @property
    def needs_profile(self) -> bool:
        return self.columns is None

    @property
    def label(self) -> str:
        return IntakeBatch.Kind(self.name).label

    def bind(self, headers, profile: ImportProfile | None) -> ColumnMap:
        if self.columns is None:
            return ColumnMap.bind(headers, columns=profile.columns, required=profile.required)
        return ColumnMap.bind(headers, columns=self.columns, required=self.required)


INVOICES = Kind(
    name=IntakeBatch.Kind.INVOICES,
    key_field="number",
    key_label=_("Invoice"),
    parser=invoices.InvoiceParser,
    upserter=invoices.InvoiceUpserter,
    chunk_size=invoices.CHUNK_SIZE,
    is_atomic=False,
)
CUSTOMERS = Kind(
    name=IntakeBatch.Kind.CUSTOMERS,
    key_field="external_ref",
    key_label=_("Customer reference"),
    parser=customers.CustomerParser,
    upserter=customers.CustomerUpserter,
    chunk_size=records.CHUNK_SIZE,
    columns=customers.COLUMNS,
    required=customers.REQUIRED,
    permission="accounts.add_customer",
)
CONTACTS = Kind(
    name=IntakeBatch.Kind.CONTACTS,
    key_field="email",
    key_label=_("E-mail"),
    parser=contacts.ContactParser,
    upserter=contacts.ContactUpserter,
    chunk_size=records.CHUNK_SIZE,
    columns=contacts.COLUMNS,
    required=contacts.REQUIRED,
    permission="accounts.add_contact",
)
PAYMENTS = Kind(
    name=IntakeBatch.Kind.PAYMENTS,
    key_field="external_id",
    key_label=_("External id"),
    parser=payments.PaymentParser,
    upserter=payments.PaymentUpserter,
    chunk_size=records.CHUNK_SIZE,
    columns=payments.COLUMNS,
    required=payments.REQUIRED,
    permission="accounts.add_payment",
)
KINDS = {kind.name: kind for kind in (INVOICES, CUSTOMERS, CONTACTS, PAYMENTS)}


def load_rows(
    rows: Iterator[tuple[int, list]],
    headers: list,
    *,
    kind: Kind,
    profile: ImportProfile | None = None,
    batch: IntakeBatch,
    by=None,
    tally: Tally | None = None,
    chunk_size: int | None = None,
    on_row: Callable[[RowOutcome], None] | None = None,
    flush_rejections: bool = True,
) -> Tally:
    """Parse and upsert rows of cells under `headers`; raises MissingColumns before any row.

    Invoices need the import `profile` (columns, formats, source); the other kinds ignore it.
    """
    columns = kind.bind(headers, profile)
    parser = kind.parser(profile)
    tally = tally if tally is not None else Tally()
    options = {
        "batch": batch,
        "tally": tally,
        "by": by,
        "chunk_size": chunk_size or kind.chunk_size,
        "on_row": on_row,
        "flush_rejections": flush_rejections,
    }
    if kind.needs_profile:
        options["source"] = profile.source
    upserter = kind.upserter(**options)
    parse, fields, add = parser.parse, columns.fields, upserter.add
    at_stake = getattr(parser, "at_stake", None)
    for row_number, values in rows:
        raw = RawRow(columns, values)
        try:
            record = parse(fields(values), row_number=row_number, raw=raw)
        except RowRejected as exc:
            cells = fields(values)
            label = parsing.text(cells.get(kind.key_field))
            stake = at_stake(cells) if at_stake is not None else None
            upserter.reject(row_number, raw, exc.errors, label, at_stake=stake)
            continue
        add(record)
    return upserter.finish()
