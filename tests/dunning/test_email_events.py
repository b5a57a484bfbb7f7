import datetime as dt
import hashlib
import hmac
import json
import threading
import zoneinfo

import pytest
from django.core import mail
from django.db import connection
from django.test import Client

from accounts.models import Activity, Contact
from dunning import planner, sender
from dunning.models import EmailEvent, Notice, Step
from integrations import tasks
from integrations.models import InboxItem, Rejection
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
SECRET = "email-events-test-secret"
URL = "/dunning/email-events/"


@pytest.fixture(autouse=True)
def _configured(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_EVENTS_WEBHOOK_SECRET = SECRET


@pytest.fixture
def sent():
    """An e-mail notice that went out to dana@acme.example."""
    customer = CustomerFactory()
    ContactFactory(customer=customer, name="Dana", email="dana@acme.example", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer, channel="sms").delete()
    sender.send_due(now=NOW)
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == "sent" and len(mail.outbox) == 1
    return notice


def post(client, event: dict, *, secret: str = SECRET, signature: str | None = None):
    """Deliver the event, then let a worker apply what was stored."""
    body = json.dumps(event).encode()
    if signature is None:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(URL, body, content_type="application/json", HTTP_X_SIGNATURE=signature)
    tasks.sweep_inbox(older_than_seconds=0)
    return response


def bounce(notice, **fields) -> dict:
    return {
        "id": "evt-1",
        "type": "bounce",
        "message_id": notice.provider_message_id,
        "email": "dana@acme.example",
        "reason": "550 5.1.1 mailbox does not exist",
    } | fields


def changes_since_setup(notice) -> tuple:
    """Everything a webhook may change, to compare before and after."""
    notice.refresh_from_db()
    contact = Contact.objects.matching(email="dana@acme.example").get()
    return (
        notice.status,
        notice.reason,
        notice.delivered_at,
        contact.email_opted_out_at,
        contact.email_opt_out_source,
        EmailEvent.objects.count(),
        Activity.objects.exclude(kind="email").count(),
    )


def test_a_hard_bounce_fails_the_notice_and_opts_the_address_out(client, sent):
    response = post(client, bounce(sent))
    assert response.status_code == 202 and response.json() == {"status": "queued", "id": "evt-1"}
    assert EmailEvent.objects.get().opted_out == 1
    sent.refresh_from_db()
    assert sent.status == "failed" and sent.reason == "bounced: 550 5.1.1 mailbox does not exist"
    contact = Contact.objects.matching(email="dana@acme.example").get()
    assert contact.email_opted_out_at is not None and contact.email_opt_out_source == "bounce"
    timeline = dict(
        Activity.objects.filter(customer=sent.customer)
        .exclude(kind="email")
        .values_list("kind", "text")
    )
    assert "bounced: 550 5.1.1" in timeline["delivery"]
    assert timeline["hold_change"] == "Dana opted out of e-mail (bounce)"
    assert EmailEvent.objects.get().notice == sent


def test_a_complaint_opts_the_address_out_and_counts_as_delivered(client, sent):
    post(client, {"id": "evt-2", "type": "complaint", "message_id": sent.provider_message_id})
    sent.refresh_from_db()
    assert sent.status == "delivered" and sent.delivered_at is not None
    contact = Contact.objects.matching(email="dana@acme.example").get()
    assert contact.email_opt_out_source == "complaint"  # the address came from the notice
    texts = list(Activity.objects.filter(kind="delivery").values_list("text", flat=True))
    assert texts == ["dana@acme.example marked the e-mail as spam"]


def test_a_delivery_marks_the_notice_delivered_once(client, sent):
    bare_id = sent.provider_message_id.strip("<>")  # providers often drop the brackets
    answers = [  # no event id: the same payload twice is known by its digest
        post(client, {"type": "delivered", "message_id": bare_id}).json()["status"]
        for _ in range(2)
    ]
    assert answers == ["queued", "duplicate"]
    sent.refresh_from_db()
    assert sent.status == "delivered"
    assert Activity.objects.filter(kind="delivery").count() == 1
    assert Contact.objects.matching(email="dana@acme.example").get().email_opted_out_at is None


def test_a_soft_bounce_is_noted_but_changes_nothing_else(client, sent):
    post(client, bounce(sent, bounce_type="soft", reason="mailbox full"))
    sent.refresh_from_db()
    assert sent.status == "sent"
    assert Contact.objects.matching(email="dana@acme.example").get().email_opted_out_at is None
    assert "soft bounce" in Activity.objects.get(kind="delivery").text


def test_a_bounce_for_an_address_without_a_notice_still_opts_it_out(client, sent):
    other = ContactFactory(email="old@acme.example")
    post(client, {"type": "bounce", "email": "OLD@acme.example"})
    other.refresh_from_db()
    assert other.email_opt_out_source == "bounce"
    sent.refresh_from_db()
    assert sent.status == "sent"


@pytest.mark.parametrize(
    "signature",
    ["", "sha256=", "sha256=" + "0" * 64, "not-hex"],
    ids=["missing", "empty", "wrong", "garbage"],
)
def test_a_forged_or_unsigned_bounce_is_refused_with_400_and_changes_nothing(
    client, sent, signature
):
    before = changes_since_setup(sent)
    assert post(client, bounce(sent), signature=signature).status_code == 400
    assert post(client, bounce(sent), secret="not-the-secret").status_code == 400
    assert changes_since_setup(sent) == before


def test_a_replayed_event_changes_nothing(client, sent):
    assert post(client, bounce(sent)).json()["status"] == "queued"
    # An agent confirms the address with the customer and turns e-mail back on ...
    Contact.objects.matching(email="dana@acme.example").update(
        email_opted_out_at=None, email_opt_out_source=""
    )
    before = changes_since_setup(sent)
    # ... and the provider's retry (or an attacker replaying a capture) must not undo that.
    replay = post(client, bounce(sent))
    assert replay.status_code == 200 and replay.json() == {"status": "duplicate", "id": "evt-1"}
    assert changes_since_setup(sent) == before


def test_a_signed_but_invalid_event_is_refused_and_stores_nothing(client, sent):
    response = post(client, {"type": "opened", "message_id": 42})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"type", "message_id"}
    assert post(client, {"type": "bounce"}).status_code == 400  # neither id nor address
    assert not EmailEvent.objects.exists()


def test_without_a_secret_the_endpoint_is_closed(client, settings, sent):
    settings.EMAIL_EVENTS_WEBHOOK_SECRET = ""
    assert post(client, bounce(sent), secret="").status_code == 503
    assert not EmailEvent.objects.exists()


def test_only_post_is_accepted(client):
    assert client.get(URL).status_code == 405


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_same_event_posted_twice_at_once_is_applied_once(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.EMAIL_EVENTS_WEBHOOK_SECRET = SECRET
    customer = CustomerFactory()
    ContactFactory(customer=customer, name="Dana", email="dana@acme.example")
    notice = Notice.objects.create(
        customer=customer,
        step=Step.objects.filter(channel="email").first(),
        channel="email",
        planned_on=ON,
        status="sent",
        provider_message_id="<race@collections.example.com>",
    )
    barrier = threading.Barrier(2)
    answers = []

    def deliver():
        try:
            barrier.wait(timeout=5)
            answers.append(post(Client(), bounce(notice)).json()["status"])
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == ["duplicate", "queued"]
    assert EmailEvent.objects.count() == 1
    assert Activity.objects.filter(customer=customer, kind="hold_change").count() == 1
    assert Activity.objects.filter(customer=customer, kind="delivery").count() == 1


def test_events_are_listed_read_only_in_the_admin(client, manager, sent):
    post(client, bounce(sent))
    client.force_login(manager)
    page = client.get("/admin/dunning/emailevent/").content.decode()
    assert "dana@acme.example" in page and "550 5.1.1" in page
    assert client.get("/admin/dunning/emailevent/add/").status_code == 403


# --- replays, clocks and hostile input (issue 15, items 4 and 5) ---------------------------


def test_a_complaint_without_an_id_replayed_after_opting_back_in_changes_nothing(client, sent):
    complaint = {"type": "complaint", "email": "dana@acme.example", "reason": "spam button"}
    assert post(client, complaint).status_code == 202
    contact = Contact.objects.matching(email="dana@acme.example").get()
    assert contact.email_opt_out_source == "complaint"
    # The debtor asks for e-mail again and an agent turns it back on ...
    Contact.objects.filter(pk=contact.pk).update(email_opted_out_at=None, email_opt_out_source="")
    before = changes_since_setup(sent)

    # ... and the same signed complaint, captured and replayed (re-serialised), is known.
    replay = post(client, dict(reversed(complaint.items())))

    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert replay.json()["id"].startswith("sha256:")
    assert changes_since_setup(sent) == before
    assert InboxItem.objects.count() == 1


def test_a_different_complaint_without_an_id_is_applied(client, sent):
    post(client, {"type": "complaint", "email": "dana@acme.example", "reason": "first"})
    Contact.objects.update(email_opted_out_at=None, email_opt_out_source="")

    later = post(client, {"type": "complaint", "email": "dana@acme.example", "reason": "again"})

    assert later.status_code == 202
    assert (
        Contact.objects.matching(email="dana@acme.example").get().email_opt_out_source
        == "complaint"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "dana@acme.example\u0000"),
        ("reason", "550\u0000"),
        ("id", "evt\u0000"),
        ("occurred_at", "2026-13-45"),
        ("occurred_at", "2026-13-45T10:00:00Z"),
        ("occurred_at", "0001-01-01T00:00:00+01:00"),
        ("occurred_at", "9999-12-31T23:59:59-23:59"),
        ("occurred_at", "2026-11-23T17:00:00Z"),  # an hour ahead of the frozen clock
    ],
)
def test_a_signed_event_with_an_impossible_value_is_refused_and_dead_lettered(
    client, sent, field, value
):
    before = changes_since_setup(sent)

    response = post(client, bounce(sent, **{field: value}))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert changes_since_setup(sent) == before and not InboxItem.objects.exists()
    rejection = Rejection.objects.select_related("batch").get()
    assert rejection.batch.source == "email_events" and field in rejection.errors
    assert "dana@acme.example" in rejection.raw["body"]


def test_occurred_at_a_few_minutes_ahead_is_accepted(client, sent):
    response = post(client, bounce(sent, occurred_at="2026-11-23T16:04:00Z"))
    assert response.status_code == 202
    assert EmailEvent.objects.count() == 1
