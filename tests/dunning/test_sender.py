import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import portal_links
from accounts import services as ledger
from accounts.models import Activity, Customer
from dunning import planner, sender
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def planned_email(customer=None, *, invoices=2, **customer_fields):
    customer = customer or CustomerFactory(**customer_fields)
    ContactFactory(customer=customer, name="Dana", email="ap@acme.example", is_primary=True)
    for n in range(invoices):
        InvoiceFactory(
            customer=customer, number=f"INV-{customer.pk}-{n}", due_on=ON - dt.timedelta(days=7)
        )
    planner.plan(on=ON)
    # These tests are about the e-mail; the step's SMS twin is covered in test_sms.py.
    Notice.objects.filter(customer=customer, channel="sms").delete()
    return Notice.objects.get(customer=customer, channel="email")


def test_sends_one_email_listing_every_invoice_and_keeps_the_exact_text():
    notice = planned_email(name="Acme Rockets")
    result = sender.send_due(now=MONDAY_10AM)
    assert result.sent == 1
    [message] = mail.outbox
    assert message.to == ["ap@acme.example"]
    assert message.subject == "Overdue: please pay now"
    assert f"INV-{notice.customer_id}-0" in message.body
    assert f"INV-{notice.customer_id}-1" in message.body
    assert "USD 200.00" in message.body
    notice.refresh_from_db()
    # Kept exactly, but for the portal link's token (reading the notice must not sign in).
    assert "/portal/l/" in message.body and "/portal/l/…/" not in message.body
    assert notice.status == "sent" and notice.body_text == portal_links.mask(message.body)
    assert "/portal/l/…/" in notice.body_text
    assert notice.provider_message_id == message.extra_headers["Message-ID"]
    assert Activity.objects.filter(kind="email", details__notice=notice.pk).count() == 2


def test_a_second_run_or_retry_never_sends_twice():
    notice = planned_email()
    sender.send_due(now=MONDAY_10AM)
    assert sender.send_next(now=MONDAY_10AM, notice_id=notice.pk) is None
    assert sender.send_due(now=MONDAY_10AM).sent == 0
    assert len(mail.outbox) == 1


def test_payment_after_planning_cancels_the_notice():
    notice = planned_email(invoices=1)
    invoice = notice.lines.get().invoice
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("100.00"))
    ledger.allocate(payment=payment, invoice=invoice)
    result = sender.send_due(now=MONDAY_10AM)
    assert result.cancelled == 1 and not mail.outbox
    notice.refresh_from_db()
    assert (notice.status, notice.reason) == ("cancelled", "paid or closed since planning")


def test_partly_paid_since_planning_lists_only_what_is_still_open():
    notice = planned_email(invoices=2)
    first = notice.lines.order_by("invoice__number").first().invoice
    payment = PaymentFactory(customer=first.customer, amount=Decimal("100.00"))
    ledger.allocate(payment=payment, invoice=first)
    sender.send_due(now=MONDAY_10AM)
    assert first.number not in mail.outbox[0].body


def test_quiet_hours_defer_to_the_next_morning_in_the_customers_zone():
    notice = planned_email()
    late = dt.datetime(2026, 11, 23, 22, 30, tzinfo=CHICAGO)
    assert sender.send_due(now=late).deferred == 1
    notice.refresh_from_db()
    assert notice.status == "deferred"
    assert notice.not_before_at == dt.datetime(2026, 11, 24, 8, 0, tzinfo=CHICAGO)
    assert notice.reason == "deferred: quiet hours until 08:00 America/Chicago"
    assert sender.send_due(now=notice.not_before_at).sent == 1


def test_no_contact_on_sundays():
    planned_email()
    saturday_night = dt.datetime(2026, 11, 28, 21, 30, tzinfo=CHICAGO)
    sender.send_due(now=saturday_night)
    notice = Notice.objects.get(channel="email")
    assert notice.not_before_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=CHICAGO)


def test_a_pause_set_after_planning_defers_until_it_ends():
    notice = planned_email()
    Customer.objects.filter(pk=notice.customer_id).update(
        dunning_paused_until=ON + dt.timedelta(days=3), dunning_pause_reason="AP on holiday"
    )
    assert sender.send_due(now=MONDAY_10AM).deferred == 1
    notice.refresh_from_db()
    assert notice.not_before_at == dt.datetime(2026, 11, 27, 8, 0, tzinfo=CHICAGO)
    assert "AP on holiday" in notice.reason


def test_do_not_contact_set_after_planning_suppresses():
    notice = planned_email()
    Customer.objects.filter(pk=notice.customer_id).update(do_not_contact=True)
    assert sender.send_due(now=MONDAY_10AM).suppressed == 1
    notice.refresh_from_db()
    assert notice.status == "skipped" and "do not contact" in notice.reason
    assert not mail.outbox


def test_email_opt_out_suppresses_that_channel():
    notice = planned_email()
    notice.customer.contacts.update(email_opted_out_at=MONDAY_10AM)
    assert sender.send_due(now=MONDAY_10AM).suppressed == 1
    notice.refresh_from_db()
    assert notice.reason == "no email contact allowed"


def test_seven_contacts_in_seven_days_defers_the_eighth(settings):
    notice = planned_email()
    for day in range(7):
        Notice.objects.create(
            customer=notice.customer,
            step=notice.step,
            channel="email",
            planned_on=ON - dt.timedelta(days=day + 1),
            status="sent",
            sent_at=MONDAY_10AM - dt.timedelta(days=day, hours=1),
        )
    assert sender.send_due(now=MONDAY_10AM).deferred == 1
    notice.refresh_from_db()
    assert notice.reason.startswith("deferred: contact cap: 7 contacts in the last 7 days")
    assert notice.not_before_at == MONDAY_10AM - dt.timedelta(days=6, hours=1) + dt.timedelta(
        days=7
    )


def test_consumers_get_at_most_three_contacts_a_month():
    customer = CustomerFactory(kind=Customer.Kind.CONSUMER)
    notice = planned_email(customer)
    for day in range(3):
        Notice.objects.create(
            customer=customer,
            step=notice.step,
            channel="email",
            planned_on=ON,
            status="sent",
            sent_at=dt.datetime(2026, 11, 2 + day * 7, 10, tzinfo=CHICAGO),
        )
    assert sender.send_due(now=MONDAY_10AM).deferred == 1
    notice.refresh_from_db()
    assert notice.not_before_at.astimezone(CHICAGO).date() == dt.date(2026, 12, 1)


def test_unknown_template_variable_fails_loudly_and_sends_nothing():
    notice = planned_email()
    template = notice.step.template
    template.body_text = "Hello {{ contact_nmae }}"
    template.save()
    assert sender.send_due(now=MONDAY_10AM).failed == 1
    notice.refresh_from_db()
    assert notice.status == "failed" and "contact_nmae" in notice.reason
    assert not mail.outbox


def test_an_invoice_paused_after_planning_defers_the_notice_until_the_pause_ends():
    notice = planned_email(invoices=1)
    invoice = notice.lines.get().invoice
    type(invoice).objects.filter(pk=invoice.pk).update(
        dunning_paused_until=ON + dt.timedelta(days=2), dunning_pause_reason="checking PO"
    )
    assert sender.send_due(now=MONDAY_10AM).deferred == 1
    notice.refresh_from_db()
    assert notice.not_before_at == dt.datetime(2026, 11, 26, 8, 0, tzinfo=CHICAGO)
    assert "checking PO" in notice.reason


def test_sending_costs_the_same_queries_for_one_invoice_or_many():
    def queries_to_send(invoices: int) -> int:
        notice = planned_email(invoices=invoices)
        with CaptureQueriesContext(connection) as captured:
            assert sender.send_next(now=MONDAY_10AM, notice_id=notice.pk) == "sent"
        assert Activity.objects.filter(details__notice=notice.pk).count() == invoices
        return len(captured)

    assert queries_to_send(1) == queries_to_send(6)


def test_a_contact_who_asked_for_the_channel_gets_it_before_the_primary():
    customer = CustomerFactory()
    ContactFactory(customer=customer, name="Billing", email="billing@acme.example",
                   preferred_channel="email")  # fmt: skip
    notice = planned_email(customer)  # the primary, Dana, is added there
    sender.send_due(now=MONDAY_10AM)
    [message] = mail.outbox
    assert message.to == ["billing@acme.example"]
    assert sender.contact_for(notice).name == "Billing"
