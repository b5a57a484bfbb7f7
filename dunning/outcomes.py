"""What followed a sent notice: the day it went out, and whether it got paid in time.

The definition the experiments use (dunning/variants.py), as ORM expressions for a Notice
queryset. The effectiveness report (reporting/effectiveness.py) computes the same in one
set-based statement for speed, and adds the cash collected; keep the two in step (the
tests compare them):

- sent day: `sent_at` as a date in the site's time zone (`with_sent_on`).
- paid within N days: some invoice the notice lists (NoticeInvoice) is fully settled by
  allocations dated up to the sent day + N, payments and credit notes counted, write-off
  adjustments not (a written-off invoice was not paid).
- an outcome is known once the window has closed: sent day + N on or before the day asked.
"""

import datetime as dt

from django.db.models import (
    DateField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import TruncDate

from accounts.models import MONEY, Allocation, Payment

from .models import NoticeInvoice

# The experiments judge a variant on whether it was paid within 14 days.
OUTCOME_DAYS = 14


def with_sent_on(notices: QuerySet) -> QuerySet:
    """Sent notices, annotated with `sent_on` (the sent day in the site's time zone)."""
    return notices.filter(sent_at__isnull=False).annotate(sent_on=TruncDate("sent_at"))


def _settled_by(until: str) -> Subquery:
    """Per NoticeInvoice row: what payments and credit notes applied to its invoice by `until`."""
    return Subquery(
        Allocation.objects.filter(invoice=OuterRef("invoice_id"), allocated_on__lte=OuterRef(until))
        .exclude(payment__kind=Payment.Kind.WRITE_OFF)
        .order_by()
        .values("invoice")
        .annotate(total=Sum("amount"))
        .values("total"),
        output_field=DecimalField(**MONEY),
    )


def paid_within(days: int) -> Exists:
    """True when an invoice the notice lists was fully settled within `days` of its sent day
    (for a queryset annotated by `with_sent_on`)."""
    lines = (
        NoticeInvoice.objects.filter(notice=OuterRef("pk"))
        .annotate(
            until=ExpressionWrapper(
                OuterRef("sent_on") + dt.timedelta(days=days), output_field=DateField()
            )
        )
        .annotate(settled=_settled_by("until"))
        .filter(settled__gte=F("invoice__amount"))
    )
    return Exists(lines)


def outcome_known_by(on: dt.date, days: int = OUTCOME_DAYS) -> dt.date:
    """The last sent day whose `days`-day window has closed by `on`."""
    return on - dt.timedelta(days=days)
