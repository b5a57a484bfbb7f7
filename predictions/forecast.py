"""The cash forecast: the cash expected in per week, its weekly snapshots and their track record.

`cash_forecast(as_of, weeks=13)` answers "how much will come in each week of the next 13",
per currency (never mixed) and converted into BASE_CURRENCY where ECB rates exist.

The weeks. Weeks start on Monday; week 1 is the week containing `as_of` (from `as_of` to
that Sunday), week 2 the next one, and so on. Anything expected before `as_of` (overdue)
is expected in week 1; anything expected after week 13 is reported as "later".

The book. Open invoices as they stood at the start of `as_of`: issued on or before it, not
cancelled, with the balance rebuilt from the allocations dated on or after `as_of` (the
ledger's rule, reporting.ledger: allocations are never edited). Promises and plans are
read as they stand now (only those recorded before the end of `as_of`); a prediction is
used only if it was made as of `as_of` or earlier (no look-ahead).

Where each amount goes, one source per invoice so nothing is counted twice:

1. An invoice in an active payment plan: its plan's unpaid installments (pending or
   missed, amount less what was paid), each on its due date, replace the invoice.
2. Otherwise, an invoice covered by an open promise to pay: the promise replaces it, its
   unpaid amount (amount less paid so far, at most the open balance of the invoices it
   covers) on the promised date. A promise whose invoices include one in an active plan
   is left out: the plan already counts that money.
3. Otherwise, the invoice's open balance on its expected pay date: the prediction's
   (cases.InvoicePrediction.expected_pay_on) when there is one, else its due date. Only
   the share that is realistically collected counts, by how overdue the invoice is on
   `as_of` (COLLECTABLE_SHARES): all of it up to 90 days past due, half from 91 to 180
   days, a fifth from 181 to 365, nothing after a year. The rest is reported as "not
   expected".

The naive forecast beside it: every open invoice's whole balance on its due date (overdue
into week 1), ignoring predictions, promises and plans.

Set-based, a fixed handful of queries whatever the size of the book: one grouped pass over
the open invoices and one over the allocations dated since `as_of` (together the balances
at the start of the day, grouped by currency, due date, expected date and share: both
forecasts at once); the same two restricted to the ids of the invoices a plan or promise
replaces (a few thousand, taken off the expected totals); one for those ids; two small
ones for the promises; one for the installments; one for the FX rates. Python only sorts
the grouped rows into weeks. At 1,000,000 invoices: about 3 to 5 seconds (bench/forecast.py).

`snapshot_forecast(as_of)` stores the forecast (ForecastSnapshot) and
`forecast_accuracy(as_of)` compares past snapshots with the cash that came in (WAPE).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import (
    Case,
    DateField,
    DecimalField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts import fx
from accounts.bulk import one_of
from accounts.models import MONEY, Allocation, Invoice, InvoiceQuerySet, Payment
from accounts.money import quantize_to_currency
from cases.models import Installment, PaymentPlan, PromiseToPay

from .models import ForecastSnapshot

WEEKS = 13
ZERO = Decimal("0.00")
# Share of an invoice's open balance expected to be collected, by days past due on as_of:
# (up to and including this many days past due, share). Beyond the last row: nothing.
COLLECTABLE_SHARES = (
    (90, Decimal("1")),
    (180, Decimal("0.5")),
    (365, Decimal("0.2")),
)
# The horizons the accuracy is reported for: weeks 1 to N of each snapshot.
HORIZONS = (1, 4, 13)
_MONEY_FIELD = DecimalField(**MONEY)


def week_start(day: dt.date) -> dt.date:
    """The Monday of `day`'s week."""
    return day - dt.timedelta(days=day.weekday())


def _money(value) -> Decimal:
    return Decimal(str(value)) if value is not None else ZERO


def _start_of_day_after(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))


# --- the forecast --------------------------------------------------------------------------


@dataclass
class CurrencyForecast:
    """One currency's expected cash per week (week 1 first), by source, and the naive one."""

    currency: str
    invoices: list[Decimal]
    promises: list[Decimal]
    installments: list[Decimal]
    naive: list[Decimal]
    later: Decimal = ZERO  # expected after the last week
    naive_later: Decimal = ZERO
    not_expected: Decimal = ZERO  # open balances discounted as unlikely to be collected

    @property
    def expected(self) -> list[Decimal]:
        return [
            a + b + c
            for a, b, c in zip(self.invoices, self.promises, self.installments, strict=True)
        ]

    @property
    def total(self) -> Decimal:
        return sum(self.expected, ZERO)

    @property
    def naive_total(self) -> Decimal:
        return sum(self.naive, ZERO)


@dataclass
class BaseCurrencyForecast:
    """The currencies that have a rate, converted and added up per week."""

    currency: str
    expected: list[Decimal]
    naive: list[Decimal]
    converted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # no ECB rate: not in the totals
    rate_dates: dict[dt.date, list[str]] = field(default_factory=dict)

    @property
    def is_complete(self) -> bool:
        return not self.missing

    @property
    def total(self) -> Decimal:
        return sum(self.expected, ZERO)

    @property
    def naive_total(self) -> Decimal:
        return sum(self.naive, ZERO)


@dataclass
class CashForecast:
    as_of: dt.date
    week_starts: list[dt.date]
    currencies: dict[str, CurrencyForecast]
    base: BaseCurrencyForecast

    @property
    def weeks(self) -> int:
        return len(self.week_starts)


def _share_case(as_of: dt.date, due_on: str = "due_on") -> Case:
    """The index into COLLECTABLE_SHARES of an invoice's days past due (len: nothing)."""
    whens = [
        When(**{f"{due_on}__gte": as_of - dt.timedelta(days=days)}, then=Value(index))
        for index, (days, _share) in enumerate(COLLECTABLE_SHARES)
    ]
    return Case(*whens, default=Value(len(COLLECTABLE_SHARES)), output_field=IntegerField())


def _balances_by(as_of: dt.date, keys, *, only=None) -> dict[tuple, Decimal]:
    """{key: the open balances at the start of `as_of` summed} over the open invoices.

    `keys(prefix)` gives the grouping expressions over the invoice's columns (reached
    through `prefix`).
    A balance at the start of `as_of` is today's balance plus the allocations dated on or
    after `as_of` (allocations are never edited; a written-off invoice counts only through
    its dated write-off adjustment), and a sum is linear, so two grouped sums do it
    without a per-invoice subquery: today's balances of the invoices open now, plus the
    later allocations grouped by their invoice's key. An invoice paid before `as_of` adds
    nothing (it has no later allocations). `only`: these invoice ids alone.
    """
    open_now = Invoice.objects.filter(issued_on__lte=as_of, open_balance__gt=0).exclude(
        status__in=(Invoice.Status.CANCELLED, Invoice.Status.WRITTEN_OFF)
    )
    later = Allocation.objects.filter(
        allocated_on__gte=as_of, invoice__issued_on__lte=as_of
    ).exclude(invoice__status=Invoice.Status.CANCELLED)
    if only is not None:
        open_now, later = (
            open_now.filter(one_of("id", only)),
            later.filter(one_of("invoice_id", only)),
        )
    totals: dict[tuple, Decimal] = defaultdict(Decimal)
    for queryset, prefix, amount in (
        (open_now, "", "open_balance"),
        (later, "invoice__", "amount"),
    ):
        annotations = keys(prefix)
        rows = (
            queryset.annotate(**annotations)
            .values_list(*annotations)
            .annotate(total=Sum(amount))
            .order_by()
        )
        for *key, total in rows.iterator(chunk_size=5000):
            totals[tuple(key)] += _money(total)
    return totals


def _open_promises(as_of: dt.date):
    return PromiseToPay.objects.filter(
        status=PromiseToPay.Status.OPEN, created_at__lt=_start_of_day_after(as_of)
    )


def _clamped(column: str, as_of: dt.date) -> Greatest:
    """`column`, or `as_of` when earlier (overdue: expected now, in week 1)."""
    return Greatest(F(column), Value(as_of), output_field=DateField())


class _Weeks:
    """Sorts day totals into the forecast's weeks."""

    def __init__(self, as_of: dt.date, weeks: int):
        self.first = week_start(as_of)
        self.weeks = weeks
        self.starts = [self.first + dt.timedelta(weeks=n) for n in range(weeks)]

    def index(self, day: dt.date) -> int | None:
        """0 for week 1 (and anything earlier), None after the last week."""
        index = max((day - self.first).days // 7, 0)
        return index if index < self.weeks else None


def cash_forecast(as_of: dt.date, weeks: int = WEEKS) -> CashForecast:
    """The cash expected in per week from `as_of` on, per currency and in the base currency
    (see the module docstring for the rules)."""
    grid = _Weeks(as_of, weeks)
    result: dict[str, CurrencyForecast] = {}

    def of(currency: str) -> CurrencyForecast:
        if currency not in result:
            result[currency] = CurrencyForecast(currency, *([ZERO] * weeks for _list in range(4)))
        return result[currency]

    def place(currency: str, day, amount: Decimal, series: str, later: str) -> None:
        forecast = of(currency)
        index = grid.index(day if isinstance(day, dt.date) else dt.date.fromisoformat(day))
        if index is None:
            setattr(forecast, later, getattr(forecast, later) + amount)
        else:
            getattr(forecast, series)[index] += amount

    # The active plans recorded by the end of the day.
    plans = PaymentPlan.objects.filter(
        status=PaymentPlan.Status.ACTIVE, created_at__lt=_start_of_day_after(as_of)
    )
    planned = PaymentPlan.invoices.through.objects.filter(paymentplan__in=plans)
    # The promises that count: open, and none of their invoices in an active plan.
    promises = _open_promises(as_of).exclude(
        Exists(planned.filter(invoice__promises=OuterRef("pk")))
    )
    # The invoices a plan or a promise replaces: a few thousand ids, whose sums are taken
    # from the totals of all invoices (a flag per invoice in the grouped pass, by EXISTS or
    # by an array, costs seconds at a million invoices).
    replaced_ids = list(
        planned.values_list("invoice_id", flat=True).union(
            PromiseToPay.invoices.through.objects.filter(promisetopay__in=promises).values_list(
                "invoice_id", flat=True
            )
        )
    )

    def invoice_keys(prefix: str) -> dict:
        """Currency, due date (naive), expected pay date, index into the shares."""
        expected_on = Case(
            When(
                Q(**{f"{prefix}prediction__as_of__lte": as_of}),
                then=F(f"{prefix}prediction__expected_pay_on"),
            ),
            default=F(f"{prefix}due_on"),
            output_field=DateField(),
        )
        return {
            "key_currency": F(f"{prefix}currency"),
            "key_due_on": _clamped(f"{prefix}due_on", as_of),
            "key_on": Greatest(expected_on, Value(as_of), output_field=DateField()),
            "key_share": _share_case(as_of, f"{prefix}due_on"),
        }

    # 1. and 2. in one pass over the invoices: the naive forecast (every open balance on
    # its due date), and the invoices neither in an active plan nor promised (all of them
    # less the replaced ones) on their expected pay date, for the share expected to be
    # collected.
    shares = [share for _days, share in COLLECTABLE_SHARES] + [Decimal(0)]
    every_invoice = _balances_by(as_of, invoice_keys)
    own = dict(every_invoice)
    for key, balance in _balances_by(as_of, invoice_keys, only=replaced_ids).items():
        own[key] = own.get(key, ZERO) - balance
    for (currency, due_on, _day, _share), balance in every_invoice.items():
        place(currency, due_on, balance, "naive", "naive_later")
    for (currency, _due_on, day, share_index), balance in own.items():
        expected = balance * shares[share_index]
        of(currency).not_expected += balance - expected
        if expected:
            place(currency, day, expected, "invoices", "later")

    # 3. Open promises not superseded by a plan, at most what their invoices still owe
    #    (two small queries: the promises, and what their invoices owe).
    owed = dict(
        PromiseToPay.invoices.through.objects.filter(promisetopay__in=promises)
        .values_list("promisetopay_id")
        .annotate(
            total=Sum(
                "invoice__open_balance",
                filter=Q(invoice__status__in=InvoiceQuerySet.OPEN_STATUSES),
                default=ZERO,
            )
        )
        .order_by()
    )
    promise_rows = (
        promises.annotate(unpaid=F("amount") - F("paid_amount"), on=_clamped("promised_on", as_of))
        .filter(unpaid__gt=0)
        .values_list("pk", "currency", "on", "unpaid")
    )
    for promise_id, currency, day, unpaid in promise_rows.iterator(chunk_size=5000):
        # A promise for no invoice in particular counts in full.
        amount = min(unpaid, _money(owed[promise_id])) if promise_id in owed else unpaid
        if amount > 0:
            place(currency, day, amount, "promises", "later")

    # 4. The unpaid installments of active plans, on their due dates.
    installments = (
        Installment.objects.filter(
            plan__in=plans,
            status__in=(Installment.Status.PENDING, Installment.Status.MISSED),
        )
        .annotate(unpaid=F("amount") - F("paid_amount"), on=_clamped("due_on", as_of))
        .filter(unpaid__gt=0)
        .values_list("plan__currency", "on")
        .annotate(total=Sum("unpaid"))
        .order_by()
    )
    for currency, day, total in installments.iterator():
        place(currency, day, _money(total), "installments", "later")

    for currency, forecast in result.items():
        for name in ("invoices", "promises", "installments", "naive"):
            setattr(
                forecast,
                name,
                [quantize_to_currency(amount, currency) for amount in getattr(forecast, name)],
            )
        for name in ("later", "naive_later", "not_expected"):
            setattr(forecast, name, quantize_to_currency(getattr(forecast, name), currency))
    currencies = dict(sorted(result.items()))
    return CashForecast(
        as_of=as_of,
        week_starts=grid.starts,
        currencies=currencies,
        base=to_base_currency(currencies, as_of=as_of, weeks=weeks),
    )


def to_base_currency(
    currencies: dict[str, CurrencyForecast],
    *,
    as_of: dt.date,
    weeks: int = WEEKS,
    base_currency: str | None = None,
) -> BaseCurrencyForecast:
    """Each currency's weeks converted at the ECB rates of `as_of` (accounts.fx) and added
    up; a currency without a rate is listed in `missing` and left out, never guessed."""
    base = (base_currency or fx.base_currency()).upper()
    table = fx.RateTable(on=as_of).preload([base, *currencies])
    result = BaseCurrencyForecast(base, [ZERO] * weeks, [ZERO] * weeks)
    for currency, forecast in currencies.items():
        expected = [table.convert(amount, currency, base) for amount in forecast.expected]
        naive = [table.convert(amount, currency, base) for amount in forecast.naive]
        if any(conversion.is_missing for conversion in expected + naive):
            result.missing.append(currency)
            continue
        result.converted.append(currency)
        result.expected = [a + c.amount for a, c in zip(result.expected, expected, strict=True)]
        result.naive = [a + c.amount for a, c in zip(result.naive, naive, strict=True)]
    result.rate_dates = table.rate_dates(set(result.converted) - {base, fx.EURO})
    return result


# --- the actuals ---------------------------------------------------------------------------


def cash_received_per_day(first_day: dt.date, last_day: dt.date) -> dict[str, dict]:
    """{currency: {day: amount}}: money received from `first_day` to `last_day` inclusive.

    Payments only (Payment.Kind.PAYMENT, their full amount, allocated or not): credit
    notes and write-off adjustments are not cash. One aggregate query."""
    rows = (
        Payment.objects.filter(
            kind=Payment.Kind.PAYMENT, received_on__gte=first_day, received_on__lte=last_day
        )
        .values_list("currency", "received_on")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    result: dict[str, dict] = defaultdict(dict)
    for currency, day, total in rows:
        result[currency][day if isinstance(day, dt.date) else dt.date.fromisoformat(day)] = _money(
            total
        )
    return dict(result)


@dataclass
class WeeklyActuals:
    """Cash received per week (Monday to Sunday), per currency, oldest week first."""

    week_starts: list[dt.date]
    currencies: dict[str, list[Decimal]]


def cash_received(as_of: dt.date, weeks: int = 8) -> WeeklyActuals:
    """The `weeks` full weeks before `as_of`'s week, per currency."""
    first = week_start(as_of) - dt.timedelta(weeks=weeks)
    starts = [first + dt.timedelta(weeks=n) for n in range(weeks)]
    per_day = cash_received_per_day(first, week_start(as_of) - dt.timedelta(days=1))
    currencies = {}
    for currency, days in sorted(per_day.items()):
        amounts = [ZERO] * weeks
        for day, amount in days.items():
            amounts[(day - first).days // 7] += amount
        currencies[currency] = amounts
    return WeeklyActuals(starts, currencies)


# --- snapshots ------------------------------------------------------------------------------


def snapshot_forecast(as_of: dt.date, weeks: int = WEEKS) -> int:
    """Store the forecast made on `as_of` (both the expected and the naive amounts, every
    week of every currency, zeros included); returns the number of rows.

    Idempotent: in one transaction, (1) the rows made on `as_of` are deleted and (2) the new
    ones inserted, so running it again the same day replaces them. Two runs at once: the
    second insert waits on the unique constraint (made_on, week_start, currency) and fails
    when the first commits (IntegrityError; the task retries it and replaces the rows)."""
    forecast = cash_forecast(as_of, weeks)
    rows = [
        ForecastSnapshot(
            made_on=as_of,
            week_start=start,
            week=index + 1,
            currency=currency,
            expected_amount=expected,
            naive_amount=naive,
        )
        for currency, item in forecast.currencies.items()
        for index, (start, expected, naive) in enumerate(
            zip(forecast.week_starts, item.expected, item.naive, strict=True)
        )
    ]
    with transaction.atomic():
        ForecastSnapshot.objects.filter(made_on=as_of).delete()
        ForecastSnapshot.objects.bulk_create(rows)
    return len(rows)


# --- accuracy -------------------------------------------------------------------------------


@dataclass
class Accuracy:
    """How far the forecasts of weeks 1 to `horizon` were from the cash that came in.

    WAPE = Σ |forecast - actual| / Σ actual over every (snapshot, week) pair compared;
    None when no cash came in at all (nothing to divide by)."""

    currency: str
    horizon: int
    weeks_compared: int = 0
    actual: Decimal = ZERO
    expected: Decimal = ZERO
    naive: Decimal = ZERO
    expected_error: Decimal = ZERO
    naive_error: Decimal = ZERO

    @property
    def wape(self) -> Decimal | None:
        return self.expected_error / self.actual if self.actual > 0 else None

    @property
    def naive_wape(self) -> Decimal | None:
        return self.naive_error / self.actual if self.actual > 0 else None

    @property
    def wape_percent(self) -> Decimal | None:
        return None if self.wape is None else (self.wape * 100).quantize(Decimal("0.1"))

    @property
    def naive_wape_percent(self) -> Decimal | None:
        return None if self.naive_wape is None else (self.naive_wape * 100).quantize(Decimal("0.1"))

    @property
    def beats_naive(self) -> bool | None:
        if self.wape is None:
            return None
        return self.expected_error < self.naive_error


def forecast_accuracy(
    as_of: dt.date, *, since: dt.date | None = None, horizons=HORIZONS
) -> dict[str, list[Accuracy]]:
    """{currency: [Accuracy per horizon]} for the snapshots made since `since` (all by
    default), over their weeks that ended before `as_of`.

    A snapshot's week is compared with the cash received (cash_received_per_day) from the
    later of the week's Monday and the day the snapshot was made, to its Sunday. A
    currency with cash but no forecast row in a snapshot counts as forecast zero. Two
    queries: the snapshot rows and the cash per day."""
    last_week = week_start(as_of) - dt.timedelta(weeks=1)  # the last week fully passed
    longest = max(horizons)
    snapshots = ForecastSnapshot.objects.filter(week_start__lte=last_week, week__lte=longest)
    if since is not None:
        snapshots = snapshots.filter(made_on__gte=since)
    forecasts: dict[tuple, tuple[Decimal, Decimal]] = {}
    weeks_of: dict[dt.date, set[tuple[int, dt.date]]] = defaultdict(set)
    currencies = set()
    for made_on, start, week, currency, expected, naive in snapshots.values_list(
        "made_on", "week_start", "week", "currency", "expected_amount", "naive_amount"
    ):
        forecasts[made_on, start, currency] = (expected, naive)
        weeks_of[made_on].add((week, start))
        currencies.add(currency)
    if not weeks_of:
        return {}
    per_day = cash_received_per_day(min(weeks_of), last_week + dt.timedelta(days=6))
    currencies |= set(per_day)
    result: dict[str, list[Accuracy]] = {}
    for currency in sorted(currencies):
        rows = [Accuracy(currency, horizon) for horizon in horizons]
        days = per_day.get(currency, {})
        for made_on, weeks in weeks_of.items():
            for week, start in weeks:
                first = max(start, made_on)
                sunday = start + dt.timedelta(days=6)
                actual = sum(
                    (
                        days.get(first + dt.timedelta(days=n), ZERO)
                        for n in range((sunday - first).days + 1)
                    ),
                    ZERO,
                )
                expected, naive = forecasts.get((made_on, start, currency), (ZERO, ZERO))
                for row in rows:
                    if week <= row.horizon:
                        row.weeks_compared += 1
                        row.actual += actual
                        row.expected += expected
                        row.naive += naive
                        row.expected_error += abs(expected - actual)
                        row.naive_error += abs(naive - actual)
        result[currency] = rows
    return result
