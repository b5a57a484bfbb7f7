"""The inbox behind every webhook and queued bulk request: stored in the request, applied
once by a worker, never lost when a task message is, never left half-applied."""

import datetime as dt
import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from django.db import OperationalError, connection  # noqa: F401 (skipif)

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


def deliver_events(client, count):
    for n in range(count):
        deliver(client, event_id=f"evt_{n}", amount="1.00")


def drain_all():
    return inbox.drain(handlers=tasks.HANDLERS, chunk=10, per_second=1000, budget_seconds=60)


@pytest.fixture
def invoice():
    return InvoiceFactory(number="INV-1", amount=Decimal("100.00"))


def test_a_stored_event_rings_the_doorbell_when_the_insert_commits(
    client, invoice, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []
    monkeypatch.setattr(inbox, "doorbell", inbox.Doorbell())
    monkeypatch.setattr(
        inbox.current_app, "send_task", lambda name, **kw: queued.append((name, kw))
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = deliver(client)

    item = InboxItem.objects.get()
    assert response.status_code == 202
    assert queued == [("integrations.tasks.drain_inbox", {"countdown": None})]
    assert tasks.drain_inbox.name == queued[0][0]
    assert item.status == "received" and not Payment.objects.exists()


def test_the_doorbell_sends_at_most_two_messages_a_second_and_never_leaves_one_behind(
    monkeypatch,
):
    now = [100.0]
    sent = []
    monkeypatch.setattr(inbox.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(
        inbox.current_app, "send_task", lambda name, countdown: sent.append((now[0], countdown))
    )
    bell = inbox.Doorbell(interval=1.0)

    for _ in range(500):  # a burst within one instant
        bell.ring()
    now[0] = 100.4
    bell.ring()
    # One drain at once, one more due when the second is over (for the events stored
    # after the first drain may have looked), and nothing else.
    assert sent == [(100.0, None), (100.0, 1.0)]

    now[0] = 101.2  # the next second: at once again
    bell.ring()
    bell.ring()
    assert sent[2:] == [(101.2, None), (101.2, pytest.approx(1.0))]


def test_a_broker_that_is_down_loses_nothing_the_sweep_applies_it(
    client, invoice, monkeypatch, django_capture_on_commit_callbacks, clock
):
    def broker_down(name, **kwargs):
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


def test_the_drain_applies_waiting_events_in_chunks_and_leaves_bulk_requests(client, invoice):
    deliver_events(client, 7)
    bulk = InboxItem.objects.create(source=InboxItem.Source.API_BULK, key="b", payload={})

    applied, more_left = inbox.drain(
        handlers=tasks.HANDLERS, chunk=3, per_second=1000, budget_seconds=60
    )

    assert (applied, more_left) == (7, False)
    assert set(InboxItem.objects.exclude(pk=bulk.pk).values_list("status", flat=True)) == {
        "processed"
    }
    bulk.refresh_from_db()
    assert bulk.status == "received"
    assert Payment.objects.count() == 7
    assert tasks.drain_inbox() == 0  # nothing left: a late ring costs one empty query


def test_one_bad_event_in_a_chunk_fails_alone(client, invoice, monkeypatch):
    deliver_events(client, 3)
    apply = tasks.HANDLERS[InboxItem.Source.PAYMENTS_WEBHOOK]

    def second_breaks(item):
        if item.key == "evt_1":
            InvoiceFactory(number="HALF-WRITTEN")
            raise KeyError("surprise")
        return apply(item)

    monkeypatch.setitem(tasks.HANDLERS, InboxItem.Source.PAYMENTS_WEBHOOK, second_breaks)
    assert drain_all() == (
        3,
        False,
    )

    statuses = dict(InboxItem.objects.values_list("key", "status"))
    assert statuses == {"evt_0": "processed", "evt_1": "failed", "evt_2": "processed"}
    assert Payment.objects.count() == 2
    assert not Invoice.objects.filter(number="HALF-WRITTEN").exists()
    assert Rejection.objects.get().raw["key"] == "evt_1"


def test_a_drain_that_loses_the_database_leaves_its_chunk_waiting(client, invoice, monkeypatch):
    deliver_events(client, 3)
    apply = tasks.HANDLERS[InboxItem.Source.PAYMENTS_WEBHOOK]

    def lost_on_the_third(item):
        if item.key == "evt_2":
            raise OperationalError("server closed the connection unexpectedly")
        return apply(item)

    monkeypatch.setitem(tasks.HANDLERS, InboxItem.Source.PAYMENTS_WEBHOOK, lost_on_the_third)
    with pytest.raises(OperationalError):
        drain_all()

    # The chunk was one transaction: nothing of it was applied, all of it still waits.
    assert set(InboxItem.objects.values_list("status", flat=True)) == {"received"}
    assert not Payment.objects.exists()


def test_the_drain_keeps_its_rate_and_hands_the_worker_back_after_its_budget(client, invoice):
    deliver_events(client, 10)
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    applied, more_left = inbox.drain(
        handlers=tasks.HANDLERS,
        chunk=2,
        per_second=4,  # 2 events a chunk: half a second a chunk
        budget_seconds=1.0,
        clock=lambda: now[0],
        sleep=sleep,
    )

    assert (applied, more_left) == (4, True)  # two chunks in its one second
    assert slept == [0.5, 0.5]
    assert InboxItem.objects.filter(status="received").count() == 6


def test_a_drain_with_events_left_queues_itself_again(client, invoice, settings, monkeypatch):
    deliver_events(client, 3)
    settings.INBOX_DRAIN_CHUNK = 1
    settings.INBOX_DRAIN_BUDGET_SECONDS = 0
    again = []
    monkeypatch.setattr(tasks.drain_inbox, "delay", lambda: again.append(True))

    assert tasks.drain_inbox() == 1
    assert again == [True]


@pytest.mark.skipif("connection.vendor != 'postgresql'")
def test_a_drain_rung_while_another_runs_returns_at_once(client, invoice):
    from django.db import connections

    deliver(client)
    other = connections.create_connection("default")  # another worker's connection
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [inbox.DRAIN_LOCK_KEY])
        assert drain_all() == (0, False)
        assert InboxItem.objects.get().status == "received"
        with other.cursor() as cursor:  # the other drain is done
            cursor.execute("SELECT pg_advisory_unlock(%s)", [inbox.DRAIN_LOCK_KEY])
    finally:
        other.close()

    assert drain_all() == (
        1,
        False,
    )


def test_a_drain_looks_again_after_letting_the_lock_go(client, invoice, monkeypatch):
    deliver(client, event_id="evt_0", amount="1.00")
    apply = tasks.HANDLERS[InboxItem.Source.PAYMENTS_WEBHOOK]

    def another_arrives_meanwhile(item):
        if item.key == "evt_0":  # stands for an event stored after the drain's last look
            InboxItem.objects.create(
                source=InboxItem.Source.PAYMENTS_WEBHOOK,
                key="evt_1",
                payload=item.payload | {"id": "evt_1", "reference": "pay_evt_1"},
            )
        return apply(item)

    monkeypatch.setitem(
        tasks.HANDLERS, InboxItem.Source.PAYMENTS_WEBHOOK, another_arrives_meanwhile
    )
    assert drain_all() == (
        2,
        False,
    )
    assert set(InboxItem.objects.values_list("status", flat=True)) == {"processed"}
