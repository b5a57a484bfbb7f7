"""Installment reminders are notices: planned from active plans, sent by the one sender."""

import datetime as dt
import threading
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection

from accounts import portal_links, services
from accounts.models import Activity, Customer
from cases import plans
from cases.models import Installment
from dunning import planner, sender
from dunning.models import ContactRule, Notice, Policy, Step, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
US_NOTICE = "This is an attempt to collect a debt"


def days(n: int) -> dt.date:
    return ON + dt.timedelta(days=n)


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), tzinfo=CHICAGO)


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"
    settings.SITE_URL = "https://collections.example.com"


def customer_with_plan(*, kind=Customer.Kind.BUSINESS, language="en", first_due=7, number="PLAN-1"):
    """A customer in an active three-installment plan, the first due in `first_due` days."""
    customer = CustomerFactory(
        timezone="America/Chicago", kind=kind, language=language, country="US"
    )
    ContactFactory(customer=customer, name="Dana", email="ap@acme.example", is_primary=True)
    invoice = InvoiceFactory(customer=customer, number=number, amount=Decimal("300.00"))
    plan = plans.propose_plan(
        customer=customer,
        invoices=[invoice],
        installments=[(days(first_due + 30 * n), Decimal("100.00")) for n in range(3)],
        by=None,
        today=ON,
    )
    return customer, plan, invoice


def remind(day: dt.date, hour: int = 10):
    """The nightly plan of that day, then the sender at `hour` in Chicago."""
    planned = planner.plan(on=day)
    return planned, sender.send_due(now=at(day, hour))


def test_the_reminder_step_is_seeded_three_days_before_the_due_date():
    step = Step.objects.get(policy__purpose=Policy.Purpose.INSTALLMENTS)
    assert (step.offset_days, step.channel, step.template.name) == (
        -3,
        "email",
        "Installment reminder",
    )
    assert set(
        Template.objects.filter(name="Installment reminder").values_list("language", flat=True)
    ) == {"en", "de", "fr", "es"}


def test_a_reminder_is_planned_as_a_notice_and_sent_once():
    customer, plan, _invoice = customer_with_plan()  # first due days(7)
    assert remind(days(3))[0].planned == 0
    planned, sent = remind(days(4))
    assert (planned.planned, sent.sent) == (1, 1)
    [message] = mail.outbox
    assert message.to == ["ap@acme.example"]
    assert message.subject == "Payment plan: installment 1 of 3 due on 2026-11-30"
    assert "Hello Dana" in message.body and "USD 100.00" in message.body
    first = plan.installments.get(sequence=1)
    notice = Notice.objects.get(installment=first)
    assert notice.status == Notice.Status.SENT and notice.body_text == portal_links.mask(
        message.body
    )
    first.refresh_from_db()
    assert first.reminded_at == at(days(4))
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.EMAIL)
    assert entry.details["installment"] == first.pk and entry.details["notice"] == notice.pk
    assert "Installment reminder: 1 of 3" in entry.text and "to ap@acme.example" in entry.text
    # Later nights plan nothing more for it (one notice per installment and step, ever).
    assert remind(days(5))[0].planned == 0 and remind(days(6))[0].planned == 0
    assert len(mail.outbox) == 1


def test_a_missed_night_is_caught_up_until_the_due_date():
    _customer, plan, _invoice = customer_with_plan(first_due=2)
    assert remind(ON)[1].sent == 1
    assert Notice.objects.get().installment == plan.installments.get(sequence=1)


def test_the_reminder_follows_the_customers_language_and_edited_template():
    customer_with_plan(language="de")
    remind(days(4))
    [message] = mail.outbox
    assert message.subject == "Zahlungsplan: Rate 1 von 3 fällig am 30. November 2026"
    assert "100,00 USD" in message.body
    Template.objects.filter(name="Installment reminder", language="en").update(
        subject="{{ installment_number }}/{{ installment_count }} due {{ installment_due_on }}",
        body_text="{{ contact_name }}: {{ currency }} {{ installment_amount }}"
        " for {{ invoices.0.number }}",
    )
    customer_with_plan(first_due=8, number="PLAN-2")
    remind(days(5))
    assert mail.outbox[1].subject == "1/3 due 2026-12-01"
    assert mail.outbox[1].body.startswith("Dana: USD 100.00 for PLAN-2")


def test_a_consumers_reminder_carries_the_disclosure_and_the_unsubscribe_line():
    """The guard every notice passes: the old reminder e-mail had neither."""
    customer_with_plan(kind=Customer.Kind.CONSUMER)
    remind(days(4))
    [message] = mail.outbox
    assert US_NOTICE in message.body
    assert "unsubscribe here: https://collections.example.com/dunning/unsubscribe/" in (
        message.body
    )
    assert message.extra_headers["List-Unsubscribe"].startswith("<https://collections")


def test_reminders_honour_opt_outs_do_not_contact_and_contact_hours():
    customer, plan, _invoice = customer_with_plan()
    customer.contacts.update(email_opted_out_at=at(ON))
    _planned, result = remind(days(4))
    assert result.suppressed == 1 and not mail.outbox
    customer.contacts.update(email_opted_out_at=None)

    customer2, _plan2, _ = customer_with_plan(first_due=8, number="PLAN-2")
    Customer.objects.filter(pk=customer2.pk).update(do_not_contact=True)
    assert remind(days(5))[0].suppressed == 1  # not even planned while it holds
    Customer.objects.filter(pk=customer2.pk).update(do_not_contact=False)

    planned, result = remind(days(6), hour=23)  # planned, but 11 pm in Chicago
    assert planned.planned == 1 and result.deferred == 1 and not mail.outbox
    assert sender.send_due(now=at(days(7))).sent == 1
    assert mail.outbox[0].subject.endswith("due on 2026-12-01")
    assert not Installment.objects.filter(plan=plan, reminded_at__isnull=False).exists()


def test_reminders_count_against_the_contact_caps():
    customer, _plan, _invoice = customer_with_plan()
    ContactRule.objects.update(max_contacts_per_7_days=1)
    InvoiceFactory(customer=CustomerFactory(), due_on=days(4))  # someone else's: no effect
    remind(days(4))
    assert len(mail.outbox) == 1
    # A second installment reminder inside the same week waits for the cap.
    Installment.objects.filter(plan__customer=customer, sequence=2).update(due_on=days(6))
    _planned, result = remind(days(5))
    assert result.deferred == 1 and len(mail.outbox) == 1
    notice = Notice.objects.get(installment__sequence=2)
    assert "contact cap" in notice.reason


def test_an_installment_paid_before_its_reminder_goes_out_cancels_it(clock):
    customer, _plan, invoice = customer_with_plan()
    planner.plan(on=days(4))
    clock.move_to(at(days(4)))  # the money arrives that day (future payments are refused)
    payment = services.record_payment(
        amount="100.00", currency="USD", received_on=days(4), customer=customer
    )
    services.allocate(payment=payment, invoice=invoice, amount=Decimal("100.00"), on=days(4))
    assert sender.send_due(now=at(days(4))).cancelled == 1
    assert not mail.outbox
    assert "paid since planning" in Notice.objects.get().reason


def test_proposed_plans_get_no_reminders(settings):
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "100"  # this plan now waits for a manager
    customer_with_plan(first_due=2)
    assert remind(ON)[0].planned == 0 and not mail.outbox


def test_a_reminder_step_set_to_always_approve_waits_for_a_manager():
    Step.objects.filter(policy__purpose=Policy.Purpose.INSTALLMENTS).update(approval="always")
    customer_with_plan(first_due=2)
    planned, result = remind(ON)
    assert planned.awaiting_approval == 1 and result.sent == 0


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_workers_sending_at_once_send_each_reminder_once(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    customer = CustomerFactory(timezone="America/Chicago")
    ContactFactory(customer=customer, email="ap@acme.example", is_primary=True)
    invoice = InvoiceFactory(customer=customer, amount=Decimal("300.00"))
    plans.propose_plan(
        customer=customer,
        invoices=[invoice],
        installments=[(days(2), Decimal("150.00")), (days(3), Decimal("150.00"))],
        by=None,
        today=ON,
    )
    ContactRule.objects.update(max_contacts_per_7_days=10)
    assert planner.plan(on=ON).planned == 2
    barrier = threading.Barrier(2)
    sent, errors = [], []

    def worker():
        try:
            barrier.wait()
            sent.append(sender.send_due(now=at(ON)).sent)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sum(sent) == 2 and len(mail.outbox) == 2
    assert Activity.objects.filter(kind=Activity.Kind.EMAIL).count() == 2
