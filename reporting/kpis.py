"""Collections KPIs per currency: DSO, ADD, CEI, notice effectiveness, recovery and coverage.

Every figure is computed per currency and never adds two currencies. The formulas are
written out in the README ("Collections KPIs"); in short, for an as-of day D and a period
of P days, the period is D-P+1 .. D and the opening day is D-P:

- receivables AR(d): the invoice balances open at the end of day d (`reporting.ledger`);
  past due: due before d; current: the rest.
- net credit sales: invoices issued in the period (not cancelled) less credit notes
  received in it.
- DSO, simple method: AR(D) / net credit sales x P.
- DSO, count-back method: AR(D) is matched against each calendar month's net credit sales,
  the latest month first; full months count their days, the last one its share.
- best possible DSO: current AR(D) / net credit sales x P; ADD = simple DSO - best possible.
- CEI: (AR(D-P) + net sales - AR(D)) / (AR(D-P) + net sales - current AR(D)) x 100.
- collection rate per policy or template: of the notices sent in the period at least 14
  days before D, the share followed by a payment from that customer, in that currency,
  on the day sent or within the 14 days after it.
- automated notification rate: notices sent in the period with no human decision
  (`Notice.decided_by` empty: nobody approved, released or overrode them).
- days to first payment: for each customer and currency, from the first notice sent in
  the period to the first payment received on or after that day (up to D).
- recovery time: days from the due date to the day a past-due invoice was settled in
  full in the period, with cash (no write-off adjustment).
- coverage: past-due customers at D with an active dunning notice (planned in the 30 days
  up to D, not cancelled, rejected, skipped or failed) or open case work at the end of D
  (task, promise to pay, dispute, payment plan).
- recovery rate: cash applied in the period to the invoices past due on the opening day,
  over their past-due balance on that day.

Aggregations run in SQL; Python only divides the totals. Rounding happens once, at the
edge (`as_json`): days and percentages to one decimal, amounts to cents, half up.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateField,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import TruncDate, TruncMonth
from django.utils import timezone

from accounts.models import MONEY, Allocation, Invoice, Payment
from cases.models import Dispute, PaymentPlan, PromiseToPay, Task
from dunning.models import Notice, NoticeInvoice
from reporting import ledger

ZERO = Decimal("0.00")
CENTS = Decimal("0.01")
TENTHS = Decimal("0.1")
HUNDRED = Decimal(100)
_MONEY_FIELD = DecimalField(**MONEY)

# A notice counts as followed by a payment received on the day it was sent or in the
# 14 days after; only notices whose window has closed by the as-of day are counted.
FOLLOW_UP_DAYS = 14
# A customer is in an active dunning step while a notice planned in these days is live.
ACTIVE_DUNNING_DAYS = 30
# How far back the count-back DSO looks for sales before it gives up (returns None).
COUNT_BACK_MONTHS = 24
# Notices that never went out, or were stopped: not an active dunning step.
INACTIVE_NOTICE_STATUSES = (
    Notice.Status.CANCELLED,
    Notice.Status.REJECTED,
    Notice.Status.SKIPPED,
    Notice.Status.FAILED,
)

DSO_METHODS = {
    "dso_count_back": (
        "count-back: receivables at the as-of day matched against net credit sales month "
        "by month, latest month first (the as-of month counts up to the as-of day); each "
        "fully absorbed month adds its days, the last one its share of them"
    ),
    "dso_simple": "simple: receivables / net credit sales of the period x period days",
    "best_possible_dso": "current (not yet due) receivables / net credit sales x period days",
    "add": "average days delinquent: simple DSO - best possible DSO",
}
ROUNDING = (
    "days and percentages to 0.1, amounts to 0.01, half up; counts are whole numbers; "
    "null where the denominator is zero"
)


@dataclass(frozen=True)
class Period:
    """The days a KPI looks at: `days` days ending with `as_of`, inclusive."""

    as_of: dt.date
    days: int = 90

    def __post_init__(self):
        if self.days < 1:
            raise ValueError("a period has at least one day")

    @property
    def first_day(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.days - 1)

    @property
    def opening_day(self) -> dt.date:
        """The day before the period: opening balances are taken at its end."""
        return self.as_of - dt.timedelta(days=self.days)

    @property
    def last_notice_day(self) -> dt.date:
        """The last day a notice may have been sent for its follow-up window to be closed."""
        return self.as_of - dt.timedelta(days=FOLLOW_UP_DAYS)


# --- small helpers ------------------------------------------------------------------------


def to_decimal(value) -> Decimal:
    """A SQL SUM as Decimal (SQLite may hand back an int or a float for NUMERIC columns)."""
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


def ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return None if not denominator else Decimal(numerator) / Decimal(denominator)


def percent(numerator, denominator) -> Decimal | None:
    # Multiply before dividing: 2900 x 30 / 1500 is exactly 58, 2900 / 1500 x 30 is not.
    return None if not denominator else Decimal(numerator) * HUNDRED / Decimal(denominator)


def _round(value: Decimal | None, places: Decimal) -> str | None:
    return None if value is None else str(value.quantize(places, rounding=ROUND_HALF_UP))


def _days_sql(end: str, start: str) -> str:
    """Whole days from `start` to `end` (two date columns) in this database's SQL."""
    if connection.vendor == "postgresql":
        return f"({end} - {start})"
    return f"CAST(julianday({end}) - julianday({start}) AS INTEGER)"


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _per_currency(queryset: QuerySet, *fields: str) -> dict[str, tuple]:
    """Rows of a `.values("currency", ...)` aggregate as {currency: (field, ...)}."""
    return {row["currency"]: tuple(row[name] for name in fields) for row in queryset.order_by()}


def _in_currency(queryset: QuerySet, currency: str | None, field: str = "currency") -> QuerySet:
    """The queryset limited to one currency, or unchanged when `currency` is None."""
    return queryset if currency is None else queryset.filter(**{field: currency})


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of `day` in the site's time zone (aware)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


# --- receivables and sales --------------------------------------------------------------


def receivables_split(
    as_of: dt.date, currency: str | None = None
) -> dict[str, tuple[Decimal, Decimal]]:
    """{currency: (receivables, past due)} at the end of `as_of`, from the ledger's balances."""
    sql, params = ledger.balances_sql(as_of)
    where, where_params = ("WHERE currency = %s ", [currency]) if currency else ("", [])
    rows = _fetch(
        "SELECT currency, SUM(balance_as_of), "  # noqa: S608
        "SUM(CASE WHEN due_on < %s THEN balance_as_of ELSE 0 END) "
        f"FROM ({sql}) open_items {where}GROUP BY currency",
        [as_of, *params, *where_params],
    )
    return {
        currency: (to_decimal(total), to_decimal(past_due)) for currency, total, past_due in rows
    }


def net_credit_sales(
    first_day: dt.date, last_day: dt.date, currency: str | None = None
) -> dict[str, tuple[Decimal, Decimal]]:
    """{currency: (invoiced, credit notes)} for invoices issued and credit notes received."""
    invoiced = _per_currency(
        _in_currency(Invoice.objects.filter(issued_on__range=(first_day, last_day)), currency)
        .exclude(status__in=ledger.EXCLUDED_STATUSES)
        .values("currency")
        .annotate(total=Sum("amount")),
        "total",
    )
    credited = _per_currency(
        _in_currency(
            Payment.objects.filter(
                kind=Payment.Kind.CREDIT_NOTE, received_on__range=(first_day, last_day)
            ),
            currency,
        )
        .values("currency")
        .annotate(total=Sum("amount")),
        "total",
    )
    return {
        currency: (
            to_decimal(invoiced.get(currency, (ZERO,))[0]),
            to_decimal(credited.get(currency, (ZERO,))[0]),
        )
        for currency in sorted({*invoiced, *credited})
    }


def monthly_net_sales(
    first_day: dt.date, last_day: dt.date, currency: str | None = None
) -> dict[str, dict[dt.date, Decimal]]:
    """{currency: {first day of month: invoiced - credit notes}} between the two days."""
    sales: dict[str, dict[dt.date, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    invoiced = (
        _in_currency(Invoice.objects.filter(issued_on__range=(first_day, last_day)), currency)
        .exclude(status__in=ledger.EXCLUDED_STATUSES)
        .annotate(month=TruncMonth("issued_on"))
        .values("currency", "month")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in invoiced:
        sales[row["currency"]][as_date(row["month"])] += to_decimal(row["total"])
    credited = (
        _in_currency(
            Payment.objects.filter(
                kind=Payment.Kind.CREDIT_NOTE, received_on__range=(first_day, last_day)
            ),
            currency,
        )
        .annotate(month=TruncMonth("received_on"))
        .values("currency", "month")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in credited:
        sales[row["currency"]][as_date(row["month"])] -= to_decimal(row["total"])
    return {currency: dict(months) for currency, months in sales.items()}


def as_date(value) -> dt.date:
    """A date from a raw SQL row: SQLite hands dates back as text."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    return value


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def months_back(day: dt.date, months: int) -> dt.date:
    """The first day of the month `months` months before `day`'s month."""
    index = day.year * 12 + day.month - 1 - months
    return dt.date(index // 12, index % 12 + 1, 1)


def count_back_dso(
    receivables: Decimal, monthly_sales: dict[dt.date, Decimal], as_of: dt.date
) -> Decimal | None:
    """Days of the latest net credit sales that the receivables amount to, month by month.

    The as-of month counts from its first day to `as_of`; earlier months count whole.
    A month with no (or negative) net sales adds its days and absorbs nothing. None when
    COUNT_BACK_MONTHS of sales do not cover the receivables.
    """
    remaining = Decimal(receivables)
    days = Decimal(0)
    segment_end = as_of
    for _ in range(COUNT_BACK_MONTHS):
        if remaining <= 0:
            return days
        segment_start = month_start(segment_end)
        segment_days = (segment_end - segment_start).days + 1
        sales = max(monthly_sales.get(segment_start, ZERO), ZERO)
        if sales >= remaining:
            return days + remaining * segment_days / sales
        days += segment_days
        remaining -= sales
        segment_end = segment_start - dt.timedelta(days=1)
    return days if remaining <= 0 else None


def receivables_at(
    dates: list[dt.date], currency: str | None = None
) -> dict[str, list[tuple[Decimal, Decimal]]]:
    """{currency: [(receivables, past due) at the end of each date]} in two queries.

    The ledger's formula (`reporting.ledger`): balance on d = today's open balance (zero
    when written off) + the allocations dated after d, for invoices issued by d and not
    cancelled. Evaluated for every date at once with conditional sums, so a 12-month trend
    reads the invoices once and the allocations once instead of 24 times. Only invoices
    with an open balance today take part in the first sum (a settled invoice adds zero).
    """
    if not dates:
        return {}
    base = F("open_balance")  # written-off and cancelled invoices are left out below

    def total(condition: Q, amount) -> Sum:
        return Sum(
            Case(When(condition, then=amount), default=Value(ZERO), output_field=_MONEY_FIELD)
        )

    open_part = _per_currency(
        _in_currency(
            Invoice.objects.filter(issued_on__lte=max(dates), open_balance__gt=0), currency
        )
        .exclude(status__in=(*ledger.EXCLUDED_STATUSES, *ledger.NOT_RECEIVABLE_TODAY))
        .values("currency")
        .annotate(
            **{f"t{i}": total(Q(issued_on__lte=d), base) for i, d in enumerate(dates)},
            **{
                f"p{i}": total(Q(issued_on__lte=d, due_on__lt=d), base) for i, d in enumerate(dates)
            },
        ),
        *[f"t{i}" for i in range(len(dates))],
        *[f"p{i}" for i in range(len(dates))],
    )
    later_part = _per_currency(
        _in_currency(
            Allocation.objects.filter(
                allocated_on__gt=min(dates), invoice__issued_on__lte=max(dates)
            ),
            currency,
            "invoice__currency",
        )
        .exclude(invoice__status__in=ledger.EXCLUDED_STATUSES)
        .values(currency=F("invoice__currency"))
        .annotate(
            **{
                f"t{i}": total(Q(allocated_on__gt=d, invoice__issued_on__lte=d), F("amount"))
                for i, d in enumerate(dates)
            },
            **{
                f"p{i}": total(
                    Q(allocated_on__gt=d, invoice__issued_on__lte=d, invoice__due_on__lt=d),
                    F("amount"),
                )
                for i, d in enumerate(dates)
            },
        ),
        *[f"t{i}" for i in range(len(dates))],
        *[f"p{i}" for i in range(len(dates))],
    )
    count = len(dates)
    result = {}
    for currency in sorted({*open_part, *later_part}):
        now = [to_decimal(v) for v in open_part.get(currency, (ZERO,) * 2 * count)]
        later = [to_decimal(v) for v in later_part.get(currency, (ZERO,) * 2 * count)]
        result[currency] = [
            (now[i] + later[i], now[count + i] + later[count + i]) for i in range(count)
        ]
    return result


# --- notices ------------------------------------------------------------------------------


def sent_notice_lines(first_day: dt.date, last_day: dt.date) -> QuerySet:
    """Invoice lines of notices sent between the two days (site time zone), with `sent_on`.

    A notice counts as sent when the sender stamped `sent_at` (it went to the provider or
    the letter was produced). Its currency is the currency of the invoices it lists.
    """
    return (
        NoticeInvoice.objects.filter(notice__sent_at__isnull=False)
        .annotate(sent_on=TruncDate("notice__sent_at"))
        .filter(sent_on__range=(first_day, last_day))
    )


GROUPINGS = {
    "policy": {
        "policy_pk": F("notice__step__policy_id"),
        "policy": F("notice__step__policy__name"),
    },
    "template": {
        "template_pk": F("notice__step__template_id"),
        "template": F("notice__step__template__name"),
        "language": F("notice__step__template__language"),
    },
    "step": {
        "step_pk": F("notice__step_id"),
        "policy": F("notice__step__policy__name"),
        "step_name": F("notice__step__name"),
        "offset_days": F("notice__step__offset_days"),
        "channel": F("notice__step__channel"),
    },
}


def notice_follow_up(period: Period, *, by: str, currency: str | None = None) -> list[dict]:
    """Notices sent and followed by a payment within FOLLOW_UP_DAYS, per group and currency.

    Groups: "policy", "template" or "step" (see GROUPINGS). Counts notices sent from the
    period's first day to `period.last_notice_day`, so every window has closed. Rows carry
    the group's fields, `currency`, `sent`, `followed` and `rate` (percent, unrounded).
    """
    lines = sent_notice_lines(period.first_day, period.last_notice_day)
    if by == "template":
        lines = lines.filter(notice__step__template__isnull=False)
    if currency:
        lines = lines.filter(invoice__currency=currency)
    paid = Payment.objects.filter(
        customer_id=OuterRef("notice__customer_id"),
        currency=OuterRef("invoice__currency"),
        kind=Payment.Kind.PAYMENT,
        received_on__gte=OuterRef("sent_on"),
        received_on__lte=OuterRef("follow_up_until"),
    )
    fields = GROUPINGS[by]
    rows = (
        lines.annotate(
            follow_up_until=ExpressionWrapper(
                F("sent_on") + dt.timedelta(days=FOLLOW_UP_DAYS), output_field=DateField()
            ),
            is_followed=Exists(paid),
        )
        .values(currency=F("invoice__currency"), **fields)
        .annotate(
            sent=Count("notice_id", distinct=True),
            followed=Count("notice_id", distinct=True, filter=Q(is_followed=True)),
        )
        .order_by("currency", *[name for name in fields if not name.endswith("_pk")])
    )
    return [{**row, "rate": percent(row["followed"], row["sent"])} for row in rows]


def automated_notices(period: Period, currency: str | None = None) -> dict[str, tuple[int, int]]:
    """{currency: (notices sent in the period, of which sent with no human decision)}."""
    return _per_currency(
        _in_currency(
            sent_notice_lines(period.first_day, period.as_of), currency, "invoice__currency"
        )
        .values(currency=F("invoice__currency"))
        .annotate(
            sent=Count("notice_id", distinct=True),
            automated=Count("notice_id", distinct=True, filter=Q(notice__decided_by__isnull=True)),
        ),
        "sent",
        "automated",
    )


def first_payment_after_first_notice(
    period: Period, currency: str | None = None
) -> dict[str, tuple[int, int, int]]:
    """{currency: (customers noticed, customers who paid since, total days to pay)}.

    Per customer and currency: the first notice sent in the period, and the first payment
    in that currency received on or after that day, up to the as-of day.
    """
    firsts = (
        _in_currency(
            sent_notice_lines(period.first_day, period.as_of), currency, "invoice__currency"
        )
        .values(currency=F("invoice__currency"), customer=F("notice__customer_id"))
        .annotate(first_on=Min("sent_on"))
        .order_by()
    )
    inner_sql, inner_params = firsts.query.sql_with_params()
    payment_table = connection.ops.quote_name(Payment._meta.db_table)
    rows = _fetch(
        f"SELECT currency, COUNT(*), COUNT(paid_on), "  # noqa: S608
        f"SUM(CASE WHEN paid_on IS NULL THEN 0 ELSE {_days_sql('paid_on', 'first_on')} END) "
        "FROM (SELECT f.currency, f.first_on, "
        f"(SELECT MIN(p.received_on) FROM {payment_table} p "
        "WHERE p.customer_id = f.customer AND p.currency = f.currency AND p.kind = %s "
        "AND p.received_on >= f.first_on AND p.received_on <= %s) AS paid_on "
        f"FROM ({inner_sql}) f) t GROUP BY currency",
        [Payment.Kind.PAYMENT, period.as_of, *inner_params],
    )
    return {currency: (noticed, paid, int(days or 0)) for currency, noticed, paid, days in rows}


# --- recovery and coverage ---------------------------------------------------------------


def recovered_invoices(period: Period, currency: str | None = None) -> dict[str, tuple[int, int]]:
    """{currency: (invoices recovered, total days from due date to settlement)}.

    Recovered: settled in full by allocations dated up to the as-of day, the last of them
    in the period and after the due date, with some cash (a payment) and no write-off
    adjustment among them.
    """
    touched = Allocation.objects.filter(
        allocated_on__range=(period.first_day, period.as_of)
    ).values("invoice_id")
    settled = (
        _in_currency(
            Allocation.objects.filter(
                allocated_on__lte=period.as_of,
                invoice__issued_on__lte=period.as_of,
                invoice_id__in=touched,
            ),
            currency,
            "invoice__currency",
        )
        .exclude(invoice__status__in=ledger.EXCLUDED_STATUSES)
        .values(
            "invoice_id",
            currency=F("invoice__currency"),
            due_on=F("invoice__due_on"),
            invoiced=F("invoice__amount"),
        )
        .annotate(
            applied=Sum("amount"),
            settled_on=Max("allocated_on"),
            cash=Sum("amount", filter=Q(payment__kind=Payment.Kind.PAYMENT), default=ZERO),
            written_off=Count("pk", filter=Q(payment__kind=Payment.Kind.WRITE_OFF)),
        )
        .filter(
            applied=F("invoiced"),
            settled_on__gte=period.first_day,
            settled_on__gt=F("due_on"),
            cash__gt=0,
            written_off=0,
        )
        .order_by()
    )
    inner_sql, inner_params = settled.query.sql_with_params()
    rows = _fetch(
        f"SELECT currency, COUNT(*), SUM({_days_sql('settled_on', 'due_on')}) "  # noqa: S608
        f"FROM ({inner_sql}) t GROUP BY currency",
        list(inner_params),
    )
    return {currency: (count, int(days or 0)) for currency, count, days in rows}


def cash_recovered_from_past_due(period: Period, currency: str | None = None) -> dict[str, Decimal]:
    """{currency: payments applied in the period to invoices past due on the opening day}.

    Net of refunds and chargebacks (negative allocations of the same payments); credit
    notes and write-off adjustments are not cash and do not count.
    """
    rows = _per_currency(
        _in_currency(
            Allocation.objects.filter(
                allocated_on__gt=period.opening_day,
                allocated_on__lte=period.as_of,
                payment__kind=Payment.Kind.PAYMENT,
                invoice__issued_on__lte=period.opening_day,
                invoice__due_on__lt=period.opening_day,
            ),
            currency,
            "invoice__currency",
        )
        .exclude(invoice__status__in=ledger.EXCLUDED_STATUSES)
        .values(currency=F("invoice__currency"))
        .annotate(total=Sum("amount")),
        "total",
    )
    return {currency: to_decimal(total) for currency, (total,) in rows.items()}


def _covered_sql(as_of: dt.date, customer_column: str) -> tuple[str, list]:
    """SQL true when the customer in `customer_column` is covered at the end of `as_of`.

    Covered: a live dunning notice planned in the ACTIVE_DUNNING_DAYS up to `as_of`, or case
    work open at the end of that day: a task, a promise to pay, a dispute or a payment plan
    created by then and not closed before the day ended. Case-work models the schema lacks
    are skipped. Each test is an EXISTS served by the model's (customer, status) index.
    """
    # As the ORM would pass it (SQLite stores naive UTC text).
    end = connection.ops.adapt_datetimefield_value(day_start(as_of + dt.timedelta(days=1)))
    quote = connection.ops.quote_name

    def placeholders(values) -> str:
        return ", ".join(["%s"] * len(values))

    inactive = [str(status) for status in INACTIVE_NOTICE_STATUSES]
    clauses = [
        f"EXISTS (SELECT 1 FROM {quote(Notice._meta.db_table)} n "  # noqa: S608
        f"WHERE n.customer_id = {customer_column} AND n.planned_on >= %s "
        f"AND n.planned_on <= %s AND n.status NOT IN ({placeholders(inactive)}))"
    ]
    params: list = [as_of - dt.timedelta(days=ACTIVE_DUNNING_DAYS), as_of, *inactive]
    # (model, when it was opened, its open statuses, when it was closed)
    case_work = [
        (Task, "created_at", [Task.Status.OPEN], "completed_at"),
        (PromiseToPay, "created_at", [PromiseToPay.Status.OPEN], "resolved_at"),
        (Dispute, "opened_at", Dispute.ACTIVE_STATUSES, "resolved_at"),
        (PaymentPlan, "created_at", PaymentPlan.HOLDING_STATUSES, "closed_at"),
    ]
    for model, opened, statuses, closed in case_work:
        open_statuses = [str(status) for status in statuses]
        clauses.append(
            f"EXISTS (SELECT 1 FROM {quote(model._meta.db_table)} w "  # noqa: S608
            f"WHERE w.customer_id = {customer_column} AND w.{quote(opened)} < %s "
            f"AND (w.status IN ({placeholders(open_statuses)}) OR w.{quote(closed)} >= %s))"
        )
        params += [end, *open_statuses, end]
    return "(" + " OR ".join(clauses) + ")", params


def arrears_coverage(as_of: dt.date, currency: str | None = None) -> dict[str, tuple[int, int]]:
    """{currency: (customers with a past-due balance at `as_of`, of which covered)}.

    Coverage is decided once per past-due customer and currency, not once per invoice.
    """
    sql, params = ledger.balances_sql(as_of)
    covered_sql, covered_params = _covered_sql(as_of, "pd.customer_id")
    where, where_params = ("AND oi.currency = %s ", [currency]) if currency else ("", [])
    rows = _fetch(
        f"SELECT pd.currency, COUNT(*), SUM(CASE WHEN {covered_sql} THEN 1 ELSE 0 END) "  # noqa: S608
        f"FROM (SELECT DISTINCT oi.customer_id, oi.currency FROM ({sql}) oi "
        f"WHERE oi.due_on < %s {where}) pd GROUP BY pd.currency",
        [*covered_params, *params, as_of, *where_params],
    )
    return {code: (customers, int(covered or 0)) for code, customers, covered in rows}


# --- all together -----------------------------------------------------------------------


@dataclass
class CurrencyKpis:
    """Every KPI of one currency, unrounded; `as_json` rounds."""

    currency: str
    receivables: Decimal = ZERO
    past_due: Decimal = ZERO
    opening_receivables: Decimal = ZERO
    opening_past_due: Decimal = ZERO
    invoiced: Decimal = ZERO
    credit_notes: Decimal = ZERO
    dso_count_back: Decimal | None = None
    notices_sent: int = 0
    notices_automated: int = 0
    customers_noticed: int = 0
    customers_paid_after_notice: int = 0
    days_to_first_payment: int = 0
    invoices_recovered: int = 0
    recovery_days: int = 0
    past_due_customers: int = 0
    past_due_customers_covered: int = 0
    cash_recovered: Decimal = ZERO
    by_policy: list | None = None
    by_template: list | None = None
    period_days: int = 90

    @property
    def current(self) -> Decimal:
        return self.receivables - self.past_due

    @property
    def net_credit_sales(self) -> Decimal:
        return self.invoiced - self.credit_notes

    @property
    def dso_simple(self) -> Decimal | None:
        if self.net_credit_sales <= 0:
            return None
        return self.receivables * self.period_days / self.net_credit_sales

    @property
    def best_possible_dso(self) -> Decimal | None:
        if self.net_credit_sales <= 0:
            return None
        return self.current * self.period_days / self.net_credit_sales

    @property
    def add(self) -> Decimal | None:
        if self.dso_simple is None or self.best_possible_dso is None:
            return None
        return self.dso_simple - self.best_possible_dso

    @property
    def cei(self) -> Decimal | None:
        available = self.opening_receivables + self.net_credit_sales
        denominator = available - self.current
        if denominator <= 0:
            return None
        return (available - self.receivables) * HUNDRED / denominator

    def as_json(self) -> dict:
        days, pct = TENTHS, TENTHS

        def rate_rows(rows, *keys):
            return [
                {
                    **{key: row[key] for key in keys},
                    "notices_sent": row["sent"],
                    "followed_by_payment": row["followed"],
                    "rate_percent": _round(row["rate"], pct),
                }
                for row in rows or []
            ]

        return {
            "receivables": _round(self.receivables, CENTS),
            "current_receivables": _round(self.current, CENTS),
            "past_due_receivables": _round(self.past_due, CENTS),
            "opening_receivables": _round(self.opening_receivables, CENTS),
            "invoiced_sales": _round(self.invoiced, CENTS),
            "credit_notes": _round(self.credit_notes, CENTS),
            "net_credit_sales": _round(self.net_credit_sales, CENTS),
            "dso_count_back": _round(self.dso_count_back, days),
            "dso_simple": _round(self.dso_simple, days),
            "best_possible_dso": _round(self.best_possible_dso, days),
            "add": _round(self.add, days),
            "cei_percent": _round(self.cei, pct),
            "collection_rate_by_policy": rate_rows(self.by_policy, "policy"),
            "collection_rate_by_template": rate_rows(self.by_template, "template", "language"),
            "avg_days_to_first_payment_after_first_notice": _round(
                ratio(self.days_to_first_payment, self.customers_paid_after_notice), days
            ),
            "customers_noticed": self.customers_noticed,
            "customers_paid_after_notice": self.customers_paid_after_notice,
            "avg_recovery_days": _round(ratio(self.recovery_days, self.invoices_recovered), days),
            "invoices_recovered": self.invoices_recovered,
            "automated_notification_rate_percent": _round(
                percent(self.notices_automated, self.notices_sent), pct
            ),
            "notices_sent": self.notices_sent,
            "notices_sent_automatically": self.notices_automated,
            "days_in_arrears_coverage_percent": _round(
                percent(self.past_due_customers_covered, self.past_due_customers), pct
            ),
            "past_due_customers": self.past_due_customers,
            "past_due_customers_covered": self.past_due_customers_covered,
            "recovery_rate_percent": _round(
                percent(self.cash_recovered, self.opening_past_due), pct
            ),
            "opening_past_due": _round(self.opening_past_due, CENTS),
            "cash_recovered_from_opening_past_due": _round(self.cash_recovered, CENTS),
        }


def compute(period: Period, currency: str | None = None) -> dict[str, CurrencyKpis]:
    """Every KPI for every currency with any activity (or for `currency` only).

    About a dozen queries, whatever the size of the ledger and the number of currencies.
    """
    kpis: dict[str, CurrencyKpis] = {}

    def of(code: str) -> CurrencyKpis:
        if code not in kpis:
            kpis[code] = CurrencyKpis(currency=code, period_days=period.days)
        return kpis[code]

    for code, (total, past_due) in receivables_split(period.as_of, currency).items():
        of(code).receivables, of(code).past_due = total, past_due
    for code, (total, past_due) in receivables_split(period.opening_day, currency).items():
        of(code).opening_receivables, of(code).opening_past_due = total, past_due
    for code, (invoiced, credited) in net_credit_sales(
        period.first_day, period.as_of, currency
    ).items():
        of(code).invoiced, of(code).credit_notes = invoiced, credited
    monthly = monthly_net_sales(
        months_back(period.as_of, COUNT_BACK_MONTHS - 1), period.as_of, currency
    )
    for code, (sent, automated) in automated_notices(period, currency).items():
        of(code).notices_sent, of(code).notices_automated = sent, automated
    for code, (noticed, paid, days) in first_payment_after_first_notice(period, currency).items():
        item = of(code)
        item.customers_noticed, item.customers_paid_after_notice = noticed, paid
        item.days_to_first_payment = days
    for code, (count, days) in recovered_invoices(period, currency).items():
        of(code).invoices_recovered, of(code).recovery_days = count, days
    for code, (customers, covered) in arrears_coverage(period.as_of, currency).items():
        of(code).past_due_customers, of(code).past_due_customers_covered = customers, covered
    for code, total in cash_recovered_from_past_due(period, currency).items():
        of(code).cash_recovered = total
    by_policy = notice_follow_up(period, by="policy", currency=currency)
    by_template = notice_follow_up(period, by="template", currency=currency)
    for row in (*by_policy, *by_template):
        of(row["currency"])
    for code, item in kpis.items():
        item.dso_count_back = count_back_dso(item.receivables, monthly.get(code, {}), period.as_of)
        item.by_policy = [row for row in by_policy if row["currency"] == code]
        item.by_template = [row for row in by_template if row["currency"] == code]
    return dict(sorted(kpis.items()))


def as_json(period: Period, kpis: dict[str, CurrencyKpis]) -> dict:
    """The kpis command's JSON object: the period, the methods, and every KPI per currency."""
    return {
        "as_of": period.as_of.isoformat(),
        "period_days": period.days,
        "period": {
            "first_day": period.first_day.isoformat(),
            "last_day": period.as_of.isoformat(),
            "opening_day": period.opening_day.isoformat(),
        },
        "notices_counted_for_collection_rate": {
            "first_day": period.first_day.isoformat(),
            "last_day": period.last_notice_day.isoformat(),
            "follow_up_days": FOLLOW_UP_DAYS,
        },
        "methods": DSO_METHODS,
        "rounding": ROUNDING,
        "currencies": {currency: item.as_json() for currency, item in kpis.items()},
    }
