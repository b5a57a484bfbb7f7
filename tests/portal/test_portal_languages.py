"""The portal speaks the customer's language: English, German, French or Spanish."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import portal_links
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

# A string of the home page, its navigation and the pay form, in each language.
EXPECTED = {
    "en": ("Account of Hafenlogistik", "Overview", "Pay now", "Amount to pay"),
    "de": ("Konto von Hafenlogistik", "Übersicht", "Jetzt bezahlen", "Zu zahlender Betrag"),
    "fr": ("Compte de Hafenlogistik", "Vue d\u2019ensemble", "Payer maintenant", "Montant à payer"),
    "es": ("Cuenta de Hafenlogistik", "Resumen", "Pagar ahora", "Importe a pagar"),
}


@pytest.fixture(autouse=True)
def offline(settings):
    settings.STRIPE_API_KEY = ""
    settings.SITE_URL = "https://collections.example.com"


def signed_in(client, language: str):
    customer = CustomerFactory(name="Hafenlogistik", language=language)
    contact = ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(
        customer=customer,
        number="INV-L-1",
        amount=Decimal("300.00"),
        currency="EUR",
        due_on=ON - dt.timedelta(days=10),
    )
    url = portal_links.portal_url(contact)
    response = client.get(url[url.index("/portal/") :])
    assert response.status_code == 302
    return customer


@pytest.mark.parametrize("language", ["en", "de", "fr", "es"])
def test_the_portal_home_and_pay_page_follow_the_customers_language(client, language):
    signed_in(client, language)
    home = client.get(reverse("portal:home")).content.decode()
    account, overview, pay_now, amount = EXPECTED[language]
    assert f'<html lang="{language}">' in home
    assert account in home and overview in home and pay_now in home
    pay = client.get(reverse("portal:pay")).content.decode()
    assert amount in pay


def test_the_browsers_language_does_not_override_the_customers(client):
    signed_in(client, "fr")
    home = client.get(reverse("portal:home"), HTTP_ACCEPT_LANGUAGE="de-DE,de;q=0.9")
    assert "Vue d\u2019ensemble" in home.content.decode()
    assert "Übersicht" not in home.content.decode()


def test_an_error_is_in_the_customers_language(client):
    signed_in(client, "es")
    page = client.get(reverse("portal:pay"))
    invoice_id = page.context["form"].fields["invoices"].queryset.get().pk
    response = client.post(
        reverse("portal:pay"), {"invoices": [invoice_id], "amount": "100", "method": "transfer"}
    )
    assert "Indíquenos por qué paga solo una parte del importe." in response.content.decode()


def test_an_unsupported_language_falls_back_to_english(client):
    signed_in(client, "it")
    home = client.get(reverse("portal:home")).content.decode()
    assert '<html lang="en">' in home and "Account of Hafenlogistik" in home


# The heading of each action page, in each language.
ACTION_PAGES = {
    "portal:promise": {
        "de": "Zahlung zusagen",
        "fr": "Promesse de paiement",
        "es": "Compromiso de pago",
    },
    "portal:dispute": {
        "de": "Rechnung beanstanden",
        "fr": "Contester une facture",
        "es": "Reclamar una factura",
    },
    "portal:plan": {
        "de": "In Raten zahlen",
        "fr": "Payer en plusieurs fois",
        "es": "Pagar a plazos",
    },
    "portal:preferences": {
        "de": "Ihre Kontakteinstellungen",
        "fr": "Vos préférences de contact",
        "es": "Sus preferencias de contacto",
    },
    "portal:message": {"de": "Schreiben Sie uns", "fr": "Nous écrire", "es": "Escríbanos"},
}


@pytest.mark.parametrize("language", ["de", "fr", "es"])
def test_the_action_pages_follow_the_customers_language(client, language):
    signed_in(client, language)
    for name, headings in ACTION_PAGES.items():
        page = client.get(reverse(name))
        assert page.status_code == 200, name
        assert headings[language] in page.content.decode(), name
