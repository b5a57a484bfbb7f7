"""Loading a bank statement file into the ledger: statement, lines, payments, matching.

One import is one IntakeBatch (source bank_statement, kind payments). Every entry of the
file is counted once: created (a new line; a credit also becomes a Payment), unchanged
(the same line was imported before: its fingerprint is known for the account) or
rejected (it could not be read or recorded; the dead-letter list keeps it with the
reason). A file that cannot be read at all fails the batch and raises StatementUnreadable.
"""

import hashlib
import zlib
from collections import Counter
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from accounts import bulk, services
from accounts.models import Payment

from ..intake import batches
from ..models import BankLine, BankStatement, IntakeBatch
from ..reconciliation import matching
from .formats import parse_statement
from .statement import BadLine, ParsedStatement, StatementLine, StatementUnreadable
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
    statement: BankStatement | None = None
    lines: int = 0
    payments: int = 0
    duplicates: int = 0
    rejected: int = 0
    payment_ids: list[int] = field(default_factory=list)
    outcome: matching.Outcome = field(default_factory=matching.Outcome)

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
    content: bytes,
    filename: str = "",
    format: str | None = None,
    by=None,
    account: str = "",
    reconcile: bool = True,
    chunk_size: int = CHUNK_SIZE,
) -> ImportResult:
    """Parse, store and (unless `reconcile` is False) match one statement file.

    1. Open the batch first, so even an unreadable file leaves a record of the attempt.
    2. Parse the whole file; an unreadable file fails the batch (StatementUnreadable).
    3. Give each line its fingerprint: the bank's reference, or a hash of its content and
       of how many identical lines precede it in the file.
    4. Per chunk of lines, in one transaction holding an advisory lock on the account (two
       imports of the same file cannot both pass the duplicate check): skip fingerprints
       already stored, identify payers, record a Payment per new credit (a failing one is
       rejected alone, with the reason) and insert the chunk's lines in one statement
       (COPY on PostgreSQL, see `accounts.bulk.insert_rows`).
    5. Close the batch with its counts, then match the new payments.
    """
    batch = batches.open_batch(
        source=IntakeBatch.Source.BANK_STATEMENT,
        kind=IntakeBatch.Kind.PAYMENTS,
        by=by,
        filename=filename[:255],
        file_sha256=hashlib.sha256(content).hexdigest(),
    )
    result = ImportResult(batch=batch)
    try:
        parsed = parse_statement(content, format, account=account)
    except StatementUnreadable as exc:
        batches.fail_batch(batch, str(exc))
        batches.record_failure(SOURCE, str(exc))
        raise
    tally = batches.Tally()
    keyed = _with_fingerprints(parsed)
    result.lines = len(parsed.lines)
    try:
        for start in range(0, len(keyed), chunk_size):
            _load_chunk(parsed, keyed[start : start + chunk_size], batch, tally, result, by)
    except Exception as exc:  # the chunks loaded so far stay; the batch says where it broke
        batches.fail_batch(batch, f"{exc.__class__.__name__}: {exc}")
        batches.record_failure(SOURCE, str(exc))
        raise
    batches.close_batch(batch, tally)
    batches.record_success(SOURCE)
    result.duplicates = tally.unchanged
    result.rejected = tally.rejected
    if reconcile and result.payment_ids:
        result.outcome = matching.reconcile(result.payment_ids, by=by)
    return result


def _with_fingerprints(parsed: ParsedStatement) -> list[tuple[StatementLine | BadLine, str]]:
    seen_content: Counter = Counter()
    seen_reference: Counter = Counter()
    keyed = []
    for line in parsed.lines:
        if isinstance(line, BadLine):
            keyed.append((line, ""))
            continue
        key = _content_key(line, account=parsed.account)
        occurrence = seen_content[key]
        seen_content[key] += 1
        reference = line.bank_reference.strip()
        if reference:
            # A reference repeated within one file (some banks reuse them per batch).
            repeat = seen_reference[reference]
            seen_reference[reference] += 1
            if repeat:
                reference = f"{reference}#{repeat + 1}"
        keyed.append(
            (
                line,
                _fingerprint(
                    line, account=parsed.account, occurrence=occurrence, reference=reference
                ),
            )
        )
    return keyed


def _load_chunk(parsed, keyed, batch, tally, result, by) -> None:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            lock = zlib.crc32(f"bank-statement:{parsed.account}".encode())
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [lock])
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
        if result.statement is None:
            result.statement = BankStatement.objects.create(
                batch=batch,
                format=parsed.format,
                account=parsed.account,
                statement_ref=parsed.statement_ref or batch.file_sha256[:16],
                currency=parsed.currency,
                opening_balance=parsed.opening_balance,
                closing_balance=parsed.closing_balance,
                from_on=parsed.from_on,
                to_on=parsed.to_on,
            )
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
                        tally, batch, row_number=line.line_number, raw=line.raw, errors=error.errors
                    )
                    continue
                payment_id = payment.pk
                result.payments += 1
                result.payment_ids.append(payment_id)
            tally.created += 1
            rows.append(
                (
                    result.statement.pk,
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


def _remittance(line: StatementLine) -> str:
    """What the payer wrote, plus the end-to-end id (payers often put the invoice there)."""
    parts = [line.remittance]
    if line.end_to_end_id and line.end_to_end_id not in line.remittance:
        parts.append(line.end_to_end_id)
    return " ".join(p for p in parts if p).strip()
