"""Collections KPIs against a portfolio whose every figure is worked out by hand below."""

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from accounts import services
from accounts.models import Invoice, Payment
from cases.models import Dispute, Task
from dunning.models import Notice, NoticeInvoice, Policy, Step, Template
from reporting import kpis
from reporting.ledger import receivables_as_of
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 6, 30)
PERIOD = kpis.Period(as_of=AS_OF, days=30)  # 1-30 June; opening balances at the end of 31 May


# --- builders (shared with test_dashboard) --------------------------------------------------


def on(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def pay(invoice, amount, day, *, kind=Payment.Kind.PAYMENT):
    payment = services.record_payment(
        amount=amount,
        currency=invoice.currency,
        received_on=day,
        customer=invoice.customer,
        kind=kind,
    )
    services.allocate(payment=payment, invoice=invoice, amount=amount, on=day)
    return payment


def make_step(policy_name: str, template_name: str, offset: int) -> Step:
    policy, _ = Policy.objects.get_or_create(name=policy_name)
    template, _ = Template.objects.get_or_create(
        name=template_name, language="en", defaults={"channel": "email", "body_text": "Pay."}
    )
    step, _ = Step.objects.get_or_create(
        policy=policy,
        offset_days=offset,
        channel="email",
        defaults={"name": f"{policy_name} day {offset}", "template": template, "tone": "reminder"},
    )
    return step


def notice(customer, step, invoices, *, sent_on=None, planned_on=None, status=None, by=None):
    """A notice as the planner and sender leave it: sent (with its time) unless told."""
    sent = sent_on is not None
    made = Notice.objects.create(
        customer=customer,
        step=step,
        channel=step.channel,
        status=status or (Notice.Status.SENT if sent else Notice.Status.PLANNED),
        planned_on=planned_on or sent_on,
        sent_at=on(sent_on) if sent else None,
        decided_by=by,
    )
    for invoice in invoices:
        NoticeInvoice.objects.create(notice=made, invoice=invoice, step=step)
    return made


# --- the hand-computed portfolio ---------------------------------------------------------------


@pytest.fixture
def portfolio():
    """Two currencies, a credit note, a cancelled invoice, notices and case work.

    EUR invoices (amount, issued, due -> what happens):
      E1 A 1000 Apr-01 May-01: paid 400 on May-20 and 600 on Jun-10
      E2 A 2000 Jun-05 Jul-05: credit note 500 on Jun-15
      E3 B  800 May-10 Jun-09: unpaid          E4 B 300 Mar-01 Mar-31: unpaid
      E5 A  999 Jun-02 Jul-02: cancelled       E7 E 100 Jan-01 Jan-31: unpaid
      E8 F  200 Feb-01 Mar-03: unpaid
    USD invoices:
      U1 C 500 May-01 May-31: paid on Jun-28   U2 C 300 Jun-10 Jun-20: unpaid
      U3 C 200 Jun-25 Jul-25: unpaid
    B also pays USD 50 on Jun-13 (no USD invoice: unapplied), which must not count as a
    payment after B's EUR notice.
    """
    manager = UserFactory(username="boss", role="Collections manager")
    a, b, c, e, f = (CustomerFactory(name=name) for name in "ABCEF")

    def invoice(customer, number, amount, issued, due, currency="EUR", **extra):
        return InvoiceFactory(
            customer=customer,
            number=number,
            amount=D(amount),
            issued_on=issued,
            due_on=due,
            currency=currency,
            **extra,
        )

    d = dt.date
    e1 = invoice(a, "E1", "1000", d(2026, 4, 1), d(2026, 5, 1))
    e2 = invoice(a, "E2", "2000", d(2026, 6, 5), d(2026, 7, 5))
    e3 = invoice(b, "E3", "800", d(2026, 5, 10), d(2026, 6, 9))
    e4 = invoice(b, "E4", "300", d(2026, 3, 1), d(2026, 3, 31))
    invoice(a, "E5", "999", d(2026, 6, 2), d(2026, 7, 2), status=Invoice.Status.CANCELLED)
    e7 = invoice(e, "E7", "100", d(2026, 1, 1), d(2026, 1, 31))
    invoice(f, "E8", "200", d(2026, 2, 1), d(2026, 3, 3))
    u1 = invoice(c, "U1", "500", d(2026, 5, 1), d(2026, 5, 31), "USD")
    invoice(c, "U2", "300", d(2026, 6, 10), d(2026, 6, 20), "USD")
    invoice(c, "U3", "200", d(2026, 6, 25), d(2026, 7, 25), "USD")

    pay(e1, "400.00", d(2026, 5, 20))
    pay(e1, "600.00", d(2026, 6, 10))
    pay(e2, "500.00", d(2026, 6, 15), kind=Payment.Kind.CREDIT_NOTE)
    pay(u1, "500.00", d(2026, 6, 28))
    services.record_payment(amount="50.00", currency="USD", received_on=d(2026, 6, 13), customer=b)

    gentle = make_step("Gentle", "friendly", 7)
    firm = make_step("Firm", "firm", 14)
    notice(a, firm, [e1], sent_on=d(2026, 5, 25))  # N0: before the period
    notice(a, gentle, [e1], sent_on=d(2026, 6, 5))  # N1: A pays EUR on Jun-10
    notice(b, firm, [e3, e4], sent_on=d(2026, 6, 12), by=manager)  # N2: approved by a person
    notice(b, gentle, [e3], sent_on=d(2026, 6, 25))  # N3: too late for the 14-day window
    notice(c, gentle, [u1], sent_on=d(2026, 6, 14))  # N4: C pays on Jun-28, day 14
    notice(a, gentle, [e2], sent_on=d(2026, 6, 16))  # N5: no EUR payment after it
    # E's dunning was cancelled, its task closed before the as-of day, its dispute opened
    # after it: E is past due and not covered. F has a task open on the as-of day.
    notice(e, gentle, [e7], planned_on=d(2026, 6, 20), status=Notice.Status.CANCELLED)
    closed = Task.objects.create(
        customer=e,
        kind=Task.Kind.CALL,
        title="Call E",
        due_at=on(d(2026, 6, 10)),
        status=Task.Status.DONE,
        completed_at=on(d(2026, 6, 15)),
    )
    Task.objects.filter(pk=closed.pk).update(created_at=on(d(2026, 6, 1)))
    dispute = Dispute.objects.create(customer=e, reason=Dispute.Reason.PRICING)
    Dispute.objects.filter(pk=dispute.pk).update(opened_at=on(d(2026, 7, 5)))
    open_task = Task.objects.create(
        customer=f, kind=Task.Kind.CALL, title="Call F", due_at=on(d(2026, 7, 1))
    )
    Task.objects.filter(pk=open_task.pk).update(created_at=on(d(2026, 6, 20)))


# --- the ledger KPIs --------------------------------------------------------------------------


def test_receivables_sales_dso_add_and_cei_per_currency(portfolio):
    result = kpis.compute(PERIOD)
    eur, usd = result["EUR"], result["USD"]

    # EUR at the end of Jun-30: E2 2000-500 + E3 800 + E4 300 + E7 100 + E8 200 = 2900,
    # of which past due (due before Jun-30): 800 + 300 + 100 + 200 = 1400; current 1500.
    assert (eur.receivables, eur.past_due, eur.current) == (D("2900"), D("1400"), D("1500"))
    # Opening (end of May-31): E1 1000-400 + E3 800 + E4 300 + E7 100 + E8 200 = 2000.
    assert eur.opening_receivables == D("2000")
    # Issued in June: E2 2000 (E5 cancelled); credit notes 500: net credit sales 1500.
    assert (eur.invoiced, eur.credit_notes, eur.net_credit_sales) == (
        D("2000"),
        D("500"),
        D("1500"),
    )
    assert eur.dso_simple == D("58")  # 2900 / 1500 x 30
    assert eur.best_possible_dso == D("30")  # 1500 / 1500 x 30
    assert eur.add == D("28")  # 58 - 30
    # CEI = (2000 + 1500 - 2900) / (2000 + 1500 - 1500) x 100 = 600 / 2000 x 100 = 30
    assert eur.cei == D("30")
    # Count-back: June net sales 1500 (30 days) leave 1400; May 800 (31 days) leaves 600;
    # April 1000 covers it: 30 + 31 + 600/1000 x 30 = 79.
    assert eur.dso_count_back == D("79")

    # USD: U2 300 (past due since Jun-20) + U3 200 (current) = 500; opening U1 500.
    assert (usd.receivables, usd.past_due, usd.opening_receivables) == (
        D("500"),
        D("300"),
        D("500"),
    )
    assert usd.net_credit_sales == D("500")  # U2 + U3
    assert usd.dso_simple == D("30")  # 500 / 500 x 30
    assert usd.best_possible_dso == D("12")  # 200 / 500 x 30
    assert usd.add == D("18")
    assert usd.cei == D("62.5")  # (500 + 500 - 500) / (500 + 500 - 200) x 100
    assert usd.dso_count_back == D("30")  # June's 500 covers the 500 exactly: 30 days


def test_recovery_rate_and_recovery_time(portfolio):
    result = kpis.compute(PERIOD)
    eur, usd = result["EUR"], result["USD"]
    # Past due on May-31: E1 600 + E4 300 + E7 100 + E8 200 = 1200; cash applied to them in
    # June: E1's 600. The credit note went to E2, which was not past due, and is not cash.
    assert eur.opening_past_due == D("1200")
    assert eur.cash_recovered == D("600")
    assert eur.as_json()["recovery_rate_percent"] == "50.0"
    # E1 settled on Jun-10, 40 days after its May-01 due date. E2 is still open.
    assert (eur.invoices_recovered, eur.recovery_days) == (1, 40)
    assert eur.as_json()["avg_recovery_days"] == "40.0"
    # USD: nothing was past due on May-31 (U1 was due that day), so no rate.
    assert usd.opening_past_due == D("0")
    assert usd.as_json()["recovery_rate_percent"] is None
    # U1 settled on Jun-28, 28 days after May-31.
    assert (usd.invoices_recovered, usd.recovery_days) == (1, 28)


def test_collection_rate_per_policy_and_template(portfolio):
    result = kpis.compute(PERIOD)
    # Counted: sent Jun-01..Jun-16. EUR: N1 (Gentle, followed by A's Jun-10 payment),
    # N5 (Gentle, no payment), N2 (Firm, B paid only in USD). USD: N4 (Gentle, paid day 14).
    assert [
        (r["policy"], r["notices_sent"], r["followed_by_payment"], r["rate_percent"])
        for r in result["EUR"].as_json()["collection_rate_by_policy"]
    ] == [("Firm", 1, 0, "0.0"), ("Gentle", 2, 1, "50.0")]
    assert [
        (r["template"], r["language"], r["notices_sent"], r["rate_percent"])
        for r in result["EUR"].as_json()["collection_rate_by_template"]
    ] == [("firm", "en", 1, "0.0"), ("friendly", "en", 2, "50.0")]
    assert [
        (r["policy"], r["notices_sent"], r["followed_by_payment"], r["rate_percent"])
        for r in result["USD"].as_json()["collection_rate_by_policy"]
    ] == [("Gentle", 1, 1, "100.0")]


def test_a_payment_counts_from_the_day_of_the_notice_to_fourteen_days_after():
    step = make_step("Window", "window", 7)
    period = kpis.Period(as_of=dt.date(2026, 3, 31), days=31)
    sent_on = dt.date(2026, 3, 2)
    rows = {}
    for name, paid_on in [
        ("same day", sent_on),
        ("day 14", sent_on + dt.timedelta(days=14)),
        ("day 15", sent_on + dt.timedelta(days=15)),
        ("day before", sent_on - dt.timedelta(days=1)),
    ]:
        customer = CustomerFactory(name=name)
        invoice = InvoiceFactory(
            customer=customer, issued_on=dt.date(2026, 1, 1), due_on=dt.date(2026, 2, 1)
        )
        notice(customer, step, [invoice], sent_on=sent_on)
        services.record_payment(
            amount="10.00", currency="USD", received_on=paid_on, customer=customer
        )
        rows[name] = kpis.notice_follow_up(period, by="policy")[0]["followed"]
    # The counts accumulate customer by customer: same day and day 14 count, 15 and -1 not.
    assert rows == {"same day": 1, "day 14": 2, "day 15": 2, "day before": 2}


def test_automated_notification_rate(portfolio):
    result = kpis.compute(PERIOD)
    # EUR notices sent in June: N1, N2, N3, N5; N2 was approved by a manager.
    assert (result["EUR"].notices_sent, result["EUR"].notices_automated) == (4, 3)
    assert result["EUR"].as_json()["automated_notification_rate_percent"] == "75.0"
    assert result["USD"].as_json()["automated_notification_rate_percent"] == "100.0"


def test_days_to_first_payment_after_the_first_notice(portfolio):
    result = kpis.compute(PERIOD)
    # EUR: A's first June notice Jun-05, first EUR payment since Jun-10: 5 days.
    # B's first June notice Jun-12; B never paid in EUR: noticed, not paid.
    eur = result["EUR"].as_json()
    assert (eur["customers_noticed"], eur["customers_paid_after_notice"]) == (2, 1)
    assert eur["avg_days_to_first_payment_after_first_notice"] == "5.0"
    # USD: C's notice Jun-14, payment Jun-28: 14 days.
    assert result["USD"].as_json()["avg_days_to_first_payment_after_first_notice"] == "14.0"


def test_days_in_arrears_coverage(portfolio):
    result = kpis.compute(PERIOD)
    # EUR past due on Jun-30: B (live notices), E (cancelled notice, task closed Jun-15,
    # dispute opened Jul-05: not covered), F (task open since Jun-20).
    eur = result["EUR"].as_json()
    assert (eur["past_due_customers"], eur["past_due_customers_covered"]) == (3, 2)
    assert eur["days_in_arrears_coverage_percent"] == "66.7"
    # USD: C (U2) with a live notice.
    assert result["USD"].as_json()["days_in_arrears_coverage_percent"] == "100.0"


def test_a_task_closed_after_the_as_of_day_still_covered_it(portfolio):
    task = Task.objects.get(title="Call E")
    Task.objects.filter(pk=task.pk).update(completed_at=on(dt.date(2026, 7, 2)))
    eur = kpis.compute(PERIOD)["EUR"]
    assert (eur.past_due_customers, eur.past_due_customers_covered) == (3, 3)


def test_kpis_command_prints_one_json_object_with_every_kpi_per_currency(portfolio):
    out = io.StringIO()
    call_command("kpis", "--as-of", "2026-06-30", "--period-days", "30", stdout=out)
    result = json.loads(out.getvalue())
    assert result["as_of"] == "2026-06-30"
    assert result["period"] == {
        "first_day": "2026-06-01",
        "last_day": "2026-06-30",
        "opening_day": "2026-05-31",
    }
    assert result["notices_counted_for_collection_rate"]["last_day"] == "2026-06-16"
    assert set(result["methods"]) == {"dso_count_back", "dso_simple", "best_possible_dso", "add"}
    assert sorted(result["currencies"]) == ["EUR", "USD"]
    eur = result["currencies"]["EUR"]
    assert {
        key: eur[key]
        for key in [
            "receivables",
            "past_due_receivables",
            "net_credit_sales",
            "dso_count_back",
            "dso_simple",
            "best_possible_dso",
            "add",
            "cei_percent",
            "recovery_rate_percent",
            "avg_recovery_days",
            "automated_notification_rate_percent",
            "days_in_arrears_coverage_percent",
            "avg_days_to_first_payment_after_first_notice",
        ]
    } == {
        "receivables": "2900.00",
        "past_due_receivables": "1400.00",
        "net_credit_sales": "1500.00",
        "dso_count_back": "79.0",
        "dso_simple": "58.0",
        "best_possible_dso": "30.0",
        "add": "28.0",
        "cei_percent": "30.0",
        "recovery_rate_percent": "50.0",
        "avg_recovery_days": "40.0",
        "automated_notification_rate_percent": "75.0",
        "days_in_arrears_coverage_percent": "66.7",
        "avg_days_to_first_payment_after_first_notice": "5.0",
    }
    assert result["currencies"]["USD"]["cei_percent"] == "62.5"
    # Every money figure and ratio is a string (an exact decimal), never a float.
    for currency in result["currencies"].values():
        for key, value in currency.items():
            assert not isinstance(value, float), key


def test_kpis_command_can_report_one_currency(portfolio):
    out = io.StringIO()
    call_command(
        "kpis", "--as-of", "2026-06-30", "--period-days", "30", "--currency", "usd", stdout=out
    )
    result = json.loads(out.getvalue())
    assert list(result["currencies"]) == ["USD"]
    assert result["currencies"]["USD"]["receivables"] == "500.00"
    assert result["currencies"]["USD"]["dso_simple"] == "30.0"


def test_kpis_command_rejects_a_bad_date():
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("kpis", "--as-of", "30/06/2026")


def test_count_back_dso_walks_months_backwards_with_a_partial_first_month():
    sales = {
        dt.date(2026, 6, 1): D("300"),
        dt.date(2026, 5, 1): D("0"),
        dt.date(2026, 4, 1): D("600"),
    }
    # As of Jun-15: June counts 15 days (its sales to date, 300); May adds 31 days and
    # absorbs nothing; April's 600 covers the last 300 in half its 30 days: 15 + 31 + 15.
    assert kpis.count_back_dso(D("600"), sales, dt.date(2026, 6, 15)) == D("61")
    assert kpis.count_back_dso(D("0"), sales, dt.date(2026, 6, 15)) == D("0")
    # More receivables than 24 months of sales: no meaningful figure.
    assert kpis.count_back_dso(D("5000"), sales, dt.date(2026, 6, 15)) is None


def test_no_sales_means_no_dso_rather_than_a_division_by_zero():
    customer = CustomerFactory()
    InvoiceFactory(
        customer=customer,
        currency="GBP",
        amount=D("100"),
        issued_on=dt.date(2025, 1, 1),
        due_on=dt.date(2025, 1, 31),
    )
    gbp = kpis.compute(PERIOD)["GBP"].as_json()
    assert gbp["receivables"] == "100.00"
    assert gbp["dso_simple"] is None and gbp["best_possible_dso"] is None
    assert gbp["add"] is None
    # CEI still has a meaning: 100 open at the start, no sales, 100 open (all past due) at
    # the end: (100 + 0 - 100) / (100 + 0 - 0) = nothing collected.
    assert gbp["cei_percent"] == "0.0"
    # Count-back walks back through months without sales to January 2025, whose 100 of
    # sales cover the 100 exactly: every day from 2025-01-01 to 2026-06-30 counts.
    days = (dt.date(2026, 6, 30) - dt.date(2025, 1, 1)).days + 1  # 546
    assert gbp["dso_count_back"] == f"{days}.0"


def test_month_end_balances_match_the_ledger(portfolio):
    dates = [dt.date(2026, 3, 31), dt.date(2026, 4, 30), dt.date(2026, 5, 31), AS_OF]
    trend = kpis.receivables_at(dates)
    for index, day in enumerate(dates):
        from_ledger = receivables_as_of(day)
        for currency, points in trend.items():
            assert points[index][0] == from_ledger.get(currency, D("0")), (currency, day)
        assert set(from_ledger) <= set(trend)
    # Past due on May-31 by hand: E1 600 + E4 300 + E7 100 + E8 200.
    assert trend["EUR"][2][1] == D("1200")
