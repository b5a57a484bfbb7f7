"""The local outbox keeps what a provider would have received: headers and attachments too."""

import datetime as dt
import zoneinfo

import pytest
from django.core.mail import EmailMessage
from django.urls import reverse

from accounts.models import Customer
from dunning import planner, sender
from dunning.models import Notice, OutboxMessage
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
PDF = b"%PDF-1.7 not really a report"


@pytest.fixture(autouse=True)
def _outbox(settings, tmp_path):
    settings.EMAIL_BACKEND = "dunning.outbox.OutboxEmailBackend"
    settings.MEDIA_ROOT = tmp_path


def test_a_consumer_notice_keeps_its_unsubscribe_headers_and_message_id():
    customer = CustomerFactory(kind=Customer.Kind.CONSUMER, country="US")
    ContactFactory(customer=customer, email="pat@example.net", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer).exclude(channel="email").delete()
    sender.send_due(now=NOW)
    kept = OutboxMessage.objects.get(channel="email")
    notice = Notice.objects.get(customer=customer)
    assert kept.headers["Message-ID"] == notice.provider_message_id == kept.message_id
    assert kept.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/dunning/unsubscribe/" in kept.headers["List-Unsubscribe"]
    assert kept.attachments == []


def send_report(to=("boss@example.com", "cfo@example.com")):
    message = EmailMessage("Aging report", "Attached.", to=list(to))
    message.attach("aging 2026-11-23.pdf", PDF, "application/pdf")
    message.attach("notes.txt", "plain text", "text/plain")
    message.send()


def test_attachments_are_stored_once_and_listed_for_each_recipient():
    send_report()
    first, second = OutboxMessage.objects.order_by("recipient")
    assert first.attachments == second.attachments
    pdf, notes = first.attachments
    assert (pdf["filename"], pdf["mimetype"], pdf["size"]) == (
        "aging 2026-11-23.pdf",
        "application/pdf",
        len(PDF),
    )
    assert (notes["filename"], notes["size"]) == ("notes.txt", len(b"plain text"))
    assert pdf["path"].startswith("outbox/") and pdf["path"].endswith(".pdf")


def test_the_console_downloads_an_attachment(client, admin_user):
    send_report(to=["boss@example.com"])
    kept = OutboxMessage.objects.get()
    client.force_login(admin_user)  # the outbox is the developer's: superusers only
    page = client.get(reverse("admin:dunning_outboxmessage_change", args=[kept.pk]))
    url = reverse("admin:dunning_outboxmessage_attachment", args=[kept.pk, 0])
    assert url in page.content.decode()
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert 'filename="aging 2026-11-23.pdf"' in response["Content-Disposition"]
    missing = reverse("admin:dunning_outboxmessage_attachment", args=[kept.pk, 5])
    assert client.get(missing).status_code == 404


def test_attachments_are_only_for_the_console(client, manager):
    send_report(to=["boss@example.com"])
    kept = OutboxMessage.objects.get()
    url = reverse("admin:dunning_outboxmessage_attachment", args=[kept.pk, 0])
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(manager)  # no view permission on the outbox
    assert client.get(url).status_code == 403
