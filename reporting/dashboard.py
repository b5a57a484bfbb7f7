"""The managers' dashboard: aging, trends, largest and tipping accounts, team and campaigns.

Selectors here read the ledger in SQL (a bounded number of queries whatever the size of the
portfolio); the view only arranges them and draws the charts with `reporting.charts`.
Who may see it is decided in one place, `can_view_dashboard`.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Count, Q, Sum
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from accounts import selectors
from accounts.aging import BUCKETS, BUCKETS_BY_KEY
from accounts.forms import AGENT_GROUPS
from accounts.models import Activity, Customer, Payment
from cases.models import PromiseToPay
from predictions import forecast
from reporting import charts, kpis, ledger
from reporting.base_currency import convert_totals

# Who sees the dashboard besides superusers: this permission (for a reporting model to
# define and the roles migration to grant), or membership of the managers' group.
DASHBOARD_PERMISSION = "reporting.view_dashboard"
MANAGER_GROUP = "Collections manager"
PERIOD_CHOICES = (30, 90, 365)
DEFAULT_PERIOD_DAYS = 30
TREND_MONTHS = 12
LARGEST_ACCOUNTS = 20
CROSSING_WITHIN_DAYS = 7
CROSSING_LIMIT = 50
CONTACT_KINDS = (Activity.Kind.CALL, Activity.Kind.EMAIL, Activity.Kind.SMS)
FORECAST_PAST_WEEKS = 8  # weeks of cash received shown before the forecast
ACCURACY_WEEKS = 26  # the snapshots made in the last half year are scored


def can_view_dashboard(user) -> bool:
    """Active staff who are superusers, hold the dashboard permission, or are managers."""
    if not (user.is_active and user.is_staff):
        return False
    return (
        user.is_superuser
        or user.has_perm(DASHBOARD_PERMISSION)
        or user.groups.filter(name=MANAGER_GROUP).exists()
    )


# --- SQL pieces -----------------------------------------------------------------------------


def _bucket_case(as_of: dt.date, column: str = "oi.due_on") -> tuple[str, list]:
    """The aging bucket of `column` on `as_of` as a SQL CASE (same table as accounts.aging)."""
    whens, params = [], []
    for bucket in BUCKETS:
        if bucket.last_day is not None:
            whens.append(f"WHEN {column} >= %s THEN %s")
            params += [as_of - dt.timedelta(days=bucket.last_day), bucket.key]
    return f"(CASE {' '.join(whens)} ELSE %s END)", [*params, BUCKETS[-1].key]


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _money(value) -> Decimal:
    return kpis.to_decimal(value)


def _admin_url(name: str, *args, **query) -> str:
    url = reverse(f"admin:{name}", args=args)
    return f"{url}?{urlencode(query)}" if query else url


# --- selectors ------------------------------------------------------------------------------


@dataclass
class CurrencyAging:
    currency: str
    # segment key -> one amount per bucket, in BUCKETS order
    by_segment: dict[str, list[Decimal]] = field(default_factory=dict)
    items: int = 0

    @property
    def bucket_totals(self) -> list[Decimal]:
        totals = [Decimal("0.00")] * len(BUCKETS)
        for amounts in self.by_segment.values():
            totals = [a + b for a, b in zip(totals, amounts, strict=True)]
        return totals

    @property
    def total(self) -> Decimal:
        return sum(self.bucket_totals, Decimal("0.00"))


def aging_distribution(as_of: dt.date) -> dict[str, CurrencyAging]:
    """Open balances on `as_of` per currency, segment and aging bucket, in one query."""
    case_sql, case_params = _bucket_case(as_of)
    sql, params = ledger.balances_sql(as_of)
    rows = _fetch(
        f"SELECT oi.currency, c.segment, {case_sql} AS bucket, "  # noqa: S608
        "SUM(oi.balance_as_of), COUNT(*) "
        f"FROM ({sql}) oi JOIN {_table(Customer)} c ON c.id = oi.customer_id "
        "GROUP BY oi.currency, c.segment, bucket",
        [*case_params, *params],
    )
    index = {bucket.key: i for i, bucket in enumerate(BUCKETS)}
    result: dict[str, CurrencyAging] = {}
    for currency, segment, bucket, total, count in rows:
        aging = result.setdefault(currency, CurrencyAging(currency))
        amounts = aging.by_segment.setdefault(segment, [Decimal("0.00")] * len(BUCKETS))
        amounts[index[bucket]] += _money(total)
        aging.items += count
    return dict(sorted(result.items()))


def month_ends(as_of: dt.date, months: int = TREND_MONTHS) -> list[dt.date]:
    """The last `months` month ends on or before `as_of`, oldest first."""
    ends = []
    is_month_end = (as_of + dt.timedelta(days=1)).day == 1
    end = as_of if is_month_end else as_of.replace(day=1) - dt.timedelta(days=1)
    for _month in range(months):
        ends.append(end)
        end = end.replace(day=1) - dt.timedelta(days=1)
    return ends[::-1]


@dataclass
class Trend:
    month_ends: list[dt.date]
    receivables: list[Decimal]
    past_due: list[Decimal]
    dso_count_back: list[Decimal | None]
    dso_simple: list[Decimal | None]


def trends(
    as_of: dt.date, currency: str | None = None, months: int = TREND_MONTHS
) -> dict[str, Trend]:
    """Receivables, past due and DSO at each of the last month ends, per currency.

    Four queries: balances at every month end at once (`kpis.receivables_at`) and net credit
    sales per month. DSO (simple) here uses the three calendar months ending at each month
    end (their actual days), the count-back method as in `kpis.count_back_dso`.
    """
    ends = month_ends(as_of, months)
    balances = kpis.receivables_at(ends, currency)
    sales = kpis.monthly_net_sales(
        kpis.months_back(ends[0], kpis.COUNT_BACK_MONTHS - 1), ends[-1], currency
    )
    result = {}
    for currency in sorted({*balances, *sales}):
        points = balances.get(currency, [(Decimal("0.00"), Decimal("0.00"))] * len(ends))
        monthly = sales.get(currency, {})
        simple = []
        for end, (receivables, _past_due) in zip(ends, points, strict=True):
            quarter = [kpis.months_back(end, back) for back in range(3)]
            quarter_sales = sum((monthly.get(m, Decimal(0)) for m in quarter), Decimal(0))
            quarter_days = (end - quarter[-1]).days + 1
            simple.append(receivables * quarter_days / quarter_sales if quarter_sales > 0 else None)
        result[currency] = Trend(
            month_ends=ends,
            receivables=[total for total, _past_due in points],
            past_due=[past_due for _total, past_due in points],
            dso_count_back=[
                kpis.count_back_dso(total, monthly, end)
                for end, (total, _past_due) in zip(ends, points, strict=True)
            ],
            dso_simple=simple,
        )
    return result


@dataclass
class AccountRow:
    customer: Customer
    currency: str
    amount: Decimal
    invoices: int
    oldest_due_on: dt.date
    bucket: str = ""
    next_bucket: str = ""
    crosses_on: dt.date | None = None

    @property
    def bucket_label(self) -> str:
        return str(BUCKETS_BY_KEY[self.bucket].label) if self.bucket else ""

    @property
    def next_bucket_label(self) -> str:
        return str(BUCKETS_BY_KEY[self.next_bucket].label) if self.next_bucket else ""

    @property
    def customer_url(self) -> str:
        return _admin_url("accounts_customer_change", self.customer.pk)

    @property
    def invoices_url(self) -> str:
        query = {"customer__id__exact": self.customer.pk, "currency": self.currency}
        if self.bucket:
            query["bucket"] = self.bucket
        return _admin_url("accounts_invoice_changelist", **query)


def _customers(ids) -> dict[int, Customer]:
    return {
        customer.pk: customer
        for customer in Customer.objects.filter(pk__in=list(ids)).select_related("assigned_agent")
    }


def largest_past_due(
    as_of: dt.date, currency: str, limit: int = LARGEST_ACCOUNTS
) -> list[AccountRow]:
    """The customers with the largest past-due balance in `currency` on `as_of`."""
    sql, params = ledger.balances_sql(as_of)
    rows = _fetch(
        "SELECT oi.customer_id, SUM(oi.balance_as_of) AS past_due, COUNT(*), MIN(oi.due_on) "  # noqa: S608
        f"FROM ({sql}) oi WHERE oi.currency = %s AND oi.due_on < %s "
        "GROUP BY oi.customer_id ORDER BY past_due DESC, oi.customer_id LIMIT %s",
        [*params, currency, as_of, limit],
    )
    customers = _customers(row[0] for row in rows)
    return [
        AccountRow(
            customer=customers[customer_id],
            currency=currency,
            amount=_money(amount),
            invoices=count,
            oldest_due_on=kpis.as_date(oldest),
        )
        for customer_id, amount, count, oldest in rows
    ]


def crossing_next_bucket(
    as_of: dt.date,
    currency: str,
    within_days: int = CROSSING_WITHIN_DAYS,
    limit: int = CROSSING_LIMIT,
) -> list[AccountRow]:
    """Customers with open invoices that move into the next aging bucket within `within_days`.

    An invoice `d` days past due in a bucket ending at day L crosses on the day it is L+1
    days past due; it does so within the next `within_days` days when L-within_days < d <= L.
    Grouped per customer and bucket crossed; the largest amounts first.
    """
    windows, window_params = [], []
    for bucket in BUCKETS:
        if bucket.last_day is not None:
            windows.append("(oi.due_on >= %s AND oi.due_on <= %s)")
            window_params += [
                as_of - dt.timedelta(days=bucket.last_day),
                as_of - dt.timedelta(days=bucket.last_day - within_days + 1),
            ]
    case_sql, case_params = _bucket_case(as_of)
    sql, params = ledger.balances_sql(as_of)
    rows = _fetch(
        f"SELECT oi.customer_id, {case_sql} AS bucket, SUM(oi.balance_as_of) AS amount, "  # noqa: S608
        f"COUNT(*), MIN(oi.due_on) FROM ({sql}) oi "
        f"WHERE oi.currency = %s AND ({' OR '.join(windows)}) "
        "GROUP BY oi.customer_id, bucket ORDER BY amount DESC, oi.customer_id LIMIT %s",
        [*case_params, *params, currency, *window_params, limit],
    )
    customers = _customers(row[0] for row in rows)
    by_key = {bucket.key: i for i, bucket in enumerate(BUCKETS)}
    result = []
    for customer_id, bucket_key, amount, count, oldest in rows:
        bucket = BUCKETS[by_key[bucket_key]]
        oldest = kpis.as_date(oldest)
        result.append(
            AccountRow(
                customer=customers[customer_id],
                currency=currency,
                amount=_money(amount),
                invoices=count,
                oldest_due_on=oldest,
                bucket=bucket.key,
                next_bucket=BUCKETS[by_key[bucket_key] + 1].key,
                crosses_on=oldest + dt.timedelta(days=bucket.last_day + 1),
            )
        )
    return result


@dataclass
class AgentRow:
    agent: object
    calls: int = 0
    emails: int = 0
    sms: int = 0
    promises: int = 0
    promises_kept: int = 0
    collected: Decimal = Decimal("0.00")
    payments: int = 0

    @property
    def contacts(self) -> int:
        return self.calls + self.emails + self.sms

    @property
    def customers_url(self) -> str:
        return _admin_url("accounts_customer_changelist", agent=self.agent.pk)

    @property
    def contacts_url(self) -> str:
        return _admin_url("accounts_activity_changelist", actor__id__exact=self.agent.pk)


def team_productivity(period: kpis.Period, currency: str) -> list[AgentRow]:
    """Per agent in the period: calls, e-mails and SMS they logged, promises they recorded,
    and payments in `currency` received from the customers assigned to them."""
    start = kpis.day_start(period.first_day)
    end = kpis.day_start(period.as_of + dt.timedelta(days=1))
    rows: dict[int, AgentRow] = {}
    contacts = (
        Activity.objects.filter(
            kind__in=CONTACT_KINDS,
            actor__isnull=False,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        .values("actor_id")
        .annotate(
            calls=Count("pk", filter=Q(kind=Activity.Kind.CALL)),
            emails=Count("pk", filter=Q(kind=Activity.Kind.EMAIL)),
            sms=Count("pk", filter=Q(kind=Activity.Kind.SMS)),
        )
        .order_by()
    )
    by_agent = {row["actor_id"]: row for row in contacts}
    promises = {
        row["recorded_by_id"]: row
        for row in PromiseToPay.objects.filter(
            recorded_by__isnull=False, created_at__gte=start, created_at__lt=end
        )
        .values("recorded_by_id")
        .annotate(
            recorded=Count("pk"),
            kept=Count("pk", filter=Q(status=PromiseToPay.Status.KEPT)),
        )
        .order_by()
    }
    collected = {
        row["customer__assigned_agent_id"]: row
        for row in Payment.objects.filter(
            kind=Payment.Kind.PAYMENT,
            currency=currency,
            received_on__range=(period.first_day, period.as_of),
            customer__assigned_agent__isnull=False,
        )
        .values("customer__assigned_agent_id")
        .annotate(total=Sum("amount"), payments=Count("pk"))
        .order_by()
    }
    agent_ids = {*by_agent, *promises, *collected}
    users = (
        get_user_model()
        .objects.filter(Q(pk__in=agent_ids) | Q(is_active=True, groups__name__in=AGENT_GROUPS))
        .distinct()
        .order_by("username")
    )
    for user in users:
        row = rows[user.pk] = AgentRow(agent=user)
        if contact := by_agent.get(user.pk):
            row.calls, row.emails, row.sms = contact["calls"], contact["emails"], contact["sms"]
        if promise := promises.get(user.pk):
            row.promises, row.promises_kept = promise["recorded"], promise["kept"]
        if money := collected.get(user.pk):
            row.collected, row.payments = _money(money["total"]), money["payments"]
    return list(rows.values())


def campaign_effectiveness(period: kpis.Period, currency: str) -> list[dict]:
    """Per policy step: notices sent, followed by a payment within 14 days, and the rate."""
    rows = kpis.notice_follow_up(period, by="step", currency=currency)
    for row in rows:
        row["notices_url"] = _admin_url("dunning_notice_changelist", step__id__exact=row["step_pk"])
    return sorted(rows, key=lambda row: (row["policy"], row["offset_days"], row["step_name"]))


@dataclass
class ForecastWeek:
    """One row of the cash forecast table: a past week (received) or a coming one."""

    week_start: dt.date
    week: int | None = None  # 1..13 for the forecast's weeks, None for past ones
    received: Decimal | None = None
    expected: Decimal | None = None
    naive: Decimal | None = None
    promises: Decimal | None = None
    installments: Decimal | None = None


@dataclass
class CashForecastSection:
    as_of: dt.date
    currency: str
    forecast: forecast.CashForecast
    rows: list[ForecastWeek]
    accuracy: dict[str, list[forecast.Accuracy]]
    chart: str = ""

    @property
    def currency_forecast(self) -> forecast.CurrencyForecast | None:
        return self.forecast.currencies.get(self.currency)

    @property
    def base_rows(self) -> list[tuple[dt.date, Decimal, Decimal]]:
        base = self.forecast.base
        return list(zip(self.forecast.week_starts, base.expected, base.naive, strict=True))


def cash_forecast_section(as_of: dt.date, currency: str) -> CashForecastSection:
    """The 13 weeks ahead (predictions.forecast) with the weeks of cash received before
    them for `currency`, every currency in the base currency, and the WAPE of the
    snapshots of the last ACCURACY_WEEKS weeks (a fixed handful of queries)."""
    # The forecast reads every open invoice (about 4 s at a million): computed once per
    # DASHBOARD_FORECAST_CACHE_SECONDS for everyone who opens the dashboard that day.
    result = cache.get_or_set(
        f"dashboard:cash-forecast:{as_of.isoformat()}",
        lambda: forecast.cash_forecast(as_of),
        settings.DASHBOARD_FORECAST_CACHE_SECONDS,
    )
    actuals = forecast.cash_received(as_of, FORECAST_PAST_WEEKS)
    received = actuals.currencies.get(currency, [Decimal("0.00")] * FORECAST_PAST_WEEKS)
    rows = [
        ForecastWeek(week_start=start, received=amount)
        for start, amount in zip(actuals.week_starts, received, strict=True)
    ]
    ahead = result.currencies.get(currency)
    for index, start in enumerate(result.week_starts):
        row = ForecastWeek(week_start=start, week=index + 1)
        if ahead is not None:
            row.expected, row.naive = ahead.expected[index], ahead.naive[index]
            row.promises, row.installments = ahead.promises[index], ahead.installments[index]
        rows.append(row)
    section = CashForecastSection(
        as_of=as_of,
        currency=currency,
        forecast=result,
        rows=rows,
        accuracy=forecast.forecast_accuracy(
            as_of, since=as_of - dt.timedelta(weeks=ACCURACY_WEEKS)
        ),
    )
    if currency and (ahead is not None or currency in actuals.currencies):
        section.chart = mark_safe(  # noqa: S308
            charts.line_chart(
                [row.week_start.strftime("%d %b") for row in rows],
                [
                    (_("Received"), [row.received for row in rows]),
                    (_("Expected (forecast)"), [row.expected for row in rows]),
                    (_("Naive (due dates)"), [row.naive for row in rows]),
                ],
                title=_("Cash in per week, %(currency)s") % {"currency": currency},
                description=_(
                    "Cash received in the last %(past)s weeks, then the cash expected in each "
                    "of the next %(weeks)s weeks and the naive forecast (every invoice paid on "
                    "its due date), in %(currency)s."
                )
                % {"past": FORECAST_PAST_WEEKS, "weeks": result.weeks, "currency": currency},
                value_format=charts.format_compact,
                y_label=currency,
                width=720,
                show_values=False,
            )
        )
    return section


# --- the page -------------------------------------------------------------------------------


def _currency_choice(request, available: list[str], aging: dict[str, CurrencyAging]) -> str:
    wanted = request.GET.get("currency", "").upper()
    if wanted in available:
        return wanted
    if aging:
        return max(aging.values(), key=lambda item: (item.items, item.currency)).currency
    return available[0] if available else ""


def _period_choice(request) -> int:
    try:
        days = int(request.GET.get("days", DEFAULT_PERIOD_DAYS))
    except ValueError:
        return DEFAULT_PERIOD_DAYS
    return days if days in PERIOD_CHOICES else DEFAULT_PERIOD_DAYS


def _by_segment_order(by_segment: dict) -> list[tuple]:
    """Segments in the order the model declares them (strategic first), unknown ones last."""
    order = {key: i for i, key in enumerate(Customer.Segment.values)}
    return sorted(by_segment.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))


def _segment_label(key: str) -> str:
    return str(dict(Customer.Segment.choices).get(key, key or _("no segment")))


def _charts(currency: str, aging: CurrencyAging | None, trend: Trend | None) -> dict:
    """The page's SVG charts, marked safe here: `reporting.charts` escapes every label."""
    result = {}
    labels = [str(bucket.label) for bucket in BUCKETS]
    if aging is not None:
        result["aging"] = mark_safe(  # noqa: S308
            charts.stacked_bar_chart(
                labels,
                [
                    (_segment_label(segment), amounts)
                    for segment, amounts in _by_segment_order(aging.by_segment)
                ],
                title=_("Aging distribution, %(currency)s") % {"currency": currency},
                description=_(
                    "Open balances per aging bucket, stacked by customer segment, in %(currency)s."
                )
                % {"currency": currency},
                width=720,
                links=[
                    _admin_url("accounts_invoice_changelist", bucket=bucket.key, currency=currency)
                    for bucket in BUCKETS
                ],
            )
        )
    if trend is not None:
        months = [end.strftime("%b %y") for end in trend.month_ends]
        result["dso"] = mark_safe(  # noqa: S308
            charts.line_chart(
                months,
                [
                    (_("DSO, count-back"), trend.dso_count_back),
                    (_("DSO, simple (3 months)"), trend.dso_simple),
                ],
                title=_("DSO at each month end, %(currency)s") % {"currency": currency},
                value_format=charts.format_days,
                tick_format=charts.format_compact,
                y_label=_("days"),
                width=720,
            )
        )
        result["past_due"] = mark_safe(  # noqa: S308
            charts.line_chart(
                months,
                [(_("Receivables"), trend.receivables), (_("Past due"), trend.past_due)],
                title=_("Receivables and past due at each month end, %(currency)s")
                % {"currency": currency},
                value_format=charts.format_compact,
                y_label=currency,
                width=720,
            )
        )
    return result


def dashboard_view(request, admin_site=None):
    """The dashboard page; only for `can_view_dashboard` users (others get 403)."""
    if not can_view_dashboard(request.user):
        raise PermissionDenied
    site = admin_site or admin.site
    as_of = timezone.localdate()
    period = kpis.Period(as_of=as_of, days=_period_choice(request))
    aging = aging_distribution(as_of)
    available = sorted({*aging, *selectors.invoice_currencies()})
    currency = _currency_choice(request, available, aging)
    trend = trends(as_of, currency) if currency else {}
    key_figures = kpis.compute(period, currency) if currency else {}
    currency_aging = aging.get(currency)
    aging_rows = []
    if currency_aging is not None:
        for segment, amounts in _by_segment_order(currency_aging.by_segment):
            aging_rows.append(
                {
                    "label": _segment_label(segment),
                    "cells": [
                        (
                            amount,
                            _admin_url(
                                "accounts_invoice_changelist",
                                bucket=bucket.key,
                                currency=currency,
                                customer__segment__exact=segment,
                            ),
                        )
                        for bucket, amount in zip(BUCKETS, amounts, strict=True)
                    ],
                    "total": sum(amounts, Decimal("0.00")),
                }
            )
    context = {
        **site.each_context(request),
        "title": _("Collections dashboard"),
        "as_of": as_of,
        "period": period,
        "period_choices": [
            (days, f"?{urlencode({'currency': currency, 'days': days})}") for days in PERIOD_CHOICES
        ],
        "currency": currency,
        "currency_choices": [
            (code, f"?{urlencode({'currency': code, 'days': period.days})}") for code in available
        ],
        "buckets": [
            (
                bucket,
                _admin_url("accounts_invoice_changelist", bucket=bucket.key, currency=currency),
            )
            for bucket in BUCKETS
        ],
        "aging": currency_aging,
        "aging_rows": aging_rows,
        # Every currency's aging converted into BASE_CURRENCY, beside the one shown above.
        "converted": convert_totals(
            ((code, item.bucket_totals, None) for code, item in aging.items()), as_of=as_of
        )
        if aging
        else None,
        "bucket_labels": [str(bucket.label) for bucket in BUCKETS],
        "figures": key_figures[currency].as_json() if currency in key_figures else None,
        "charts": _charts(currency, currency_aging, trend.get(currency)),
        "largest": largest_past_due(as_of, currency) if currency else [],
        "crossing": crossing_next_bucket(as_of, currency) if currency else [],
        "crossing_days": CROSSING_WITHIN_DAYS,
        "team": team_productivity(period, currency) if currency else [],
        "campaigns": campaign_effectiveness(period, currency) if currency else [],
        "follow_up_days": kpis.FOLLOW_UP_DAYS,
        "largest_count": LARGEST_ACCOUNTS,
        "cash_forecast": cash_forecast_section(as_of, currency),
        "invoices_url": _admin_url("accounts_invoice_changelist"),
        "notices_url": _admin_url("dunning_notice_changelist"),
    }
    return TemplateResponse(request, "reporting/dashboard.html", context)


def get_urls(
    admin_site=None, route: str = "reporting/dashboard/", name: str = "reporting_dashboard"
) -> list:
    """URL patterns for the dashboard, for an AdminSite's or a ModelAdmin's `get_urls`.

    `admin_view` sends anonymous and non-staff users to the login page; the view itself
    answers 403 to staff without the dashboard right. From a page ModelAdmin registered
    for a `reporting.Dashboard` model, `get_urls(self.admin_site, route="",
    name="reporting_dashboard_changelist")` also gives the admin index its link.
    """
    site = admin_site or admin.site

    def view(request):
        return dashboard_view(request, admin_site=site)

    return [path(route, site.admin_view(view), name=name)]


# For `path("admin/reporting/dashboard/", include("reporting.dashboard"))` in the root URLconf.
urlpatterns = get_urls(route="")
