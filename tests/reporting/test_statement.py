"""The customer statement PDF: open items, aging and pay links as of a date."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from pypdf import PdfReader

from accounts import services as ledger
from reporting.models import ReportExport
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 11, 23)


@pytest.fixture
def customer():
    customer = CustomerFactory(
        name="Epsilon Traders", external_ref="C-EPS", postal_address="1 Main St\nSpringfield"
    )
    ContactFactory(customer=customer, name="Jo Payables", is_primary=True)
    InvoiceFactory(
        customer=customer,
        number="INV-OLD",
        due_on=AS_OF - dt.timedelta(days=65),
        amount=Decimal("500.00"),
        pay_link="https://pay.example.com/invoices/INV-OLD",
    )
    InvoiceFactory(
        customer=customer, number="INV-NEW", due_on=AS_OF + dt.timedelta(days=10),
        amount=Decimal("120.40"),
    )  # fmt: skip
    InvoiceFactory(
        customer=customer, number="INV-EUR", currency="EUR", due_on=AS_OF - dt.timedelta(days=3),
        amount=Decimal("80.00"),
    )  # fmt: skip
    InvoiceFactory(customer=CustomerFactory(), number="INV-OTHER")  # someone else's
    return customer


def text_of(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def test_statement_lists_open_items_aging_and_pay_links(client, agent, customer, settings):
    settings.COMPANY_NAME = "Acme Supplies plc"
    client.force_login(agent)
    url = reverse("admin:reporting_statement", args=[customer.pk])
    response = client.get(url, {"as_of": AS_OF.isoformat()})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert "statement-C-EPS-2026-11-23.pdf" in response["Content-Disposition"]
    text = text_of(response.content)
    assert "Acme Supplies plc" in text and "Epsilon Traders" in text and "Jo Payables" in text
    assert "INV-OLD" in text and "INV-NEW" in text and "INV-EUR" in text
    assert "INV-OTHER" not in text
    links = {  # a link wrapped over two lines is two annotations
        annotation.get_object()["/A"]["/URI"]
        for page in PdfReader(io.BytesIO(response.content)).pages
        for annotation in page.get("/Annots", [])
    }
    assert links == {"https://pay.example.com/invoices/INV-OLD"}
    # Aging per currency, never mixed: USD 120.40 current + 500.00 in 61-90 = 620.40.
    assert "620.40" in text and "80.00" in text
    assert "page 1 of 1" in text
    record = ReportExport.objects.get()
    assert (record.kind, record.user, record.row_count) == ("statement", agent, 3)
    assert record.filters == {"customer_id": customer.pk}


def test_statement_as_of_a_past_date_ignores_later_payments(client, manager, customer):
    old = customer.invoices.get(number="INV-OLD")
    payment = ledger.record_payment(
        amount="500.00", currency="USD", received_on=AS_OF, customer=customer
    )
    ledger.allocate(payment=payment, invoice=old, on=AS_OF)
    client.force_login(manager)
    url = reverse("admin:reporting_statement", args=[customer.pk])
    today = text_of(client.get(url, {"as_of": AS_OF.isoformat()}).content)
    before = text_of(client.get(url, {"as_of": "2026-11-22"}).content)
    assert "INV-OLD" not in today and "INV-OLD" in before
    assert "620.40" in before and "120.40" in today


def test_statement_refuses_bad_dates_and_unknown_customers(client, manager, customer):
    client.force_login(manager)
    url = reverse("admin:reporting_statement", args=[customer.pk])
    assert client.get(url, {"as_of": "23/11/2026"}).status_code == 400
    missing = reverse("admin:reporting_statement", args=[customer.pk + 1000])
    assert client.get(missing).status_code == 404
