from decimal import Decimal

import pytest
import stripe
from django.core import signing
from django.urls import reverse

from accounts import services
from accounts.models import Invoice, Payment
from integrations.gateways.paylinks import ensure_pay_link
from tests.factories import TODAY, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def stripe_sessions(settings, monkeypatch):
    """Stand-in for stripe.checkout.Session.create: records the calls, makes no request."""
    settings.STRIPE_API_KEY = "sk_test_123"
    settings.SITE_URL = "https://collections.example.com"
    calls = []

    def create(**params):
        calls.append(params)
        session_id = f"cs_test_{len(calls)}"
        return stripe.checkout.Session.construct_from(
            {"id": session_id, "url": f"https://checkout.stripe.com/c/pay/{session_id}"},
            "sk_test_123",
        )

    monkeypatch.setattr(stripe.checkout.Session, "create", create)
    return calls


def path_of(url: str) -> str:
    return url.removeprefix("https://collections.example.com")


def test_stored_link_is_our_pay_page_and_calls_stripe_only_when_followed(stripe_sessions):
    invoice = InvoiceFactory()

    url = ensure_pay_link(invoice)

    assert url.startswith("https://collections.example.com/pay/") and url.endswith("/")
    assert stripe_sessions == []


def test_pay_page_redirects_to_a_fresh_session_for_the_current_balance(client, stripe_sessions):
    invoice = InvoiceFactory(number="INV-9", amount=Decimal("123.45"), customer__external_ref="C-9")
    url = ensure_pay_link(invoice)
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("23.40"))
    services.allocate(payment=payment, invoice=invoice, amount=Decimal("23.40"), on=TODAY)

    response = client.get(path_of(url))

    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    [params] = stripe_sessions
    assert params["api_key"] == "sk_test_123" and params["mode"] == "payment"
    price = params["line_items"][0]["price_data"]
    assert (price["unit_amount"], price["currency"]) == (10005, "usd")
    expected = {"invoice_number": "INV-9", "customer_ref": "C-9"}
    assert params["metadata"] == expected
    assert params["payment_intent_data"]["metadata"] == expected


def test_pay_page_asks_for_a_new_session_when_the_balance_changes(client, stripe_sessions):
    invoice = InvoiceFactory(amount=Decimal("100.00"))
    url = path_of(ensure_pay_link(invoice))

    client.get(url)
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("40.00"))
    services.allocate(payment=payment, invoice=invoice, amount=Decimal("40.00"), on=TODAY)
    second = client.get(url)

    first_key, second_key = (call["idempotency_key"] for call in stripe_sessions)
    assert first_key != second_key
    assert stripe_sessions[1]["line_items"][0]["price_data"]["unit_amount"] == 6000
    assert second["Location"] == "https://checkout.stripe.com/c/pay/cs_test_2"


def test_zero_decimal_currency_is_charged_in_whole_units(client, stripe_sessions):
    invoice = InvoiceFactory(currency="JPY", amount=Decimal("5000"))

    client.get(path_of(ensure_pay_link(invoice)))

    price = stripe_sessions[0]["line_items"][0]["price_data"]
    assert (price["unit_amount"], price["currency"]) == (5000, "jpy")


def test_paid_invoice_shows_a_page_and_makes_no_session(client, stripe_sessions):
    invoice = InvoiceFactory(amount=Decimal("50.00"))
    url = path_of(ensure_pay_link(invoice))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("50.00"))
    services.allocate(payment=payment, invoice=invoice, amount=Decimal("50.00"), on=TODAY)

    response = client.get(url)

    assert response.status_code == 200
    assert b"This invoice is already paid" in response.content
    assert stripe_sessions == []


def test_cancelled_invoice_says_there_is_nothing_to_pay(client, stripe_sessions):
    invoice = InvoiceFactory()
    url = path_of(ensure_pay_link(invoice))
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.CANCELLED)

    response = client.get(url)

    assert response.status_code == 200 and b"nothing to pay" in response.content
    assert stripe_sessions == []


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        signing.dumps(1, salt="another-salt"),
        signing.dumps(1, salt="pay-link", key="not-our-secret-key-at-all-0123456789"),
        signing.dumps("1", salt="pay-link"),
    ],
)
def test_forged_or_foreign_token_is_404(client, stripe_sessions, token):
    InvoiceFactory(pk=1)

    assert client.get(reverse("pay-link", args=[token])).status_code == 404
    assert stripe_sessions == []


def test_token_of_another_invoice_opens_only_that_invoice(client, stripe_sessions):
    mine = InvoiceFactory(number="INV-MINE")
    InvoiceFactory(number="INV-THEIRS")
    url = path_of(ensure_pay_link(mine))

    client.get(url)

    assert stripe_sessions[0]["metadata"]["invoice_number"] == "INV-MINE"


def test_token_of_a_deleted_invoice_is_404(client, stripe_sessions):
    token = signing.dumps(987654, salt="pay-link")

    assert client.get(reverse("pay-link", args=[token])).status_code == 404


def test_stripe_failure_answers_a_page_not_an_error(client, stripe_sessions, monkeypatch):
    invoice = InvoiceFactory()
    url = path_of(ensure_pay_link(invoice))

    def fail(**params):
        raise stripe.APIConnectionError("network down")

    monkeypatch.setattr(stripe.checkout.Session, "create", fail)
    response = client.get(url)

    assert response.status_code == 503 and b"not available right now" in response.content


def test_without_stripe_the_page_redirects_to_the_template(client, settings):
    settings.STRIPE_API_KEY = ""
    settings.PAY_LINK_TEMPLATE = "https://pay.example.com/i/{number}?a={amount}&cur={currency}"
    invoice = InvoiceFactory(number="INV-7", amount=Decimal("80.00"))
    Invoice.objects.filter(pk=invoice.pk).update(
        open_balance=Decimal("30.00"), status=Invoice.Status.PARTIALLY_PAID
    )
    token = signing.dumps(invoice.pk, salt="pay-link")

    response = client.get(reverse("pay-link", args=[token]))

    assert response.status_code == 302
    assert response["Location"] == "https://pay.example.com/i/INV-7?a=30.00&cur=USD"


def test_pay_page_needs_no_login_and_refuses_posts(client, stripe_sessions):
    url = path_of(ensure_pay_link(InvoiceFactory()))

    assert client.get(url).status_code == 302
    assert client.post(url).status_code == 405
    assert Payment.objects.count() == 0
