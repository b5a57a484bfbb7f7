"""Defect 1: no message renders an empty payment link; the customer's statement page.

A message with a contact carries the contact's portal link (tests/portal/test_portal_core.py);
one without (a letter to the customer) the customer's statement page."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import services
from accounts.models import Allocation
from accounts.statement_links import statement_token, transfer_reference
from dunning import rendering
from dunning.models import Template
from integrations.reconciliation import matching
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
LINK = re.compile(r"https?://\S+/(?:statement|portal/l)/[\w:.-]+/")


@pytest.fixture(autouse=True)
def no_payment_provider(settings):
    """The default: no Stripe, no PAY_LINK_TEMPLATE run (invoices have no pay link)."""
    settings.STRIPE_API_KEY = ""
    settings.SITE_URL = "https://collections.example.com"


@pytest.fixture
def debtor():
    customer = CustomerFactory(name="Owes Money SARL", external_ref="CUST-000042", language="en")
    contact = ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(
        customer=customer,
        number="INV-7001",
        amount=Decimal("1250.50"),
        currency="USD",
        due_on=ON - dt.timedelta(days=7),
    )
    InvoiceFactory(
        customer=customer,
        number="INV-7002",
        amount=Decimal("300000.00"),
        currency="JPY",
        due_on=ON - dt.timedelta(days=3),
    )
    return customer, contact


def render(customer, contact, *, template="firm-overdue", channel="email") -> dict:
    context = rendering.notice_context(
        customer=customer, invoices=list(customer.invoices.all()), contact=contact, on=ON
    )
    return rendering.render_notice(
        Template.objects.get(name=template, language="en"),
        context,
        customer=customer,
        contact=contact,
        channel=channel,
    )


def path_of(url: str) -> str:
    return url.removeprefix("https://collections.example.com")


def test_email_and_sms_carry_the_statement_page_when_no_invoice_has_a_pay_link(debtor):
    customer, contact = debtor
    email = render(customer, contact)["body_text"]
    assert "pay at ," not in email.lower() and "pay now at \n" not in email.lower()
    assert len(set(LINK.findall(email))) == 1
    sms = render(customer, contact, template="firm-overdue-sms", channel="sms")["body_text"]
    assert re.search(r"Pay: " + LINK.pattern, sms)
    assert not re.search(r"Pay:\s*(\n|$)", sms)


def test_an_invoice_pay_link_is_kept_where_there_is_one(debtor):
    customer, contact = debtor
    customer.invoices.filter(number="INV-7001").update(pay_link="https://pay.example.com/i/7001")
    context = rendering.notice_context(
        customer=customer, invoices=list(customer.invoices.all()), contact=contact, on=ON
    )
    assert context["pay_link"] == "https://pay.example.com/i/7001"
    by_number = {line["number"]: line["pay_link"] for line in context["invoices"]}
    assert by_number["INV-7001"] == "https://pay.example.com/i/7001"
    assert LINK.fullmatch(by_number["INV-7002"])  # the other falls back to the statement


def test_statement_page_shows_open_invoices_balances_and_transfer_details(client, debtor, settings):
    settings.BANK_TRANSFER_IBAN = "DE89 3704 0044 0532 0130 00"
    settings.BANK_TRANSFER_BIC = "COBADEFFXXX"
    customer, _contact = debtor
    [link] = set(LINK.findall(render(customer, None)["body_text"]))
    assert "/statement/" in link
    response = client.get(path_of(link))  # no login
    assert response.status_code == 200
    page = response.content.decode()
    assert "Owes Money SARL" in page and "INV-7001" in page and "INV-7002" in page
    assert "USD 1,250.50" in page and "JPY 300,000<" in page  # yen have no minor unit
    assert "DE89 3704 0044 0532 0130 00" in page and "COBADEFFXXX" in page
    assert settings.COMPANY_NAME in page  # the payee
    assert "CUST-000042 INV-7001 INV-7002" in page
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert "no-store" in response["Cache-Control"]


def test_without_bank_details_the_page_says_whom_to_ask(client, debtor, settings):
    customer, _contact = debtor
    page = client.get(reverse("portal:statement", args=[statement_token(customer)]))
    text = page.content.decode()
    assert settings.DEFAULT_FROM_EMAIL in text and "CUST-000042" in text


def test_a_link_opens_its_own_customer_only(client, debtor):
    customer, _contact = debtor
    other = CustomerFactory(name="Someone Else GmbH")
    InvoiceFactory(customer=other, number="OTHER-1")
    token = statement_token(customer)
    page = client.get(reverse("portal:statement", args=[token])).content.decode()
    assert "OTHER-1" not in page and "Someone Else" not in page
    # Another id in the same signed envelope, a changed character, a made-up token: 404.
    _payload, rest = token.split(":", 1)
    forged = statement_token(other).split(":", 1)[0] + ":" + rest
    for bad in (forged, token[:-1] + ("A" if token[-1] != "A" else "B"), "1", str(other.pk)):
        assert client.get(reverse("portal:statement", args=[bad])).status_code == 404


def test_links_expire(client, debtor, clock, settings):
    settings.STATEMENT_LINK_MAX_AGE_DAYS = 30
    customer, _contact = debtor
    url = reverse("portal:statement", args=[statement_token(customer)])
    clock.shift(dt.timedelta(days=29))
    assert client.get(url).status_code == 200
    clock.shift(dt.timedelta(days=2))
    response = client.get(url)
    assert response.status_code == 410 and b"expired" in response.content


def test_a_new_customer_reference_retires_old_links(client, debtor):
    customer, _contact = debtor
    url = reverse("portal:statement", args=[statement_token(customer)])
    customer.external_ref = "CUST-000043"
    customer.save(update_fields=["external_ref"])
    assert client.get(url).status_code == 404


def test_statement_pages_are_rate_limited_per_client_address(client, debtor, settings):
    settings.STATEMENT_PAGE_REQUESTS_PER_MINUTE = 3
    customer, _contact = debtor
    url = reverse("portal:statement", args=[statement_token(customer)])
    assert [client.get(url).status_code for _ in range(3)] == [200, 200, 200]
    response = client.get(reverse("portal:statement", args=["guess"]))
    assert response.status_code == 429 and response["Retry-After"] == "60"
    other = client.get(url, REMOTE_ADDR="203.0.113.9")
    assert other.status_code == 200  # another address has its own count


def test_a_transfer_quoting_the_reference_is_booked_to_those_invoices(debtor):
    customer, _contact = debtor
    usd = customer.invoices.get(number="INV-7001")
    reference = transfer_reference(customer, [usd])
    assert reference == "CUST-000042 INV-7001"
    payment = services.record_payment(
        amount=Decimal("1250.50"),
        currency="USD",
        received_on=ON,
        customer=None,  # a bank line from an unknown account
        remittance_reference=reference,
        source="bank",
    )
    matching.reconcile([payment.pk])
    payment.refresh_from_db()
    assert payment.customer == customer
    allocation = Allocation.objects.get(payment=payment)
    assert (allocation.invoice, allocation.amount) == (usd, Decimal("1250.50"))


def test_long_references_keep_whole_invoice_numbers_within_140_characters():
    customer = CustomerFactory(external_ref="ACME")  # no digit: not quotable as a reference
    invoices = [
        InvoiceFactory(customer=customer, number=f"INVOICE-2026-{n:05d}", due_on=ON)
        for n in range(12)
    ]
    reference = transfer_reference(customer, invoices)
    assert len(reference) <= 140 and reference.startswith("INVOICE-2026-00000")
    assert all(word.startswith("INVOICE-2026-") for word in reference.split())


def test_template_preview_warns_about_variables_that_render_empty(client):
    manager = UserFactory(username="preview-manager", role="Collections manager")
    customer = CustomerFactory(name="No Agent Co", assigned_agent=None)
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, number="PV-9")
    template = Template.objects.get(name="firm-overdue", language="en")
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[template.pk])
    response = client.get(url, {"customer": customer.pk})
    assert "pay_link" not in response.context["empty_variables"]
    assert "agent_name" in response.context["empty_variables"]
    assert "These variables render empty" in response.content.decode()
