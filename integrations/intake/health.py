"""Reads for the intake's health and dead-letter pages: what each source leaves waiting,
ranked by impact, and the share of its rows rejected or loaded with warnings."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import CharField, Count, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..models import IntakeBatch, Rejection, SourceHealth

# SourceHealth names its sources as the adapters report them; batches name theirs by
# IntakeBatch.Source, or by their import profile's source (xero, quickbooks...).
HEALTH_TO_BATCH_SOURCE = {"payments-webhook": IntakeBatch.Source.WEBHOOK}


def batch_source_key(prefix: str = "") -> Coalesce:
    """The source a batch (or, with prefix "batch__", a rejection) is counted under."""
    return Coalesce(f"{prefix}profile__source", f"{prefix}source", output_field=CharField())


@dataclass
class Waiting:
    """What one source's open rejections hold up."""

    source: str
    rows: int = 0
    invoices_blocked: int = 0
    since: dt.datetime | None = None
    amounts: dict[str, Decimal] = field(default_factory=dict)  # currency -> total

    @property
    def largest_amount(self) -> Decimal:
        return max(self.amounts.values(), default=Decimal(0))

    def amounts_shown(self) -> list[tuple[str, Decimal]]:
        """(currency, total), largest first."""
        return sorted(self.amounts.items(), key=lambda item: (-item[1], item[0]))


def open_rejections() -> QuerySet:
    return Rejection.objects.filter(status=Rejection.Status.OPEN)


def waiting_by_source() -> list[Waiting]:
    """Open rejections per source, most money at stake first (the largest total in any
    one currency: amounts in two currencies are never added), then most invoices blocked.
    One aggregate query."""
    rows = (
        open_rejections()
        .annotate(key=batch_source_key("batch__"))
        .values("key", "currency")
        .annotate(
            rows=Count("pk"),
            blocked=Sum("invoices_blocked"),
            total=Sum("amount"),
            since=Min("created_at"),
        )
    )
    found: dict[str, Waiting] = {}
    for row in rows:
        waiting = found.setdefault(row["key"], Waiting(row["key"]))
        waiting.rows += row["rows"]
        waiting.invoices_blocked += row["blocked"] or 0
        if row["currency"] and row["total"] is not None:
            waiting.amounts[row["currency"]] = row["total"]
        if waiting.since is None or row["since"] < waiting.since:
            waiting.since = row["since"]
    return sorted(
        found.values(), key=lambda w: (-w.largest_amount, -w.invoices_blocked, -w.rows, w.source)
    )


def waiting_for(health: SourceHealth) -> Waiting:
    """`waiting_by_source` for one health row's source (one aggregate query)."""
    key = HEALTH_TO_BATCH_SOURCE.get(health.source, health.source)
    rows = (
        open_rejections()
        .annotate(key=batch_source_key("batch__"))
        .filter(key=key)
        .values("currency")
        .annotate(
            rows=Count("pk"),
            blocked=Sum("invoices_blocked"),
            total=Sum("amount"),
            since=Min("created_at"),
        )
    )
    waiting = Waiting(str(key))
    for row in rows:
        waiting.rows += row["rows"]
        waiting.invoices_blocked += row["blocked"] or 0
        if row["currency"] and row["total"] is not None:
            waiting.amounts[row["currency"]] = row["total"]
        if waiting.since is None or row["since"] < waiting.since:
            waiting.since = row["since"]
    return waiting


@dataclass
class Share:
    """Rows read, rejected and loaded with warnings by one source over the window."""

    source: str
    batches: int
    rows_read: int
    rejected: int
    warned: int

    @property
    def rejected_percent(self) -> float:
        return 100 * self.rejected / self.rows_read if self.rows_read else 0.0

    @property
    def warned_percent(self) -> float:
        return 100 * self.warned / self.rows_read if self.rows_read else 0.0


def row_shares(*, days: int | None = None, now: dt.datetime | None = None) -> list[Share]:
    """Per source, over the last INTAKE_HEALTH_WINDOW_DAYS: completed loads (dry runs left
    out), rows read, rejected and loaded with warnings; worst rejected share first."""
    days = settings.INTAKE_HEALTH_WINDOW_DAYS if days is None else days
    since = (now or timezone.now()) - dt.timedelta(days=days)
    rows = (
        IntakeBatch.objects.filter(
            status=IntakeBatch.Status.COMPLETED, is_dry_run=False, started_at__gte=since
        )
        .annotate(key=batch_source_key())
        .values("key")
        .annotate(
            batches=Count("pk"),
            read=Sum("rows_read"),
            rejected_rows=Sum("rejected"),
            warned_rows=Sum("warned"),
        )
        .filter(~Q(read=0))
    )
    shares = [
        Share(row["key"], row["batches"], row["read"], row["rejected_rows"], row["warned_rows"])
        for row in rows
    ]
    return sorted(shares, key=lambda s: (-s.rejected_percent, -s.warned_percent, s.source))
