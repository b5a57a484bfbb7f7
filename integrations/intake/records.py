"""What the customer, contact and payment intake share: keys, field checks, row-by-row writes.

Invoices arrive by the hundred thousand and are written set-based (`invoices.py`). The
other kinds are master data and money received: each row is written through the ledger's
own functions (`accounts.services.save_customer`, `save_new_payment`), so the timeline and
the money rules are exactly those of a change made in the console. `RecordUpserter` does
that in chunks:

1. `load(records)` reads what the chunk's keys name, in a query or two (not one per row);
2. each record is applied in its own savepoint (`apply(record, found)`): an unchanged row
   writes nothing; a new or changed one is validated by its model and written;
3. a row the ledger refuses (a field, a constraint, the database) is rolled back to its
   savepoint and kept as a Rejection with the reason per column; the load goes on.

Rows are applied in file order, and a later row with the same key sees what an earlier one
wrote. The caller decides the transaction: a spreadsheet load of these kinds is all or
nothing (`spreadsheets.import_spreadsheet`), as it always was.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from ..models import IntakeBatch
from . import batches
from .batches import RowOutcome, RowRejected, Tally

CHUNK_SIZE = 2_000
# Where a customer or payment row names no source: the source the generic-csv invoice
# profile gives the customers it creates, so both kinds of file find the same customers.
DEFAULT_SOURCE = "spreadsheet"
KEY_REQUIRED = "Required: part of the key that finds the row."


@dataclass(frozen=True)
class Record:
    """One validated row: its key, and the fields the file has a column for.

    `values` holds only the columns present in the file (a missing column leaves the
    stored value alone), already read, defaulted and checked field by field. `label`
    names the row in a preview (a customer reference, an e-mail address, a payment id).
    """

    key: tuple
    values: dict
    label: str = ""
    row_number: int = 0
    raw: Mapping = field(default_factory=dict, compare=False)


def check_fields(model, values: dict, errors: dict, columns: Mapping[str, str]) -> None:
    """Each value through its model field's own checks (length, choices, validators),
    as `full_clean` will do, so a row shows every problem at once; errors by column."""
    for name, value in values.items():
        column = columns.get(name, name)
        if column in errors:
            continue
        try:
            model._meta.get_field(name).clean(value, None)
        except ValidationError as exc:
            errors[column] = exc.messages


def refused(exc: ValidationError | IntegrityError, columns: Mapping[str, str]) -> dict:
    """{column: [messages]} for a row the model or the database refused."""
    if isinstance(exc, IntegrityError):
        return {"row": [_("The database refused this row: %(e)s") % {"e": exc}]}
    if not hasattr(exc, "error_dict"):
        return {"row": list(exc.messages)}
    return {
        ("row" if name == NON_FIELD_ERRORS else columns.get(name, name)): list(messages)
        for name, messages in exc.message_dict.items()
    }


def changes_of(instance, values: dict) -> dict:
    """{field: (stored, new)} for the values that differ from the instance's."""
    return {
        name: (getattr(instance, name), value)
        for name, value in values.items()
        if getattr(instance, name) != value
    }


class RecordUpserter:
    """Applies records row by row through the ledger's services, a chunk's reads at once.

    Subclasses say how to read a chunk's existing rows (`load`) and how to apply one
    record (`apply`, returning "created", "updated" or "unchanged" and the changes, or
    raising RowRejected, ValidationError or IntegrityError). `COLUMNS` maps a model field
    to the column finance sees it under, where the two differ.
    """

    COLUMNS: Mapping[str, str] = {}

    def __init__(
        self,
        *,
        batch: IntakeBatch,
        tally: Tally,
        by=None,
        chunk_size: int = CHUNK_SIZE,
        on_row: Callable[[RowOutcome], None] | None = None,
        flush_rejections: bool = True,
    ):
        self.batch, self.tally, self.by = batch, tally, by
        self.chunk_size = chunk_size
        self.on_row = on_row
        self.flush_rejections = flush_rejections
        self.pending: list[Record] = []

    # -- feeding -----------------------------------------------------------------------

    def add(self, record: Record) -> None:
        self.pending.append(record)
        if len(self.pending) >= self.chunk_size:
            self.apply_pending()

    def reject(
        self, row_number: int, raw: Mapping, errors: dict, label: str = "", at_stake=None
    ) -> None:
        """A row refused by the parser (`at_stake`: its amount and currency, if read) or
        by the upserter (a payment row's own amount and currency, when it has them)."""
        batches.reject(
            self.tally,
            self.batch,
            row_number=row_number,
            raw=raw,
            errors=errors,
            at_stake=at_stake,
        )
        self._report(RowOutcome(row_number, label, "rejected", errors))

    def finish(self) -> Tally:
        self.apply_pending()
        return self.tally

    # -- one chunk ---------------------------------------------------------------------

    def apply_pending(self) -> None:
        records, self.pending = self.pending, []
        if records:
            found = self.load(records)
            for record in records:
                self._apply_one(record, found)
        if self.flush_rejections:
            batches.flush_rejections(self.tally)

    def _apply_one(self, record: Record, found) -> None:
        try:
            with transaction.atomic():
                outcome, changes = self.apply(record, found)
        except RowRejected as exc:
            self.reject(record.row_number, record.raw, exc.errors, record.label, _at_stake(record))
            return
        except (ValidationError, IntegrityError) as exc:
            errors = refused(exc, self.COLUMNS)
            self.reject(record.row_number, record.raw, errors, record.label, _at_stake(record))
            return
        setattr(self.tally, outcome, getattr(self.tally, outcome) + 1)
        if self.on_row is not None:
            shown = {
                self.COLUMNS.get(name, name): [_shown(old), _shown(new)]
                for name, (old, new) in changes.items()
            }
            self._report(RowOutcome(record.row_number, record.label, outcome, shown))

    def load(self, records: list[Record]):
        raise NotImplementedError

    def apply(self, record: Record, found) -> tuple[str, dict]:
        raise NotImplementedError

    def _report(self, outcome: RowOutcome) -> None:
        if self.on_row is not None:
            self.on_row(outcome)


def upsert(
    upserter_class: type[RecordUpserter],
    records: Iterable[Record],
    *,
    batch: IntakeBatch,
    by=None,
    tally: Tally | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> Tally:
    """Apply already-validated records to the ledger; returns the counts."""
    tally = tally if tally is not None else Tally()
    upserter = upserter_class(batch=batch, tally=tally, by=by, chunk_size=chunk_size)
    for record in records:
        upserter.add(record)
    return upserter.finish()


def _shown(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "external_ref"):  # a customer: as the file names it
        return value.external_ref
    return str(value)


def _at_stake(record: Record):
    """A record's amount and currency, when it has them (payments do), for the ranking."""
    values = record.values
    if values.get("amount") is None:
        return None
    return batches.amount_at_stake(values["amount"], values.get("currency"))
