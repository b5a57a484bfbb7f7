"""Erasure: one customer's personal data gone from every table, the money and dates kept."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from accounts import services
from accounts.models import Activity, Contact, Customer
from dunning.models import EmailEvent, Notice, OutboxMessage, Step
from integrations.models import IntakeBatch, Rejection, WebhookEvent
from integrations.twilio.webhooks import record_reply
from privacy import erasure
from reporting import kpis
from reporting.aging import AgingReport, summary
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

NAME = "Zyxwvut Quillfeather Holdings"
CONTACT = "Ophelia Brandtwick"
EMAIL = "ophelia.brandtwick@zyxwvut.example"
PHONE = "+14155550199"
PHONE_WRITTEN = "(415) 555-0199"
ADDRESS = "17 Marrowgate Lane\nNorthbrook IL 60062"
SECRETS = (NAME, CONTACT, EMAIL, PHONE, PHONE_WRITTEN, "Marrowgate")


def text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() "
            "AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
        )
        return cursor.fetchall()


def traces(strings) -> list[str]:
    """Every table.column (any text or JSON column of the database) holding one of them."""
    found = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, column in text_columns():
            for string in strings:
                cursor.execute(
                    f"SELECT count(*) FROM {quote(table)} "  # noqa: S608
                    f"WHERE {quote(column)}::text ILIKE %s",
                    [f"%{string}%"],
                )
                if cursor.fetchone()[0]:
                    found.append(f"{table}.{column}: {string}")
    return found


def figures():
    as_of = ON
    period = kpis.Period(as_of=as_of, days=30)
    return summary(AgingReport(as_of=as_of), count_customers=True), kpis.as_json(
        period, kpis.compute(period)
    )


@pytest.fixture
def debtor(manager, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(name=NAME, postal_address=ADDRESS)
    contact = ContactFactory(customer=customer, name=CONTACT, email=EMAIL, phone=PHONE)
    other = CustomerFactory(name="Unrelated Bakery")
    ContactFactory(customer=other, name="Sam Baker", email="sam@bakery.example")
    open_invoice = InvoiceFactory(
        customer=customer, amount=Decimal("500.00"), due_on=ON - dt.timedelta(days=40)
    )
    InvoiceFactory(customer=other, amount=Decimal("80.00"), due_on=ON - dt.timedelta(days=10))
    payment = services.record_payment(
        customer=customer,
        amount="120.00",
        currency=open_invoice.currency,
        received_on=ON - dt.timedelta(days=3),
        remittance_reference=f"{NAME} INV",
    )
    services.allocate(payment=payment, invoice=open_invoice, by=manager)
    services.add_note(customer=customer, text=f"{CONTACT} asked to write to {EMAIL}", by=manager)
    services.log_call(
        customer=customer,
        outcome="reached",
        text=f"Called {PHONE_WRITTEN}",
        phone=PHONE,
        by=manager,
    )
    record_reply(sender=PHONE, body="Will pay Friday")
    step = Step.objects.filter(channel="email").first()
    notice = Notice.objects.create(
        customer=customer,
        contact=contact,
        step=step,
        channel="email",
        planned_on=ON,
        status="sent",
        subject=f"Overdue invoice for {NAME}",
        body_text=f"Dear {CONTACT},\n{NAME}\n{ADDRESS}\nYou owe USD 380.00.",
        recipient=EMAIL,
        provider_message_id="<n1@collections.example.com>",
    )
    notice.document.save("letter.pdf", ContentFile(f"%PDF {NAME}".encode()))
    default_storage.save("outbox/statement.pdf", ContentFile(NAME.encode()))
    OutboxMessage.objects.create(
        channel="email",
        recipient=EMAIL,
        subject=notice.subject,
        body_text=notice.body_text,
        message_id="<n1@collections.example.com>",
        attachments=[{"filename": "statement.pdf", "path": "outbox/statement.pdf"}],
    )
    OutboxMessage.objects.create(
        channel="sms", recipient=PHONE, body_text=f"{CONTACT}, please pay 380.00"
    )
    EmailEvent.objects.create(
        kind="bounce", email=EMAIL, message_id="x", payload={"recipient": EMAIL}, notice=notice
    )
    batch = IntakeBatch.objects.create(kind="contacts", source="upload")
    Rejection.objects.create(
        batch=batch, row_number=2, raw={"email": EMAIL, "name": CONTACT}, errors={"x": ["y"]}
    )
    WebhookEvent.objects.create(
        provider="stripe", event_id="evt_1", event_type="charge", payload={"email": EMAIL}
    )
    return customer, contact, notice


@pytest.mark.postgresql
@pytest.mark.django_db
def test_erasure_leaves_no_trace_in_any_table_and_the_figures_add_up(debtor, manager):
    customer, contact, notice = debtor
    letter, attachment = notice.document.name, "outbox/statement.pdf"
    assert {s for s in SECRETS if any(t.endswith(s) for t in traces([s]))} >= {
        NAME,
        CONTACT,
        PHONE,
        "Marrowgate",
    }
    before = figures()

    counts = erasure.erase_customer(customer=customer, reason="Data subject request", by=manager)

    assert traces(SECRETS) == []
    assert figures() == before
    assert not default_storage.exists(letter) and not default_storage.exists(attachment)
    customer.refresh_from_db()
    assert customer.name == f"Erased customer #{customer.pk}" and customer.postal_address == ""
    assert customer.erased_at is not None and customer.do_not_contact
    contact.refresh_from_db()
    assert (contact.name, contact.email, contact.phone) == (
        f"Erased contact #{contact.pk}",
        "",
        "",
    )
    assert not Contact.objects.matching(email=EMAIL, phone=PHONE).exists()
    # The other customer is untouched.
    assert Customer.objects.filter(name="Unrelated Bakery").exists()
    assert Contact.objects.matching(email="sam@bakery.example").get().name == "Sam Baker"
    # The timeline keeps every entry (text rewritten) and says who erased, when and why.
    entry = Activity.objects.filter(customer=customer).first()
    assert (entry.kind, entry.actor, entry.details["reason"]) == (
        Activity.Kind.ERASURE,
        manager,
        "Data subject request",
    )
    assert counts["timeline"] >= 3 and entry.details["rows"] == counts
    note = Activity.objects.get(customer=customer, kind=Activity.Kind.NOTE)
    assert note.text == f"Erased contact #{contact.pk} asked to write to [erased]"
    notice.refresh_from_db()
    assert notice.recipient == "[erased]" and "USD 380.00" in notice.body_text


@pytest.mark.postgresql
@pytest.mark.django_db
def test_the_timeline_stays_append_only_outside_the_erasure(debtor, manager):
    customer, _contact, _notice = debtor
    erasure.erase_customer(customer=customer, reason="request", by=manager)
    entry = Activity.objects.filter(customer=customer).first()
    for sql in (
        "UPDATE accounts_activity SET text = 'x' WHERE id = %s",
        "DELETE FROM accounts_activity WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [entry.pk])


@pytest.mark.django_db
def test_only_managers_erase_and_only_once(debtor, agent, manager):
    customer, _contact, _notice = debtor
    with pytest.raises(PermissionDenied):
        erasure.erase_customer(customer=customer, reason="request", by=agent)
    with pytest.raises(ValidationError, match="reason"):
        erasure.erase_customer(customer=customer, reason=" ", by=manager)
    assert Customer.objects.get(pk=customer.pk).name == NAME
    erasure.erase_customer(customer=customer, reason="request", by=manager)
    with pytest.raises(ValidationError, match="already erased"):
        erasure.erase_customer(customer=customer, reason="again", by=manager)


@pytest.mark.django_db
def test_the_console_action_erases_with_a_reason(debtor, client, manager, agent):
    customer, _contact, _notice = debtor
    url = reverse("admin:accounts_customer_erase", args=[customer.pk])
    client.force_login(agent)
    assert client.post(url, {"apply": "1", "reason": "x", "confirm": "on"}).status_code == 403
    client.force_login(manager)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert url in page.content.decode()
    assert client.post(url, {"apply": "1", "reason": "x"}).status_code == 200  # not confirmed
    assert Customer.objects.get(pk=customer.pk).erased_at is None
    response = client.post(url, {"apply": "1", "reason": "Data subject request", "confirm": "on"})
    assert response.status_code == 302
    assert Customer.objects.get(pk=customer.pk).name == f"Erased customer #{customer.pk}"


@pytest.mark.django_db
def test_the_command_erases_and_records_the_reason(debtor, manager):
    customer, _contact, _notice = debtor
    call_command("erase_customer", str(customer.pk), "--reason", "Court order", "--by", "manager")
    entry = Activity.objects.filter(customer=customer, kind=Activity.Kind.ERASURE).get()
    assert (entry.actor, entry.details["reason"]) == (manager, "Court order")
