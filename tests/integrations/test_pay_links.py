from decimal import Decimal

import pytest
import stripe
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import Activity, Invoice
from integrations.gateways.paylinks import ensure_pay_link
from tests.factories import InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def template_links(settings):
    settings.STRIPE_API_KEY = ""
    settings.PAY_LINK_TEMPLATE = (
        "https://pay.example.com/i/{number}?c={customer_ref}&a={amount}&cur={currency}"
    )


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
            {
                "id": session_id,
                "object": "checkout.session",
                "url": f"https://checkout.stripe.com/c/pay/{session_id}",
            },
            "sk_test_123",
        )

    monkeypatch.setattr(stripe.checkout.Session, "create", create)
    return calls


def test_template_link_quotes_the_invoice_fields(template_links):
    invoice = InvoiceFactory(
        number="INV 12/A&B", amount=Decimal("250.50"), customer__external_ref="C#1"
    )

    url = ensure_pay_link(invoice)

    assert url == "https://pay.example.com/i/INV%2012%2FA%26B?c=C%231&a=250.50&cur=USD"
    invoice.refresh_from_db()
    assert invoice.pay_link == url
    entry = Activity.objects.get(invoice=invoice)
    assert entry.details == {"field": "pay_link", "from": "", "to": url}


def test_template_link_uses_the_open_balance(template_links):
    invoice = InvoiceFactory(
        number="INV-1",
        amount=Decimal("100.00"),
        open_balance=Decimal("40.00"),
        status=Invoice.Status.PARTIALLY_PAID,
    )

    assert "a=40.00" in ensure_pay_link(invoice)


def test_stripe_link_is_the_pay_page_whose_session_carries_amount_and_metadata(
    client, stripe_sessions
):
    invoice = InvoiceFactory(number="INV-9", amount=Decimal("123.45"), customer__external_ref="C-9")

    url = ensure_pay_link(invoice)

    assert url.startswith("https://collections.example.com/pay/")
    invoice.refresh_from_db()
    assert invoice.pay_link == url
    assert stripe_sessions == []  # the session is made when the customer follows the link
    response = client.get(url.removeprefix("https://collections.example.com"))
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_1"
    [params] = stripe_sessions
    assert params["api_key"] == "sk_test_123" and params["mode"] == "payment"
    price = params["line_items"][0]["price_data"]
    assert (price["unit_amount"], price["currency"]) == (12345, "usd")
    expected = {"invoice_number": "INV-9", "customer_ref": "C-9"}
    assert params["metadata"] == expected
    assert params["payment_intent_data"]["metadata"] == expected


def test_existing_link_is_never_overwritten_without_force(stripe_sessions):
    invoice = InvoiceFactory(pay_link="https://pay.example.com/kept")

    assert ensure_pay_link(invoice) == "https://pay.example.com/kept"

    replaced = ensure_pay_link(invoice, force=True)

    assert replaced.startswith("https://collections.example.com/pay/")
    invoice.refresh_from_db()
    assert invoice.pay_link == replaced
    assert stripe_sessions == []


def test_paid_invoice_gets_no_link(template_links):
    invoice = InvoiceFactory(open_balance=Decimal("0"), status=Invoice.Status.PAID)

    with pytest.raises(ValidationError):
        ensure_pay_link(invoice)


def test_command_creates_links_for_named_and_all_open_invoices(template_links, capsys):
    named = InvoiceFactory(number="INV-A")
    other = InvoiceFactory(number="INV-B")
    kept = InvoiceFactory(number="INV-C", pay_link="https://pay.example.com/old")
    paid = InvoiceFactory(number="INV-D", open_balance=Decimal("0"), status=Invoice.Status.PAID)

    call_command("create_pay_links", "--invoice", "INV-A")
    named.refresh_from_db()
    other.refresh_from_db()
    assert named.pay_link and not other.pay_link

    call_command("create_pay_links", "--all-open")
    other.refresh_from_db()
    kept.refresh_from_db()
    paid.refresh_from_db()
    assert other.pay_link.startswith("https://pay.example.com/i/INV-B")
    assert kept.pay_link == "https://pay.example.com/old" and paid.pay_link == ""

    call_command("create_pay_links", "--all-open", "--force")
    kept.refresh_from_db()
    assert kept.pay_link.startswith("https://pay.example.com/i/INV-C")
    assert "created" in capsys.readouterr().out


def test_command_refuses_unknown_invoices_and_no_selection(template_links):
    with pytest.raises(CommandError):
        call_command("create_pay_links")
    with pytest.raises(CommandError):
        call_command("create_pay_links", "--invoice", "NOPE")
