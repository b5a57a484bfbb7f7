"""The customer list's sorts and filters on the collection summary (accounts/summaries.py).

Each sort column is indexed as (column, id) on the customer table, and `SummaryChangeList`
breaks ties on the id in the sort's own direction, so one index serves a sort both ways
(the admin's default tie-break is always "-pk", which would make PostgreSQL sort every
customer with no money past due when the amount is sorted upwards).
"""

import datetime as dt
from decimal import Decimal

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import F, OrderBy
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .aging import BUCKETS, BUCKETS_BY_KEY

# (key, label, lowest amount): the amount past due in its own currency.
AMOUNT_THRESHOLDS = (
    ("any", _("Anything past due"), Decimal("0.01")),
    ("1000", _("1,000 or more"), Decimal("1000")),
    ("10000", _("10,000 or more"), Decimal("10000")),
    ("100000", _("100,000 or more"), Decimal("100000")),
)


class PastDueAmountFilter(admin.SimpleListFilter):
    title = _("amount past due")
    parameter_name = "past_due"

    def lookups(self, request, model_admin):
        return [
            ("none", _("Nothing past due")),
            *[(key, label) for key, label, _lowest in AMOUNT_THRESHOLDS],
        ]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(past_due_amount=0)
        for key, _label, lowest in AMOUNT_THRESHOLDS:
            if self.value() == key:
                return queryset.filter(past_due_amount__gte=lowest)
        return queryset


class DaysPastDueFilter(admin.SimpleListFilter):
    """Days past due of the oldest open invoice, by aging bucket: a range of due dates."""

    title = _("days past due")
    parameter_name = "days_past_due"

    def lookups(self, request, model_admin):
        return [
            ("0", _("Nothing past due")),
            *[(bucket.key, bucket.label) for bucket in BUCKETS if bucket.first_day],
        ]

    def queryset(self, request, queryset):
        value, today = self.value(), timezone.localdate()
        if value == "0":
            return queryset.exclude(oldest_due_on__lt=today)
        bucket = BUCKETS_BY_KEY.get(value or "")
        if bucket is None or not bucket.first_day:
            return queryset
        queryset = queryset.filter(oldest_due_on__lte=today - dt.timedelta(bucket.first_day))
        if bucket.last_day is not None:
            queryset = queryset.filter(oldest_due_on__gte=today - dt.timedelta(bucket.last_day))
        return queryset


class NextActionFilter(admin.SimpleListFilter):
    title = _("next action")
    parameter_name = "next_action"

    def lookups(self, request, model_admin):
        return [
            ("overdue", _("Overdue")),
            ("today", _("Due today")),
            ("week", _("Due in the next 7 days")),
            ("none", _("None")),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        today = timezone.localdate()
        start_of_today = timezone.make_aware(dt.datetime.combine(today, dt.time.min))
        end_of_today = start_of_today + dt.timedelta(days=1)
        match self.value():
            case "overdue":
                return queryset.filter(next_action_at__lt=now)
            case "today":
                return queryset.filter(
                    next_action_at__gte=start_of_today, next_action_at__lt=end_of_today
                )
            case "week":
                return queryset.filter(
                    next_action_at__gte=now, next_action_at__lt=end_of_today + dt.timedelta(6)
                )
            case "none":
                return queryset.filter(next_action_at__isnull=True)
        return queryset


# Sort keys of the customer list: the first click sorts the way a collector reads the
# column (most past due, most days, highest risk, soonest action first).
PAST_DUE_ORDER = OrderBy(F("past_due_amount"), descending=True)
DAYS_PAST_DUE_ORDER = OrderBy(F("oldest_due_on"), nulls_last=True)
RISK_ORDER = OrderBy(F("risk_score"), descending=True, nulls_last=True)
NEXT_ACTION_ORDER = OrderBy(F("next_action_at"), nulls_last=True)


class SummaryChangeList(ChangeList):
    """Ties broken on the id in the direction of the first sort key (see the module)."""

    def _get_deterministic_ordering(self, ordering):
        ordering = list(ordering)
        if not ordering or not isinstance(ordering[0], OrderBy):
            return super()._get_deterministic_ordering(ordering)
        first = ordering[0]
        if getattr(first.expression, "name", None) not in {
            "past_due_amount",
            "oldest_due_on",
            "risk_score",
            "next_action_at",
        }:
            return super()._get_deterministic_ordering(ordering)
        return [first, "-pk" if first.descending else "pk"]
