"""Spreadsheet intake: CSV and XLSX files streamed row by row into the intake pipeline.

Files are read in bounded memory, within the upload limits (integrations/uploads.py):
CSV through the csv module over a text stream, XLSX through `workbooks` (a guarded,
streaming parse of the zip's XML), one row at a time. A file that cannot be read at all
(not a spreadsheet, not in the expected encoding, empty, missing a required column, over
an upload limit) fails its batch with a message saying why, before any row reaches the
ledger; a file that can be read is loaded row by row, and every row it cannot load is
kept as a Rejection. A preview (`preview_spreadsheet`) and a dry run write nothing at all.
"""

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from .. import uploads
from ..models import ImportProfile, IntakeBatch, Rejection
from . import batches, invoices, kinds, parsing, workbooks

BLOCK = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
DRY_RUN_REJECTIONS = 20  # rejected rows a dry run keeps to show (it counts them all)

Rows = Iterator[tuple[int, list]]


class UnreadableFile(Exception):
    """The whole file cannot be read; `batch` is the failed batch when one was opened."""

    def __init__(self, message: str, batch: IntakeBatch | None = None):
        super().__init__(message)
        self.batch = batch


class LoadFailed(Exception):
    """Loading stopped at an unexpected error; `batch` is the batch, marked failed (None
    for a preview, which has none)."""

    def __init__(self, message: str, batch: IntakeBatch | None):
        super().__init__(message)
        self.batch = batch


class _Rollback(Exception):
    pass


def scan(stream: BinaryIO, *, encoding: str | None) -> "Scan":
    """One streaming pass: the file's size (refused over UPLOAD_MAX_BYTES), SHA-256, kind
    ("csv" or "xlsx") and, for a CSV, upper bounds of its rows and cells.

    A CSV file is also decoded block by block, so an encoding problem is reported with its
    byte offset and line before any row is loaded, and no line may be longer than
    `uploads.MAX_TOKEN_BYTES` (the csv module would hold it whole).
    """
    stream.seek(0, io.SEEK_END)
    uploads.check_size(stream.tell())
    stream.seek(0)
    head = stream.read(8)
    if not head:
        raise UnreadableFile(_("The file is empty."))
    if head.startswith(OLE_MAGIC):
        raise UnreadableFile(
            _("This is a legacy Excel .xls file; save it as .xlsx or .csv and load it again.")
        )
    kind = "xlsx" if head.startswith(XLSX_MAGIC) else "csv"
    stream.seek(0)
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder(_codec(encoding))() if kind == "csv" else None
    guard = uploads.line_guard()
    offset, lines, separators = 0, 0, 0
    while block := stream.read(BLOCK):
        digest.update(block)
        if decoder is not None:
            if b"\x00" in block:
                raise UnreadableFile(
                    _("This is not a CSV or XLSX spreadsheet (it holds binary data).")
                )
            guard.feed(block)
            pending = len(decoder.getstate()[0])
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                position = max(exc.start - pending, 0)
                raise UnreadableFile(
                    _(
                        "The file is not valid %(encoding)s: byte 0x%(byte)s at offset "
                        "%(offset)d (line %(line)d) cannot be decoded. Save it as UTF-8, or "
                        "name its encoding (e.g. --encoding cp1252)."
                    )
                    % {
                        "encoding": encoding or "UTF-8",
                        "byte": block[position : position + 1].hex(),
                        "offset": offset + position,
                        "line": lines + block[:position].count(b"\n") + 1,
                    }
                ) from exc
            lines += block.count(b"\n")
            separators += sum(block.count(d.encode()) for d in DELIMITERS)
        offset += len(block)
    if decoder is not None:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise UnreadableFile(
                _("The file is not valid %(encoding)s: it ends inside a character.")
                % {"encoding": encoding or "UTF-8"}
            ) from exc
    stream.seek(0)
    return Scan(digest.hexdigest(), kind, max_rows=lines + 1, max_cells=separators + lines + 1)


@dataclass
class Scan:
    sha256: str
    file_type: str
    max_rows: int = 0  # CSV: at least as many lines as rows, and as many separators as cells
    max_cells: int = 0


def _codec(encoding: str | None) -> str:
    if not encoding or codecs.lookup(encoding).name == "utf-8":
        return "utf-8-sig"  # UTF-8, with or without a byte-order mark
    return encoding


def _csv_reader(stream: BinaryIO, encoding: str | None):
    """(text wrapper, csv reader) from the first non-blank line, delimiter guessed from it."""
    # newline="" lets the csv module handle quoted line breaks; detach() at the end so
    # closing the wrapper never closes the caller's file.
    text = io.TextIOWrapper(stream, encoding=_codec(encoding), newline="")
    first = text.readline()
    while first and not first.strip():
        first = text.readline()
    if not first:
        text.detach()
        raise UnreadableFile(_("The file is empty."))
    delimiter = max(DELIMITERS, key=first.count)
    return text, csv.reader(_chain(first, text), delimiter=delimiter)


def csv_rows(stream: BinaryIO, *, encoding: str | None = None) -> tuple[list, Rows]:
    """The header row and an iterator of (row number, cells); row 1 is the header.

    The rows are not counted against the limits here: `open_sheet` has already proved
    them within (by the scan's bounds, or by `count_csv_rows`).
    """
    text, reader = _csv_reader(stream, encoding)
    try:
        headers = next(reader)
    except csv.Error as exc:
        text.detach()
        raise UnreadableFile(_("The header row cannot be read: %(e)s") % {"e": exc}) from exc

    def rows() -> Rows:
        try:
            for row_number, cells in enumerate(reader, start=2):
                if "".join(cells).strip():  # not a blank line
                    yield row_number, cells
        except csv.Error as exc:
            raise UnreadableFile(
                _("The CSV is malformed at line %(line)d: %(e)s")
                % {"line": reader.line_num, "e": exc}
            ) from exc
        finally:
            text.detach()

    return headers, rows()


def count_csv_rows(stream: BinaryIO, *, encoding: str | None = None) -> int:
    """The CSV's non-blank rows after the header, refused past the row and cell limits."""
    text, reader = _csv_reader(stream, encoding)
    counter = uploads.RowCounter()
    counted = 0
    try:
        for cells in reader:
            counter.add(len(cells))
            if "".join(cells).strip():
                counted += 1
    except csv.Error as exc:
        raise UnreadableFile(
            _("The CSV is malformed at line %(line)d: %(e)s") % {"line": reader.line_num, "e": exc}
        ) from exc
    finally:
        text.detach()
        stream.seek(0)
    return max(counted - 1, 0)


def _chain(first: str, rest) -> Iterator[str]:
    yield first
    for line in rest:  # noqa: UP028 (`yield from` would close a detached `rest` on close)
        yield line


def xlsx_rows(stream: BinaryIO, *, count: bool = False) -> tuple[list, Rows, int | None]:
    """The active sheet's header row, an iterator of (row number, cells) and, when `count`
    is asked (or the sheet has to be measured anyway), its non-blank rows after the header.

    The sheet is read twice: first counted within the row and cell limits (XML only, no
    values), so a load refused for its size has written nothing; then row by row.
    """
    try:
        workbook = workbooks.Workbook(stream)
    except (zipfile.BadZipFile, workbooks.NotAWorkbook, KeyError, OSError, EOFError) as exc:
        raise UnreadableFile(
            _("This is not an XLSX workbook that can be read: %(e)s") % {"e": exc}
        ) from exc
    try:
        total = workbook.count_rows()
        cells = workbook.rows()
        headers, header_row = None, 0
        for header_row, values in cells:  # noqa: B007 (used below)
            if any(_blank(v) is not None for v in values):
                headers = list(values)
                break
    except (workbooks.NotAWorkbook, zipfile.BadZipFile, OSError, EOFError) as exc:
        workbook.close()
        raise UnreadableFile(
            _("This is not an XLSX workbook that can be read: %(e)s") % {"e": exc}
        ) from exc
    except BaseException:
        workbook.close()
        raise
    if headers is None:
        workbook.close()
        raise UnreadableFile(_("The workbook's first sheet is empty."))

    width = len(headers)

    def rows() -> Rows:
        try:
            for row_number, values in cells:
                values = [_cell(v) for v in values]
                if any(v != "" for v in values):
                    if len(values) < width:  # as openpyxl padded them: empty cells read ""
                        values.extend([""] * (width - len(values)))
                    yield row_number, values
        except (workbooks.NotAWorkbook, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnreadableFile(
                _("This is not an XLSX workbook that can be read: %(e)s") % {"e": exc}
            ) from exc
        finally:
            workbook.close()

    return headers, rows(), max(total - 1, 0)


def _blank(value):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return value


def _cell(value):
    """Workbook cells as the parser expects: text, dates, ints, or floats read as text."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime) and not (value.hour or value.minute or value.second):
        return value.date()
    return value


@dataclass
class Sheet:
    """A spreadsheet opened within the upload limits: its header row and its rows."""

    sha256: str
    headers: list
    rows: Rows
    total_rows: int | None  # non-blank rows after the header, when they were counted

    def close(self) -> None:
        self.rows.close()


def open_sheet(stream: BinaryIO, *, encoding: str | None = None, count: bool = False) -> Sheet:
    """Check the file against every upload limit and open its rows.

    Raises UnreadableFile or uploads.UploadRefused (both with the message finance sees)
    before any row is returned: the size first, then for a CSV its rows and cells (counted
    when the cheap bounds from the scan do not already prove them within the limits, or
    when `count` asks for the number), for an XLSX its zip, XML and rows and cells.
    """
    try:
        scanned = scan(stream, encoding=encoding)
    except LookupError as exc:  # an unknown --encoding
        raise UnreadableFile(str(exc)) from exc
    total = None
    if scanned.file_type == "xlsx":
        headers, rows, total = xlsx_rows(stream)
    else:
        within = (
            scanned.max_rows <= settings.UPLOAD_MAX_ROWS
            and scanned.max_cells <= settings.UPLOAD_MAX_CELLS
        )
        if count or not within:
            total = count_csv_rows(stream, encoding=encoding)
        headers, rows = csv_rows(stream, encoding=encoding)
    return Sheet(scanned.sha256, headers, rows, total)


REFUSED = (UnreadableFile, uploads.UploadRefused, parsing.MissingColumns)


@dataclass
class Preview:
    """What loading the first rows of a file would do; nothing of it was written.

    Counts are those of the rows shown; `total_rows` is how many the file has after its
    header, and `has_more` whether rows follow the ones shown.
    """

    outcomes: list
    rows_read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    warned: int = 0  # rows that would load with a warning (counted in the others too)
    total_rows: int | None = None

    @property
    def has_more(self) -> bool:
        return (self.total_rows or 0) > self.rows_read

    def counts(self) -> dict:
        return {
            "read": self.rows_read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "warned": self.warned,
            "batch": None,
        }


def preview_spreadsheet(
    stream: BinaryIO,
    *,
    kind: str,
    profile: ImportProfile | None = None,
    by=None,
    encoding: str | None = None,
    rows: int | None = None,
) -> Preview:
    """The first `rows` rows (UPLOAD_PREVIEW_ROWS) as they would load, and nothing written.

    1. The whole file is checked against the upload limits and its rows counted (the XML
       or the CSV only: nothing is parsed into records), so a file that would be refused
       at the confirmation is refused here.
    2. The first rows go through the kind's parser and upserter inside a transaction that
       is rolled back: no batch, no rejected row, no ledger change survives it.

    Raises UnreadableFile or UploadRefused (the file), LoadFailed (an unexpected error;
    its batch is None).
    """
    intake_kind = kinds.KINDS[kind]
    limit = settings.UPLOAD_PREVIEW_ROWS if rows is None else rows
    outcomes: list[batches.RowOutcome] = []
    sheet = open_sheet(stream, encoding=encoding, count=True)
    tally = batches.Tally(keep=limit)
    try:
        with transaction.atomic():
            batch = _open(intake_kind, profile, by, "preview", sheet.sha256, True)
            kinds.load_rows(
                itertools.islice(sheet.rows, limit),
                sheet.headers,
                kind=intake_kind,
                profile=profile,
                batch=batch,
                by=by,
                tally=tally,
                on_row=outcomes.append,
                flush_rejections=False,
            )
            raise _Rollback
    except _Rollback:
        pass
    except parsing.MissingColumns as exc:
        raise UnreadableFile(str(exc)) from exc
    except (UnreadableFile, uploads.UploadRefused):
        raise
    except Exception as exc:
        raise LoadFailed(f"{exc.__class__.__name__}: {exc}", None) from exc
    finally:
        sheet.close()
    outcomes.sort(key=lambda outcome: outcome.row_number)
    return Preview(
        outcomes=outcomes,
        rows_read=tally.read,
        created=tally.created,
        updated=tally.updated,
        unchanged=tally.unchanged,
        rejected=tally.rejected,
        warned=tally.warned,
        total_rows=sheet.total_rows,
    )


def import_spreadsheet(
    stream: BinaryIO,
    *,
    kind: str,
    filename: str,
    profile: ImportProfile | None = None,
    by=None,
    is_dry_run: bool = False,
    encoding: str | None = None,
    chunk_size: int | None = None,
    on_row: Callable[[batches.RowOutcome], None] | None = None,
) -> IntakeBatch:
    """Load a spreadsheet of customers, contacts, invoices or payments as one batch.

    Invoices need the import `profile`. Raises UnreadableFile (after failing the batch)
    when the file cannot be read at all or is over an upload limit, and LoadFailed (after
    failing it too) when loading stops at an unexpected error: a load of customers,
    contacts or payments then leaves nothing behind but the failed batch; an invoice load
    keeps the chunks it committed. No batch is left running, whatever stops the load; one
    left running by a process that was killed is failed by the next load
    (`batches.fail_abandoned_batches`).

    A dry run validates and counts every row inside a transaction that is rolled back:
    nothing is written at all, not even its batch (returned unsaved, with its counts and
    the first DRY_RUN_REJECTIONS rejected rows in `batch.dry_run_rejections`).
    """
    intake_kind = kinds.KINDS[kind]
    load = {
        "kind": intake_kind,
        "filename": filename,
        "profile": profile,
        "by": by,
        "is_dry_run": is_dry_run,
        "encoding": encoding,
        "chunk_size": chunk_size,
        "on_row": on_row,
    }
    if not is_dry_run:
        batches.fail_abandoned_batches(source=IntakeBatch.Source.SPREADSHEET)
        return _import(stream, **load)
    try:
        with transaction.atomic():
            batch = _import(stream, **load)
            raise _Rollback
    except _Rollback:
        batch.pk = batch.id = None
        return batch
    except (UnreadableFile, LoadFailed) as exc:  # its failed batch was rolled back too
        if exc.batch is not None:
            exc.batch.pk = exc.batch.id = None
        raise


def import_invoices(
    stream: BinaryIO,
    *,
    filename: str,
    profile: ImportProfile,
    by=None,
    is_dry_run: bool = False,
    encoding: str | None = None,
    chunk_size: int = invoices.CHUNK_SIZE,
    on_row: Callable[[batches.RowOutcome], None] | None = None,
) -> IntakeBatch:
    """Load an invoice spreadsheet through the pipeline as one batch; returns the batch."""
    return import_spreadsheet(
        stream,
        kind=IntakeBatch.Kind.INVOICES,
        filename=filename,
        profile=profile,
        by=by,
        is_dry_run=is_dry_run,
        encoding=encoding,
        chunk_size=chunk_size,
        on_row=on_row,
    )


def _import(
    stream: BinaryIO,
    *,
    kind: kinds.Kind,
    filename: str,
    profile: ImportProfile | None,
    by,
    is_dry_run: bool,
    encoding: str | None,
    chunk_size: int | None,
    on_row,
) -> IntakeBatch:
    try:
        sheet = open_sheet(stream, encoding=encoding)
    except (UnreadableFile, uploads.UploadRefused) as exc:
        batch = _open(kind, profile, by, filename, "", is_dry_run)
        raise UnreadableFile(str(exc), batches.fail_batch(batch, str(exc))) from exc
    try:
        batch = _open(kind, profile, by, filename, sheet.sha256, is_dry_run)
    except BaseException:
        sheet.close()
        raise
    try:
        tally = batches.Tally(keep=DRY_RUN_REJECTIONS if is_dry_run else None)
        load = {
            "kind": kind,
            "profile": profile,
            "batch": batch,
            "by": by,
            "tally": tally,
            "chunk_size": chunk_size,
            "on_row": on_row,
        }
        if is_dry_run:
            kinds.load_rows(sheet.rows, sheet.headers, flush_rejections=False, **load)
            batch.dry_run_rejections = list(tally.rejections)
        elif kind.is_atomic:
            with transaction.atomic():
                kinds.load_rows(sheet.rows, sheet.headers, **load)
        else:
            kinds.load_rows(sheet.rows, sheet.headers, **load)
    except REFUSED as exc:
        raise UnreadableFile(str(exc), batches.fail_batch(batch, str(exc))) from exc
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        raise LoadFailed(error, batches.fail_batch(batch, error)) from exc
    except BaseException as exc:  # interrupted (Ctrl-C, a signal): still never left running
        batches.fail_batch(batch, _("Interrupted: %(e)s") % {"e": exc.__class__.__name__})
        raise
    finally:
        sheet.close()
    return batches.close_batch(batch, tally)


def _open(kind: kinds.Kind, profile, by, filename, sha256, is_dry_run) -> IntakeBatch:
    return batches.open_batch(
        source=IntakeBatch.Source.SPREADSHEET,
        kind=kind.name,
        by=by,
        profile=profile,
        filename=filename[:255],
        file_sha256=sha256,
        is_dry_run=is_dry_run,
    )


def is_retryable(rejection: Rejection) -> bool:
    """Can finance correct this row and load it again here?

    Rows of spreadsheet loads can: each goes through its kind's parser and upserter again
    (invoices through their batch's import profile). Rows from the API, a webhook or a bank
    statement cannot (the sender or the bank must send them again): finance dismisses them
    with a reason.
    """
    batch = rejection.batch
    kind = kinds.KINDS.get(batch.kind)
    return (
        batch.source == IntakeBatch.Source.SPREADSHEET
        and kind is not None
        and (batch.profile_id is not None or not kind.needs_profile)
    )


def retry_rejection(rejection: Rejection, *, raw: dict, by=None) -> tuple[IntakeBatch | None, dict]:
    """Run one corrected row through its kind (and profile) again, as a batch of its own.

    1. The row (its columns as in the file, the values as corrected) goes through the same
       parser and upserter as the load it came from: the same keys, checks and services,
       so the timeline is written as for any import. Its batch counts it as created,
       updated or unchanged; the original batch keeps its counts (a record of that load).
    2. On success the rejection becomes "retried", naming the new batch, by a conditional
       UPDATE: if someone else resolved it meanwhile, everything is rolled back.
    3. On failure nothing is written (not even the retry's batch) and the new errors are
       returned per column.
    """
    kind = kinds.KINDS[rejection.batch.kind]
    profile = rejection.batch.profile
    errors: dict = {}
    try:
        with transaction.atomic():
            batch = _open(
                kind,
                profile,
                by,
                _("correction of row %(row)d of batch %(batch)d")
                % {"row": rejection.row_number, "batch": rejection.batch_id},
                "",
                False,
            )
            tally = kinds.load_rows(
                iter([(rejection.row_number, list(raw.values()))]),
                list(raw),
                kind=kind,
                profile=profile,
                batch=batch,
                by=by,
                flush_rejections=False,
            )
            if tally.rejected:
                errors = tally.rejections[0].errors
                raise _Rollback
            batches.close_batch(batch, tally)
            outcome = "created" if tally.created else "updated" if tally.updated else "unchanged"
            done = Rejection.objects.filter(pk=rejection.pk, status=Rejection.Status.OPEN).update(
                status=Rejection.Status.RETRIED,
                resolution=_("Corrected by hand and loaded (%(outcome)s) in batch %(batch)d.")
                % {"outcome": outcome, "batch": batch.pk},
                resolved_by=by,
                resolved_at=timezone.now(),
            )
            if done != 1:  # another user resolved it meanwhile: load nothing twice
                errors = {"row": [_("This row was resolved by someone else meanwhile.")]}
                raise _Rollback
    except _Rollback:
        return None, errors
    except parsing.MissingColumns as exc:
        return None, {"row": [str(exc)]}
    return batch, {}
