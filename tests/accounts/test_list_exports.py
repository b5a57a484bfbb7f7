"""Any console list exported to CSV or XLSX: its filters, search and order; permission-
checked, bounded, logged, and safe to open in a spreadsheet program."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook

from accounts import summaries
from accounts.models import AccessLog
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
CUSTOMERS = reverse("admin:accounts_customer_changelist")
EXPORT_CUSTOMERS = reverse("console-list-export", args=["accounts", "customer"])
EXPORT_INVOICES = reverse("console-list-export", args=["accounts", "invoice"])


@pytest.fixture
def book():
    acme = CustomerFactory(name="Acme Rockets")
    acme_two = CustomerFactory(name="Acme Tools")
    other = CustomerFactory(name='=HYPERLINK("http://evil")\x07 Corp')
    InvoiceFactory(customer=acme, due_on=ON - dt.timedelta(days=40), amount=Decimal("1500"))
    InvoiceFactory(customer=other, due_on=ON - dt.timedelta(days=40), amount=Decimal("99"))
    summaries.refresh_past_due()
    return {"acme": acme, "acme_two": acme_two, "other": other}


def csv_rows(response) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/csv")
    assert response.streaming
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_csv_holds_the_lists_rows_with_its_filters_search_and_order(client, manager, book):
    client.force_login(manager)
    rows = csv_rows(client.get(EXPORT_CUSTOMERS, {"format": "csv", "q": "acme", "o": "1"}))
    header, body = rows[0], rows[1:]
    assert header[0] == "Name" and "Past due" in header and "Next action" in header
    assert [row[0] for row in body] == ["Acme Rockets", "Acme Tools"]
    rows = csv_rows(client.get(EXPORT_CUSTOMERS, {"format": "csv", "q": "acme", "o": "-1"}))
    assert [row[0] for row in rows[1:]] == ["Acme Tools", "Acme Rockets"]
    rows = csv_rows(client.get(EXPORT_CUSTOMERS, {"format": "csv", "past_due": "1000"}))
    assert [row[0] for row in rows[1:]] == ["Acme Rockets"]
    assert "USD 1,500.00" in rows[1]


def test_text_is_stripped_of_control_characters_and_formulas_are_quoted(client, manager, book):
    client.force_login(manager)
    rows = csv_rows(client.get(EXPORT_CUSTOMERS, {"format": "csv", "q": "corp"}))
    assert rows[1][0] == '\'=HYPERLINK("http://evil") Corp'


def test_xlsx_has_the_same_rows_with_numbers_and_dates_as_such(client, manager, book):
    client.force_login(manager)
    response = client.get(EXPORT_INVOICES, {"format": "xlsx"})
    assert response.status_code == 200
    assert response["Content-Disposition"].endswith('.xlsx"')
    sheet = load_workbook(io.BytesIO(response.content)).active
    values = list(sheet.values)
    assert len(values) == 3 and values[0][0] == "Number"
    assert {type(cell) for row in values[1:] for cell in row} & {dt.datetime, int, float}
    assert '\'=HYPERLINK("http://evil") Corp' in values[2]  # no HTML escaping left


def test_every_export_is_logged_with_the_customers_in_it(client, manager, book):
    client.force_login(manager)
    csv_rows(client.get(EXPORT_CUSTOMERS, {"format": "csv", "q": "acme"}))
    entries = AccessLog.objects.filter(surface=AccessLog.Surface.LIST_EXPORT)
    assert {entry.customer_id for entry in entries} == {book["acme"].pk, book["acme_two"].pk}
    details = entries[0].details
    assert details["list"] == "accounts.customer" and details["format"] == "csv"
    assert details["rows"] == 2 and details["searched"] and "acme" not in str(details)


def test_agents_may_not_export_and_nobody_without_the_list(client, agent, book):
    client.force_login(agent)
    assert client.get(EXPORT_CUSTOMERS, {"format": "csv"}).status_code == 403
    outsider = UserFactory()  # staff, no role: cannot see the list
    client.force_login(outsider)
    assert client.get(EXPORT_CUSTOMERS, {"format": "csv"}).status_code == 403
    assert not AccessLog.objects.filter(surface=AccessLog.Surface.LIST_EXPORT).exists()


def test_finance_may_export(client, finance, book):
    client.force_login(finance)
    assert len(csv_rows(client.get(EXPORT_INVOICES, {"format": "csv"}))) == 3


def test_a_list_over_the_bound_is_refused_with_a_message(client, manager, book, settings):
    settings.LIST_EXPORT_MAX_ROWS = 2
    client.force_login(manager)
    response = client.get(EXPORT_CUSTOMERS, {"format": "csv", "segment": "standard"})
    assert response.status_code == 302
    assert response["Location"] == f"{CUSTOMERS}?segment=standard"
    page = client.get(response["Location"])
    assert "more than 2 rows" in page.content.decode()
    assert not AccessLog.objects.filter(surface=AccessLog.Surface.LIST_EXPORT).exists()


def test_bad_input_is_a_clear_400_not_a_500(client, manager, book):
    client.force_login(manager)
    response = client.get(EXPORT_CUSTOMERS, {"format": "pdf"})
    assert response.status_code == 400 and b"format" in response.content
    response = client.get(EXPORT_CUSTOMERS, {"format": "csv", "no_such_field__gt": "1"})
    assert response.status_code == 400
    missing = reverse("console-list-export", args=["accounts", "nothing"])
    assert client.get(missing, {"format": "csv"}).status_code == 404


def test_the_list_links_to_its_export_with_the_current_query(client, manager, finance, book):
    client.force_login(manager)
    html = client.get(CUSTOMERS, {"q": "acme", "p": "1"}).content.decode()
    assert f'href="{EXPORT_CUSTOMERS}?format=csv&amp;q=acme"' in html
    assert f'href="{EXPORT_CUSTOMERS}?format=xlsx&amp;q=acme"' in html


def test_agents_see_no_export_link(client, agent, book):
    client.force_login(agent)
    assert EXPORT_CUSTOMERS not in client.get(CUSTOMERS).content.decode()
