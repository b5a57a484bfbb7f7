"""The risk score: each factor computed by hand, the band, its timeline entry, the segment rule."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.models import Activity, Customer
from cases import risk
from cases.models import Dispute, PromiseToPay
from dunning import planner
from dunning.models import Notice, Policy
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
TODAY = NOW.date()


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


def invoice(customer, *, issued, due, amount="100.00", **kwargs):
    return InvoiceFactory(
        customer=customer,
        issued_on=day(issued),
        due_on=day(due),
        amount=Decimal(amount),
        **kwargs,
    )


def pay(inv, *, on: int):
    payment = PaymentFactory(customer=inv.customer, amount=inv.open_balance)
    services.allocate(payment=payment, invoice=inv, on=day(on))


def promise(customer, status, *, resolved_days_ago=10):
    return PromiseToPay.objects.create(
        customer=customer,
        amount=Decimal("50.00"),
        currency="USD",
        promised_on=day(-resolved_days_ago - 3),
        holds_until=day(-resolved_days_ago),
        status=status,
        resolved_at=NOW - dt.timedelta(days=resolved_days_ago),
    )


def factors(customer) -> dict:
    customer.refresh_from_db()
    return {
        f["key"]: (f["weight"], f["points"], f["value"]) for f in customer.risk_factors["factors"]
    }


def test_every_factor_worked_out_by_hand():
    customer = CustomerFactory(credit_limit=Decimal("600.00"))
    # Fell due in the last 12 months: i1 10 days late, i2 on time, i3 20 days late (all
    # paid), i4 unpaid 20 days past due. Days to pay: i1 40 and i2 30 paid 9-12 months
    # back (average 35), i3 50 paid in the last 90 days.
    i1 = invoice(customer, issued=-200, due=-170)
    pay(i1, on=-160)
    i2 = invoice(customer, issued=-150, due=-120)
    pay(i2, on=-120)
    i3 = invoice(customer, issued=-60, due=-30)
    pay(i3, on=-10)
    invoice(customer, issued=-50, due=-20)  # i4, unpaid
    invoice(customer, issued=-10, due=20, amount="200.00")  # not due yet
    invoice(customer, issued=-40, due=-35, status="cancelled", open_balance=Decimal("0.00"))
    invoice(customer, issued=-800, due=-700)  # older than 12 months: not a late share
    promise(customer, PromiseToPay.Status.KEPT)
    promise(customer, PromiseToPay.Status.BROKEN)
    promise(customer, PromiseToPay.Status.BROKEN, resolved_days_ago=400)  # too old
    Dispute.objects.create(customer=customer, reason="pricing")
    Dispute.objects.create(customer=customer, reason="duplicate", status="resolved_customer")

    risk.score_customers(customer_ids=[customer.pk], now=NOW)

    got = factors(customer)
    # 4 invoices due in the window with a known outcome, 3 late: 25 * 3/4 = 18.75
    assert got["late_share"] == (25, 18.8, "3 of 4 invoices")
    # (10 + 20 + 20) / 3 = 16.7 days; 15 * 16.67/60 = 4.17
    assert got["days_late"] == (15, 4.2, "16.7 days on average")
    # 35 -> 50 days to pay: 15 days slower; 10 * 15/30 = 5
    assert got["trend"] == (10, 5.0, "35.0 → 50.0 days to pay")
    # 1 broken of 2 resolved in the window: 15 * 1/2
    assert got["broken_promises"] == (15, 7.5, "1 broken, 1 kept")
    # 1 dispute not resolved for the customer: 5 * 1/3
    assert got["disputes"] == (5, 1.7, "1 dispute")
    # open USD: i4 100 + 200 not yet due + the 700-day-old 100 = 400; past due 200: 20 * 1/2
    assert got["past_due_share"] == (20, 10.0, "USD 50%")
    # 400 of a 600 limit: 10 * 2/3
    assert got["credit_utilisation"] == (10, 6.7, "67% of USD 600.00")
    # 18.8 + 4.2 + 5 + 7.5 + 1.7 + 10 + 6.7 = 53.9
    assert (customer.risk_score, customer.risk_band) == (54, "medium")
    assert customer.risk_scored_at == NOW
    assert customer.risk_factors["as_of"] == TODAY.isoformat()


def test_bands_cut_at_34_and_67():
    assert [risk.band_for(s) for s in (0, 33, 34, 66, 67, 100)] == [
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]


def test_a_first_score_is_news_unless_it_is_low():
    customer = CustomerFactory()
    invoice(customer, issued=-60, due=-30)
    pay(invoice(customer, issued=-40, due=-10), on=-12)
    before = Activity.objects.count()
    result = risk.score_customers(now=NOW)
    customer.refresh_from_db()
    # one of two invoices late (the unpaid one): 12.5 + 30 days (7.5) + all past due (20)
    assert customer.risk_score == 40 and customer.risk_band == "medium"
    assert result.band_changes == 1 and Activity.objects.count() == before + 1
    quiet = CustomerFactory()
    risk.score_customers(customer_ids=[quiet.pk], now=NOW)
    quiet.refresh_from_db()
    assert (quiet.risk_score, quiet.risk_band) == (0, "low")
    assert not Activity.objects.filter(customer=quiet).exists()


def high_risk_customer(**kwargs):
    """Score 85: one invoice 95 days past due and unpaid, a broken promise, over its limit."""
    customer = CustomerFactory(credit_limit=Decimal("500.00"), **kwargs)
    late = invoice(customer, issued=-125, due=-95, amount="1000.00")
    promise(customer, PromiseToPay.Status.BROKEN)
    return customer, late


def test_a_band_change_is_on_the_timeline_with_its_reasons():
    customer, late = high_risk_customer(segment="strategic")
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert (customer.risk_score, customer.risk_band) == (85, "high")
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.RISK)
    assert entry.details == {"from": "", "to": "high", "from_score": None, "score": 85}
    assert "Risk band — → High (score 85)" in entry.text and "Invoices paid late" in entry.text
    risk.score_customers(customer_ids=[customer.pk], now=NOW)  # same band: nothing new
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.RISK).count() == 1
    pay(late, on=0)
    risk.rescore_after_payment([customer.pk])
    customer.refresh_from_db()
    assert customer.risk_band == "medium"
    latest = Activity.objects.filter(customer=customer, kind=Activity.Kind.RISK).latest("pk")
    assert latest.details["from"] == "high" and latest.details["to"] == "medium"


def test_band_high_moves_a_standard_customer_to_high_risk_and_back():
    customer, late = high_risk_customer()
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert customer.segment == "high_risk"
    assert customer.risk_factors["segment_before"] == "standard"
    change = Activity.objects.get(customer=customer, kind=Activity.Kind.STATUS_CHANGE)
    assert change.details == {
        "field": "segment",
        "from": "standard",
        "to": "high_risk",
        "reason": "risk",
    }
    pay(late, on=0)
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert customer.segment == "standard" and "segment_before" not in customer.risk_factors
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.STATUS_CHANGE).count() == 2


def test_strategic_customers_and_own_policies_are_never_moved():
    strategic, _ = high_risk_customer(segment="strategic")
    own_policy, _ = high_risk_customer(dunning_policy=Policy.objects.get(segment="standard"))
    risk.score_customers(customer_ids=[strategic.pk, own_policy.pk], now=NOW)
    strategic.refresh_from_db()
    own_policy.refresh_from_db()
    assert (strategic.risk_band, strategic.segment) == ("high", "strategic")
    assert (own_policy.risk_band, own_policy.segment) == ("high", "standard")


def test_high_risk_set_by_hand_stays_when_the_band_is_low():
    customer = CustomerFactory(segment="high_risk")
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert (customer.risk_band, customer.segment) == ("low", "high_risk")


def test_the_setting_turns_the_segment_rule_off(settings):
    settings.RISK_DRIVES_SEGMENT = False
    customer, _ = high_risk_customer()
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert (customer.risk_band, customer.segment) == ("high", "standard")


def test_the_score_chooses_the_dunning_policy():
    """High risk reminds 7 days before the due date; standard only 3 days before."""
    customer, _ = high_risk_customer()
    invoice(customer, issued=-20, due=7, amount="100.00")
    planner.plan(on=TODAY)
    assert not Notice.objects.filter(customer=customer).exists()
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    planner.plan(on=TODAY)
    notice = Notice.objects.get(customer=customer, step__offset_days=-7)
    assert notice.step.policy.segment == "high_risk"


def test_scoring_many_customers_takes_a_few_queries_per_chunk(monkeypatch):
    monkeypatch.setattr(risk, "CHUNK", 50)
    for i in range(60):
        customer = CustomerFactory(credit_limit=Decimal("1000.00") if i % 2 else None)
        invoice(customer, issued=-100 - i, due=-30 - i)
    with CaptureQueriesContext(connection) as queries:
        result = risk.score_customers(now=NOW)
    assert result.scored == 60
    # ids; then per chunk (2): lock, behaviour, balances, disputes, promises, update,
    # timeline (+ savepoint bookkeeping)
    assert len(queries) <= 1 + 2 * 10
    assert Customer.objects.filter(risk_score__isnull=True).count() == 0


def test_the_factors_render_on_the_customer_snippet(client, manager):
    from django.template.loader import render_to_string

    customer, _ = high_risk_customer()
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    html = render_to_string("admin/accounts/worklist_risk.html", {"customer": customer})
    assert "85/100" in html and "Broken promises to pay (12 months)" in html
    assert timezone.localtime(customer.risk_scored_at).strftime("%Y-%m-%d") in html
