"""The intake pipeline's bookkeeping: batches, the dead-letter list, source health, retries.

Every source adapter (spreadsheet, API, gateway webhook, bank statement) opens a batch,
turns its payload into ledger operations, counts each row as created, updated, unchanged
or rejected, stores every rejected row with its raw values and a reason per field, and
closes the batch. Nothing valid is lost and nothing invalid disappears:
rows read = created + updated + unchanged + rejected (a CHECK constraint on the batch).
"""

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from accounts.money import ISO_4217

from ..models import IntakeBatch, Rejection, RowWarning, SourceHealth

logger = logging.getLogger(__name__)
T = TypeVar("T")
MAX_AMOUNT = Decimal("999999999999.99")  # DecimalField(max_digits=14, decimal_places=2)

# Failures worth another try: the database was busy or went away, a provider timed out.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
)


class RowRejected(Exception):
    """A row failed validation; `errors` maps each field to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    @classmethod
    def from_validation_error(cls, exc: ValidationError, default_field: str = "row"):
        if hasattr(exc, "error_dict"):
            return cls({name: list(messages) for name, messages in exc.message_dict.items()})
        return cls({default_field: list(exc.messages)})


@dataclass
class Tally:
    """Running counts for a batch; `close` writes them in one UPDATE."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # Rows loaded with a warning (also counted as created, updated or unchanged).
    warned: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    warnings: list[RowWarning] = field(default_factory=list)
    # At most this many rejections are kept (all are counted): a preview or a dry run,
    # which writes none, must not hold a million of them in memory.
    keep: int | None = None

    @property
    def read(self) -> int:
        return self.created + self.updated + self.unchanged + self.rejected


@dataclass
class RowOutcome:
    """What happened to one row, for previews: created, updated, unchanged or rejected.

    `number` is what names the row's record (an invoice number, a customer reference...).
    """

    row_number: int
    number: str
    outcome: str
    changes: dict = field(default_factory=dict)  # {field: [from, to]} or {field: [errors]}
    warnings: dict = field(default_factory=dict)  # {field: [messages]}: loaded, value dropped
    # Invoices: the customer the row goes to ({"id", "name", "ref", "match"}: "key",
    # "reference", "name" or "new"); None where the kind has no such thing.
    customer: dict | None = None


def open_batch(
    *,
    source: str,
    kind: str,
    by=None,
    profile=None,
    filename: str = "",
    file_sha256: str = "",
    is_dry_run: bool = False,
) -> IntakeBatch:
    return IntakeBatch.objects.create(
        source=source,
        kind=kind,
        created_by=by,
        profile=profile,
        filename=filename,
        file_sha256=file_sha256,
        is_dry_run=is_dry_run,
    )


def reject(
    tally: Tally,
    batch: IntakeBatch,
    *,
    row_number: int,
    raw: dict,
    errors: dict,
    at_stake: tuple[Decimal, str] | None = None,
    invoices_blocked: int = 0,
) -> None:
    """Count a rejected row and queue it for the dead-letter list (written by `flush`).

    `at_stake` is the row's (amount, currency) when it could be read, and
    `invoices_blocked` how many invoices the refusal keeps out of the ledger: the
    dead-letter list ranks rows by them.
    """
    tally.rejected += 1
    if tally.keep is not None and len(tally.rejections) >= tally.keep:
        return
    amount, currency = at_stake if at_stake is not None else (None, "")
    tally.rejections.append(
        Rejection(
            batch=batch,
            row_number=row_number,
            raw=_jsonable(raw),
            errors=errors,
            amount=amount,
            currency=currency if amount is not None else "",
            invoices_blocked=invoices_blocked,
        )
    )


def amount_at_stake(amount, currency) -> tuple[Decimal, str] | None:
    """(amount, currency) if both read as money the ledger could hold, else None."""
    try:
        amount = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (ArithmeticError, ValueError, TypeError):
        return None
    currency = str(currency or "").strip().upper()
    if not amount.is_finite() or abs(amount) > MAX_AMOUNT or currency not in ISO_4217:
        return None
    return abs(amount), currency


def warn(tally: Tally, batch: IntakeBatch, *, row_number: int, number: str, warnings: dict) -> None:
    """Count a row that loaded with a warning and queue the warning (written by `flush`)."""
    tally.warned += 1
    if tally.keep is not None and len(tally.warnings) >= tally.keep:
        return
    tally.warnings.append(
        RowWarning(batch=batch, row_number=row_number, number=number[:100], warnings=warnings)
    )


def flush_rejections(tally: Tally) -> None:
    """Write the queued rejected rows and warnings."""
    if tally.rejections:
        Rejection.objects.bulk_create(tally.rejections, batch_size=1000)
        tally.rejections.clear()
    if tally.warnings:
        RowWarning.objects.bulk_create(tally.warnings, batch_size=1000)
        tally.warnings.clear()


def close_batch(batch: IntakeBatch, tally: Tally) -> IntakeBatch:
    """Write the counts and mark the batch completed; the database checks they add up."""
    flush_rejections(tally)
    batch.rows_read = tally.read
    batch.created, batch.updated = tally.created, tally.updated
    batch.unchanged, batch.rejected = tally.unchanged, tally.rejected
    batch.warned = tally.warned
    batch.status = IntakeBatch.Status.COMPLETED
    batch.finished_at = timezone.now()
    batch.save(
        update_fields=[
            "rows_read",
            "created",
            "updated",
            "unchanged",
            "rejected",
            "warned",
            "status",
            "finished_at",
        ]
    )
    return batch


def dismiss_rejection(rejection: Rejection, *, by, reason: str) -> Rejection:
    """Close a rejected row nobody will load, saying why (finance's decision).

    Claimed by a conditional update, so a row dismissed or retried by someone else in the
    meantime is refused rather than overwritten.
    """
    if not by.has_perm("integrations.resolve_rejection"):
        raise PermissionDenied(gettext("You do not have permission to do this."))
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": gettext("Say why.")})
    now = timezone.now()
    claimed = Rejection.objects.filter(pk=rejection.pk, status=Rejection.Status.OPEN).update(
        status=Rejection.Status.DISMISSED, resolution=reason, resolved_by=by, resolved_at=now
    )
    if claimed != 1:
        raise ValidationError(gettext("This row was resolved in the meantime."))
    rejection.refresh_from_db()
    return rejection


def fail_batch(batch: IntakeBatch, error: str) -> IntakeBatch:
    """The load could not be read at all (wrong encoding, missing columns, broken file)."""
    batch.status = IntakeBatch.Status.FAILED
    batch.error = error
    batch.finished_at = timezone.now()
    batch.save(update_fields=["status", "error", "finished_at"])
    return batch


def fail_abandoned_batches(*, source: str | None = None) -> int:
    """Fail the batches still running INTAKE_BATCH_TIMEOUT_MINUTES after they started.

    A load marks its batch completed or failed whatever stops it, except the death of its
    process (a kill, an out-of-memory kill, a lost machine): such a batch would stay
    "running" for ever. Every spreadsheet load calls this first; it is one UPDATE. Returns
    how many batches it failed.
    """
    minutes = settings.INTAKE_BATCH_TIMEOUT_MINUTES
    now = timezone.now()
    abandoned = IntakeBatch.objects.filter(
        status=IntakeBatch.Status.RUNNING, started_at__lt=now - dt.timedelta(minutes=minutes)
    )
    if source is not None:
        abandoned = abandoned.filter(source=source)
    return abandoned.update(
        status=IntakeBatch.Status.FAILED,
        finished_at=now,
        error=gettext(
            "Abandoned: still running %(minutes)d minutes after it started; the process "
            "loading it stopped (INTAKE_BATCH_TIMEOUT_MINUTES). Load the file again."
        )
        % {"minutes": minutes},
    )


def record_success(source: str) -> None:
    SourceHealth.objects.update_or_create(
        source=source,
        defaults={
            "last_success_at": timezone.now(),
            "consecutive_failures": 0,
            "failing_since": None,
            "last_error": "",
        },
    )


def record_failure(source: str, error: str) -> None:
    """One more failure; the first of a run of failures says since when the source fails."""
    health, _ = SourceHealth.objects.get_or_create(source=source)
    now = timezone.now()
    SourceHealth.objects.filter(pk=health.pk).update(
        last_failure_at=now,
        failing_since=Coalesce(F("failing_since"), now),
        consecutive_failures=F("consecutive_failures") + 1,
        last_error=error[:2000],
    )


def with_retries(
    operation: Callable[[], T],
    *,
    source: str,
    attempts: int = 4,
    first_delay: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `operation`, retrying transient failures with exponential backoff.

    A source's health records the outcome: success resets its failure count; giving up
    adds one and keeps the error, so the admin health view flags a source that keeps
    failing. Validation errors and integrity errors are not transient and are raised at once.
    """
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            result = operation()
        except IntegrityError:
            raise
        except (*TRANSIENT_ERRORS, DatabaseError) as exc:
            if not isinstance(exc, TRANSIENT_ERRORS) or attempt == attempts:
                record_failure(source, f"{exc.__class__.__name__}: {exc}")
                raise
            logger.warning(
                "%s: attempt %d failed (%s); retrying in %.1fs", source, attempt, exc, delay
            )
            sleep(delay)
            delay *= 2
        else:
            record_success(source)
            return result
    raise AssertionError("unreachable")


def _jsonable(raw: dict) -> dict:
    return {
        str(key): (value if isinstance(value, str | int | bool | None) else str(value))
        for key, value in raw.items()
    }
