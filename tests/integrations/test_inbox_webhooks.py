"""The inbox behind every webhook and queued bulk request: stored in the request, applied
once by a worker, never lost when a task message is, never left half-applied."""

import datetime as dt
import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from django.db import OperationalError

from accounts.models import Invoice, Payment
from integrations import tasks
from integrations.gateways import stripe_events
from integrations.intake import inbox
from integrations.models import InboxItem, IntakeBatch, Rejection, WebhookEvent
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db
SECRET = "generic-test-secret"
URL = "/integrations/payments/webhook/"


@pytest.fixture(autouse=True)
def _secret(settings):
    settings.PAYMENTS_WEBHOOK_SECRET = SECRET


def deliver(client, event_id="evt_1", amount="10.00"):
    raw = json.dumps(
        {
            "id": event_id,
            "type": "payment.succeeded",
            "amount": amount,
            "currency": "USD",
            "invoice_number": "INV-1",
            "reference": f"pay_{event_id}",
        }
    )
    timestamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), f"{timestamp}.{raw}".encode(), hashlib.sha256)
    return client.post(
        URL,
        data=raw,
        content_type="application/json",
        HTTP_X_SIGNATURE=f"sha256={digest.hexdigest()}",
        HTTP_X_TIMESTAMP=timestamp,
    )


@pytest.fixture
def invoice():
    return InvoiceFactory(number="INV-1", amount=Decimal("100.00"))


def test_a_stored_event_is_queued_to_a_worker_when_the_insert_commits(
    client, invoice, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(
        inbox.current_app, "send_task", lambda name, args: queued.append((name, args))
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client)

    item = InboxItem.objects.get()
    assert response.status_code == 202
    assert queued == [("integrations.tasks.process_inbox_item", [item.pk])]
    assert tasks.process_inbox_item.name == queued[0][0]
    assert item.status == "received" and not Payment.objects.exists()


def test_a_broker_that_is_down_loses_nothing_the_sweep_applies_it(
    client, invoice, monkeypatch, django_capture_on_commit_callbacks, clock
):
    def broker_down(name, args):
        raise ConnectionError("redis unreachable")

    monkeypatch.setattr(inbox.current_app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(client).status_code == 202

    assert tasks.sweep_inbox() == 0  # younger than INBOX_SWEEP_AFTER_SECONDS: a worker may have it
    clock.shift(dt.timedelta(minutes=6))
    assert tasks.sweep_inbox() == 1

    assert InboxItem.objects.get().status == "processed"
    assert Payment.objects.get().amount == Decimal("10.00")


def test_an_item_delivered_to_two_workers_is_applied_once(client, invoice):
    deliver(client)
    item = InboxItem.objects.get()

    assert tasks.process_inbox_item(item.pk) == "processed"
    assert tasks.process_inbox_item(item.pk) is None  # the redelivered message finds it done

    assert Payment.objects.count() == 1 and WebhookEvent.objects.count() == 1


def test_a_worker_that_loses_the_database_leaves_the_item_waiting(client, invoice, monkeypatch):
    deliver(client)
    item = InboxItem.objects.get()

    def connection_lost(stored):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setitem(tasks.HANDLERS, InboxItem.Source.PAYMENTS_WEBHOOK, connection_lost)
    with pytest.raises(OperationalError):
        inbox.process(item_id=item.pk, handlers=tasks.HANDLERS)

    item.refresh_from_db()
    assert item.status == "received" and not Payment.objects.exists()


def test_a_handler_that_breaks_fails_the_item_into_the_dead_letter_list(
    client, invoice, monkeypatch
):
    deliver(client)
    item = InboxItem.objects.get()

    def broken(stored):
        InvoiceFactory(number="HALF-WRITTEN")
        raise KeyError("surprise")

    monkeypatch.setitem(tasks.HANDLERS, InboxItem.Source.PAYMENTS_WEBHOOK, broken)
    tasks.process_inbox_item(item.pk)

    item.refresh_from_db()
    assert item.status == "failed" and "KeyError" in item.note
    # What it wrote before breaking was rolled back.
    assert not Invoice.objects.filter(number="HALF-WRITTEN").exists()
    rejection = Rejection.objects.select_related("batch").get()
    assert rejection.batch.source == "webhook" and rejection.raw["key"] == "evt_1"
    assert "processing" in rejection.errors


def test_storable_shows_nul_and_replaces_lone_surrogates():
    value = {"a\x00": ["x\x00y", "\ud800", float("nan")], "n": 1}

    assert inbox.storable(value) == {"a\\u0000": ["x\\u0000y", "?", "nan"], "n": 1}
    assert set(inbox.unstorable_fields(value)) == {
        "a\\u0000",
        "a\\u0000[0]",
        "a\\u0000[1]",
        "a\\u0000[2]",
    }


def test_the_sweep_is_scheduled_every_minute():
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(task="integrations.tasks.sweep_inbox")
    assert (row.interval.every, row.interval.period) == (1, "minutes")


def test_stripe_events_are_applied_through_the_same_inbox(client, invoice, settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_x"
    event = {
        "id": "evt_s",
        "type": "customer.created",
        "created": int(time.time()),
        "data": {"object": {"id": "cus_1"}},
    }
    body = json.dumps(event)
    timestamp = int(time.time())
    signature = hmac.new(b"whsec_x", f"{timestamp}.{body}".encode(), hashlib.sha256)
    response = client.post(
        "/integrations/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"t={timestamp},v1={signature.hexdigest()}",
    )

    assert response.status_code == 202
    assert stripe_events.apply_stored(InboxItem.objects.get()).startswith("ignored")
    assert IntakeBatch.objects.get().unchanged == 1
