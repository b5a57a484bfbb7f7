import datetime as dt
import zoneinfo
from unittest import mock

import pytest
from django.core import mail
from twilio.request_validator import RequestValidator

from accounts.models import Activity
from dunning import planner, sender
from dunning.models import Notice, OutboxMessage
from integrations import tasks
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
TOKEN = "twilio-test-auth-token"
SITE = "https://collections.example.com"


@pytest.fixture
def sms_notice(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SITE_URL = SITE
    customer = CustomerFactory(name="Text Me Inc")
    ContactFactory(customer=customer, name="Robin", phone="+14155550123", is_primary=True)
    InvoiceFactory(customer=customer, number="SMS-1", due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    return Notice.objects.get(customer=customer, channel="sms")


def signed_post(client, path, data, *, token=TOKEN):
    signature = RequestValidator(token).compute_signature(SITE + path, data)
    response = client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)
    tasks.sweep_inbox(older_than_seconds=0)  # a worker applies what was stored
    return response


def test_without_twilio_sms_go_to_the_local_outbox(sms_notice):
    sender.send_due(now=NOW)
    sms_notice.refresh_from_db()
    kept = OutboxMessage.objects.get(channel="sms")
    assert kept.recipient == "+14155550123" and "1 invoice(s) overdue" in kept.body_text
    assert sms_notice.status == "sent" and sms_notice.provider_message_id == f"local-sms-{kept.pk}"
    assert Activity.objects.filter(kind="sms", details__notice=sms_notice.pk).exists()
    assert len(mail.outbox) == 1  # the e-mail of the same step went its own way


def test_with_twilio_sms_go_through_the_messaging_api_with_a_status_callback(sms_notice, settings):
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "AC123", TOKEN
    settings.TWILIO_FROM_NUMBER = "+15005550006"
    with mock.patch("twilio.rest.Client") as client_class:
        client_class.return_value.messages.create.return_value.sid = "SM42"
        sender.send_due(now=NOW)
    kwargs = client_class.return_value.messages.create.call_args.kwargs
    assert kwargs["to"] == "+14155550123" and kwargs["from_"] == "+15005550006"
    assert kwargs["status_callback"] == SITE + "/integrations/twilio/status/"
    sms_notice.refresh_from_db()
    assert sms_notice.provider_message_id == "SM42"


def test_an_sms_opt_out_skips_the_sms_but_not_the_email(sms_notice):
    sms_notice.customer.contacts.update(sms_opted_out_at=NOW)
    result = sender.send_due(now=NOW)
    assert (result.sent, result.suppressed) == (1, 1)
    sms_notice.refresh_from_db()
    assert sms_notice.status == "skipped" and sms_notice.reason == "no sms contact allowed"


def test_status_callback_records_delivery_once(client, sms_notice, settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    sender.send_due(now=NOW)
    sms_notice.refresh_from_db()
    data = {"MessageSid": sms_notice.provider_message_id, "MessageStatus": "delivered"}
    for _ in range(2):
        assert signed_post(client, "/integrations/twilio/status/", data).status_code == 204
    sms_notice.refresh_from_db()
    assert sms_notice.status == "delivered" and sms_notice.delivered_at is not None
    assert Activity.objects.filter(kind="delivery").count() == 1


def test_undelivered_status_marks_the_notice_failed_with_the_error(client, sms_notice, settings):
    settings.TWILIO_AUTH_TOKEN = TOKEN
    sender.send_due(now=NOW)
    sms_notice.refresh_from_db()
    data = {
        "MessageSid": sms_notice.provider_message_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
    }
    signed_post(client, "/integrations/twilio/status/", data)
    sms_notice.refresh_from_db()
    assert sms_notice.status == "failed" and sms_notice.reason == "undelivered: Twilio error 30003"


@pytest.mark.parametrize("path", ["/integrations/twilio/status/", "/integrations/twilio/inbound/"])
def test_forged_requests_are_refused_with_403(client, settings, path):
    settings.TWILIO_AUTH_TOKEN, settings.SITE_URL = TOKEN, SITE
    data = {"MessageSid": "SM1", "MessageStatus": "delivered", "From": "+1", "Body": "STOP"}
    assert signed_post(client, path, data, token="not-the-token").status_code == 403
    assert client.post(path, data).status_code == 403
    assert not Activity.objects.exists()


def test_without_a_token_the_endpoints_are_closed(client, settings):
    settings.TWILIO_AUTH_TOKEN = ""
    assert client.post("/integrations/twilio/inbound/", {"Body": "hi"}).status_code == 503


@pytest.mark.parametrize("word", ["STOP", "stopall", " Unsubscribe ", "CANCEL", "END", "QUIT"])
def test_stop_words_opt_the_number_out_of_sms(client, settings, word):
    settings.TWILIO_AUTH_TOKEN, settings.SITE_URL = TOKEN, SITE
    contact = ContactFactory(phone="+14155550199")
    response = signed_post(
        client, "/integrations/twilio/inbound/", {"From": "+14155550199", "Body": word}
    )
    assert response.status_code == 200 and b"<Response>" in response.content
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    assert contact.sms_opt_out_source == f"SMS reply {word.strip().upper()}"
    kinds = set(Activity.objects.filter(customer=contact.customer).values_list("kind", flat=True))
    assert kinds == {"reply", "hold_change"}


def test_start_opts_back_in_and_other_replies_are_just_recorded(client, settings):
    settings.TWILIO_AUTH_TOKEN, settings.SITE_URL = TOKEN, SITE
    contact = ContactFactory(phone="+14155550188", sms_opted_out_at=NOW)
    signed_post(client, "/integrations/twilio/inbound/", {"From": "+14155550188", "Body": "START"})
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None
    signed_post(
        client, "/integrations/twilio/inbound/", {"From": "+14155550188", "Body": "paid friday"}
    )
    reply = Activity.objects.filter(kind="reply").first()
    assert "paid friday" in reply.text and reply.details["direction"] == "inbound"
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None
