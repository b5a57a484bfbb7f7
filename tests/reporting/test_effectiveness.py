"""Which messages get paid: counts, rates with Wilson intervals, amounts, experiments, access."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Customer, Payment
from dunning.models import EmailEvent, Step
from reporting import effectiveness
from reporting.effectiveness import Rate, Report, wilson_interval
from tests.clock import ON
from tests.factories import (
    ActivityFactory,
    CustomerFactory,
    InvoiceFactory,
    SentNoticeFactory,
    StepVariantFactory,
    UserFactory,
    standard_email_step,
)

pytestmark = pytest.mark.django_db
PAGE = "/admin/reporting/effectiveness/"
SENT = ON - dt.timedelta(days=20)  # 7- and 14-day outcomes known on ON
RECENT = ON - dt.timedelta(days=3)  # neither known yet


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC)


def pay(invoice, amount: str, day: dt.date, kind=Payment.Kind.PAYMENT):
    payment = ledger.record_payment(
        amount=Decimal(amount),
        currency=invoice.currency,
        received_on=day,
        customer=invoice.customer,
        kind=kind,
    )
    ledger.allocate(payment=payment, invoice=invoice, amount=Decimal(amount), on=day)


def sms_step() -> Step:
    return Step.objects.get(policy__name="Standard", offset_days=7, channel="sms")


@pytest.fixture
def example():
    """Five sent notices (four e-mails, one SMS) and two that must not count."""
    email = standard_email_step()
    standard = {"segment": Customer.Segment.STANDARD, "risk_band": "high"}
    # 1. Delivered, paid in full 3 days later: paid in 7 and 14 days, USD 100 collected.
    c1 = CustomerFactory(**standard)
    i1 = InvoiceFactory(customer=c1, amount=Decimal("100.00"))
    n1 = SentNoticeFactory(step=email, customer=c1, sent_on=SENT, invoices=[i1])
    n1.status, n1.delivered_at = "delivered", at(SENT, 11)
    n1.save()
    pay(i1, "100.00", SENT + dt.timedelta(days=3))
    # 2. Hard bounce; paid in two parts, the last on day 10: paid in 14 days, not 7; EUR.
    c2 = CustomerFactory(segment=Customer.Segment.STRATEGIC, risk_band="low", currency="EUR")
    i2 = InvoiceFactory(customer=c2, amount=Decimal("250.00"), currency="EUR")
    n2 = SentNoticeFactory(step=email, customer=c2, sent_on=SENT, invoices=[i2], status="failed")
    EmailEvent.objects.create(kind="bounce", is_permanent=True, notice=n2, event_id="b-1")
    pay(i2, "150.00", SENT + dt.timedelta(days=5))
    pay(i2, "100.00", SENT + dt.timedelta(days=10))
    # A reply 10 days after: outside the reply window.
    ActivityFactory(customer=c2, kind="reply", occurred_at=at(SENT + dt.timedelta(days=10)))
    # 3. A reply two days later; USD 30 paid on day 1, the rest on day 20: not paid in 14.
    c3 = CustomerFactory(**standard)
    i3 = InvoiceFactory(customer=c3, amount=Decimal("80.00"))
    SentNoticeFactory(step=email, customer=c3, sent_on=SENT, invoices=[i3])
    ActivityFactory(customer=c3, kind="reply", occurred_at=at(SENT + dt.timedelta(days=2)))
    pay(i3, "30.00", SENT + dt.timedelta(days=1))
    pay(i3, "50.00", SENT + dt.timedelta(days=20))
    # 4. Written off within the week: settled, but not paid, and no cash.
    c4 = CustomerFactory(**standard)
    i4 = InvoiceFactory(customer=c4, amount=Decimal("60.00"))
    SentNoticeFactory(step=email, customer=c4, sent_on=SENT, invoices=[i4])
    pay(i4, "60.00", SENT + dt.timedelta(days=2), kind=Payment.Kind.WRITE_OFF)
    # 5. An SMS sent 3 days ago, delivered and paid since: outcomes not known yet.
    c5 = CustomerFactory(**standard)
    i5 = InvoiceFactory(customer=c5, amount=Decimal("40.00"))
    SentNoticeFactory(
        step=sms_step(),
        customer=c5,
        sent_on=RECENT,
        invoices=[i5],
        status="delivered",
        delivered_at=at(RECENT, 12),
    )
    pay(i5, "40.00", RECENT + dt.timedelta(days=1))
    # Not counted: sent before the range, and planned but never sent.
    old = InvoiceFactory(customer=c1)
    SentNoticeFactory(step=email, customer=c1, sent_on=ON - dt.timedelta(days=100), invoices=[old])
    SentNoticeFactory(step=email, customer=c3, status="planned", sent_at=None)
    return email


def report(group_by=("step",)) -> Report:
    return Report(
        sent_from=ON - dt.timedelta(days=30), sent_until=ON, as_of=ON, group_by=tuple(group_by)
    )


def figures(row):
    return {
        "sent": row.sent,
        "delivered": (row.delivered.hits, row.delivered.total),
        "bounced": (row.bounced.hits, row.bounced.total),
        "replied": (row.replied.hits, row.replied.total),
        "paid_7": (row.paid_7.hits, row.paid_7.total),
        "paid_14": (row.paid_14.hits, row.paid_14.total),
        "collected_14": row.collected_14,
    }


def test_counts_rates_and_amounts_per_step(example):
    email, sms = effectiveness.rows(report())
    assert email.group["step_name"] == "Overdue e-mail" and sms.group["step_name"] == "Overdue SMS"
    assert figures(email) == {
        "sent": 4,
        "delivered": (1, 4),
        "bounced": (1, 4),
        "replied": (1, 4),
        "paid_7": (1, 4),
        "paid_14": (2, 4),
        "collected_14": {"EUR": Decimal("250.00"), "USD": Decimal("130.00")},
    }
    assert figures(sms) == {
        "sent": 1,
        "delivered": (1, 1),
        "bounced": (0, 1),
        "replied": (0, 1),
        "paid_7": (0, 0),
        "paid_14": (0, 0),
        "collected_14": {},
    }
    assert email.paid_14.value == 0.5
    assert email.paid_14.interval == pytest.approx(wilson_interval(2, 4))
    assert sms.paid_7.display == "—"


def test_grouped_by_segment_and_risk_band_or_not_at_all(example):
    rows = effectiveness.rows(report(["segment", "risk_band"]))
    by_group = {(r.group["segment_code"], r.group["risk_band_code"]): figures(r) for r in rows}
    assert set(by_group) == {("standard", "high"), ("strategic", "low")}
    assert by_group["strategic", "low"]["paid_14"] == (1, 1)
    assert by_group["strategic", "low"]["collected_14"] == {"EUR": Decimal("250.00")}
    assert by_group["standard", "high"]["sent"] == 4
    assert by_group["standard", "high"]["collected_14"] == {"USD": Decimal("130.00")}
    [total] = effectiveness.rows(report([]))
    assert (total.sent, total.group) == (5, {})
    [email, sms] = effectiveness.rows(report(["channel"]))
    assert (email.group["channel_code"], email.sent, sms.group["channel_code"]) == (
        "email",
        4,
        "sms",
    )


def test_the_date_range_filters_on_the_sent_day(example):
    narrow = Report(sent_from=RECENT, sent_until=ON, as_of=ON, group_by=())
    [row] = effectiveness.rows(narrow)
    assert row.sent == 1


def test_wilson_interval_matches_known_values():
    assert wilson_interval(8, 10) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert wilson_interval(50, 100) == pytest.approx((0.4038, 0.5962), abs=1e-4)
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) is None
    assert Rate(8, 10).display == "80.0% (49.0-94.3)"


@pytest.fixture
def experiment_results():
    """Variant A paid 8 of 10 messages within 14 days, variant B 3 of 10."""
    email = standard_email_step()
    a = StepVariantFactory(step=email, label="A")
    b = StepVariantFactory(step=email, label="B")
    for variant, sent, paid in ((a, 10, 8), (b, 10, 3)):
        for n in range(sent):
            customer = CustomerFactory()
            invoice = InvoiceFactory(customer=customer)
            SentNoticeFactory(
                step=email,
                customer=customer,
                variant=variant,
                variant_drawn_by="weights",
                sent_on=SENT,
                invoices=[invoice],
            )
            if n < paid:
                pay(invoice, "100.00", SENT + dt.timedelta(days=4))
    return email


def test_variants_compared_with_the_chance_each_is_best(experiment_results):
    email = experiment_results
    [experiment] = effectiveness.compare_variants(report())
    assert experiment.step == email and experiment.assigning_by == "weights"
    first, second = experiment.variants
    assert (first.label, first.sent, first.paid_14.hits, first.by_weights) == ("A", 10, 8, 10)
    assert (second.label, second.paid_14.hits) == ("B", 3)
    assert first.paid_14.interval == pytest.approx((0.4902, 0.9433), abs=1e-4)
    assert first.probability_best + second.probability_best == pytest.approx(1.0)
    assert first.probability_best > 0.95
    # By variant in the main report too.
    rows = effectiveness.rows(report(["variant"]))
    assert {r.group["variant_label"]: r.paid_14.hits for r in rows} == {"A": 8, "B": 3}


def test_the_page_shows_the_experiment(client, manager, experiment_results):
    client.force_login(manager)
    body = client.get(PAGE).content.decode()
    assert "Experiments: template variants" in body
    assert "80.0% (49.0-94.3)" in body  # A: 8 of 10 paid within 14 days
    assert "New customers get a variant drawn by weight." in body


def test_probability_best_is_even_for_equal_results():
    even = effectiveness.probability_best([(5, 10), (5, 10)])
    assert even == pytest.approx([0.5, 0.5], abs=0.02)
    assert effectiveness.probability_best([]) == []


def test_manager_sees_the_page_and_its_csv(client, manager, example):
    client.force_login(manager)
    assert reverse("admin:reporting_effectiveness_changelist") == PAGE
    query = {"sent_from": (ON - dt.timedelta(days=30)).isoformat(), "sent_until": ON.isoformat()}
    response = client.get(PAGE, query)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="effectiveness"' in body and "Overdue e-mail" in body
    assert "50.0% (15.0-85.0)" in body  # paid in 14 days: 2 of 4
    assert PAGE in client.get("/admin/").content.decode()  # listed under Reporting
    download = client.get(PAGE, {**query, "group_by": "channel", "format": "csv"})
    assert download.status_code == 200 and download["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(download.content.decode())))
    email = [line for line in lines if line["channel_code"] == "email"]
    assert {line["currency"]: line["collected_14"] for line in email} == {
        "EUR": "250.00",
        "USD": "130.00",
    }
    assert email[0]["paid_14"] == "2" and email[0]["paid_14_of"] == "4"


def test_only_users_with_the_reporting_permission_see_the_page(client, agent, finance):
    for user in (agent, finance, UserFactory(username="nobody")):
        client.force_login(user)
        assert client.get(PAGE).status_code == 403, user.username
        assert PAGE not in client.get("/admin/").content.decode()
