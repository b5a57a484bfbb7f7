import datetime as dt
import re
import zoneinfo

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.models import Activity, Customer
from dunning import planner, rendering, sender, unsubscribe
from dunning.models import Notice, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
SITE = "https://collections.example.com"
CONSUMER, BUSINESS = Customer.Kind.CONSUMER, Customer.Kind.BUSINESS


@pytest.fixture(autouse=True)
def _site(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = SITE


def send_overdue(customer=None, **customer_fields):
    customer = customer or CustomerFactory(**customer_fields)
    if not customer.contacts.exists():
        ContactFactory(customer=customer, name="Pat", email="pat@example.net", phone="+14155550123")
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    sender.send_due(now=NOW)
    return customer


def link_in(body: str) -> str:
    return re.search(r"https://collections\.example\.com(/dunning/unsubscribe/\S+/)", body)[1]


def test_consumer_emails_carry_a_signed_unsubscribe_link_and_one_click_headers():
    customer = send_overdue(kind=CONSUMER)
    [message] = mail.outbox
    path = link_in(message.body)
    assert message.body.rstrip().endswith(f"unsubscribe here: {SITE}{path}")
    assert message.extra_headers["List-Unsubscribe"] == f"<{SITE}{path}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Message-ID" in message.extra_headers
    assert unsubscribe.contact_for_token(path.split("/")[-2]) == customer.contacts.get()


def test_business_emails_have_no_unsubscribe_line_or_header():
    send_overdue(kind=BUSINESS)
    [message] = mail.outbox
    assert "unsubscribe" not in message.body.lower()
    assert "List-Unsubscribe" not in message.extra_headers


def test_the_link_asks_first_then_opts_the_address_out_on_the_timeline(client):
    customer = send_overdue(kind=CONSUMER)
    contact = customer.contacts.get()
    path = link_in(mail.outbox[0].body)
    page = client.get(path)
    assert page.status_code == 200 and b'<form method="post">' in page.content
    contact.refresh_from_db()
    assert contact.email_opted_out_at is None  # a GET (a link scanner) changes nothing
    assert client.post(path).status_code == 200
    contact.refresh_from_db()
    assert contact.email_opted_out_at is not None
    assert contact.email_opt_out_source == "unsubscribe link"
    entry = Activity.objects.get(customer=customer, kind="hold_change")
    assert entry.channel == "email" and "opted out of e-mail" in entry.text
    client.post(path)  # twice: still one entry, the first date kept
    assert Activity.objects.filter(customer=customer, kind="hold_change").count() == 1


def test_after_unsubscribing_the_next_email_is_not_sent_but_the_sms_is(client):
    customer = send_overdue(kind=CONSUMER)
    client.post(link_in(mail.outbox[0].body))
    mail.outbox.clear()
    InvoiceFactory(customer=customer, due_on=ON)  # due today: the "Due today" e-mail
    planner.plan(on=ON)
    assert sender.send_due(now=NOW).suppressed == 1
    notice = Notice.objects.get(customer=customer, step__offset_days=0)
    assert notice.reason == "no email contact allowed" and not mail.outbox


def test_rfc_8058_one_click_post_works_without_a_session_or_csrf_token():
    send_overdue(kind=CONSUMER)
    path = link_in(mail.outbox[0].body)
    mailbox_provider = Client(enforce_csrf_checks=True)
    response = mailbox_provider.post(path, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    entry = Activity.objects.get(kind="hold_change")
    assert entry.details["via"] == "one-click"


def test_a_tampered_or_forged_link_is_refused_and_changes_nothing(client):
    customer = send_overdue(kind=CONSUMER)
    path = link_in(mail.outbox[0].body)
    token = path.split("/")[-2]
    other = ContactFactory(email="victim@example.net")
    signature = token.rsplit(":", 1)[1]
    forged = unsubscribe.token_for(other).rsplit(":", 1)[0] + ":" + signature
    for bad in (token[:-2] + "xx", forged, "not-a-token"):
        assert client.post(reverse("dunning:unsubscribe", args=[bad])).status_code == 404
    assert not Activity.objects.filter(kind="hold_change").exists()
    assert not type(other).objects.filter(email_opted_out_at__isnull=False).exists()
    assert customer.contacts.get().email_opted_out_at is None


def test_a_link_stops_working_when_the_contact_changes_address(client):
    customer = send_overdue(kind=CONSUMER)
    path = link_in(mail.outbox[0].body)
    customer.contacts.update(email="new-address@example.net")
    assert client.post(path).status_code == 404
    assert customer.contacts.get().email_opted_out_at is None


def test_the_address_is_opted_out_on_every_customer_it_belongs_to(client):
    customer = send_overdue(kind=CONSUMER)
    elsewhere = ContactFactory(email="PAT@example.net")  # same mailbox, another account
    client.post(link_in(mail.outbox[0].body))
    elsewhere.refresh_from_db()
    assert elsewhere.email_opted_out_at is not None
    assert Activity.objects.filter(customer=elsewhere.customer, kind="hold_change").exists()
    assert Activity.objects.filter(customer=customer, kind="hold_change").exists()


def test_a_template_that_places_the_link_gets_no_second_line():
    template = Template.objects.get(name="firm-overdue", language="en")
    template.body_text += "\n\nOpt out: {{ unsubscribe_url }}"
    template.save()
    send_overdue(kind=CONSUMER)
    body = mail.outbox[0].body
    assert body.count("/dunning/unsubscribe/") == 1 and "Opt out: https://" in body
    assert "List-Unsubscribe" in mail.outbox[0].extra_headers


# --- SMS: the STOP line


def sms_rendered(body: str, language: str = "en", **customer_fields) -> str:
    template = Template.objects.create(name="test-sms", channel="sms", body_text=body)
    customer = CustomerFactory(language=language, **customer_fields)
    contact = ContactFactory(customer=customer)
    context = rendering.notice_context(customer=customer, invoices=[], contact=contact, on=ON)
    return rendering.render_notice(
        template, context, customer=customer, contact=contact, channel="sms"
    )["body_text"]


def test_every_sms_ends_with_the_opt_out_line():
    customer = send_overdue(kind=BUSINESS)
    notice = Notice.objects.get(customer=customer, channel="sms")
    assert notice.body_text.endswith("\nReply STOP to opt out.")
    assert "invoice(s) overdue" in notice.body_text


def test_an_sms_that_already_says_stop_gets_no_second_line():
    text = sms_rendered("Pay now at {{ company_name }}. Text STOP to end these messages.")
    assert text.count("STOP") == 1 and not text.endswith("Reply STOP to opt out.")


def test_the_opt_out_line_is_in_the_messages_language():
    assert sms_rendered("Hallo").endswith("Reply STOP to opt out.")  # English template
    template = Template.objects.create(
        name="test-sms-de", channel="sms", language="de", body_text="Bitte zahlen."
    )
    customer = CustomerFactory(language="de")
    context = rendering.notice_context(customer=customer, invoices=[], contact=None, on=ON)
    text = rendering.render_notice(
        template, context, customer=customer, contact=None, channel="sms"
    )["body_text"]
    assert text == "Bitte zahlen.\nAntworten Sie STOP, um sich abzumelden."


def test_sms_segments_in_the_admin_count_the_opt_out_line(client, manager):
    body = "x" * 150  # one segment alone, two with the line
    assert rendering.sms_segments(body) == 1
    template = Template.objects.create(name="long-sms", channel="sms", body_text=body)
    client.force_login(manager)
    changelist = client.get(reverse("admin:dunning_template_changelist"), {"q": "long-sms"})
    assert re.search(r'<td class="field-sms_segments">2</td>', changelist.content.decode())
    customer = CustomerFactory()
    ContactFactory(customer=customer)
    preview = client.get(
        reverse("admin:dunning_template_preview", args=[template.pk]), {"customer": customer.pk}
    ).content.decode()
    assert "2 SMS segments" in preview and "Reply STOP to opt out." in preview
