"""The console's side of inbound e-mail: answering a kept outbox e-mail as the debtor (the
browser tests' way in), who sees which message, and the one-click promise and dispute."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts.models import Activity
from cases.models import Dispute, PromiseToPay
from dunning import planner, sender
from dunning.models import Notice, OutboxMessage
from integrations.inbound.receive import from_portal
from integrations.models import InboundEmail
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
PDF = b"%PDF-1.7 remittance"


@pytest.fixture(autouse=True)
def _outbox(settings, tmp_path):
    settings.EMAIL_BACKEND = "dunning.outbox.OutboxEmailBackend"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INBOUND_REPLY_ADDRESS = ""  # threaded by the notice's Message-ID alone


@pytest.fixture
def customer(agent):
    customer = CustomerFactory(name="Acme Ltd", assigned_agent=agent)
    ContactFactory(customer=customer, name="Pat", email="pat@acme.example", is_primary=True)
    return customer


def sent_email(customer) -> OutboxMessage:
    InvoiceFactory(
        customer=customer, number="INV-7", due_on=ON - dt.timedelta(days=7), amount=Decimal("400")
    )
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer).exclude(channel="email").delete()
    sender.send_due(now=dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO))
    return OutboxMessage.objects.get(channel="email")


def message_page(inbound) -> str:
    return reverse("admin:integrations_inboundemail_change", args=[inbound.pk])


def test_an_outbox_email_can_be_answered_as_the_debtor(client, admin_user, customer):
    kept = sent_email(customer)
    client.force_login(admin_user)
    page = client.get(reverse("admin:dunning_outboxmessage_change", args=[kept.pk]))
    html = page.content.decode()
    for stable in ('id="outbox-reply-form"', 'id="id_reply_text"', 'id="id_reply_attachment"'):
        assert stable in html
    assert 'id="outbox-reply-submit"' in html and "Reply as the debtor" in html

    response = client.post(
        reverse("admin:dunning_outboxmessage_reply", args=[kept.pk]),
        {
            "text": "We will pay USD 400 on 2026-12-01.",
            "attachment": SimpleUploadedFile("advice.pdf", PDF, content_type="application/pdf"),
        },
    )

    assert response.status_code == 302
    inbound = InboundEmail.objects.get()
    notice = Notice.objects.get(customer=customer, channel="email")
    assert (inbound.source, inbound.notice, inbound.matched_by) == ("outbox", notice, "references")
    assert inbound.in_reply_to == kept.message_id
    assert inbound.text == "We will pay USD 400 on 2026-12-01."  # the quoted notice is cut
    assert inbound.attachments.get().file.read() == PDF
    assert Activity.objects.filter(customer=customer, kind="reply").count() == 1
    again = client.get(reverse("admin:dunning_outboxmessage_change", args=[kept.pk]))
    assert message_page(inbound) in again.content.decode()


def test_no_reply_as_the_debtor_where_mail_really_goes_out(client, admin_user, customer, settings):
    kept = sent_email(customer)
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    client.force_login(admin_user)

    page = client.get(reverse("admin:dunning_outboxmessage_change", args=[kept.pk]))
    refused = client.post(
        reverse("admin:dunning_outboxmessage_reply", args=[kept.pk]), {"text": "hi"}
    )

    assert 'id="outbox-reply-form"' not in page.content.decode()
    assert refused.status_code == 403
    assert not InboundEmail.objects.exists()


def test_an_empty_reply_is_refused_naming_the_field(client, admin_user, customer):
    kept = sent_email(customer)
    client.force_login(admin_user)

    response = client.post(
        reverse("admin:dunning_outboxmessage_reply", args=[kept.pk]), {"text": ""}, follow=True
    )

    assert "Reply text: This field is required." in response.content.decode()
    assert not InboundEmail.objects.exists()


def portal_message(customer, text):
    return from_portal(
        customer=customer,
        contact=customer.contacts.get(),
        subject="About INV-7",
        text=text,
        attachments=[],
    )


def test_the_agent_records_the_promise_from_the_message_in_one_click(client, agent, customer):
    InvoiceFactory(customer=customer, number="INV-7", due_on=ON, amount=Decimal("400"))
    inbound = portal_message(customer, "We will pay USD 150 on 2026-12-01.")
    client.force_login(agent)

    page = client.get(message_page(inbound)).content.decode()
    assert 'id="inbound-record-promise"' in page and 'value="2026-12-01"' in page
    assert 'value="150.00"' in page or 'value="150"' in page
    form = {
        "promise-invoices": [customer.invoices.get().pk],
        "promise-promised_on": "2026-12-01",
        "promise-amount": "150.00",
    }
    response = client.post(
        reverse("admin:integrations_inboundemail_promise", args=[inbound.pk]), form
    )

    assert response.status_code == 302
    promise = PromiseToPay.objects.get()
    assert (promise.amount, promise.promised_on, promise.recorded_by) == (
        Decimal("150.00"),
        dt.date(2026, 12, 1),
        agent,
    )
    inbound.refresh_from_db()
    assert inbound.promise == promise
    assert 'id="inbound-record-promise"' not in client.get(message_page(inbound)).content.decode()


def test_a_refused_promise_says_why(client, agent, customer):
    InvoiceFactory(customer=customer, number="INV-7", due_on=ON, amount=Decimal("400"))
    inbound = portal_message(customer, "We will pay USD 900 on 2026-12-01.")
    client.force_login(agent)

    response = client.post(
        reverse("admin:integrations_inboundemail_promise", args=[inbound.pk]),
        {
            "promise-invoices": [customer.invoices.get().pk],
            "promise-promised_on": "2026-12-01",
            "promise-amount": "900.00",
        },
        follow=True,
    )

    assert "Amount: " in response.content.decode()
    assert not PromiseToPay.objects.exists()


def test_the_agent_opens_the_dispute_the_message_raises(client, agent, customer):
    InvoiceFactory(customer=customer, number="INV-7", due_on=ON, amount=Decimal("400"))
    inbound = portal_message(customer, "We never received these goods.")
    client.force_login(agent)

    page = client.get(message_page(inbound)).content.decode()
    assert 'id="inbound-open-dispute"' in page
    assert '<option value="not_received" selected>' in page
    response = client.post(
        reverse("admin:integrations_inboundemail_dispute", args=[inbound.pk]),
        {
            "dispute-invoices": [customer.invoices.get().pk],
            "dispute-reason": "not_received",
            "dispute-description": "Never received.",
        },
    )

    assert response.status_code == 302
    dispute = Dispute.objects.get()
    assert (dispute.reason, dispute.source) == ("not_received", f"inbound:{inbound.pk}")
    inbound.refresh_from_db()
    assert inbound.dispute == dispute


def test_an_agent_sees_only_the_messages_of_customers_they_work(client, agent, customer):
    mine = portal_message(customer, "Hello")
    other = CustomerFactory(assigned_agent=UserFactory(role="Collections agent"))
    ContactFactory(customer=other)
    theirs = portal_message(other, "Hi there")
    client.force_login(agent)

    listing = client.get(reverse("admin:integrations_inboundemail_changelist")).content.decode()

    assert message_page(mine) in listing and message_page(theirs) not in listing
    assert client.get(message_page(theirs)).status_code == 302  # the admin's "not found"
    refused = client.post(
        reverse("admin:integrations_inboundemail_promise", args=[theirs.pk]),
        {"promise-promised_on": "2026-12-01", "promise-amount": "1"},
    )
    assert refused.status_code == 404
    assert not PromiseToPay.objects.exists()


def test_unmatched_mail_is_listed_for_managers(client, manager, agent, customer):
    from integrations.inbound.receive import receive_email
    from tests.integrations.test_inbound_receive import mail

    unmatched, _ = receive_email(source="imap", message=mail(sender="who@nowhere.example"))
    assert unmatched.customer is None

    client.force_login(manager)
    listing = client.get(reverse("admin:integrations_inboundemail_changelist") + "?matched=no")
    assert message_page(unmatched) in listing.content.decode()
    page = client.get(message_page(unmatched)).content.decode()
    assert "unmatched" in page and 'id="inbound-record-promise"' not in page

    client.force_login(agent)
    listing = client.get(reverse("admin:integrations_inboundemail_changelist"))
    assert message_page(unmatched) not in listing.content.decode()


def test_an_automatic_reply_offers_no_promise_or_dispute(client, agent, customer):
    from integrations.inbound.receive import receive_email
    from tests.integrations.test_inbound_receive import mail

    inbound, _ = receive_email(
        source="imap",
        message=mail(headers={"Auto-Submitted": "auto-replied"}, body="never received"),
    )
    client.force_login(agent)

    page = client.get(message_page(inbound)).content.decode()

    assert 'id="inbound-open-dispute"' not in page
    refused = client.post(
        reverse("admin:integrations_inboundemail_dispute", args=[inbound.pk]),
        {"dispute-reason": "other"},
    )
    assert refused.status_code == 403


def test_the_customer_page_shows_the_reply_pause_with_its_reason(client, agent, customer):
    portal_message(customer, "Please call me.")
    client.force_login(agent)

    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))

    assert (
        "chasing paused until 2026-11-26 (the debtor wrote through the portal on 2026-11-23)"
        in page.content.decode()
    )


def test_a_manager_files_an_unmatched_message_under_a_customer(client, manager, customer):
    from integrations.inbound.receive import receive_email
    from tests.integrations.test_inbound_receive import mail

    unmatched, _ = receive_email(
        source="imap", message=mail(sender="cfo@acme-holding.example", body="Paying 2026-12-02.")
    )
    client.force_login(manager)
    page = client.get(message_page(unmatched)).content.decode()
    assert 'id="inbound-file-form"' in page and 'id="id_file-customer"' in page

    response = client.post(
        reverse("admin:integrations_inboundemail_file", args=[unmatched.pk]),
        {"file-customer": customer.pk},
    )

    assert response.status_code == 302
    unmatched.refresh_from_db()
    assert (unmatched.customer, unmatched.matched_by) == (customer, "manual")
    assert unmatched.match_note == "filed by manager"
    assert unmatched.promised_on == dt.date(2026, 12, 2)
    assert Activity.objects.filter(customer=customer, kind="reply").count() == 1
    assert unmatched.task.assignee == customer.assigned_agent
    customer.refresh_from_db()
    assert customer.reply_paused_until == ON + dt.timedelta(days=3)
    again = client.post(
        reverse("admin:integrations_inboundemail_file", args=[unmatched.pk]),
        {"file-customer": CustomerFactory().pk},
        follow=True,
    )
    assert "filed under a customer already" in again.content.decode()
    unmatched.refresh_from_db()
    assert unmatched.customer == customer


def test_without_the_view_right_no_attachment_is_served(client, finance, customer):
    inbound = from_portal(
        customer=customer,
        contact=None,
        subject="",
        text="see attached",
        attachments=[SimpleUploadedFile("a.pdf", PDF, content_type="application/pdf")],
    )
    url = reverse(
        "admin:integrations_inboundemail_attachment",
        args=[inbound.pk, inbound.attachments.get().pk],
    )
    client.force_login(finance)

    assert client.get(url).status_code == 403
    client.force_login(UserFactory(username="boss", role="Collections manager"))
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
