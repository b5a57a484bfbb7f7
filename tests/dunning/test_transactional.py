"""Transactional notices (dunning/transactional.py): messages the debtor asked for and
receipts, planned under a key and sent at once by the one sender with their own guard."""

import datetime as dt
import smtplib
from decimal import Decimal

import pytest
from django.core import mail

from accounts.models import Activity, Customer
from dunning import sender, transactional
from dunning.models import Notice, Policy, Step
from dunning.unsubscribe import opt_out_email
from tests.clock import NOW
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

LINK = "https://collections.example.com/portal/enter/abc123secret/"
CODE = "482913"


@pytest.fixture(autouse=True)
def email(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = "https://collections.example.com"


def debtor(language="en", **fields):
    customer = CustomerFactory(
        language=language, timezone="Europe/Berlin", kind=Customer.Kind.BUSINESS, **fields
    )
    contact = ContactFactory(customer=customer, name="Dana", email="dana@acme.example")
    return customer, contact


def portal_access(customer, contact, key="portal:1"):
    return transactional.send(
        "portal_access",
        customer=customer,
        contact=contact,
        context={"link": LINK, "code": CODE, "minutes": 15},
        key=key,
        secrets=("link", "code"),
    )


def test_every_kind_has_a_seeded_step_with_four_languages():
    steps = Step.objects.filter(policy__purpose=Policy.Purpose.TRANSACTIONAL)
    assert sorted(steps.values_list("name", flat=True)) == sorted(transactional.KINDS)
    for step in steps:
        assert step.channel == "email"
        languages = set(
            step.template.__class__.objects.filter(name=step.template.name).values_list(
                "language", flat=True
            )
        )
        assert languages == {"en", "de", "fr", "es"}


def test_portal_access_sends_the_code_but_stores_it_masked():
    customer, contact = debtor()
    notice = portal_access(customer, contact)
    assert notice.status == Notice.Status.SENT
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dana@acme.example"]
    assert CODE in message.body and LINK in message.body
    assert "15 minutes" in message.body
    stored = Notice.objects.get(pk=notice.pk)
    for text in (stored.body_text, stored.body_html, stored.subject, str(stored.context)):
        assert CODE not in text and "abc123secret" not in text
    assert transactional.MASK in stored.body_text
    entries = Activity.objects.filter(customer=customer, kind=Activity.Kind.EMAIL)
    assert entries.count() == 1
    assert CODE not in entries.get().text and CODE not in str(entries.get().details)


def test_the_same_key_returns_the_first_notice_and_sends_nothing():
    customer, contact = debtor()
    first = portal_access(customer, contact, key="portal:42")
    second = portal_access(customer, contact, key="portal:42")
    assert first.pk == second.pk
    assert len(mail.outbox) == 1
    assert Notice.objects.filter(key="portal:42").count() == 1


def test_german_customer_gets_the_german_text():
    customer, contact = debtor(language="de")
    portal_access(customer, contact)
    assert "Einmalcode" in mail.outbox[0].body


@pytest.mark.time_machine(dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC))
def test_no_contact_hours_caps_or_holds(settings):
    """03:00 in Berlin, customer paused and do-not-contact, and many reminders this week."""
    customer, contact = debtor(
        do_not_contact=True, dunning_paused_until=NOW.date(), dunning_pause_reason="asked"
    )
    invoice = InvoiceFactory(customer=customer, amount=Decimal("100.00"), currency="EUR")
    for n in range(3):
        transactional.send(
            "autopay_charged",
            customer=customer,
            contact=contact,
            context={
                "method": "Visa •••• 4242",
                "invoice_number": invoice.number,
                "amount_display": "100,00",
                "currency": "EUR",
            },
            key=f"charged:{n}",
            invoices=[invoice],
        )
    assert Notice.objects.filter(customer=customer, status=Notice.Status.SENT).count() == 3
    assert len(mail.outbox) == 3
    assert Activity.objects.filter(invoice=invoice, kind=Activity.Kind.EMAIL).count() == 3


def test_portal_access_reaches_a_contact_who_unsubscribed():
    customer, contact = debtor()
    opt_out_email(email=contact.email, source="unsubscribe-link")
    contact.refresh_from_db()
    assert portal_access(customer, contact).status == Notice.Status.SENT


def test_autopay_receipt_respects_an_opt_out():
    customer, contact = debtor()
    opt_out_email(email=contact.email, source="unsubscribe-link")
    contact.refresh_from_db()
    notice = transactional.send(
        "autopay_cancelled",
        customer=customer,
        contact=contact,
        context={"method": "SEPA Direct Debit •••• 3000"},
        key="cancelled:1",
    )
    assert notice.status == Notice.Status.SKIPPED
    assert "opted out" in notice.reason
    assert mail.outbox == []


def test_never_to_a_bounced_or_empty_address_or_an_erased_customer():
    customer, contact = debtor()
    opt_out_email(email=contact.email, source="bounce")
    contact.refresh_from_db()
    assert portal_access(customer, contact, key="a").reason == "the address bounced"
    customer2, contact2 = debtor()
    contact2.email = ""
    contact2.save()
    assert portal_access(customer2, contact2, key="b").status == Notice.Status.SKIPPED
    customer3, contact3 = debtor()
    Customer.objects.filter(pk=customer3.pk).update(erased_at=NOW)
    customer3.refresh_from_db()
    assert portal_access(customer3, contact3, key="c").status == Notice.Status.SKIPPED
    assert mail.outbox == []


def test_a_code_refused_by_the_provider_is_never_sent_masked_later(monkeypatch):
    customer, contact = debtor()

    def refuse(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr("dunning.channels.send_email", refuse)
    with pytest.raises(smtplib.SMTPConnectError):
        portal_access(customer, contact)
    notice = Notice.objects.get(key="portal:1")
    assert notice.status == Notice.Status.DEFERRED
    monkeypatch.undo()
    sender.send_due(now=NOW + dt.timedelta(minutes=5))
    notice.refresh_from_db()
    assert notice.status == Notice.Status.FAILED
    assert "asks again" in notice.reason
    assert mail.outbox == []


@pytest.mark.time_machine(dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC))
def test_transactional_notices_do_not_count_against_dunning_caps():
    """Two portal codes this morning, a cap of two contacts a week: the reminder still goes."""
    from dunning import planner
    from dunning.models import ContactRule

    ContactRule.objects.update_or_create(
        country="DE", customer_kind="", defaults={"max_contacts_per_7_days": 2}
    )
    customer, contact = debtor(country="DE")
    contact.is_primary = True
    contact.save()
    InvoiceFactory(customer=customer, due_on=NOW.date() - dt.timedelta(days=7))
    planner.plan(on=NOW.date())
    Notice.objects.filter(customer=customer, channel="sms").delete()
    reminder = Notice.objects.get(customer=customer, channel="email", key="")
    for n in range(2):
        portal_access(customer, contact, key=f"p{n}")
    sender.send_next(now=dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC), notice_id=reminder.pk)
    reminder.refresh_from_db()
    assert reminder.status == Notice.Status.SENT, reminder.reason


def test_bad_input_names_the_field():
    customer, contact = debtor()
    _other, stranger = debtor()
    with pytest.raises(transactional.TransactionalError, match="kind"):
        transactional.send("newsletter", customer=customer, contact=contact, context={}, key="k")
    with pytest.raises(transactional.TransactionalError, match="contact"):
        portal_access(customer, stranger)
    with pytest.raises(transactional.TransactionalError, match="secrets"):
        transactional.send(
            "portal_access",
            customer=customer,
            contact=contact,
            context={"link": LINK, "minutes": 15},
            key="k2",
            secrets=("code",),
        )
    with pytest.raises(transactional.TransactionalError, match="key"):
        portal_access(customer, contact, key="")


def test_the_nightly_planner_plans_no_transactional_notice():
    from dunning import planner

    customer, _contact = debtor()
    InvoiceFactory(customer=customer, due_on=NOW.date() - dt.timedelta(days=3))
    planner.plan(on=NOW.date())
    assert not Notice.objects.filter(step__policy__purpose=Policy.Purpose.TRANSACTIONAL).exists()


def test_the_portals_access_e_mail_goes_through_it_with_the_code_masked(settings):
    from portal import access

    _customer, contact = debtor()
    notice = access.send_access(contact.pk)
    assert notice.status == Notice.Status.SENT
    body = mail.outbox[0].body
    code = next(word for word in body.split() if word.isdigit() and len(word) >= 6)
    stored = Notice.objects.get(pk=notice.pk)
    assert code not in stored.body_text and "/portal/l/" not in stored.body_text
    assert "/portal/l/" in body
