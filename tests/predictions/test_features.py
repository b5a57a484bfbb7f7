"""Point-in-time invoice features (predictions.features): values on a hand-built history,
and no look-ahead: rows dated after the as-of day change nothing."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services, timeline
from accounts.models import Activity
from cases.models import Dispute, PaymentPlan, PromiseToPay
from predictions.features import FEATURES, invoice_features
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 10, 15)
AFTER = dt.date(2026, 10, 20)


def day(d: dt.date, hour=12) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(d, dt.time(hour)))


def pay(invoice, amount, on, *, allocated_on=None):
    payment = services.record_payment(
        amount=D(amount), currency=invoice.currency, received_on=on, customer=invoice.customer
    )
    services.allocate(payment=payment, invoice=invoice, amount=D(amount), on=allocated_on or on)
    return payment


def invoice(customer, amount, due, *, currency="USD", terms=30):
    return InvoiceFactory(
        customer=customer,
        amount=D(amount),
        currency=currency,
        due_on=due,
        issued_on=due - dt.timedelta(days=terms),
    )


# (amount, due, paid): days late 0, 10, 0, 20, 5, 30, 15 in order of settlement.
SETTLED = [
    ("100.00", dt.date(2026, 1, 31), dt.date(2026, 1, 31)),
    ("200.00", dt.date(2026, 2, 28), dt.date(2026, 3, 10)),
    ("100.00", dt.date(2026, 3, 31), dt.date(2026, 3, 25)),
    ("300.00", dt.date(2026, 4, 30), dt.date(2026, 5, 20)),
    ("100.00", dt.date(2026, 5, 31), dt.date(2026, 6, 5)),
    ("100.00", dt.date(2026, 6, 30), dt.date(2026, 7, 30)),
    ("200.00", dt.date(2026, 7, 31), dt.date(2026, 8, 15)),
]


def note(customer, kind, on, *, outcome="", details=None):
    timeline.add(kind, customer=customer, outcome=outcome, details=details, at=day(on))


def dispute(customer, on):
    d = Dispute.objects.create(customer=customer, reason=Dispute.Reason.PRICING)
    Dispute.objects.filter(pk=d.pk).update(opened_at=day(on))


def promise(customer, status, resolved_on=None):
    PromiseToPay.objects.create(
        customer=customer,
        amount=D("100.00"),
        currency="USD",
        promised_on=AS_OF,
        holds_until=AS_OF,
        status=status,
        resolved_at=day(resolved_on) if resolved_on else None,
    )


def plan(customer, on):
    p = PaymentPlan.objects.create(customer=customer, currency="USD", total_amount=D("300.00"))
    PaymentPlan.objects.filter(pk=p.pk).update(created_at=day(on))


@pytest.fixture
def history():
    customer = CustomerFactory(credit_limit=D("1000.00"))
    for amount, due, paid in SETTLED:
        pay(invoice(customer, amount, due), amount, paid)
    overdue = invoice(customer, "150.00", dt.date(2026, 9, 30))
    pay(overdue, "50.00", dt.date(2026, 10, 1))
    invoice(customer, "500.00", dt.date(2026, 9, 1), currency="EUR")  # another currency
    target = InvoiceFactory(
        customer=customer,
        amount=D("250.00"),
        issued_on=dt.date(2026, 10, 10),
        due_on=dt.date(2026, 11, 9),  # a Monday
    )
    dispute(customer, dt.date(2026, 5, 1))
    promise(customer, PromiseToPay.Status.KEPT, dt.date(2026, 6, 1))
    promise(customer, PromiseToPay.Status.BROKEN, dt.date(2026, 8, 1))
    promise(customer, PromiseToPay.Status.OPEN)
    plan(customer, dt.date(2026, 9, 1))
    note(customer, Activity.Kind.DELIVERY, dt.date(2026, 9, 2), details={"event": "bounce"})
    note(customer, Activity.Kind.DELIVERY, dt.date(2026, 9, 2), details={"event": "delivered"})
    note(customer, Activity.Kind.REPLY, dt.date(2026, 9, 3))
    note(customer, Activity.Kind.CALL, dt.date(2026, 9, 4), outcome="reached")
    note(customer, Activity.Kind.CALL, dt.date(2026, 9, 5), outcome="no_answer")
    return customer, overdue, target


def test_each_feature_on_a_hand_built_history(history):
    _customer, _overdue, target = history
    features = invoice_features([target.pk], AS_OF)[target.pk]
    assert set(features) == set(FEATURES)
    assert features == {
        "settled_count": 7,
        "late_share": D("0.7143"),  # 5 of 7 paid after the due date
        "mean_days_late": D("11.43"),  # 80 / 7
        "recent_mean_days_late": D("14.00"),  # 0, 20, 5, 30, 15
        "recent_late_count": 4,
        "late_share_10": D("0.7143"),  # all seven are among the last ten
        "mean_days_to_due": D("10.57"),  # 0, 10, -6, 20, 5, 30, 15: early counts as early
        "recent_days_to_due": D("12.80"),  # -6, 20, 5, 30, 15
        "trend_days_late": D("9.00"),  # 14.00 against 5.00 for the earlier two
        "last_days_late": 15,
        "open_count": 2,  # the part-paid overdue invoice and the target; not the EUR one
        "open_amount": D("350.00"),
        "overdue_count": 1,
        "overdue_amount": D("100.00"),
        # 250 against the geometric mean of the settled USD amounts, (100^4 200^2 300)^(1/7)
        "amount_ratio": D("1.7530"),
        "terms_days": 30,
        "issue_month": 10,
        "due_weekday": 1,
        "days_to_due": 25,
        "customer_age_days": 287,  # since the first invoice, issued on 1 January
        "invoices_90_days": 3,  # the EUR one, the part-paid one and the target
        "disputes": 1,
        "promises_kept": 1,
        "promises_broken": 1,
        "payment_plans": 1,
        "credit_use": D("0.3500"),  # 350 open in USD against a limit of 1000
        "bounces": 1,
        "replies": 1,
        "calls_reached": 1,
        "portal_visits_90_days": 0,
        "portal_actions_90_days": 0,
        "days_since_engagement": 42,  # the reply on 3 September
    }
    for value in features.values():
        assert not isinstance(value, float)


def test_no_look_ahead_rows_dated_after_as_of_change_no_feature(history):
    customer, overdue, target = history
    before = invoice_features([target.pk], AS_OF)

    # Ledger: a new invoice, payments settling the open ones, an allocation made later of
    # money received before as_of.
    invoice(customer, "900.00", AFTER + dt.timedelta(days=30), terms=10)
    pay(overdue, "100.00", AFTER)
    early = services.record_payment(
        amount=D("250.00"), currency="USD", received_on=AS_OF, customer=customer
    )
    services.allocate(payment=early, invoice=target, amount=D("250.00"), on=AFTER)
    # Case work and the timeline, including the first minutes of the next day.
    next_day = timezone.make_aware(dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time()))
    dispute(customer, AFTER)
    promise(customer, PromiseToPay.Status.KEPT, AFTER)
    promise(customer, PromiseToPay.Status.BROKEN, AFTER)
    plan(customer, AFTER)
    for at in (next_day, day(AFTER)):
        timeline.add(Activity.Kind.REPLY, customer=customer, at=at)
        timeline.add(Activity.Kind.CALL, customer=customer, outcome="reached", at=at)
        timeline.add(Activity.Kind.DELIVERY, customer=customer, details={"event": "bounce"}, at=at)
    customer.refresh_from_db()

    assert invoice_features([target.pk], AS_OF) == before
    # ...while the later day sees them (the test would prove nothing otherwise).
    later = invoice_features([target.pk], AFTER)[target.pk]
    assert later["open_count"] == 0 and later["settled_count"] == 8
    assert later["disputes"] == 2 and later["replies"] == 3


def test_invoices_issued_after_as_of_are_unknown(history):
    _customer, _overdue, target = history
    assert invoice_features([target.pk], dt.date(2026, 10, 9)) == {}


def test_a_customer_with_no_history_has_empty_figures():
    target = InvoiceFactory(due_on=dt.date(2026, 11, 9), issued_on=dt.date(2026, 10, 10))
    features = invoice_features([target.pk], AS_OF)[target.pk]
    assert features["settled_count"] == 0
    assert features["late_share"] is None and features["last_days_late"] is None
    assert features["amount_ratio"] is None and features["credit_use"] is None
    assert features["open_count"] == 1 and features["open_amount"] == D("100.00")


def test_a_reversed_allocation_reopens_the_invoice():
    customer = CustomerFactory()
    inv = invoice(customer, "100.00", dt.date(2026, 8, 31))
    payment = pay(inv, "100.00", dt.date(2026, 9, 5))
    target = invoice(customer, "100.00", dt.date(2026, 11, 9))
    assert invoice_features([target.pk], AS_OF)[target.pk]["settled_count"] == 1
    services.refund_payment(
        payment=payment, amount=D("100.00"), on=dt.date(2026, 9, 10), is_chargeback=True
    )
    features = invoice_features([target.pk], AS_OF)[target.pk]
    assert features["settled_count"] == 0 and features["overdue_count"] == 1


def test_query_count_does_not_grow_with_invoices(history):
    _customer, _overdue, target = history
    others = [invoice(CustomerFactory(), "100.00", dt.date(2026, 11, 9)).pk for _ in range(5)]
    with CaptureQueriesContext(connection) as one:
        invoice_features([target.pk], AS_OF)
    with CaptureQueriesContext(connection) as many:
        invoice_features([target.pk, *others], AS_OF)
    assert len(many) == len(one) == 13


def test_case_work_counts_over_the_year_before_as_of(history):
    """A dispute from more than a year ago no longer counts: counts that only grow with
    tenure would mean something else in a young ledger than in an old one."""
    customer, _overdue, target = history
    dispute(customer, AS_OF - dt.timedelta(days=400))
    assert invoice_features([target.pk], AS_OF)[target.pk]["disputes"] == 1
    dispute(customer, AS_OF - dt.timedelta(days=10))
    assert invoice_features([target.pk], AS_OF)[target.pk]["disputes"] == 2
