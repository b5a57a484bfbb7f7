import hashlib
import hmac
import json
import time
from decimal import Decimal

import pytest

from accounts.models import Allocation, Invoice, Payment
from integrations import tasks
from integrations.models import InboxItem, IntakeBatch, Rejection, WebhookEvent
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db
SECRET = "generic-test-secret"
URL = "/integrations/payments/webhook/"


@pytest.fixture(autouse=True)
def _payments_secret(settings):
    settings.PAYMENTS_WEBHOOK_SECRET = SECRET


@pytest.fixture
def invoice():
    return InvoiceFactory(
        number="INV-8001", amount=Decimal("123.45"), customer__external_ref="CUST-8"
    )


def body(**overrides) -> dict:
    return {
        "id": "evt_gen_1",
        "type": "payment.succeeded",
        "amount": "123.45",
        "currency": "USD",
        "invoice_number": "INV-8001",
        "customer_ref": "CUST-8",
        "received_on": "2026-11-20",
        "reference": "pay_ABC",
        **overrides,
    }


def post(client, payload, *, secret=SECRET, timestamp=None, signature=None):
    raw = payload if isinstance(payload, str) else json.dumps(payload)
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    if signature is None:
        digest = hmac.new(secret.encode(), f"{timestamp}.{raw}".encode(), hashlib.sha256)
        signature = f"sha256={digest.hexdigest()}"
    response = client.post(
        URL,
        data=raw,
        content_type="application/json",
        HTTP_X_SIGNATURE=signature,
        HTTP_X_TIMESTAMP=timestamp,
    )
    tasks.sweep_inbox(older_than_seconds=0)  # a worker applies what was stored
    return response


def stored():
    return (
        Payment.objects.count(),
        Allocation.objects.count(),
        WebhookEvent.objects.count(),
        IntakeBatch.objects.count(),
    )


def test_signed_payment_books_and_allocates(client, invoice):
    response = post(client, body())

    assert response.status_code == 202 and response.json()["status"] == "queued"
    assert WebhookEvent.objects.get().status == "processed"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.received_on.isoformat()) == (
        "generic",
        "pay_ABC",
        "2026-11-20",
    )
    assert WebhookEvent.objects.get().provider == "generic"
    batch = IntakeBatch.objects.get()
    assert (batch.source, batch.rows_read, batch.created) == ("webhook", 1, 1)


def test_forged_signature_gets_401_and_stores_nothing(client, invoice):
    assert post(client, body(), secret="guessed").status_code == 401
    assert post(client, body(), signature="sha256=" + "0" * 64).status_code == 401
    assert post(client, body(), signature="").status_code == 401
    assert stored() == (0, 0, 0, 0)


def test_body_changed_after_signing_is_refused(client, invoice):
    timestamp = str(int(time.time()))
    raw = json.dumps(body())
    signature = hmac.new(SECRET.encode(), f"{timestamp}.{raw}".encode(), hashlib.sha256)
    tampered = raw.replace("123.45", "1.00")

    response = client.post(
        URL,
        data=tampered,
        content_type="application/json",
        HTTP_X_SIGNATURE=f"sha256={signature.hexdigest()}",
        HTTP_X_TIMESTAMP=timestamp,
    )

    assert response.status_code == 401 and stored() == (0, 0, 0, 0)


def test_old_capture_outside_five_minutes_is_refused(client, invoice):
    assert post(client, body(), timestamp=int(time.time()) - 301).status_code == 401
    assert post(client, body(), timestamp=int(time.time()) + 301).status_code == 401
    assert stored() == (0, 0, 0, 0)


def test_replayed_event_changes_nothing(client, invoice):
    post(client, body())
    payments, allocations, events, _ = stored()

    response = post(client, body())

    assert response.status_code == 200 and response.json()["status"] == "duplicate"
    assert stored()[:3] == (payments, allocations, events)


@pytest.mark.parametrize("amount", [123.45, 123, None])
def test_amount_that_is_not_a_decimal_string_is_refused_naming_the_field(client, invoice, amount):
    response = post(client, body(amount=amount))

    assert response.status_code == 400
    assert "amount" in response.json()["errors"]
    assert not Payment.objects.exists() and not WebhookEvent.objects.exists()
    rejection = Rejection.objects.get()
    assert "amount" in rejection.errors and rejection.batch.rejected == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("amount", "12.345"),
        ("amount", "-5.00"),
        ("currency", "EURO"),
        ("received_on", "20/11/2026"),
        ("type", "payment.maybe"),
        ("id", ""),
    ],
)
def test_invalid_fields_get_400_naming_the_field(client, invoice, field, value):
    response = post(client, body(**{field: value}))

    assert response.status_code == 400 and field in response.json()["errors"]
    assert not Payment.objects.exists()


def test_not_configured_answers_503(client, invoice, settings):
    settings.PAYMENTS_WEBHOOK_SECRET = ""

    response = post(client, body())

    assert response.status_code == 503 and stored() == (0, 0, 0, 0)


def test_get_is_not_allowed(client):
    assert client.get(URL).status_code == 405


def test_refund_of_a_booked_payment_reopens_the_invoice(client, invoice):
    post(client, body())

    post(client, body(id="evt_gen_2", type="payment.refunded", amount="23.45"))

    invoice.refresh_from_db()
    assert (invoice.status, invoice.open_balance) == (
        Invoice.Status.PARTIALLY_PAID,
        Decimal("23.45"),
    )
    assert Payment.objects.get().refunded_amount == Decimal("23.45")


def test_refund_before_its_payment_is_deferred_then_applied(client, invoice):
    post(client, body(id="evt_gen_refund", type="payment.refunded", amount="23.45"))

    deferred = WebhookEvent.objects.get()
    assert deferred.status == "failed" and deferred.note.startswith("Deferred")
    assert Rejection.objects.get().status == "open"
    assert not Payment.objects.exists()

    post(client, body())

    deferred.refresh_from_db()
    assert deferred.status == "processed"
    assert Rejection.objects.get().status == "retried"
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("23.45")
    assert Payment.objects.get().refunded_amount == Decimal("23.45")


def test_same_pipeline_keeps_unknown_invoice_money_unapplied(client, invoice):
    post(client, body(invoice_number="INV-NONE"))

    payment = Payment.objects.get()
    assert payment.unallocated_amount == Decimal("123.45") and payment.customer == invoice.customer
    assert "INV-NONE" in WebhookEvent.objects.get().note


# --- hostile input (issue 15, item 4) -------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("invoice_number", "INV-8001\u0000"),
        ("reference", "pay\u0000ABC"),
        ("received_on", "2026-13-45"),
        ("received_on", "2026-11-20\u0000"),
    ],
)
def test_signed_but_unstorable_or_impossible_values_answer_400_and_are_dead_lettered(
    client, invoice, field, value
):
    response = post(client, body(**{field: value}))

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]
    assert not InboxItem.objects.exists() and not WebhookEvent.objects.exists()
    rejection = Rejection.objects.get()
    assert field in rejection.errors and rejection.batch.source == "webhook"
    assert "\x00" not in json.dumps(rejection.raw)


def test_nan_and_infinity_are_refused_not_stored(client, invoice):
    response = post(client, '{"id": "evt_nan", "type": "payment.succeeded", "amount": NaN}')

    assert response.status_code == 400 and "amount" in response.json()["errors"]
    assert Rejection.objects.get().raw["body"].endswith("NaN}")


def test_an_event_without_an_id_is_refused_and_kept(client, invoice):
    response = post(client, body(id=None))

    assert response.status_code == 400 and "id" in response.json()["errors"]
    assert Rejection.objects.count() == 1


def test_payer_name_and_account_are_kept_on_the_payment(client, invoice):
    post(
        client,
        body(invoice_number="INV-NONE", payer_name="Mystery Corp", payer_account="DE02120300"),
    )

    payment = Payment.objects.get()
    assert (payment.payer_name, payment.payer_account) == ("Mystery Corp", "DE02120300")


def test_a_payer_name_that_is_not_a_string_is_refused_naming_the_field(client, invoice):
    response = post(client, body(payer_name=["Mystery"]))

    assert response.status_code == 400 and "payer_name" in response.content.decode()
    assert not Payment.objects.exists()
