"""Automatic payment on the debtor portal (portal/autopay_views.py): shown to the logged-in
contact's customer only, set up by a POST that goes to Stripe, cancelled by the debtor,
and not offered at all without Stripe."""

import datetime as dt
from decimal import Decimal

import pytest
import stripe
from django.test import Client
from django.urls import reverse

from accounts import portal_links
from integrations.models import AutopayCharge, AutopayMandate
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def configured(settings):
    settings.STRIPE_API_KEY = "sk_test_autopay"
    settings.SITE_URL = "https://collections.example.com"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def sessions(monkeypatch):
    made = []

    def create(**params):
        made.append(params)
        return stripe.StripeObject.construct_from(
            {"id": "cs_1", "url": "https://checkout.stripe.com/c/pay/cs_1"}, "k"
        )

    def customer(**params):
        return stripe.StripeObject.construct_from({"id": "cus_1"}, "k")

    monkeypatch.setattr(stripe.checkout.Session, "create", create)
    monkeypatch.setattr(stripe.Customer, "create", customer)
    return made


@pytest.fixture
def debtor():
    customer = CustomerFactory(name="Owes Money SARL", language="en")
    contact = ContactFactory(customer=customer, is_primary=True, email="ap@owes.example")
    return customer, contact


def logged_in(client: Client, contact) -> Client:
    url = portal_links.portal_url(contact)
    response = client.get(url[url.index("/portal/") :])
    assert response.status_code == 302
    return client


def mandate_for(customer, contact):
    return AutopayMandate.objects.create(
        customer=customer,
        contact=contact,
        stripe_customer_id="cus_1",
        payment_method_id="pm_1",
        setup_intent_id=f"seti_{customer.pk}",
        method_type="card",
        display="Visa •••• 4242",
    )


def test_the_page_needs_a_portal_session(client):
    response = client.get(reverse("portal:autopay"))
    assert response.status_code == 302 and response.url == reverse("portal:login")
    assert client.post(reverse("portal:autopay_cancel")).status_code == 302


def test_set_up_is_a_post_that_goes_to_stripe_checkout(client, debtor, sessions):
    _customer, contact = debtor
    logged_in(client, contact)
    page = client.get(reverse("portal:autopay"))
    assert page.status_code == 200
    assert 'id="autopay-set-up"' in page.content.decode()
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    response = client.post(reverse("portal:autopay"))
    assert response.status_code == 302
    assert response.url == "https://checkout.stripe.com/c/pay/cs_1"
    (session,) = sessions
    assert session["mode"] == "setup"
    assert session["metadata"]["autopay_contact"] == str(contact.pk)
    assert session["cancel_url"].endswith(reverse("portal:autopay"))


def test_csrf_is_required(debtor, sessions):
    _customer, contact = debtor
    client = logged_in(Client(enforce_csrf_checks=True), contact)
    assert client.post(reverse("portal:autopay")).status_code == 403
    assert sessions == []


def test_the_debtor_sees_the_mandate_and_charges_and_cancels_it(client, debtor, sessions):
    customer, contact = debtor
    mandate = mandate_for(customer, contact)
    invoice = InvoiceFactory(customer=customer, number="INV-1", amount=Decimal("80.00"))
    AutopayCharge.objects.create(
        mandate=mandate,
        invoice=invoice,
        amount=Decimal("80.00"),
        currency=invoice.currency,
        attempt=1,
        status=AutopayCharge.Status.FAILED,
        next_retry_on=ON + dt.timedelta(days=1),
    )
    logged_in(client, contact)
    text = client.get(reverse("portal:autopay")).content.decode()
    assert "Visa •••• 4242" in text and "INV-1" in text and "next try on" in text
    response = client.post(reverse("portal:autopay_cancel"))
    assert response.status_code == 302
    mandate.refresh_from_db()
    assert mandate.status == AutopayMandate.Status.CANCELLED
    assert mandate.cancelled_by_contact == contact
    after = client.get(response.url).content.decode()
    assert "Automatic payment is cancelled" in after and 'id="autopay-set-up"' in after


def test_another_customers_mandate_is_neither_shown_nor_cancelled(client, debtor, sessions):
    _customer, contact = debtor
    stranger = CustomerFactory()
    theirs = mandate_for(stranger, ContactFactory(customer=stranger))
    logged_in(client, contact)
    assert "Visa" not in client.get(reverse("portal:autopay")).content.decode()
    client.post(reverse("portal:autopay_cancel"))
    theirs.refresh_from_db()
    assert theirs.is_active


def test_without_stripe_the_page_offers_nothing(client, debtor, settings, sessions):
    settings.STRIPE_API_KEY = ""
    _customer, contact = debtor
    logged_in(client, contact)
    text = client.get(reverse("portal:autopay")).content.decode()
    assert "not offered" in text and 'id="autopay-set-up"' not in text
    assert client.post(reverse("portal:autopay")).status_code == 200
    assert sessions == []


def test_a_stripe_failure_answers_a_page_not_an_error(client, debtor, monkeypatch):
    _customer, contact = debtor

    def fail(**params):
        raise stripe.APIConnectionError("down")

    monkeypatch.setattr(stripe.Customer, "create", fail)
    logged_in(client, contact)
    response = client.post(reverse("portal:autopay"))
    assert response.status_code == 503
    assert "cannot be set up right now" in response.content.decode()


def test_the_page_follows_the_customers_language(client, sessions):
    customer = CustomerFactory(language="de")
    contact = ContactFactory(customer=customer, email="buchhaltung@example.de")
    logged_in(client, contact)
    response = client.get(reverse("portal:autopay"))
    assert '<html lang="de">' in response.content.decode()
