"""Template experiments: variants drawn by weight, recorded, sticky, rendered; Thompson sampling."""

import datetime as dt
import random
import zoneinfo
from collections import Counter

import pytest
from django.core import mail
from scipy.stats import chisquare

from accounts import services as ledger
from dunning import planner, sender, variants
from dunning.models import Notice, StepVariant
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    SentNoticeFactory,
    StepVariantFactory,
    TemplateFactory,
    standard_email_step,
)

pytestmark = pytest.mark.django_db
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))


@pytest.fixture
def step():
    return standard_email_step()


def two_variants(step, weight_a=1, weight_b=1):
    a = StepVariantFactory(step=step, label="A", weight=weight_a)
    b = StepVariantFactory(step=step, label="B", weight=weight_b)
    return a, b


def test_variants_are_drawn_by_weight(step):
    a, b = two_variants(step, weight_a=3, weight_b=1)
    assigned = variants.assign(step, range(1, 2001), on=ON, rng=random.Random(2026))
    counts = Counter(variant_id for variant_id, _drawn_by in assigned.values())
    observed = [counts[a.pk], counts[b.pk]]
    assert sum(observed) == 2000
    # 3:1 fits (a chi-square test at 1%), an even split does not.
    assert chisquare(observed, [1500, 500]).pvalue > 0.01
    assert chisquare(observed, [1000, 1000]).pvalue < 1e-6
    assert {drawn_by for _variant, drawn_by in assigned.values()} == {"weights"}


def test_a_seeded_draw_is_reproducible_and_inactive_variants_get_nobody(step):
    a, b = two_variants(step)
    StepVariantFactory(step=step, label="C", is_active=False)
    first = variants.assign(step, range(1, 201), on=ON, rng=random.Random(7))
    again = variants.assign(step, reversed(range(1, 201)), on=ON, rng=random.Random(7))
    assert first == again
    assert {variant_id for variant_id, _ in first.values()} == {a.pk, b.pk}


def test_a_step_without_variants_assigns_nothing(step):
    StepVariantFactory(step=step, label="off", is_active=False)
    assert variants.assign(step, [1, 2, 3], on=ON, rng=random.Random(1)) == {}


def plan_customers(n: int, due_on: dt.date, customers=None):
    customers = customers or [CustomerFactory() for _ in range(n)]
    for customer in customers:
        InvoiceFactory(customer=customer, due_on=due_on)
    return customers


def test_the_planner_records_each_customers_variant(step):
    a, b = two_variants(step)
    customers = plan_customers(30, ON - dt.timedelta(days=7))
    planner.plan(on=ON, rng=random.Random(3))
    at_step = Notice.objects.filter(step=step)
    assert at_step.count() == 30
    assert set(at_step.values_list("variant_id", flat=True)) == {a.pk, b.pk}
    assert set(at_step.values_list("variant_drawn_by", flat=True)) == {"weights"}
    # The SMS step at +7 has no variants: its notices name none.
    sms = Notice.objects.filter(customer__in=customers, channel="sms")
    assert sms.count() == 30
    assert set(sms.values_list("variant_id", "variant_drawn_by")) == {(None, "")}


def test_a_customer_keeps_its_variant_at_the_step(step):
    a, b = two_variants(step)
    customers = plan_customers(40, ON - dt.timedelta(days=7))
    planner.plan(on=ON, rng=random.Random(11))
    # A new invoice reaches the same step the next day: a second notice, another seed.
    plan_customers(0, ON - dt.timedelta(days=6), customers=customers)
    planner.plan(on=ON + dt.timedelta(days=1), rng=random.Random(99))
    by_customer = {}
    for customer_id, planned_on, variant_id in Notice.objects.filter(step=step).values_list(
        "customer_id", "planned_on", "variant_id"
    ):
        by_customer.setdefault(customer_id, {})[planned_on] = variant_id
    assert len(by_customer) == 40
    assert all(len(days) == 2 and len(set(days.values())) == 1 for days in by_customer.values())
    assert {next(iter(days.values())) for days in by_customer.values()} == {a.pk, b.pk}


def test_a_deactivated_variant_releases_its_customers(step):
    a, b = two_variants(step, weight_a=1, weight_b=1000)  # a fresh draw would give B
    SentNoticeFactory(step=step, customer_id=CustomerFactory().pk, variant=a)
    customer_id = Notice.objects.get().customer_id
    assert variants.assign(step, [customer_id], on=ON, rng=random.Random(1)) == {
        customer_id: (a.pk, "weights")
    }
    a.is_active = False
    a.save()
    assert variants.assign(step, [customer_id], on=ON, rng=random.Random(1)) == {
        customer_id: (b.pk, "weights")
    }


def test_the_notice_is_sent_with_its_variants_template(step):
    template = TemplateFactory(
        name="Short and firm", subject="Pay {{ invoice_count }} invoice(s) today"
    )
    StepVariantFactory(step=step, label="firm", template=template)
    customer = CustomerFactory(name="Acme Rockets")
    ContactFactory(customer=customer, email="ap@acme.example", is_primary=True)
    plan_customers(0, ON - dt.timedelta(days=7), customers=[customer])
    planner.plan(on=ON, rng=random.Random(1))
    Notice.objects.filter(customer=customer, channel="sms").delete()
    result = sender.send_due(now=MONDAY_10AM)
    assert result.sent == 1
    [message] = mail.outbox
    assert message.subject == "Pay 1 invoice(s) today"
    assert "Short and firm for Acme Rockets." in message.body


# --- Thompson sampling ------------------------------------------------------------------


def history(variant, *, sent: int, paid: int, sent_on: dt.date):
    """`sent` notices with this variant sent on `sent_on`, `paid` of them paid 5 days later."""
    for n in range(sent):
        customer = CustomerFactory()
        invoice = InvoiceFactory(customer=customer, due_on=sent_on - dt.timedelta(days=7))
        SentNoticeFactory(
            step=variant.step,
            customer=customer,
            variant=variant,
            variant_drawn_by="weights",
            sent_on=sent_on,
            invoices=[invoice],
        )
        if n < paid:
            paid_on = sent_on + dt.timedelta(days=5)
            payment = ledger.record_payment(
                amount=invoice.amount, currency="USD", received_on=paid_on, customer=customer
            )
            ledger.allocate(payment=payment, invoice=invoice, on=paid_on)


def shares(assigned: dict, variant) -> float:
    return sum(1 for variant_id, _ in assigned.values() if variant_id == variant.pk) / len(assigned)


@pytest.fixture
def experiment(step, settings):
    settings.EXPERIMENT_MIN_SAMPLE = 20
    step.adaptive_variants = True
    step.save()
    better, worse = two_variants(step)
    history(better, sent=20, paid=18, sent_on=ON - dt.timedelta(days=30))
    history(worse, sent=19, paid=2, sent_on=ON - dt.timedelta(days=30))
    # Sent 10 days ago: its 14-day outcome is not known yet, so it is no sample.
    history(worse, sent=5, paid=0, sent_on=ON - dt.timedelta(days=10))
    return step, better, worse


NEW_CUSTOMERS = range(100_000, 100_400)


def test_before_the_minimum_sample_the_weights_decide(experiment):
    step, better, worse = experiment
    assert variants.variant_outcomes(step, on=ON) == {better.pk: (20, 18), worse.pk: (19, 2)}
    assigned = variants.assign(step, NEW_CUSTOMERS, on=ON, rng=random.Random(5))
    assert {drawn_by for _, drawn_by in assigned.values()} == {"weights"}
    assert 0.4 < shares(assigned, better) < 0.6


def test_after_the_minimum_sample_thompson_sampling_favours_the_better_variant(experiment):
    step, better, worse = experiment
    history(worse, sent=1, paid=0, sent_on=ON - dt.timedelta(days=20))  # 20 known now
    assigned = variants.assign(step, NEW_CUSTOMERS, on=ON, rng=random.Random(5))
    assert {drawn_by for _, drawn_by in assigned.values()} == {"thompson"}
    assert shares(assigned, better) > 0.95
    # The same history on a step that is not adaptive keeps drawing by weight.
    step.adaptive_variants = False
    step.save()
    assigned = variants.assign(step, NEW_CUSTOMERS, on=ON, rng=random.Random(5))
    assert {drawn_by for _, drawn_by in assigned.values()} == {"weights"}
    assert 0.4 < shares(assigned, better) < 0.6


def test_thompson_assignments_are_recorded_by_the_planner(experiment):
    step, better, worse = experiment
    history(worse, sent=1, paid=0, sent_on=ON - dt.timedelta(days=20))
    plan_customers(10, ON - dt.timedelta(days=7))
    planner.plan(on=ON, rng=random.Random(8))
    planned = Notice.objects.filter(step=step, planned_on=ON)
    assert planned.count() == 10
    assert set(planned.values_list("variant_drawn_by", flat=True)) == {StepVariant.DrawnBy.THOMPSON}
    assert set(planned.values_list("variant_id", flat=True)) == {better.pk}


# --- the console ------------------------------------------------------------------------


def test_a_manager_adds_variants_on_the_steps_page(client, manager, step):
    template = TemplateFactory(name="Short and firm")
    client.force_login(manager)
    policy_page = client.get(f"/admin/dunning/policy/{step.policy_id}/change/")
    url = f"/admin/dunning/step/{step.pk}/change/"
    assert url in policy_page.content.decode()  # each step links to its own page
    assert client.get(url).status_code == 200
    response = client.post(
        url,
        {
            "name": step.name,
            "offset_days": step.offset_days,
            "channel": step.channel,
            "template": step.template_id,
            "tone": step.tone,
            "approval": step.approval,
            "is_active": "on",
            "adaptive_variants": "on",
            "variants-TOTAL_FORMS": "1",
            "variants-INITIAL_FORMS": "0",
            "variants-0-label": "firm",
            "variants-0-template": template.pk,
            "variants-0-weight": "3",
            "variants-0-is_active": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    step.refresh_from_db()
    assert step.adaptive_variants
    assert list(step.variants.values_list("label", "template_id", "weight")) == [
        ("firm", template.pk, 3)
    ]


def test_an_agent_sees_a_steps_variants_but_cannot_change_them(client, agent, step):
    StepVariantFactory(step=step, label="firm")
    client.force_login(agent)
    url = f"/admin/dunning/step/{step.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and "firm" in page.content.decode()
    assert client.post(url, {"name": "changed"}).status_code == 403
