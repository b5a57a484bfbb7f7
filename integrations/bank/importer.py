"""Loading a bank statement file into the ledger: statements, lines, payments, matching.

One import is one IntakeBatch (source bank_statement, kind payments), and one
BankStatement per account statement the file holds (an MT940 file with three accounts'
statements makes three). Every entry of the file is counted once: created (a new line; a
credit also becomes a Payment), unchanged (the same line was imported before: its
fingerprint is known for the account) or rejected (it could not be read or recorded; the
dead-letter list keeps it with the reason). The file is read as a stream, a chunk of lines
at a time, so memory does not grow with the file. The import is all or nothing: a file
that turns out unreadable half-way, one over the upload limits, or any unexpected error
loads nothing and fails the batch with the reason (StatementUnreadable, UploadRefused).
"""

import io
import itertools
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils.translation import gettext as _

from accounts import bulk, services
from accounts.models import Payment

from ..intake import batches
from ..models import BankLine, BankStatement, IntakeBatch
from ..reconciliation import matching
from ..uploads import UploadRefused, check_size
from .formats import parse_statements
from .occurrences import Occurrences
from .statement import BadLine, ParsedStatement, StatementLine, StatementUnreadable, sniff
from .statement import content_key as _content_key
from .statement import fingerprint as _fingerprint

SOURCE = "bank_statement"
PAYMENT_SOURCE = "bank"
CHUNK_SIZE = 2500  # lines per transaction: fewer commits and round trips, short locks
BANK_LINE_COLUMNS = (
    "statement_id",
    "line_number",
    "fingerprint",
    "account",
    "booked_on",
    "value_on",
    "amount",
    "currency",
    "counterparty_name",
    "counterparty_account",
    "remittance",
    "bank_reference",
    "payment_id",
)


@dataclass
class ImportResult:
    batch: IntakeBatch
    statements: list[BankStatement] = field(default_factory=list)
    lines: int = 0
    payments: int = 0
    duplicates: int = 0
    rejected: int = 0
    payment_ids: list[int] = field(default_factory=list)
    outcome: matching.Outcome = field(default_factory=matching.Outcome)

    @property
    def statement(self) -> BankStatement | None:
        """The first statement stored (most files hold one)."""
        return self.statements[0] if self.statements else None

    def summary(self) -> dict:
        """The command's last line. Payments booked only in part count as partially
        matched; those waiting for review and those with no match count as unmatched."""
        return {
            "lines": self.lines,
            "payments": self.payments,
            "matched": self.outcome.matched,
            "partially_matched": self.outcome.partially_matched,
            "unmatched": self.outcome.unmatched + self.outcome.review,
            "duplicates": self.duplicates,
        }


def import_statement(
    *,
    content: bytes | None = None,
    file: BinaryIO | None = None,
    filename: str = "",
    format: str | None = None,
    by=None,
    account: str = "",
    reconcile: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> ImportResult:
    """Parse, store and (unless `reconcile` is False) match one statement file, given as
    `content` (bytes) or as a binary, seekable `file` (read as a stream, never whole).

    1. Measure the file against UPLOAD_MAX_BYTES (UploadRefused, nothing recorded), then
       hash it and find its text encoding in one pass over its blocks.
    2. Open the batch, so even an unreadable file leaves a record of the attempt.
    3. In one transaction, statement by statement and a chunk of lines at a time: give
       each line its fingerprint (the bank's reference, or a hash of its content and of how
       many identical lines precede it in the file); hold an advisory lock on the account
       (two imports of the same file cannot both pass the duplicate check); skip
       fingerprints already stored, identify payers, record a Payment per new credit (a
       failing one is rejected alone, with the reason) and insert the chunk's lines in one
       statement (COPY on PostgreSQL, see `accounts.bulk.insert_rows`). A statement with
       no lines at all is stored once, as the empty statement it is.
    4. Close the batch with its counts in the same transaction. Any error (unreadable
       further on, more lines than UPLOAD_MAX_ROWS, the database) rolls everything back
       and fails the batch with the reason: an import is never left half-done or running.
    5. Match the new payments.
    """
    stream = io.BytesIO(content or b"") if file is None else file
    stream.seek(0, io.SEEK_END)
    check_size(stream.tell())
    sniffed = sniff(stream)
    # A bank import killed with its process left its batch running: fail it now.
    batches.fail_abandoned_batches(source=IntakeBatch.Source.BANK_STATEMENT)
    batch = batches.open_batch(
        source=IntakeBatch.Source.BANK_STATEMENT,
        kind=IntakeBatch.Kind.PAYMENTS,
        by=by,
        filename=filename[:255],
        file_sha256=sniffed.sha256,
    )
    result = ImportResult(batch=batch)
    tally = batches.Tally()
    try:
        with transaction.atomic(), Occurrences() as occurrences:
            loader = _Loader(batch, tally, result, by, occurrences, chunk_size)
            for parsed in parse_statements(stream, sniffed, format, account=account):
                loader.load(parsed)
            batches.close_batch(batch, tally)
    except Exception as exc:
        expected = isinstance(exc, (StatementUnreadable, UploadRefused))
        reason = str(exc) if expected else f"{exc.__class__.__name__}: {exc}"
        batches.fail_batch(batch, reason)
        batches.record_failure(SOURCE, reason)
        raise
    batches.record_success(SOURCE)
    result.duplicates = tally.unchanged
    result.rejected = tally.rejected
    if reconcile and result.payment_ids:
        result.outcome = matching.reconcile(result.payment_ids, by=by)
    return result


def check_lines(count: int) -> None:
    """Refuse a file of more than UPLOAD_MAX_ROWS lines (checked as they are read)."""
    if count > settings.UPLOAD_MAX_ROWS:
        raise UploadRefused(
            _(
                "The file holds more than %(limit)s lines; statements of up to %(limit)s "
                "lines are accepted (UPLOAD_MAX_ROWS)."
            )
            % {"limit": f"{settings.UPLOAD_MAX_ROWS:,}"}
        )


class _Loader:
    """Loads the statements of one file, in order, inside the import's transaction."""

    def __init__(self, batch, tally, result, by, occurrences: Occurrences, chunk_size: int):
        self.batch, self.tally, self.result, self.by = batch, tally, result, by
        self.occurrences = occurrences
        self.chunk_size = chunk_size
        self.locked: set[str] = set()

    def load(self, parsed: ParsedStatement) -> None:
        self._lock(parsed.account)
        stored: list[BankStatement] = []  # the statement's row, once it has a new line
        lines = iter(parsed.lines)
        had_lines = False
        while chunk := list(itertools.islice(lines, self.chunk_size)):
            had_lines = True
            self.result.lines += len(chunk)
            check_lines(self.result.lines)
            self._load_chunk(parsed, self._with_fingerprints(parsed, chunk), stored)
        # The lines are exhausted: the statement's closing fields are final now.
        if stored:
            statement = stored[0]
            _fill_statement(statement, parsed)
            statement.save(
                update_fields=[
                    "currency",
                    "opening_balance",
                    "closing_balance",
                    "from_on",
                    "to_on",
                ]
            )
        elif not had_lines:
            self._store_empty(parsed)

    def _lock(self, account: str) -> None:
        if account in self.locked or connection.vendor != "postgresql":
            return
        lock = zlib.crc32(f"bank-statement:{account}".encode())
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])
        self.locked.add(account)

    def _store_empty(self, parsed: ParsedStatement) -> None:
        """An empty statement is a statement (a day without movements): stored once."""
        statement = _fill_statement(
            BankStatement(
                batch=self.batch,
                format=parsed.format,
                account=parsed.account,
                statement_ref=parsed.statement_ref or self.batch.file_sha256[:16],
            ),
            parsed,
        )
        same = BankStatement.objects.filter(
            account=statement.account,
            format=statement.format,
            statement_ref=statement.statement_ref,
            from_on=statement.from_on,
            to_on=statement.to_on,
        )
        if not same.exists():
            statement.save()
            self.result.statements.append(statement)

    def _with_fingerprints(
        self, parsed: ParsedStatement, chunk: list[StatementLine | BadLine]
    ) -> list[tuple[StatementLine | BadLine, str]]:
        good = [line for line in chunk if isinstance(line, StatementLine)]
        content = self.occurrences.take(
            [b"c" + _content_key(line, account=parsed.account) for line in good]
        )
        referenced = [line for line in good if line.bank_reference.strip()]
        # A reference repeated within one file (some banks reuse them per batch).
        repeats = dict(
            zip(
                map(id, referenced),
                self.occurrences.take(
                    [
                        b"r" + f"{parsed.account}|{line.bank_reference.strip()}".encode()
                        for line in referenced
                    ]
                ),
                strict=True,
            )
        )
        occurrence = dict(zip(map(id, good), content, strict=True))
        keyed = []
        for line in chunk:
            if isinstance(line, BadLine):
                keyed.append((line, ""))
                continue
            reference = line.bank_reference.strip()
            if repeats.get(id(line)):
                reference = f"{reference}#{repeats[id(line)] + 1}"
            keyed.append(
                (
                    line,
                    _fingerprint(
                        line,
                        account=parsed.account,
                        occurrence=occurrence[id(line)],
                        reference=reference,
                    ),
                )
            )
        return keyed

    def _load_chunk(self, parsed, keyed, stored: list[BankStatement]) -> None:
        batch, tally, result, by = self.batch, self.tally, self.result, self.by
        fingerprints = [fp for _line, fp in keyed if fp]
        known = set(
            BankLine.objects.filter(
                bulk.one_of("fingerprint", fingerprints), account=parsed.account
            ).values_list("fingerprint", flat=True)
        )
        fresh: list[tuple[StatementLine, str]] = []
        for line, fp in keyed:
            if isinstance(line, BadLine):
                batches.reject(
                    tally, batch, row_number=line.line_number, raw=line.raw, errors=line.errors
                )
            elif fp in known:
                tally.unchanged += 1
            else:
                known.add(fp)
                fresh.append((line, fp))
        if not fresh:
            batches.flush_rejections(tally)
            return
        if not stored:
            statement = _fill_statement(
                BankStatement(
                    batch=batch,
                    format=parsed.format,
                    account=parsed.account,
                    statement_ref=parsed.statement_ref or batch.file_sha256[:16],
                ),
                parsed,
            )
            statement.save()
            stored.append(statement)
            result.statements.append(statement)
        statement = stored[0]
        credits = [line for line, _fp in fresh if line.is_credit]
        payers = dict(zip(map(id, credits), matching.identify_payers(credits), strict=True))
        credit_rows = [
            {
                "amount": line.amount,
                "currency": line.currency,
                "received_on": line.value_on or line.booked_on,
                "customer_id": payers[id(line)],
                "method": Payment.Method.BANK_TRANSFER,
                "remittance_reference": _remittance(line)[:255],
                "payer_name": line.counterparty_name,
                "payer_account": line.counterparty_account,
                "source": PAYMENT_SOURCE,
                "external_id": fp,
            }
            for line, fp in fresh
            if line.is_credit
        ]
        recorded = iter(services.record_payments(credit_rows, by=by))
        rows = []
        for line, fp in fresh:
            payment_id = None
            if line.is_credit:
                payment = next(recorded)
                if isinstance(payment, ValidationError):
                    error = batches.RowRejected.from_validation_error(
                        payment, default_field="payment"
                    )
                    batches.reject(
                        tally,
                        batch,
                        row_number=line.line_number,
                        raw=line.raw,
                        errors=error.errors,
                        at_stake=batches.amount_at_stake(line.amount, line.currency),
                    )
                    continue
                payment_id = payment.pk
                result.payments += 1
                result.payment_ids.append(payment_id)
            tally.created += 1
            rows.append(
                (
                    statement.pk,
                    line.line_number,
                    fp,
                    parsed.account,
                    line.booked_on,
                    line.value_on,
                    line.amount,
                    line.currency,
                    line.counterparty_name,
                    line.counterparty_account,
                    line.remittance,
                    line.bank_reference,
                    payment_id,
                )
            )
        bulk.insert_rows(BankLine, BANK_LINE_COLUMNS, rows, returning=False)
        batches.flush_rejections(tally)


def _fill_statement(statement: BankStatement, parsed: ParsedStatement) -> BankStatement:
    statement.currency = parsed.currency
    statement.opening_balance = parsed.opening_balance
    statement.closing_balance = parsed.closing_balance
    statement.from_on = parsed.from_on
    statement.to_on = parsed.to_on
    return statement


def _remittance(line: StatementLine) -> str:
    """What the payer wrote, plus the end-to-end id (payers often put the invoice there)."""
    parts = [line.remittance]
    if line.end_to_end_id and line.end_to_end_id not in line.remittance:
        parts.append(line.end_to_end_id)
    return " ".join(p for p in parts if p).strip()
