"""Twilio's webhooks against replays and hostile input: each message applied once, NUL
characters refused naming the field and kept in the dead-letter list."""

import pytest
from twilio.request_validator import RequestValidator

from accounts.models import Activity
from integrations import tasks
from integrations.models import InboxItem, Rejection
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
TOKEN = "twilio-test-auth-token"
SITE = "https://collections.example.com"
INBOUND = "/integrations/twilio/inbound/"
STATUS = "/integrations/twilio/status/"


@pytest.fixture(autouse=True)
def _twilio(settings):
    settings.TWILIO_AUTH_TOKEN, settings.SITE_URL = TOKEN, SITE


def signed_post(client, path, data):
    signature = RequestValidator(TOKEN).compute_signature(SITE + path, data)
    response = client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)
    tasks.sweep_inbox(older_than_seconds=0)
    return response


def test_the_same_inbound_message_sid_twice_writes_one_timeline_entry(client):
    contact = ContactFactory(phone="+14155550177")
    message = {"MessageSid": "SM0001", "From": "+14155550177", "Body": "paid friday"}

    first = signed_post(client, INBOUND, message)
    again = signed_post(client, INBOUND, message)

    assert first.status_code == again.status_code == 200
    replies = Activity.objects.filter(customer=contact.customer, kind="reply")
    assert replies.count() == 1 and replies.get().details["message_sid"] == "SM0001"
    assert InboxItem.objects.get().status == "processed"


def test_a_stop_replayed_after_start_does_not_opt_out_again(client):
    contact = ContactFactory(phone="+14155550166")
    stop = {"MessageSid": "SM-stop", "From": "+14155550166", "Body": "STOP"}
    signed_post(client, INBOUND, stop)
    signed_post(
        client, INBOUND, {"MessageSid": "SM-start", "From": "+14155550166", "Body": "START"}
    )

    signed_post(client, INBOUND, stop)

    contact.refresh_from_db()
    assert contact.sms_opted_out_at is None
    assert Activity.objects.filter(kind="hold_change").count() == 2


def test_an_inbound_message_without_a_sid_is_known_by_its_fields(client):
    ContactFactory(phone="+14155550155")
    message = {"From": "+14155550155", "Body": "call me"}

    signed_post(client, INBOUND, message)
    signed_post(client, INBOUND, message)

    assert Activity.objects.filter(kind="reply").count() == 1
    assert InboxItem.objects.get().key.startswith("sha256:")


def test_each_status_of_a_message_is_its_own_event(client):
    for status in ("sent", "delivered", "delivered"):
        assert (
            signed_post(client, STATUS, {"MessageSid": "SM9", "MessageStatus": status}).status_code
            == 204
        )

    assert sorted(InboxItem.objects.values_list("key", flat=True)) == ["SM9:delivered", "SM9:sent"]


@pytest.mark.parametrize(
    ("path", "field"), [(INBOUND, "Body"), (INBOUND, "From"), (STATUS, "MessageStatus")]
)
def test_a_nul_character_is_refused_naming_the_field_and_dead_lettered(client, path, field):
    ContactFactory(phone="+14155550144")
    data = {"MessageSid": "SM5", "From": "+14155550144", "Body": "hi", "MessageStatus": "sent"}
    data[field] += "\x00"

    response = signed_post(client, path, data)

    assert response.status_code == 400 and list(response.json()["errors"]) == [field]
    assert not InboxItem.objects.exists() and not Activity.objects.exists()
    rejection = Rejection.objects.select_related("batch").get()
    assert rejection.batch.source == "twilio" and field in rejection.errors
    assert rejection.raw[field].endswith("\\u0000")
