"""Steps that apply only to invoices predicted late (Step.min_probability_late), and the
proactive steps seeded with such a threshold (dunning 0018)."""

import datetime as dt
import importlib
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Activity, Customer
from cases.models import InvoicePrediction, Task
from dunning import planner, rendering, sender
from dunning.models import Notice, NoticeInvoice, Policy, Step, Template
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
)

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)
IN_10_DAYS = ON + dt.timedelta(days=10)
SUBJECT = "Invoice {} is due in 10 days: pay now or set up automatic payment"


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def proactive(policy: str = "Standard") -> Step:
    return Step.objects.get(policy__name=policy, offset_days=-10, channel="email")


def predicted(customer, number: str, probability: str | None, *, due_on=IN_10_DAYS):
    invoice = InvoiceFactory(customer=customer, number=number, due_on=due_on)
    if probability is not None:
        InvoicePredictionFactory(invoice=invoice, probability_late=Decimal(probability))
    return invoice


def planned_numbers(step: Step) -> set[str]:
    return set(NoticeInvoice.objects.filter(step=step).values_list("invoice__number", flat=True))


def test_the_step_reaches_invoices_predicted_late_at_or_above_its_threshold():
    customer = CustomerFactory(segment=Customer.Segment.STANDARD)
    predicted(customer, "AT", "0.5000")
    predicted(customer, "ABOVE", "0.7300")
    predicted(customer, "BELOW", "0.4999")
    planner.plan(on=ON)
    assert planned_numbers(proactive()) == {"AT", "ABOVE"}
    # One notice for the customer, listing both.
    assert Notice.objects.get(customer=customer, step=proactive()).lines.count() == 2


def test_an_invoice_without_a_prediction_is_spared_the_step_but_not_the_others():
    """No prediction means not known to be likely late: the step is for those that are."""
    customer = CustomerFactory()
    predicted(customer, "UNSCORED", None)
    predicted(customer, "UNSCORED-SOON", None, due_on=ON + dt.timedelta(days=3))
    planner.plan(on=ON)
    assert planned_numbers(proactive()) == set()
    friendly = Step.objects.get(policy__name="Standard", offset_days=-3)
    assert planned_numbers(friendly) == {"UNSCORED-SOON"}


def test_a_step_without_a_threshold_ignores_predictions():
    customer = CustomerFactory()
    predicted(customer, "GOOD-PAYER", "0.0100", due_on=ON + dt.timedelta(days=3))
    planner.plan(on=ON)
    friendly = Step.objects.get(policy__name="Standard", offset_days=-3)
    assert planned_numbers(friendly) == {"GOOD-PAYER"}
    line = NoticeInvoice.objects.get(step=friendly)
    assert line.probability_late == Decimal("0.0100")  # kept for every step, when known


def test_the_line_keeps_the_probability_of_the_night_it_was_planned():
    customer = CustomerFactory()
    invoice = predicted(customer, "P", "0.7300")
    planner.plan(on=ON)
    InvoicePrediction.objects.filter(invoice=invoice).update(probability_late=Decimal("0.1"))
    line = NoticeInvoice.objects.get(invoice=invoice)
    assert (line.step, line.probability_late) == (proactive(), Decimal("0.7300"))


def test_raising_the_threshold_spares_more_invoices():
    Step.objects.filter(pk=proactive().pk).update(min_probability_late=Decimal("0.8"))
    customer = CustomerFactory()
    predicted(customer, "MEDIUM", "0.7300")
    predicted(customer, "HIGH", "0.9000")
    planner.plan(on=ON)
    assert planned_numbers(proactive()) == {"HIGH"}


def test_the_condition_is_in_the_step_query_so_queries_stay_flat():
    def queries_for(n: int) -> int:
        for i in range(n):
            customer = CustomerFactory()
            predicted(customer, f"N{n}-{i}-LATE", "0.9")
            predicted(customer, f"N{n}-{i}-FINE", "0.1")
            predicted(customer, f"N{n}-{i}-NONE", None)
        with CaptureQueriesContext(connection) as captured:
            result = planner.plan(on=ON)
        assert result.planned == n  # one proactive notice per customer, this run
        return len(captured)

    assert queries_for(2) == queries_for(20)


def test_the_threshold_is_between_0_and_1():
    step = proactive()
    step.min_probability_late = Decimal("1.5")
    with pytest.raises(ValidationError):
        step.full_clean()
    with pytest.raises(IntegrityError), transaction.atomic():
        Step.objects.filter(pk=step.pk).update(min_probability_late=Decimal("-0.1"))
    Step.objects.filter(pk=step.pk).update(min_probability_late=None)  # no condition


def test_the_sent_reminder_says_on_the_timeline_why_it_applied():
    customer = CustomerFactory(name="Acme Rockets")
    ContactFactory(customer=customer, name="Dana", email="ap@acme.example", is_primary=True)
    predicted(customer, "INV-12345", "0.7300")
    planner.plan(on=ON)
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    [message] = mail.outbox
    assert message.subject == SUBJECT.format("INV-12345")
    assert "You can pay now at http" in message.body
    entry = Activity.objects.get(customer=customer, kind="email")
    assert "predicted 73% likely to be paid late; step from 50%" in entry.text
    assert entry.details["probability_late"] == "0.7300"
    assert entry.details["min_probability_late"] == "0.5000"


def test_a_strategic_account_predicted_late_gets_a_white_glove_call_before_the_due_date():
    customer = CustomerFactory(segment=Customer.Segment.STRATEGIC, name="Big Co")
    predicted(customer, "BIG-1", "0.8100", due_on=ON + dt.timedelta(days=7))
    spared = CustomerFactory(segment=Customer.Segment.STRATEGIC)
    predicted(spared, "GOOD-1", "0.2000", due_on=ON + dt.timedelta(days=7))
    planner.plan(on=ON)
    notice = Notice.objects.get(step__name="White-glove call (predicted late)")
    assert (notice.customer, notice.channel) == (customer, "call")
    sender.send_due(now=MONDAY_10AM)
    task = Task.objects.get(customer=customer)
    assert task.kind == Task.Kind.CALL
    assert task.title == "Call Big Co: USD 100.00 falls due on 2026-11-30 (predicted late: 81%)"
    assert task.details["probability_late"] == {"BIG-1": "0.8100"}
    assert not Task.objects.filter(customer=spared).exists()


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("en", "Invoice P-1 is due in 10 days: pay now or set up automatic payment"),
        ("de", "Rechnung P-1 ist in 10 Tagen fällig: jetzt bezahlen oder automatische Zahlung"),
        ("fr", "La facture P-1 arrive à échéance dans 10 jours : payez ou passez au paiement"),
        ("es", "La factura P-1 vence en 10 días: pague ahora o configure el pago automático"),
    ],
)
def test_the_proactive_template_renders_every_variable_in_each_language(language, subject, agent):
    customer = CustomerFactory(language=language, assigned_agent=agent)
    contact = ContactFactory(customer=customer, name="Dana")
    one = [InvoiceFactory(customer=customer, number="P-1", due_on=IN_10_DAYS)]
    template = proactive().template
    context = rendering.notice_context(customer=customer, invoices=one, contact=contact, on=ON)
    content = rendering.render_notice(
        template, context, customer=customer, contact=contact, channel="email"
    )
    assert content["language"] == language
    assert content["subject"].startswith(subject)
    assert "P-1" in content["body_text"] and context["pay_link"] in content["body_text"]
    translation = Template.objects.get(pk=content["template_id"])
    assert rendering.empty_variables(translation, context) == []
    two = [*one, InvoiceFactory(customer=customer, number="P-2", due_on=IN_10_DAYS)]
    context = rendering.notice_context(customer=customer, invoices=two, contact=contact, on=ON)
    content = rendering.render_notice(
        template, context, customer=customer, contact=contact, channel="email"
    )
    assert content["subject"].startswith("2 ") and "P-2" in content["body_text"]


def test_seeded_proactive_steps_exist_after_migrate():
    for name in ("Standard", "High risk"):
        step = proactive(name)
        assert (step.tone, step.min_probability_late, step.template.name) == (
            "reminder",
            Decimal("0.5000"),
            "proactive-pre-due",
        )
    call = Step.objects.get(policy__segment="strategic", offset_days=-7, channel="call")
    assert call.min_probability_late == Decimal("0.5000")
    languages = Template.objects.filter(name="proactive-pre-due").values_list("language", flat=True)
    assert {"en", "de", "fr", "es"} <= set(languages)
    installments = Policy.objects.get(purpose=Policy.Purpose.INSTALLMENTS)
    assert not installments.steps.filter(min_probability_late__isnull=False).exists()
    # Not a second strategic policy: the seeded one got the call.
    assert Policy.objects.filter(segment="strategic").count() == 1


def test_the_step_inline_edits_the_threshold_and_the_notice_page_shows_why(admin_client):
    policy = Policy.objects.get(name="Standard")
    page = admin_client.get(reverse("admin:dunning_policy_change", args=[policy.pk]))
    assert b"min_probability_late" in page.content
    customer = CustomerFactory()
    predicted(customer, "WHY-1", "0.7300")
    planner.plan(on=ON)
    notice = Notice.objects.get(customer=customer)
    page = admin_client.get(reverse("admin:dunning_notice_change", args=[notice.pk]))
    text = page.content.decode()
    assert "WHY-1: predicted 73% likely to be paid late" in text
    assert "This step applies from 50%." in text


def test_the_seed_adds_a_call_only_strategic_policy_where_there_is_none_and_goes_back():
    from django.apps import apps

    seed = importlib.import_module("dunning.migrations.0018_proactive_steps")
    Policy.objects.filter(segment="strategic").delete()
    seed.forward(apps, None)
    seed.forward(apps, None)  # twice: nothing more
    policy = Policy.objects.get(segment="strategic")
    assert policy.name == "Strategic accounts (white-glove)"
    steps = list(policy.steps.values_list("offset_days", "channel", "min_probability_late"))
    assert steps == [
        (-7, "call", Decimal("0.5000")),
        (3, "call", None),
        (10, "call", None),
        (30, "escalation", None),
    ]
    assert proactive().min_probability_late == Decimal("0.5000")  # kept, not duplicated
    seed.backward(apps, None)
    assert not Policy.objects.filter(segment="strategic").exists()
    assert not Step.objects.filter(min_probability_late__isnull=False).exists()
    assert not Template.objects.filter(name="proactive-pre-due").exists()
