"""Spreadsheet intake: CSV and XLSX files streamed row by row into the intake pipeline.

Files are read in constant memory: CSV through the csv module over a text stream, XLSX
through openpyxl in read-only mode, one row at a time. A file that cannot be read at all
(not a spreadsheet, not in the expected encoding, empty, missing a required column) fails
its batch with a message saying why, before any row reaches the ledger; a file that can be
read is loaded row by row, and every row it cannot load is kept as a Rejection.
"""

import codecs
import csv
import datetime as dt
import hashlib
import io
import zipfile
from collections.abc import Callable, Iterator
from typing import BinaryIO

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import ImportProfile, IntakeBatch, Rejection
from . import batches, invoices, kinds, parsing

BLOCK = 1 << 20
DELIMITERS = (",", ";", "\t", "|")
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls

Rows = Iterator[tuple[int, list]]


class UnreadableFile(Exception):
    """The whole file cannot be read; `batch` is the failed batch when one was opened."""

    def __init__(self, message: str, batch: IntakeBatch | None = None):
        super().__init__(message)
        self.batch = batch


class LoadFailed(Exception):
    """Loading stopped at an unexpected error; `batch` is the batch, marked failed."""

    def __init__(self, message: str, batch: IntakeBatch):
        super().__init__(message)
        self.batch = batch


class _Rollback(Exception):
    pass


def scan(stream: BinaryIO, *, encoding: str | None) -> tuple[str, str]:
    """One streaming pass: the file's SHA-256 and its kind ("csv" or "xlsx").

    A CSV file is also decoded block by block, so an encoding problem is reported with its
    byte offset and line before any row is loaded.
    """
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
    offset, lines = 0, 0
    while block := stream.read(BLOCK):
        digest.update(block)
        if decoder is not None:
            if b"\x00" in block:
                raise UnreadableFile(
                    _("This is not a CSV or XLSX spreadsheet (it holds binary data).")
                )
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
    return digest.hexdigest(), kind


def _codec(encoding: str | None) -> str:
    if not encoding or codecs.lookup(encoding).name == "utf-8":
        return "utf-8-sig"  # UTF-8, with or without a byte-order mark
    return encoding


def csv_rows(stream: BinaryIO, *, encoding: str | None = None) -> tuple[list, Rows]:
    """The header row and an iterator of (row number, cells); row 1 is the header."""
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
    reader = csv.reader(_chain(first, text), delimiter=delimiter)
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


def _chain(first: str, rest) -> Iterator[str]:
    yield first
    yield from rest


def xlsx_rows(stream: BinaryIO) -> tuple[list, Rows]:
    """The first sheet's header row and an iterator of (row number, cells)."""
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        sheet = workbook.active
        cells = sheet.iter_rows(values_only=True)
        headers, header_row = None, 0
        for header_row, values in enumerate(cells, start=1):  # noqa: B007 (used below)
            if any(_blank(v) is not None for v in values):
                headers = list(values)
                break
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise UnreadableFile(
            _("This is not an XLSX workbook that can be read: %(e)s") % {"e": exc}
        ) from exc
    if headers is None:
        workbook.close()
        raise UnreadableFile(_("The workbook's first sheet is empty."))

    def rows() -> Rows:
        try:
            for row_number, values in enumerate(cells, start=header_row + 1):
                values = [_cell(v) for v in values]
                if any(v != "" for v in values):
                    yield row_number, values
        finally:
            workbook.close()

    return headers, rows()


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


def open_rows(
    stream: BinaryIO, file_type: str, *, encoding: str | None = None
) -> tuple[list, Rows]:
    if file_type == "xlsx":
        return xlsx_rows(stream)
    return csv_rows(stream, encoding=encoding)


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
    when the file cannot be read at all, and LoadFailed (after failing it too) when loading
    stops at an unexpected error: a load of customers, contacts or payments then leaves
    nothing behind but the failed batch; an invoice load keeps the chunks it committed.

    A dry run validates and counts everything inside a transaction that is rolled back:
    for invoices the batch itself, with its counts and rejected rows, is written after the
    rollback; for the other kinds nothing is written at all (the batch is returned unsaved,
    with its counts).
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
    if not (is_dry_run and not intake_kind.records_dry_runs):
        return _import(stream, **load)
    try:
        with transaction.atomic():
            batch = _import(stream, **load)
            raise _Rollback
    except _Rollback:
        return batch


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
        sha256, file_type = scan(stream, encoding=encoding)
    except (UnreadableFile, LookupError) as exc:
        batch = _open(kind, profile, by, filename, "", is_dry_run)
        raise UnreadableFile(str(exc), batches.fail_batch(batch, str(exc))) from exc
    batch = _open(kind, profile, by, filename, sha256, is_dry_run)
    try:
        headers, rows = open_rows(stream, file_type, encoding=encoding)
        tally = batches.Tally()
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
            try:
                with transaction.atomic():
                    kinds.load_rows(rows, headers, flush_rejections=False, **load)
                    raise _Rollback
            except _Rollback:
                pass
        elif kind.is_atomic:
            with transaction.atomic():
                kinds.load_rows(rows, headers, **load)
        else:
            kinds.load_rows(rows, headers, **load)
    except (UnreadableFile, parsing.MissingColumns) as exc:
        raise UnreadableFile(str(exc), batches.fail_batch(batch, str(exc))) from exc
    except Exception as exc:
        error = f"{exc.__class__.__name__}: {exc}"
        raise LoadFailed(error, batches.fail_batch(batch, error)) from exc
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
