import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest
from django.db import OperationalError
from django.urls import reverse

from accounts.models import Activity, Allocation, Invoice, Payment
from cases.models import Dispute
from integrations import tasks
from integrations.gateways import events, minor_units, stripe_events
from integrations.models import InboxItem, IntakeBatch, Rejection, SourceHealth, WebhookEvent
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db
SECRET = "whsec_test_secret"
URL = "/integrations/stripe/webhook/"


@pytest.fixture(autouse=True)
def _stripe_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


@pytest.fixture
def invoice():
    return InvoiceFactory(
        number="INV-7001", amount=Decimal("100.00"), customer__external_ref="CUST-1"
    )


def sign(payload: str, secret: str = SECRET, timestamp: int | None = None) -> str:
    """Stripe's scheme: v1 = HMAC-SHA256(secret, f"{t}.{payload}")."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signature = hmac.new(
        secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={signature}"


def event(event_type: str, obj: dict, event_id: str | None = None) -> dict:
    now = int(time.time())
    return {
        "id": event_id or f"evt_{event_type.replace('.', '_')}_{obj.get('id', 'x')}",
        "object": "event",
        "type": event_type,
        "created": now,
        "livemode": False,
        "api_version": "2025-01-27.acacia",
        "data": {"object": {"created": now, **obj}},
    }


def metadata(invoice_number="INV-7001", customer_ref="CUST-1"):
    return {"invoice_number": invoice_number, "customer_ref": customer_ref}


def payment_intent(pi="pi_1", amount=10000, currency="usd", **meta):
    return event(
        "payment_intent.succeeded",
        {
            "id": pi,
            "object": "payment_intent",
            "amount": amount,
            "amount_received": amount,
            "currency": currency,
            "status": "succeeded",
            "metadata": metadata(**meta),
        },
    )


def checkout_completed(pi="pi_1", amount=10000, currency="usd"):
    return event(
        "checkout.session.completed",
        {
            "id": f"cs_{pi}",
            "object": "checkout.session",
            "mode": "payment",
            "payment_status": "paid",
            "payment_intent": pi,
            "amount_total": amount,
            "currency": currency,
            "metadata": metadata(),
        },
    )


def charge_refunded(amount_refunded, pi="pi_1", amount=10000, event_id=None):
    return event(
        "charge.refunded",
        {
            "id": f"ch_{pi}",
            "object": "charge",
            "payment_intent": pi,
            "amount": amount,
            "amount_refunded": amount_refunded,
            "currency": "usd",
            "refunded": amount_refunded == amount,
            "metadata": metadata(),
        },
        event_id=event_id or f"evt_refund_{pi}_{amount_refunded}",
    )


def post(client, payload_event, *, secret=SECRET, timestamp=None, signature=None, work=True):
    """Deliver the event, then let a worker apply what was stored (unless work=False)."""
    payload = json.dumps(payload_event) if not isinstance(payload_event, str) else payload_event
    header = sign(payload, secret, timestamp) if signature is None else signature
    response = client.post(
        URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )
    if work:
        tasks.sweep_inbox(older_than_seconds=0)
    return response


def applied(event_id: str) -> WebhookEvent:
    return WebhookEvent.objects.get(event_id=event_id)


def ledger_counts():
    return (
        Payment.objects.count(),
        Allocation.objects.count(),
        Activity.objects.count(),
        WebhookEvent.objects.count(),
    )


def test_payment_intent_succeeded_books_and_allocates_the_invoice(client, invoice):
    response = post(client, payment_intent())

    assert response.status_code == 202 and response.json()["status"] == "queued"
    invoice.refresh_from_db()
    assert (invoice.status, invoice.open_balance) == (Invoice.Status.PAID, Decimal("0.00"))
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.amount, payment.currency) == (
        "stripe",
        "pi_1",
        Decimal("100.00"),
        "USD",
    )
    assert payment.customer == invoice.customer and payment.unallocated_amount == 0
    assert set(
        Activity.objects.filter(customer=invoice.customer).values_list("kind", flat=True)
    ) == {
        Activity.Kind.PAYMENT,
        Activity.Kind.ALLOCATION,
    }
    webhook_event = WebhookEvent.objects.get()
    assert (webhook_event.provider, webhook_event.status) == ("stripe", "processed")
    batch = IntakeBatch.objects.get()
    assert (batch.source, batch.kind, batch.status) == ("stripe", "payments", "completed")
    assert batch.counts()["read"] == batch.counts()["created"] == 1
    assert SourceHealth.objects.get(source="stripe").consecutive_failures == 0


def test_replayed_event_answers_200_and_changes_nothing(client, invoice):
    payload = payment_intent()
    post(client, payload)
    before = ledger_counts()

    response = post(client, payload)

    assert response.status_code == 200 and response.json()["status"] == "duplicate"
    assert ledger_counts() == before
    assert IntakeBatch.objects.count() == 1 and InboxItem.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "t=1,v1=deadbeef",
        "garbage",
        sign("{}"),  # a valid signature of another body
    ],
)
def test_bad_or_missing_signature_is_refused_and_stores_nothing(client, invoice, signature):
    response = post(client, payment_intent(), signature=signature)

    assert response.status_code == 400
    assert ledger_counts() == (0, 0, 0, 0)
    assert not IntakeBatch.objects.exists()


def test_signature_made_with_another_secret_is_refused(client, invoice):
    assert post(client, payment_intent(), secret="whsec_other").status_code == 400
    assert ledger_counts() == (0, 0, 0, 0)


def test_signature_older_than_five_minutes_is_refused(client, invoice):
    response = post(client, payment_intent(), timestamp=int(time.time()) - 301)

    assert response.status_code == 400
    assert ledger_counts() == (0, 0, 0, 0)


def test_signature_within_five_minutes_is_accepted(client, invoice):
    assert post(client, payment_intent(), timestamp=int(time.time()) - 240).status_code == 202


def test_not_configured_answers_503_and_changes_nothing(client, invoice, settings):
    settings.STRIPE_WEBHOOK_SECRET = ""

    response = post(client, payment_intent())

    assert response.status_code == 503 and response.json()["error"] == "not configured"
    assert ledger_counts() == (0, 0, 0, 0)


def test_webhook_is_post_only_and_needs_no_csrf_token(invoice):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    assert client.get(URL).status_code == 405
    assert post(client, payment_intent()).status_code == 202
    assert reverse("integrations:stripe-webhook") == URL


@pytest.mark.parametrize("first", ["checkout", "payment_intent"])
def test_checkout_and_payment_intent_events_for_one_intent_book_once(client, invoice, first):
    events = [checkout_completed(), payment_intent()]
    if first == "payment_intent":
        events.reverse()

    for each in events:
        assert post(client, each).status_code == 202

    payment = Payment.objects.get()
    assert payment.external_id == "pi_1" and Allocation.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    second = WebhookEvent.objects.get(event_id=events[1]["id"])
    assert second.status == "processed" and "already booked" in second.note
    assert IntakeBatch.objects.order_by("id").last().unchanged == 1


def test_unpaid_checkout_session_books_nothing(client, invoice):
    pending = checkout_completed()
    pending["data"]["object"]["payment_status"] = "unpaid"

    post(client, pending)

    assert not Payment.objects.exists()
    assert WebhookEvent.objects.get().status == "ignored"


def test_partial_then_full_refund_reopens_the_invoice_idempotently(client, invoice):
    post(client, payment_intent())
    partial = charge_refunded(4000)

    post(client, partial)
    post(client, partial)  # replay

    invoice.refresh_from_db()
    payment = Payment.objects.get()
    assert (invoice.status, invoice.open_balance) == (Invoice.Status.PARTIALLY_PAID, Decimal("40"))
    assert payment.refunded_amount == Decimal("40.00")

    post(client, charge_refunded(10000))  # cumulative: 100.00 refunded in all
    post(client, charge_refunded(4000, event_id="evt_late_copy"))  # older state, arriving late

    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert (invoice.status, invoice.open_balance) == (Invoice.Status.OPEN, Decimal("100.00"))
    assert payment.refunded_amount == Decimal("100.00")
    assert Allocation.objects.filter(amount__lt=0).count() == 2
    late = WebhookEvent.objects.get(event_id="evt_late_copy")
    assert late.status == "processed" and "nothing changed" in late.note


def test_refund_before_payment_books_the_payment_from_the_charge_then_refunds(client, invoice):
    post(client, charge_refunded(3000))
    post(client, payment_intent())  # arrives late
    post(client, checkout_completed())  # and later still

    payment = Payment.objects.get()
    assert (payment.amount, payment.refunded_amount) == (Decimal("100.00"), Decimal("30.00"))
    invoice.refresh_from_db()
    assert (invoice.status, invoice.open_balance) == (Invoice.Status.PARTIALLY_PAID, Decimal("30"))
    assert Allocation.objects.filter(amount__gt=0).count() == 1
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {"processed"}


def test_unknown_invoice_keeps_the_money_as_unapplied_cash(client, invoice):
    post(client, payment_intent(invoice_number="INV-NOPE"))

    payment = Payment.objects.get()
    assert payment.unallocated_amount == Decimal("100.00")
    assert payment.customer == invoice.customer  # from customer_ref
    webhook_event = WebhookEvent.objects.get()
    assert webhook_event.status == "processed" and "no invoice INV-NOPE" in webhook_event.note
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.OPEN


def test_unknown_customer_and_invoice_still_records_the_payment(client, invoice):
    post(client, payment_intent(invoice_number="X-1", customer_ref="NOBODY"))

    payment = Payment.objects.get()
    assert payment.customer is None and payment.unallocated_amount == Decimal("100.00")


def test_currency_mismatch_keeps_the_money_unapplied_with_the_reason(client, invoice):
    post(client, payment_intent(currency="eur"))

    payment = Payment.objects.get()
    assert (payment.currency, payment.unallocated_amount) == ("EUR", Decimal("100.00"))
    note = WebhookEvent.objects.get().note
    assert "unapplied" in note and "EUR" in note and "USD" in note
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("100.00")


def test_zero_decimal_currency_jpy_is_not_divided_by_100(client):
    invoice = InvoiceFactory(
        number="INV-JP", currency="JPY", amount=Decimal("5000"), customer__external_ref="JP-1"
    )

    post(
        client,
        payment_intent(amount=5000, currency="jpy", invoice_number="INV-JP", customer_ref="JP-1"),
    )

    payment = Payment.objects.get()
    assert (payment.amount, payment.currency) == (Decimal("5000.00"), "JPY")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_minor_units_follow_the_currency_exponent():
    assert minor_units.from_minor_units(12345, "USD") == Decimal("123.45")
    assert minor_units.from_minor_units(12345, "KRW") == Decimal("12345.00")
    assert minor_units.from_minor_units(12340, "KWD") == Decimal("12.34")
    assert minor_units.to_minor_units(Decimal("5000.00"), "JPY") == 5000
    assert minor_units.to_minor_units(Decimal("12.34"), "EUR") == 1234


def test_event_without_an_amount_is_stored_failed_with_a_rejection(client, invoice):
    broken = payment_intent()
    del broken["data"]["object"]["amount"], broken["data"]["object"]["amount_received"]

    response = post(client, broken)

    assert response.status_code == 202
    assert not Payment.objects.exists()
    webhook_event = WebhookEvent.objects.get()
    assert webhook_event.status == "failed" and "amount" in webhook_event.note
    batch = IntakeBatch.objects.get()
    assert (batch.rows_read, batch.rejected, batch.status) == (1, 1, "completed")
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.raw["event_id"] == broken["id"] and "amount" in rejection.errors
    assert post(client, broken).json()["status"] == "duplicate"


def test_other_event_types_are_stored_and_ignored(client, invoice):
    post(client, event("customer.created", {"id": "cus_1", "object": "customer"}))

    assert WebhookEvent.objects.get().status == "ignored"
    assert not Payment.objects.exists()
    assert IntakeBatch.objects.get().unchanged == 1


def test_transient_database_failure_is_retried_and_books_once(client, invoice, monkeypatch):
    real_book = events.book_payment
    calls = []

    def flaky_book(**kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real_book(**kwargs)

    monkeypatch.setattr(events, "book_payment", flaky_book)

    assert post(client, payment_intent()).status_code == 202

    assert len(calls) == 2
    assert Payment.objects.count() == 1 and WebhookEvent.objects.count() == 1
    assert IntakeBatch.objects.count() == 1
    assert SourceHealth.objects.get(source="stripe").consecutive_failures == 0


def test_signed_body_that_is_not_an_event_is_refused_and_dead_lettered(client):
    payload = "[1, 2, 3]"

    response = client.post(
        URL, data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=sign(payload)
    )

    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert IntakeBatch.objects.get().rejected == 1 and Rejection.objects.count() == 1


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_success_events_for_one_intent_book_once():
    import threading

    from django.db import connection

    invoice = InvoiceFactory(
        number="INV-7001", amount=Decimal("100.00"), customer__external_ref="CUST-1"
    )
    barrier = threading.Barrier(2)
    errors = []

    def deliver(payload):
        try:
            barrier.wait()
            stripe_events.receive_stripe_event(payload)
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=deliver, args=(each,))
        for each in (checkout_completed(), payment_intent())
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Payment.objects.count() == 1 and Allocation.objects.count() == 1
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


# --- card disputes -----------------------------------------------------------------------


def dispute_event(kind, *, dp="dp_1", pi="pi_1", status="needs_response", event_id=None, **extra):
    return event(
        f"charge.dispute.{kind}",
        {
            "id": dp,
            "object": "dispute",
            "charge": f"ch_{pi}",
            "payment_intent": pi,
            "amount": 4000,
            "currency": "usd",
            "reason": "product_not_received",
            "status": status,
            **extra,
        },
        event_id=event_id or f"evt_{dp}_{kind}_{status}",
    )


def test_dispute_created_opens_a_dispute_and_marks_the_invoice_disputed(client, invoice):
    post(client, payment_intent(amount=4000))  # 40.00 of 100.00: partially paid
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PARTIALLY_PAID

    response = post(client, dispute_event("created"))

    assert response.status_code == 202
    assert applied(dispute_event("created")["id"]).status == "processed"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.DISPUTED  # dunning holds for it
    dispute = Dispute.objects.get()
    assert (dispute.source, dispute.reason, dispute.status) == ("stripe:dp_1", "other", "open")
    assert "product_not_received" in dispute.description and "dp_1" in dispute.description
    assert list(dispute.invoices.all()) == [invoice]
    entry = Activity.objects.get(kind=Activity.Kind.DISPUTE)
    assert entry.invoice == invoice and entry.details["dispute"] == dispute.pk
    assert "product_not_received" in entry.text
    webhook_event = WebhookEvent.objects.get(event_type="charge.dispute.created")
    assert webhook_event.status == "processed"
    batch = IntakeBatch.objects.order_by("-id").first()
    assert (batch.rows_read, batch.created, batch.rejected) == (1, 1, 0)


def test_replayed_dispute_event_opens_nothing_twice(client, invoice):
    post(client, payment_intent())
    post(client, dispute_event("created"))
    before = (Dispute.objects.count(), Activity.objects.count(), WebhookEvent.objects.count())

    replay = post(client, dispute_event("created"))
    # The same dispute announced again under another event id: still one dispute.
    again = post(client, dispute_event("created", event_id="evt_dp_1_created_again"))

    assert replay.json()["status"] == "duplicate"
    assert again.status_code == 202
    again_event = applied("evt_dp_1_created_again")
    assert again_event.status == "processed" and "already open" in again_event.note
    assert (Dispute.objects.count(), Activity.objects.count()) == before[:2]
    assert WebhookEvent.objects.count() == before[2] + 1  # every event stored, once
    assert IntakeBatch.objects.order_by("-id").first().unchanged == 1


def test_dispute_on_a_paid_invoice_is_opened_and_the_invoice_stays_paid(client, invoice):
    post(client, payment_intent())

    post(client, dispute_event("created"))

    dispute = Dispute.objects.get()
    assert list(dispute.invoices.all()) == [invoice]
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID  # nothing owed, so nothing to hold


@pytest.mark.parametrize(
    ("status", "words"),
    [("won", "won: the charge stands"), ("lost", "lost: USD 40.00 went back to the cardholder")],
)
def test_dispute_closed_records_the_outcome_on_the_timeline(client, invoice, status, words):
    post(client, payment_intent(amount=4000))
    post(client, dispute_event("created"))
    dispute = Dispute.objects.get()

    response = post(client, dispute_event("closed", status=status))

    assert response.status_code == 202
    assert applied(dispute_event("closed", status=status)["id"]).status == "processed"
    closed = Activity.objects.filter(kind=Activity.Kind.DISPUTE).latest("pk")
    assert words in closed.text and closed.invoice == invoice
    assert closed.details["stripe_dispute"] == "dp_1" and closed.details["status"] == status
    assert closed.details["dispute"] == dispute.pk
    assert IntakeBatch.objects.order_by("-id").first().updated == 1
    assert post(client, dispute_event("closed", status=status)).json()["status"] == "duplicate"
    assert Activity.objects.filter(kind=Activity.Kind.DISPUTE).count() == 2


def test_dispute_for_a_payment_we_never_booked_waits_in_the_dead_letter_list(client, invoice):
    response = post(client, dispute_event("created", pi="pi_unknown"))

    assert response.status_code == 202
    assert not Dispute.objects.exists()
    assert WebhookEvent.objects.get().status == "failed"
    rejection = Rejection.objects.get()
    assert "charge" in rejection.errors and "pi_unknown" in rejection.errors["charge"][0]
    assert rejection.raw["type"] == "charge.dispute.created"


def test_dispute_found_by_the_invoice_in_the_charge_metadata(client, invoice):
    expanded_charge = {"id": "ch_x", "object": "charge", "metadata": metadata()}

    post(client, dispute_event("created", pi="pi_elsewhere", charge=expanded_charge))

    assert list(Dispute.objects.get().invoices.all()) == [invoice]


# --- hostile input and clocks (issue 15, items 4 and 5) -----------------------------------


def dead_letter():
    """The one rejected row a refused delivery left, and the nothing else it stored."""
    assert not InboxItem.objects.exists() and not WebhookEvent.objects.exists()
    return Rejection.objects.select_related("batch").get()


def test_nul_character_is_refused_naming_the_field_and_kept_in_the_dead_letter(client, invoice):
    hostile = payment_intent()
    hostile["data"]["object"]["metadata"]["invoice_number"] = "INV-7001\u0000; DROP"

    response = post(client, hostile)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["data.object.metadata.invoice_number"]
    assert "NUL" in errors["data.object.metadata.invoice_number"][0]
    rejection = dead_letter()
    assert rejection.batch.source == "stripe" and rejection.batch.rejected == 1
    assert "\\u0000" in rejection.raw["body"] and "\x00" not in json.dumps(rejection.raw)
    assert "data.object.metadata.invoice_number" in rejection.errors
    assert ledger_counts() == (0, 0, 0, 0)


def test_nul_in_a_field_name_is_refused_too(client, invoice):
    hostile = payment_intent()
    hostile["data"]["object"]["metadata"]["evil\u0000key"] = "x"

    response = post(client, hostile)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["data.object.metadata.evil\\u0000key"]
    assert dead_letter().batch.source == "stripe"


@pytest.mark.parametrize(
    ("field", "value"),
    [("created", 10**14), ("created", -1), ("created", "yesterday"), ("object", 10**14)],
)
def test_created_that_is_no_time_is_refused_naming_the_field(client, invoice, field, value):
    hostile = payment_intent()
    if field == "object":
        hostile["data"]["object"]["created"] = value
        field = "data.object.created"
    else:
        hostile["created"] = value

    response = post(client, hostile)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert field in dead_letter().errors


def test_created_an_hour_ahead_is_refused(client, invoice):
    ahead = payment_intent()
    ahead["created"] = int(time.time()) + 3600

    assert post(client, ahead).status_code == 400
    assert "created" in dead_letter().errors


def test_signature_an_hour_in_the_future_is_refused(client, invoice):
    response = post(client, payment_intent(), timestamp=int(time.time()) + 3600)

    assert response.status_code == 400 and "future" in response.json()["error"]
    assert ledger_counts() == (0, 0, 0, 0)
    assert not InboxItem.objects.exists() and not IntakeBatch.objects.exists()


def test_signature_within_five_minutes_ahead_is_accepted(client, invoice):
    assert post(client, payment_intent(), timestamp=int(time.time()) + 240).status_code == 202
    assert Payment.objects.count() == 1


def test_body_that_is_not_json_is_dead_lettered(client):
    payload = '{"id": "evt_1", "type": "x", ' + "[" * 10  # truncated

    response = post(client, payload)

    assert response.status_code == 400 and "body" in response.json()["errors"]
    assert dead_letter().raw["body"].startswith('{"id": "evt_1"')


def test_the_event_is_stored_and_answered_before_the_ledger_is_touched(client, invoice):
    response = post(client, payment_intent(), work=False)

    assert response.status_code == 202
    item = InboxItem.objects.get()
    assert (item.source, item.key, item.status) == (
        "stripe",
        "evt_payment_intent_succeeded_pi_1",
        "received",
    )
    assert ledger_counts() == (0, 0, 0, 0)

    tasks.process_inbox_item(item.pk)

    item.refresh_from_db()
    assert item.status == "processed" and item.note.startswith("processed")
    assert Payment.objects.count() == 1


def test_unapplied_stripe_payment_keeps_the_card_holder_as_payer(client, invoice):
    checkout = checkout_completed()
    checkout["data"]["object"]["metadata"] = metadata(invoice_number="X-1", customer_ref="NOBODY")
    checkout["data"]["object"]["customer_details"] = {"name": "Mystery  Corp", "email": "a@b.c"}
    post(client, checkout)

    payment = Payment.objects.get()
    assert payment.customer is None and payment.payer_name == "Mystery Corp"


def test_charge_billing_details_name_the_payer(client, invoice):
    refund = charge_refunded(2500, pi="pi_9")
    refund["data"]["object"]["billing_details"] = {"name": "Jane Payer"}
    post(client, refund)

    assert Payment.objects.get().payer_name == "Jane Payer"
