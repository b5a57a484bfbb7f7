import datetime as dt
import io
import re
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse
from pypdf import PdfReader

from accounts import portal_links
from accounts.models import Customer
from dunning import planner, rendering, sender
from dunning.models import Notice, OutboxMessage, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


def send_overdue(language: str, *, amount="1234.50", currency="EUR", **customer_fields):
    customer = CustomerFactory(language=language, **customer_fields)
    ContactFactory(customer=customer, name="Mia", is_primary=True)
    InvoiceFactory(
        customer=customer,
        number="R-1",
        due_on=ON - dt.timedelta(days=7),
        amount=Decimal(amount),
        currency=currency,
    )
    planner.plan(on=ON)
    sender.send_due(now=NOW)
    return {n.channel: n for n in Notice.objects.filter(customer=customer)}


def test_a_german_customer_gets_the_german_email_with_german_amounts_and_dates():
    notices = send_overdue("de")
    [message] = mail.outbox
    assert message.subject == "Überfällig: Bitte zahlen Sie jetzt"
    assert "Guten Tag Mia," in message.body
    assert "- R-1, fällig am 16. November 2026: 1.234,50 EUR" in message.body
    assert "Überfällig insgesamt: 1.234,50 EUR" in message.body
    assert notices["email"].subject == message.subject  # the notice keeps what was sent


def test_a_german_customer_gets_the_german_sms_with_the_german_stop_line():
    notices = send_overdue("de")
    text = OutboxMessage.objects.get(channel="sms").body_text
    assert text.startswith("Example Supplies Ltd: 1 Rechnung(en) überfällig, gesamt 1.234,50 EUR")
    assert text.endswith("\nAntworten Sie STOP, um sich abzumelden.")
    assert notices["sms"].body_text == portal_links.mask(text)


@pytest.mark.parametrize(
    ("language", "subject"),
    [
        ("fr", "En retard : merci de payer maintenant"),
        ("es", "Vencido: por favor, pague ahora"),
        ("de-AT", "Überfällig: Bitte zahlen Sie jetzt"),  # a regional tag finds "de"
    ],
)
def test_french_spanish_and_regional_customers_get_their_translation(language, subject):
    send_overdue(language)
    assert mail.outbox[0].subject == subject


def test_a_language_without_a_translation_falls_back_to_the_steps_template():
    send_overdue("it")
    [message] = mail.outbox
    assert message.subject == "Overdue: please pay now"
    assert "EUR 1234.50" in message.body  # the English template's plain amounts


def test_an_inactive_translation_is_not_used():
    Template.objects.filter(name="firm-overdue", language="de").update(is_active=False)
    send_overdue("de")
    assert mail.outbox[0].subject == "Overdue: please pay now"


def test_a_translation_on_another_channel_is_never_used():
    Template.objects.filter(name="firm-overdue", language="de").update(channel="letter")
    send_overdue("de")
    assert mail.outbox[0].subject == "Overdue: please pay now"


def test_seeded_sms_translations_stay_in_one_gsm_7_segment():
    for language in ("en", "de", "fr", "es"):
        customer = CustomerFactory(language=language, name=f"{language} customer")
        InvoiceFactory(customer=customer, amount=Decimal("1234567.89"), currency="EUR")
        context = rendering.notice_context(
            customer=customer, invoices=list(customer.invoices.all()), contact=None, on=ON
        )
        text = rendering.render_notice(
            Template.objects.get(name="firm-overdue-sms", language="en"),
            context,
            customer=customer,
            contact=None,
            channel="sms",
        )["body_text"]
        assert all(char in rendering.GSM_7 for char in text), (language, text)
        assert rendering.sms_segments(text) <= 2, (language, text)
        assert "STOP" in text


def test_the_preview_shows_what_the_customer_would_get_or_the_template_as_written(client, manager):
    customer = CustomerFactory(language="fr", kind=Customer.Kind.BUSINESS)
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, number="FR-1", amount=Decimal("2500.00"), currency="EUR")
    english = Template.objects.get(name="firm-overdue", language="en")
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[english.pk])
    page = client.get(url, {"customer": customer.pk}).content.decode()
    assert "En retard : merci de payer maintenant" in page and "firm-overdue (fr)" in page
    # French formats: a (non-breaking) space groups thousands, a comma marks the decimals.
    assert re.search("FR-1, échéance le 23 novembre 2026 : 2[\u00a0\u202f]500,00 EUR", page)
    page = client.get(url, {"customer": customer.pk, "exact": "on"}).content.decode()
    assert "Overdue: please pay now" in page and "En retard" not in page


def test_a_german_letter_has_german_labels(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(language="de", name="Papier GmbH", postal_address="Berlin")
    ContactFactory(customer=customer, name="Mia Weber", is_primary=True)
    InvoiceFactory(customer=customer, number="LTR-DE", due_on=ON - dt.timedelta(days=30))
    planner.plan(on=ON)
    sender.send_due(now=NOW)
    letter = Notice.objects.get(customer=customer, channel="letter")
    text = "\n".join(
        page.extract_text() for page in PdfReader(io.BytesIO(letter.document.read())).pages
    )
    assert "letzte mahnung" in text.lower() and "Rechnung" in text and "Tage überfällig" in text
    assert "Seite 1 von 1" in text and "24. Oktober 2026" in text
