"""Inbound e-mail webhooks: Mailgun's signed route posts and Postmark's JSON with basic auth.

A bad or old signature is refused, a replay is stored once, oversize requests and
attachments are refused without a 500, and the post reaches the one receive path."""

import base64
import hashlib
import hmac
import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Activity
from cases.models import Task
from dunning import sender
from integrations.models import InboundEmail
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, SentNoticeFactory

pytestmark = pytest.mark.django_db
MAILGUN = "/integrations/inbound/mailgun/"
POSTMARK = "/integrations/inbound/postmark/"
KEY = "mailgun-signing-key-for-tests"
PDF = b"%PDF-1.7 proof of payment"


@pytest.fixture(autouse=True)
def _inbound(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MAILGUN_WEBHOOK_SIGNING_KEY = KEY
    settings.POSTMARK_INBOUND_BASIC_AUTH = "postmark:s3cret"
    settings.INBOUND_REPLY_ADDRESS = "replies@in.example.com"
    settings.INBOUND_MAX_ATTACHMENT_BYTES = 1000


@pytest.fixture
def notice():
    customer = CustomerFactory(name="Acme Ltd")
    ContactFactory(customer=customer, name="Pat", email="pat@acme.example")
    invoice = InvoiceFactory(customer=customer, due_on=ON)
    return SentNoticeFactory(customer=customer, invoices=[invoice])


def signed(fields, *, timestamp=None, token="a" * 50, key=KEY):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {**fields, "timestamp": timestamp, "token": token, "signature": signature}


def route_post(notice, *, message_id="<reply-1@acme.example>", body="We pay Friday."):
    headers = [
        ["From", "Pat <pat@acme.example>"],
        ["To", sender.reply_address_for(notice.pk)],
        ["Subject", "Re: Payment reminder"],
        ["Message-Id", message_id],
        ["Content-Type", 'multipart/mixed; boundary="xyz"'],
    ]
    return {
        "recipient": sender.reply_address_for(notice.pk),
        "sender": "pat@acme.example",
        "from": "Pat <pat@acme.example>",
        "subject": "Re: Payment reminder",
        "body-plain": body + "\n\nOn Monday, Collections wrote:\n> Your invoice is due",
        "message-headers": json.dumps(headers),
    }


def test_a_signed_mailgun_post_is_received_threaded_and_answered_200(client, notice):
    response = client.post(MAILGUN, signed(route_post(notice)))

    assert response.status_code == 200
    inbound = InboundEmail.objects.get()
    assert (inbound.source, inbound.notice, inbound.matched_by) == ("mailgun", notice, "token")
    assert inbound.message_id == "reply-1@acme.example"
    assert inbound.text == "We pay Friday."
    assert Activity.objects.filter(kind="reply", customer=notice.customer).count() == 1
    assert Task.objects.filter(customer=notice.customer).count() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"signature": "0" * 64},
        {"token": "b" * 50},  # the signature was for another token
        {"timestamp": "not-a-number"},
    ],
)
def test_a_bad_signature_is_refused_with_403(client, notice, change):
    response = client.post(MAILGUN, {**signed(route_post(notice)), **change})

    assert response.status_code == 403
    assert not InboundEmail.objects.exists()


def test_an_old_signature_is_refused_with_403(client, notice):
    stale = int(time.time()) - 3600

    assert client.post(MAILGUN, signed(route_post(notice), timestamp=stale)).status_code == 403
    assert not InboundEmail.objects.exists()


def test_a_signature_with_another_key_is_refused(client, notice):
    response = client.post(MAILGUN, signed(route_post(notice), key="someone-elses-key"))

    assert response.status_code == 403


def test_without_a_signing_key_the_endpoint_says_what_is_missing(client, notice, settings):
    settings.MAILGUN_WEBHOOK_SIGNING_KEY = ""

    response = client.post(MAILGUN, signed(route_post(notice)))

    assert response.status_code == 503
    assert response.json()["setting"] == "MAILGUN_WEBHOOK_SIGNING_KEY"


def test_a_replayed_post_is_stored_once(client, notice):
    post = signed(route_post(notice))

    first, again = client.post(MAILGUN, post), client.post(MAILGUN, post)

    assert first.status_code == again.status_code == 200
    assert again.json() == {"id": first.json()["id"], "created": False}
    assert InboundEmail.objects.count() == 1
    assert Activity.objects.filter(kind="reply").count() == 1


def test_a_post_without_message_id_is_known_by_its_token(client, notice):
    fields = route_post(notice)
    fields["message-headers"] = json.dumps(
        [["From", "pat@acme.example"], ["To", "collections@example.com"]]
    )

    client.post(MAILGUN, signed(fields, token="c" * 50))
    client.post(MAILGUN, signed(fields, token="c" * 50))
    client.post(MAILGUN, signed(fields, token="d" * 50))

    assert sorted(InboundEmail.objects.values_list("message_id", flat=True)) == [
        "mailgun-token-" + "c" * 50,
        "mailgun-token-" + "d" * 50,
    ]


def test_attachments_are_kept_and_oversize_ones_recorded_as_refused(client, notice):
    fields = signed(route_post(notice))
    fields["attachment-count"] = "2"
    fields["attachment-1"] = SimpleUploadedFile("proof.pdf", PDF, content_type="application/pdf")
    fields["attachment-2"] = SimpleUploadedFile(
        "scan.pdf", b"x" * 5000, content_type="application/pdf"
    )

    response = client.post(MAILGUN, fields)

    assert response.status_code == 200
    proof, scan = InboundEmail.objects.get().attachments.order_by("id")
    assert proof.filename == "proof.pdf" and proof.file.read() == PDF
    assert scan.size == 5000 and "larger than" in scan.refused_reason and not scan.file


def test_a_request_over_the_size_bound_is_refused_before_it_is_read(client, notice, settings):
    settings.INBOUND_MAX_REQUEST_BYTES = 500

    response = client.post(MAILGUN, signed(route_post(notice, body="x" * 1000)))

    assert response.status_code == 406
    assert response.json()["field"] == "body"
    assert not InboundEmail.objects.exists()


def test_a_delivery_report_through_mailgun_is_an_automatic_reply(client, notice):
    fields = route_post(notice)
    headers = json.loads(fields["message-headers"])
    headers[-1] = ["Content-Type", 'multipart/report; report-type="delivery-status"; b="q"']
    fields["message-headers"] = json.dumps(headers)

    client.post(MAILGUN, signed(fields))

    inbound = InboundEmail.objects.get()
    assert inbound.is_automatic and inbound.automatic_reason == "bounce"
    assert not Task.objects.exists()


def test_mailgun_fields_without_headers_still_make_a_message(client, notice):
    fields = route_post(notice)
    del fields["message-headers"]
    fields["Message-Id"] = "<plain-fields@acme.example>"

    client.post(MAILGUN, signed(fields))

    inbound = InboundEmail.objects.get()
    assert inbound.matched_by == "token" and inbound.message_id == "plain-fields@acme.example"


# --- Postmark ------------------------------------------------------------------------------


def postmark_payload(notice):
    return {
        "From": "pat@acme.example",
        "To": sender.reply_address_for(notice.pk),
        "Subject": "Re: Payment reminder",
        "MessageID": "pm-1",
        "OriginalRecipient": sender.reply_address_for(notice.pk),
        "TextBody": "The goods arrived damaged.",
        "Headers": [{"Name": "Message-ID", "Value": "<pm-reply-1@acme.example>"}],
        "Attachments": [
            {
                "Name": "photo.png",
                "Content": base64.b64encode(b"\x89PNG...").decode(),
                "ContentType": "image/png",
                "ContentLength": 7,
            }
        ],
    }


def auth(credentials="postmark:s3cret"):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def test_a_postmark_post_with_basic_auth_is_received(client, notice):
    response = client.post(
        POSTMARK, json.dumps(postmark_payload(notice)), "application/json", **auth()
    )

    assert response.status_code == 200
    inbound = InboundEmail.objects.get()
    assert (inbound.source, inbound.notice, inbound.message_id) == (
        "postmark",
        notice,
        "pm-reply-1@acme.example",
    )
    assert inbound.dispute_words == ["damaged"]
    assert inbound.attachments.get().file.read() == b"\x89PNG..."


def test_postmark_with_wrong_credentials_is_refused(client, notice):
    response = client.post(
        POSTMARK, json.dumps(postmark_payload(notice)), "application/json", **auth("postmark:no")
    )

    assert response.status_code == 401
    assert not InboundEmail.objects.exists()


def test_postmark_with_a_body_that_is_not_json_names_the_field(client, notice):
    response = client.post(POSTMARK, "{not json", "application/json", **auth())

    assert response.status_code == 400 and response.json()["field"] == "body"


def test_more_files_than_a_request_may_carry_is_refused_without_a_500(client, notice, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    fields = signed(route_post(notice))
    for n in range(1, 4):
        fields[f"attachment-{n}"] = SimpleUploadedFile(f"{n}.pdf", PDF, "application/pdf")

    response = client.post(MAILGUN, fields)

    assert response.status_code == 406 and response.json()["field"] == "body"
    assert not InboundEmail.objects.exists()
