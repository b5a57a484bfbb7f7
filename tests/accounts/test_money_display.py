"""Money on screen: by the currency's minor units and the reader's locale, one helper."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from accounts.money import format_amount, format_money, minor_units
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("amount", "currency", "language", "shown"),
    [
        # What SQLite's SUM hands back for 20016.80: fifteen significant digits.
        ("20016.8000000000", "EUR", "en", "EUR 20,016.80"),
        ("20016.8000000000", "EUR", "de", "EUR 20.016,80"),
        ("20016.8000000000", "EUR", "fr", "EUR 20\xa0016,80"),
        ("12000.00", "JPY", "en", "JPY 12,000"),
        ("1234.5", "KWD", "en", "KWD 1,234.500"),
        ("-1500", "USD", "en", "USD -1,500.00"),
        ("0.005", "EUR", "en", "EUR 0.01"),
    ],
)
def test_an_amount_is_shown_by_its_minor_units_and_the_locale(amount, currency, language, shown):
    with translation.override(language):
        assert format_money(D(amount), currency) == shown


def test_minor_units_follow_iso_4217():
    assert (minor_units("JPY"), minor_units("EUR"), minor_units("BHD")) == (0, 2, 3)
    assert format_amount(None, "EUR") == ""


# --- the pages the tour saw -------------------------------------------------------------


@pytest.fixture
def customer(db):
    customer = CustomerFactory(name="Summit Freight", currency="EUR")
    InvoiceFactory(customer=customer, currency="EUR", amount=D("20000.00"))
    InvoiceFactory(customer=customer, currency="EUR", amount=D("16.80"))
    InvoiceFactory(customer=customer, currency="JPY", amount=D("1250000.00"))
    return customer


def balances(page: str) -> str:
    return page.split('class="balances"')[1].split("</p>")[0]


def test_the_customer_page_shows_balances_grouped_and_by_minor_units(client, manager, customer):
    client.force_login(manager)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    shown = balances(page.content.decode())
    assert "EUR 20,016.80" in shown
    assert "JPY 1,250,000" in shown and "1250000.00" not in shown


def test_a_german_reader_sees_german_punctuation(client, manager, customer):
    client.force_login(manager)
    page = client.get(
        reverse("admin:accounts_customer_change", args=[customer.pk]),
        HTTP_ACCEPT_LANGUAGE="de",
    )
    assert "EUR 20.016,80" in balances(page.content.decode())


@pytest.mark.parametrize(
    "url_name",
    ["cases_promisetopay_record", "cases_dispute_open", "cases_paymentplan_propose"],
)
def test_the_case_forms_show_balances_and_invoices_formatted(client, manager, customer, url_name):
    client.force_login(manager)
    page = client.get(reverse(f"admin:{url_name}", args=[customer.pk])).content.decode()
    assert "EUR 20,016.80" in balances(page)
    # The invoice picker's labels too.
    assert "JPY 1,250,000 open of 1,250,000" in page
    assert not re.search(r"\d{5,}\.\d{2}", page.split("<body")[1])  # nothing ungrouped


def test_dashboard_key_figures_are_grouped(client, manager):
    today = timezone.localdate()
    InvoiceFactory(
        currency="CHF",
        amount=D("1234567.50"),
        issued_on=today - dt.timedelta(days=40),
        due_on=today - dt.timedelta(days=40),
    )
    client.force_login(manager)
    page = client.get("/admin/reporting/dashboard/?currency=CHF&days=90").content.decode()
    figures = page.split('id="key-figures"')[1].split("</table>")[0]
    assert re.search(r"Receivables</th><td[^>]*>1,234,567\.50<", figures)


# --- the assigned agent (defect 9a) -----------------------------------------------------


@pytest.mark.parametrize("role", ["agent", "manager", "finance"])
def test_the_assigned_agent_links_to_a_page_each_role_may_open(client, role, request):
    user = request.getfixturevalue(role)
    ann = UserFactory(username="ann", first_name="Ann", last_name="Lee", role="Collections agent")
    customer = CustomerFactory(assigned_agent=user if role == "agent" else ann)
    client.force_login(user)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    work = page.content.decode().split(">Assigned agent:</label>")[1].split("</div>")[0]
    links = re.findall(r'href="([^"]+)"', work)
    assert links, work
    assert "/auth/user/" not in work
    for link in links:
        assert client.get(link.replace("&amp;", "&")).status_code == 200, link
    if role != "agent":
        assert "Ann Lee" in work
