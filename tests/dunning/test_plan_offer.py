"""Plan offers (dunning/offers.py): when an agent's payment plan becomes active (one click
on the customer page's suggestion, or a manager's approval), the customer receives the plan
as one dunning notice, sent by the one sender through its guard."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from accounts import portal_links
from accounts.models import Activity, Customer
from cases import plans
from cases.models import PaymentPlan
from cases.plan_suggestions import suggest_plan
from dunning import offers, planner, sender
from dunning.models import Notice, Policy, Step, Template
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    PaymentFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime.combine(ON, dt.time(10), tzinfo=CHICAGO)


@pytest.fixture(autouse=True)
def rules(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"
    settings.SITE_URL = "https://collections.example.com"


def struggling(agent, *, owed=("2500.00", "1500.00"), language="en", **fields):
    """Pays about 1,000 a month, owes more, all predicted late: a plan is suggested."""
    customer = CustomerFactory(
        assigned_agent=agent,
        timezone="America/Chicago",
        country="US",
        kind=Customer.Kind.BUSINESS,
        language=language,
        **fields,
    )
    ContactFactory(customer=customer, name="Dana", email="ap@acme.example", is_primary=True)
    for n in range(1, 7):
        PaymentFactory(
            customer=customer,
            amount=D("1000.00"),
            currency="USD",
            received_on=ON - dt.timedelta(days=30 * n),
        )
    for amount in owed:
        invoice = InvoiceFactory(
            customer=customer, amount=D(amount), currency="USD", due_on=ON + dt.timedelta(days=5)
        )
        InvoicePredictionFactory(invoice=invoice, probability_late=D("0.8000"))
    return customer


def accept(client, customer):
    suggestion = suggest_plan(customer, as_of=ON)
    assert suggestion is not None
    response = client.post(
        reverse("admin:cases_paymentplan_suggested", args=[customer.pk]),
        {"currency": suggestion.currency, "key": suggestion.key},
    )
    assert response.status_code == 302
    return suggestion


def offers_to(customer):
    return Notice.objects.filter(customer=customer, step__policy__purpose="plan_offer")


def test_the_offer_policy_step_and_templates_are_seeded():
    step = Step.objects.get(policy__purpose=Policy.Purpose.PLAN_OFFER)
    assert (step.policy.name, step.offset_days, step.channel, step.template.name) == (
        "Payment plan offers",
        0,
        "email",
        "Payment plan offer",
    )
    assert set(
        Template.objects.filter(name="Payment plan offer").values_list("language", flat=True)
    ) == {"en", "de", "fr", "es"}


def test_one_click_plans_one_offer_that_the_sender_sends_with_the_installments(client, agent):
    customer = struggling(agent)
    client.force_login(agent)
    suggestion = accept(client, customer)
    plan = PaymentPlan.objects.get(customer=customer)
    [notice] = offers_to(customer)
    assert (notice.status, notice.planned_on, notice.channel) == (
        Notice.Status.PLANNED,
        ON,
        "email",
    )
    assert notice.installment == plan.installments.get(sequence=1)
    assert not mail.outbox  # planned, not sent: the normal sending sends it

    # The project's rendering, as the preview and the sender use it.
    context, content = sender.render_content(
        notice, invoices=list(plan.invoices.all()), contact=None, on=ON
    )
    assert [line["due_on"] for line in context["plan_installments"]] == [
        d.isoformat() for d, _a in suggestion.installments
    ]
    assert content["subject"] == "Your payment plan: 4 installments, USD 4000.00 in all"

    result = sender.send_due(now=MONDAY_10AM)
    assert result.sent == 1
    [message] = mail.outbox
    assert message.to == ["ap@acme.example"]
    assert message.subject == "Your payment plan: 4 installments, USD 4000.00 in all"
    for n, (due_on, amount) in enumerate(suggestion.installments, start=1):
        assert f"{n}. due {due_on.isoformat()}: USD {amount}" in message.body
    assert "Total: USD 4000.00" in message.body
    assert "You can pay at https://collections.example.com/" in message.body
    notice.refresh_from_db()
    assert notice.status == Notice.Status.SENT and notice.body_text == portal_links.mask(
        message.body
    )
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.EMAIL)
    assert entry.text.startswith(f"Payment plan offer: plan #{plan.pk}, USD 4000.00")
    # An offer is no installment reminder: the installment is not marked reminded.
    assert plan.installments.get(sequence=1).reminded_at is None
    # Tonight's planner plans no second offer, and the sender has nothing more.
    planner.plan(on=ON + dt.timedelta(days=1))
    assert offers_to(customer).count() == 1


def test_reposting_or_offering_again_makes_no_second_notice(client, agent):
    customer = struggling(agent)
    client.force_login(agent)
    suggestion = accept(client, customer)
    client.post(
        reverse("admin:cases_paymentplan_suggested", args=[customer.pk]),
        {"currency": suggestion.currency, "key": suggestion.key},
    )
    plan = PaymentPlan.objects.get(customer=customer)
    assert offers.plan_offer(plan, on=ON) == []
    assert offers.plan_offer(plan, on=ON + dt.timedelta(days=2)) == []
    assert offers_to(customer).count() == 1


def test_a_do_not_contact_customer_gets_the_guards_outcome(client, agent):
    customer = struggling(agent, do_not_contact=True)
    client.force_login(agent)
    accept(client, customer)
    [notice] = offers_to(customer)
    result = sender.send_due(now=MONDAY_10AM)
    assert result.sent == 0 and not mail.outbox
    notice.refresh_from_db()
    assert notice.status == Notice.Status.SKIPPED
    assert "do not contact" in notice.reason.lower() or "do-not-contact" in notice.reason.lower()


def test_a_plan_awaiting_approval_is_offered_once_the_manager_approves_it(
    client, agent, manager, settings
):
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "3000"
    customer = struggling(agent)
    client.force_login(agent)
    accept(client, customer)
    plan = PaymentPlan.objects.get(customer=customer)
    assert plan.status == PaymentPlan.Status.PROPOSED
    assert not offers_to(customer).exists()
    assert sender.send_due(now=MONDAY_10AM).sent == 0

    plans.approve_plan(plan=plan, by=manager)
    [notice] = offers_to(customer)
    assert (notice.status, notice.planned_on) == (Notice.Status.PLANNED, ON)
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    assert "Total: USD 4000.00" in mail.outbox[0].body


def test_a_rejected_plan_is_never_offered(client, agent, manager, settings):
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "3000"
    customer = struggling(agent)
    client.force_login(agent)
    accept(client, customer)
    plans.reject_plan(
        plan=PaymentPlan.objects.get(customer=customer), by=manager, reason="Too long"
    )
    assert not offers_to(customer).exists()


def test_an_offer_step_set_to_always_approve_waits_in_the_approval_queue(client, agent):
    Step.objects.filter(policy__purpose="plan_offer").update(approval=Step.Approval.ALWAYS)
    customer = struggling(agent)
    client.force_login(agent)
    accept(client, customer)
    [notice] = offers_to(customer)
    assert notice.status == Notice.Status.AWAITING_APPROVAL
    assert sender.send_due(now=MONDAY_10AM).sent == 0


def test_no_offer_when_the_step_is_off_or_the_system_made_the_plan(client, agent):
    customer = struggling(agent)
    invoices = list(customer.invoices.all())
    plans.propose_plan(
        customer=customer,
        invoices=invoices[:1],
        installments=[(ON + dt.timedelta(days=7), invoices[0].open_balance)],
        by=None,
        today=ON,
    )
    assert not offers_to(customer).exists()
    Step.objects.filter(policy__purpose="plan_offer").update(is_active=False)
    other = struggling(agent)
    client.force_login(agent)
    accept(client, other)
    assert not offers_to(other).exists()


def test_the_offer_follows_the_customers_language(client, agent):
    customer = struggling(agent, language="de")
    client.force_login(agent)
    accept(client, customer)
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    [message] = mail.outbox
    assert message.subject == "Ihr Zahlungsplan: 4 Raten, insgesamt 4.000,00 USD"
    assert "1. fällig am 30. November 2026: 1.000,00 USD" in message.body
