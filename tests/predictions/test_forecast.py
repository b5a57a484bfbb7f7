"""The cash forecast: where each open amount lands, no double counting, currencies never
mixed, the base-currency totals, the snapshots and their accuracy (WAPE)."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from accounts import services
from accounts.models import FxRate, Invoice, Payment
from cases.models import Installment, PaymentPlan, PromiseToPay
from predictions import forecast, tasks
from predictions.forecast import cash_forecast, forecast_accuracy, snapshot_forecast
from predictions.models import ForecastSnapshot
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    PaymentFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 11, 25)  # a Wednesday: week 1 is Monday 23 November to Sunday 29
WEEK = {n: dt.date(2026, 11, 23) + dt.timedelta(weeks=n - 1) for n in range(1, 14)}


def weeks(**amounts) -> list[Decimal]:
    """weeks(w1="200", w3="300") -> the 13 weekly amounts, zeros elsewhere."""
    result = [D("0.00")] * 13
    for key, amount in amounts.items():
        result[int(key[1:]) - 1] = D(amount)
    return result


def invoice(amount, due_on, *, currency="EUR", customer=None, **fields):
    return InvoiceFactory(
        customer=customer or CustomerFactory(),
        amount=D(amount),
        currency=currency,
        due_on=due_on,
        issued_on=min(due_on, AS_OF) - dt.timedelta(days=30),
        **fields,
    )


def promise(invoices, amount, promised_on, *, status=PromiseToPay.Status.OPEN, paid="0.00"):
    made = PromiseToPay.objects.create(
        customer=invoices[0].customer,
        amount=D(amount),
        currency=invoices[0].currency,
        promised_on=promised_on,
        holds_until=promised_on + dt.timedelta(days=3),
        status=status,
        paid_amount=D(paid),
    )
    made.invoices.set(invoices)
    return made


def plan(invoices, installments, *, status=PaymentPlan.Status.ACTIVE):
    """installments: (due_on, amount, paid, status) per installment."""
    made = PaymentPlan.objects.create(
        customer=invoices[0].customer,
        currency=invoices[0].currency,
        total_amount=sum((D(amount) for _due, amount, *_rest in installments), D(0)),
        status=status,
    )
    made.invoices.set(invoices)
    for sequence, (due_on, amount, paid, state) in enumerate(installments, start=1):
        Installment.objects.create(
            plan=made, sequence=sequence, due_on=due_on, amount=D(amount), paid_amount=D(paid),
            status=state,
        )  # fmt: skip
    return made


def test_weeks_start_on_monday_and_week_one_contains_the_day():
    result = cash_forecast(AS_OF)
    assert result.week_starts == [WEEK[n] for n in range(1, 14)]
    assert result.week_starts[0].weekday() == 0
    assert cash_forecast(WEEK[1]).week_starts[0] == WEEK[1]
    assert cash_forecast(dt.date(2026, 11, 29), weeks=4).week_starts[0] == WEEK[1]  # a Sunday


def test_open_balances_land_on_their_expected_pay_date_and_overdue_goes_into_week_one():
    invoice("100.00", dt.date(2026, 12, 2))  # due in week 2, no prediction: its due date
    invoice("200.00", dt.date(2026, 11, 20))  # 5 days overdue: week 1
    predicted = invoice("300.00", dt.date(2026, 11, 26))  # due in week 1, predicted week 3
    InvoicePredictionFactory(invoice=predicted, expected_pay_on=dt.date(2026, 12, 10), as_of=AS_OF)
    overdue_prediction = invoice("40.00", dt.date(2026, 12, 1))
    InvoicePredictionFactory(
        invoice=overdue_prediction, expected_pay_on=dt.date(2026, 11, 2), as_of=AS_OF
    )  # expected before as_of: week 1
    # A prediction made after the forecast's day is not known then: the due date counts.
    later_prediction = invoice("60.00", dt.date(2026, 12, 3))
    InvoicePredictionFactory(
        invoice=later_prediction,
        expected_pay_on=dt.date(2027, 1, 20),
        as_of=AS_OF + dt.timedelta(days=1),
    )
    partly_paid = invoice("500.00", dt.date(2026, 12, 16), open_balance=D("125.00"))
    partly_paid.status = Invoice.Status.PARTIALLY_PAID
    partly_paid.save()
    invoice("900.00", dt.date(2027, 3, 1))  # after week 13: later
    invoice("70.00", dt.date(2026, 12, 2), currency="USD")
    # Not open: paid, cancelled, written off, or issued after the day.
    invoice("1.00", dt.date(2026, 12, 2), open_balance=D("0"), status=Invoice.Status.PAID)
    invoice("2.00", dt.date(2026, 12, 2), status=Invoice.Status.CANCELLED)
    invoice("3.00", dt.date(2026, 12, 2), status=Invoice.Status.WRITTEN_OFF)
    InvoiceFactory(
        amount=D("4.00"), currency="EUR", issued_on=AS_OF + dt.timedelta(days=1),
        due_on=dt.date(2026, 12, 2),
    )  # fmt: skip

    result = cash_forecast(AS_OF)

    eur = result.currencies["EUR"]
    assert eur.expected == weeks(w1="240.00", w2="160.00", w3="300.00", w4="125.00")
    assert eur.invoices == eur.expected
    assert eur.later == D("900.00")
    # Naive: everything on its due date, overdue into week 1.
    assert eur.naive == weeks(w1="500.00", w2="200.00", w4="125.00")
    assert eur.naive_later == D("900.00")
    # Never mixed: the dollars have their own rows.
    assert sorted(result.currencies) == ["EUR", "USD"]
    assert result.currencies["USD"].expected == weeks(w2="70.00")


def test_long_overdue_invoices_are_discounted_by_how_overdue_they_are():
    invoice("1000.00", AS_OF - dt.timedelta(days=90))  # all of it
    invoice("1000.00", AS_OF - dt.timedelta(days=91))  # half
    invoice("1000.00", AS_OF - dt.timedelta(days=200))  # a fifth
    invoice("1000.00", AS_OF - dt.timedelta(days=366))  # nothing
    eur = cash_forecast(AS_OF).currencies["EUR"]
    assert eur.expected == weeks(w1="1700.00")
    assert eur.not_expected == D("2300.00")
    assert eur.naive == weeks(w1="4000.00")  # the naive forecast expects everything


def test_promises_and_plans_replace_the_invoices_they_cover_without_double_counting():
    customer = CustomerFactory()
    promised = invoice("500.00", dt.date(2026, 11, 1), customer=customer)
    promise([promised], "300.00", dt.date(2026, 12, 3))  # 300 in week 2, not the 500
    # A promise partly paid counts what is left; one promised late already: week 1.
    partly = invoice("400.00", dt.date(2026, 11, 10), customer=customer)
    promise([partly], "400.00", dt.date(2026, 11, 24), paid="150.00")
    # A promise larger than what its invoices still owe counts what they owe.
    small = invoice("80.00", dt.date(2026, 12, 20), customer=customer)
    promise([small], "900.00", dt.date(2026, 12, 9))
    # A plan replaces its invoice: its unpaid installments on their due dates (a missed
    # one in week 1, a paid one not at all).
    planned = invoice("1000.00", dt.date(2026, 10, 1), customer=customer)
    plan(
        [planned],
        [
            (dt.date(2026, 10, 20), "200.00", "200.00", Installment.Status.PAID),
            (dt.date(2026, 11, 20), "300.00", "100.00", Installment.Status.MISSED),
            (dt.date(2026, 12, 15), "250.00", "0.00", Installment.Status.PENDING),
            (dt.date(2027, 1, 15), "250.00", "0.00", Installment.Status.PENDING),
        ],
    )
    # A promise on an invoice in an active plan: the plan already counts that money.
    promise([planned], "1000.00", dt.date(2026, 12, 1))
    # What does not replace anything: a broken promise, a proposed plan.
    broken = invoice("60.00", dt.date(2026, 12, 2), customer=customer)
    promise([broken], "60.00", dt.date(2026, 11, 20), status=PromiseToPay.Status.BROKEN)
    proposed = invoice("90.00", dt.date(2026, 12, 2), customer=customer)
    plan(
        [proposed],
        [(dt.date(2026, 12, 30), "90.00", "0.00", Installment.Status.PENDING)],
        status=PaymentPlan.Status.PROPOSED,
    )

    eur = cash_forecast(AS_OF).currencies["EUR"]

    assert eur.promises == weeks(w1="250.00", w2="300.00", w3="80.00")
    assert eur.installments == weeks(w1="200.00", w4="250.00", w8="250.00")
    assert eur.invoices == weeks(w2="150.00")  # only the broken-promise and proposed-plan ones
    assert eur.total == D("1480.00")
    # The naive forecast knows nothing of promises and plans.
    assert eur.naive == weeks(w1="1900.00", w2="150.00", w4="80.00")


def test_a_balance_is_read_as_it_stood_at_the_start_of_the_day():
    day = dt.date(2026, 11, 18)  # a Wednesday before the suite's today

    def paid(amount, allocated_on):
        owed = invoice(amount, dt.date(2026, 11, 10))
        payment = services.record_payment(
            amount=amount, currency="EUR", received_on=day, customer=owed.customer
        )
        services.allocate(payment=payment, invoice=owed, amount=amount, on=allocated_on)
        return owed

    paid_later = paid("100.00", day + dt.timedelta(days=2))  # still owed on the day
    paid("30.00", day - dt.timedelta(days=1))  # paid before the day: gone
    paid("7.00", day)  # paid during the day: expected that day, in week 1
    assert Invoice.objects.get(pk=paid_later.pk).open_balance == 0
    eur = cash_forecast(day).currencies["EUR"]
    assert eur.expected == weeks(w1="107.00")
    assert eur.naive == weeks(w1="107.00")
    assert "EUR" not in cash_forecast(day + dt.timedelta(days=3)).currencies


def test_the_base_currency_total_converts_what_it_can_and_names_the_rest(settings):
    settings.BASE_CURRENCY = "EUR"
    FxRate.objects.create(currency="USD", rate=D("1.1000"), rate_on=AS_OF - dt.timedelta(days=2))
    FxRate.objects.create(currency="USD", rate=D("9.9"), rate_on=AS_OF + dt.timedelta(days=1))
    invoice("100.00", dt.date(2026, 12, 2))
    invoice("110.00", dt.date(2026, 12, 2), currency="USD")
    invoice("55.00", dt.date(2026, 11, 1), currency="USD")  # overdue: week 1
    invoice("999.00", dt.date(2026, 12, 2), currency="GBP")  # no rate

    base = cash_forecast(AS_OF).base

    assert base.currency == "EUR"
    assert base.converted == ["EUR", "USD"]
    assert base.missing == ["GBP"]
    assert not base.is_complete
    assert base.expected == weeks(w1="50.00", w2="200.00")  # 110 USD / 1.1 = 100 EUR
    assert base.naive == weeks(w1="50.00", w2="200.00")
    assert base.rate_dates == {AS_OF - dt.timedelta(days=2): ["USD"]}


def test_another_base_currency_goes_through_the_euro(settings):
    settings.BASE_CURRENCY = "USD"
    FxRate.objects.create(currency="USD", rate=D("1.2500"), rate_on=AS_OF)
    invoice("100.00", dt.date(2026, 12, 2))
    invoice("10.00", dt.date(2026, 12, 2), currency="USD")
    base = cash_forecast(AS_OF).base
    assert (base.currency, base.missing) == ("USD", [])
    assert base.expected == weeks(w2="135.00")


# --- actuals ---------------------------------------------------------------------------------


def test_cash_received_counts_payments_not_credit_notes_or_write_offs():
    for amount, currency, kind, day in [
        ("100.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 11, 16)),  # last week
        ("25.50", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 11, 22)),  # its Sunday
        ("40.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 11, 9)),  # the week before
        ("70.00", "USD", Payment.Kind.PAYMENT, dt.date(2026, 11, 17)),
        ("500.00", "EUR", Payment.Kind.CREDIT_NOTE, dt.date(2026, 11, 17)),
        ("600.00", "EUR", Payment.Kind.WRITE_OFF, dt.date(2026, 11, 17)),
        ("800.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 11, 23)),  # this week: not past
    ]:
        PaymentFactory(amount=D(amount), currency=currency, kind=kind, received_on=day)
    actuals = forecast.cash_received(AS_OF, weeks=3)
    assert actuals.week_starts == [
        dt.date(2026, 11, 2),
        dt.date(2026, 11, 9),
        dt.date(2026, 11, 16),
    ]
    assert actuals.currencies == {
        "EUR": [D("0"), D("40.00"), D("125.50")],
        "USD": [D("0"), D("0"), D("70.00")],
    }


# --- snapshots -------------------------------------------------------------------------------


def test_a_snapshot_stores_every_week_and_rerunning_the_same_day_replaces_it():
    invoice("100.00", dt.date(2026, 12, 2))
    invoice("70.00", dt.date(2026, 11, 1), currency="USD")
    assert snapshot_forecast(AS_OF) == 26  # 13 weeks x 2 currencies
    assert snapshot_forecast(AS_OF) == 26
    assert ForecastSnapshot.objects.count() == 26
    row = ForecastSnapshot.objects.get(made_on=AS_OF, currency="EUR", week=2)
    assert (row.week_start, row.expected_amount, row.naive_amount) == (
        WEEK[2],
        D("100.00"),
        D("100.00"),
    )
    # The book changes and the same day runs again: replaced, not added to.
    invoice("50.00", dt.date(2026, 12, 3))
    Invoice.objects.filter(currency="USD").update(status=Invoice.Status.CANCELLED)
    assert snapshot_forecast(AS_OF) == 13
    assert ForecastSnapshot.objects.filter(made_on=AS_OF).count() == 13
    assert ForecastSnapshot.objects.get(currency="EUR", week=2).expected_amount == D("150.00")
    # Another day's snapshot stays.
    snapshot_forecast(AS_OF + dt.timedelta(days=7))
    assert ForecastSnapshot.objects.filter(made_on=AS_OF).count() == 13
    assert ForecastSnapshot.objects.count() == 26


def test_the_command_and_the_task_store_the_snapshot():
    invoice("100.00", dt.date(2026, 12, 2))
    out = io.StringIO()
    call_command("snapshot_forecast", "--as-of", "2026-11-25", stdout=out)
    assert "2026-11-25" in out.getvalue() and "13 rows" in out.getvalue()
    assert tasks.snapshot_cash_forecast("2026-11-25") == 13
    assert tasks.snapshot_cash_forecast() == 13  # today, 2026-11-23 in the suite
    assert set(ForecastSnapshot.objects.values_list("made_on", flat=True)) == {
        AS_OF,
        dt.date(2026, 11, 23),
    }


# --- accuracy --------------------------------------------------------------------------------


def snapshot_rows(made_on, currency, rows):
    """rows: {week: (expected, naive)}; the other weeks of the 13 are zero."""
    first = forecast.week_start(made_on)
    for week in range(1, 14):
        expected, naive = rows.get(week, ("0", "0"))
        ForecastSnapshot.objects.create(
            made_on=made_on,
            week_start=first + dt.timedelta(weeks=week - 1),
            week=week,
            currency=currency,
            expected_amount=D(expected),
            naive_amount=D(naive),
        )


def test_wape_by_hand_for_the_forecast_and_the_naive_one_per_horizon():
    # Made Monday 2 November; on 25 November the weeks of 2, 9 and 16 November have passed.
    snapshot_rows(dt.date(2026, 11, 2), "EUR", {1: ("100", "150"), 2: ("200", "100")})
    # Made Wednesday 11 November: its week 1 is compared with the cash from that day on.
    snapshot_rows(dt.date(2026, 11, 11), "EUR", {1: ("30", "0"), 2: ("40", "60")})
    for amount, kind, day in [
        ("120", Payment.Kind.PAYMENT, dt.date(2026, 11, 3)),
        ("180", Payment.Kind.PAYMENT, dt.date(2026, 11, 10)),  # before the 2nd snapshot
        ("50", Payment.Kind.PAYMENT, dt.date(2026, 11, 17)),
        ("999", Payment.Kind.CREDIT_NOTE, dt.date(2026, 11, 4)),  # not cash
        ("500", Payment.Kind.PAYMENT, dt.date(2026, 11, 24)),  # week not over yet
    ]:
        PaymentFactory(amount=D(amount), currency="EUR", kind=kind, received_on=day)
    PaymentFactory(amount=D("10"), currency="USD", received_on=dt.date(2026, 11, 18))

    result = forecast_accuracy(AS_OF)

    week1, weeks4, weeks13 = result["EUR"]
    assert (week1.horizon, weeks4.horizon, weeks13.horizon) == (1, 4, 13)
    # Week 1: |100-120| + |30-0| over 120 + 0; naive |150-120| + |0-0|.
    assert (week1.weeks_compared, week1.actual) == (2, D("120"))
    assert week1.wape == D("50") / D("120")
    assert week1.naive_wape == D("30") / D("120")
    # Weeks 1-4: snapshot 1 weeks 1-3 (120, 180, 50), snapshot 2 weeks 1-2 (0, 50).
    # Errors: 20 + 20 + 50 + 30 + 10 = 130; naive 30 + 80 + 50 + 0 + 10 = 170; actual 400.
    assert (weeks4.weeks_compared, weeks4.actual) == (5, D("400"))
    assert weeks4.wape == D("130") / D("400")
    assert weeks4.naive_wape == D("170") / D("400")
    assert weeks4.wape_percent == D("32.5")
    assert weeks4.naive_wape_percent == D("42.5")
    assert weeks4.beats_naive is True
    assert (weeks13.wape, weeks13.weeks_compared) == (weeks4.wape, 5)  # no later week passed
    # Dollars came in with no forecast: forecast zero, every cent an error.
    assert result["USD"][2].wape == D("1")
    # Only snapshots since a day.
    assert forecast_accuracy(AS_OF, since=dt.date(2026, 11, 5))["EUR"][0].actual == D("0")
    assert forecast_accuracy(dt.date(2026, 11, 2)) == {}  # nothing has passed yet


def test_a_promise_left_out_for_a_plan_gives_its_other_invoices_back_their_own_date():
    customer = CustomerFactory()
    planned = invoice("100.00", dt.date(2026, 11, 1), customer=customer)
    other = invoice("40.00", dt.date(2026, 12, 9), customer=customer)  # week 3
    plan([planned], [(dt.date(2026, 12, 1), "100.00", "0.00", Installment.Status.PENDING)])
    promise([planned, other], "140.00", dt.date(2026, 12, 2))
    eur = cash_forecast(AS_OF).currencies["EUR"]
    assert eur.promises == weeks()
    assert eur.installments == weeks(w2="100.00")
    assert eur.invoices == weeks(w3="40.00")


def test_a_promise_whose_invoices_are_paid_expects_nothing_more():
    paid = invoice("100.00", dt.date(2026, 11, 10), open_balance=D("0"), status=Invoice.Status.PAID)
    promise([paid], "100.00", dt.date(2026, 12, 2))  # not yet marked kept by the night
    no_invoice = PromiseToPay.objects.create(
        customer=paid.customer, amount=D("25.00"), currency="EUR",
        promised_on=dt.date(2026, 12, 2), holds_until=dt.date(2026, 12, 5),
    )  # fmt: skip
    assert not no_invoice.invoices.exists()
    assert cash_forecast(AS_OF).currencies["EUR"].promises == weeks(w2="25.00")
