"""Invoice intake finds the existing customer: by reference, then by normalised name.

The tour's defect: an invoice file naming "Transports Summit SA" created customer #501
beside #80 (unassigned, no country), the preview said only "new", and a bank payment
quoting the imported invoice was booked to the duplicate.
"""

import datetime as dt
import io
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.models import Customer, Invoice
from integrations.bank.importer import import_statement
from integrations.intake import spreadsheets
from integrations.models import ImportProfile, IntakeBatch, Rejection
from tests.clock import ON
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n"
WITH_REF = "Invoice Number,Customer Ref,Customer,Invoice Date,Due Date,Currency,Amount\n"
ISSUED, DUE = (ON - dt.timedelta(days=40)).isoformat(), (ON - dt.timedelta(days=10)).isoformat()


def load(content: str, **kwargs) -> IntakeBatch:
    return spreadsheets.import_invoices(
        io.BytesIO(content.encode()),
        filename="invoices.csv",
        profile=ImportProfile.objects.get(name="generic-csv"),
        **kwargs,
    )


def errors_of(batch) -> dict[int, dict]:
    return {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}


@pytest.fixture
def summit(db):
    """Customer #80 of the tour: assigned, with a country, from the seed."""
    agent = UserFactory(username="claire", role="Collections agent")
    return CustomerFactory(
        name="Transports Summit SA",
        source="demo",
        external_ref="C-0080",
        country="FR",
        timezone="Europe/Paris",
        currency="EUR",
        assigned_agent=agent,
    )


def test_the_tours_invoice_file_goes_to_the_existing_customer(summit):
    batch = load(HEADER + f"SUM-9001,TRANSPORTS SUMMIT S.A.,{ISSUED},{DUE},EUR,1200.00\n")

    batch.refresh_from_db()
    assert (batch.rows_read, batch.created, batch.rejected) == (1, 1, 0)
    assert Customer.objects.count() == 1  # no duplicate
    invoice = Invoice.objects.get(number="SUM-9001")
    assert invoice.customer == summit
    summit.refresh_from_db()
    # The file does not own the customer: its name, agent and country stay.
    assert (summit.name, summit.country, summit.assigned_agent.username) == (
        "Transports Summit SA",
        "FR",
        "claire",
    )


def test_a_bank_payment_quoting_the_imported_invoice_is_booked_to_that_customer(summit):
    load(HEADER + f"SUM-9001,Transports Summit,{ISSUED},{DUE},EUR,1200.00\n")

    result = import_statement(
        content=(
            "date,amount,currency,name,reference\n"
            f"{ON.isoformat()},1200.00,EUR,TRANSPORTS SUMMIT,SUM-9001\n"
        ).encode()
    )

    assert result.summary()["matched"] == 1
    invoice = Invoice.objects.get(number="SUM-9001")
    assert invoice.status == "paid"
    assert invoice.allocations.get().payment.customer == summit


def test_a_reference_column_finds_the_customer_by_its_reference_in_another_source(summit):
    CustomerFactory(name="Transports Summit SA", source="erp", external_ref="T-1")

    batch = load(WITH_REF + f"SUM-1,C-0080,Summit Logistics,{ISSUED},{DUE},EUR,10.00\n")

    batch.refresh_from_db()
    assert (batch.created, batch.rejected) == (1, 0)
    assert Invoice.objects.get(number="SUM-1").customer == summit
    assert Customer.objects.count() == 2


def test_two_customers_with_the_same_name_are_not_guessed(summit):
    twin = CustomerFactory(name="Transports Summit", source="erp", external_ref="T-9")

    batch = load(
        HEADER
        + f"SUM-1,Transports Summit S.A.,{ISSUED},{DUE},EUR,10.00\n"
        + f"OTHER-1,Alpine Freight,{ISSUED},{DUE},EUR,20.00\n"
    )

    batch.refresh_from_db()
    assert (batch.rows_read, batch.created, batch.rejected) == (2, 1, 1)
    [message] = errors_of(batch)[2]["customer_name"]  # row 1 is the header
    assert message.startswith("2 customers match this name:")
    assert f"#{summit.pk} Transports Summit SA (C-0080)" in message
    assert f"#{twin.pk} Transports Summit (T-9)" in message
    assert not Invoice.objects.filter(number="SUM-1").exists()
    assert Customer.objects.filter(name="Alpine Freight").count() == 1  # a new one is fine


def test_a_customer_the_same_source_knows_under_another_reference_is_another_account():
    first = CustomerFactory(name="Acme Ltd", source="spreadsheet", external_ref="A-1")

    load(WITH_REF + f"INV-1,A-2,Acme Ltd,{ISSUED},{DUE},USD,10.00\n")

    invoice = Invoice.objects.get(number="INV-1")
    assert invoice.customer != first
    assert (invoice.customer.source, invoice.customer.external_ref) == ("spreadsheet", "A-2")


def test_a_name_keyed_customer_of_the_same_source_matches_its_other_spellings():
    stored = CustomerFactory(name="Acme Inc", source="spreadsheet", external_ref="Acme Inc")

    load(HEADER + f"INV-1,ACME INC.,{ISSUED},{DUE},USD,10.00\n")
    load(HEADER + f"INV-2,Acme,{ISSUED},{DUE},USD,10.00\n")

    assert set(Invoice.objects.values_list("customer", flat=True)) == {stored.pk}
    assert Customer.objects.count() == 1


def test_matching_stays_a_few_queries_per_chunk(summit, django_assert_max_num_queries):
    for n in range(30):
        CustomerFactory(name=f"Company {n} GmbH", source="erp", external_ref=f"E-{n}")
    rows = "".join(f"N-{n},COMPANY {n},{ISSUED},{DUE},EUR,1.00\n" for n in range(30))
    # Open and close the batch, the customers (key, name), contacts, invoices, the COPY,
    # the summaries: not one query per row.
    with django_assert_max_num_queries(40):
        batch = load(HEADER + rows)
    batch.refresh_from_db()
    assert (batch.created, batch.rejected) == (30, 0)
    assert Customer.objects.count() == 31


def test_the_preview_shows_which_customer_each_row_goes_to_and_writes_nothing(
    client, finance, summit, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path / "media"
    twin_a = CustomerFactory(name="Nordic Cargo AB", source="erp", external_ref="N-1")
    CustomerFactory(name="Nordic Cargo", source="erp", external_ref="N-2")
    client.force_login(finance)
    file = io.BytesIO(
        (
            HEADER
            + f"SUM-1,Transports Summit S.A.,{ISSUED},{DUE},EUR,10.00\n"
            + f"NEW-1,Brand New Client Ltd,{ISSUED},{DUE},EUR,10.00\n"
            + f"NC-1,Nordic Cargo,{ISSUED},{DUE},EUR,10.00\n"
        ).encode()
    )
    file.name = "book.csv"
    page = client.post(
        "/admin/integrations/intakebatch/import/",
        {"file": file, "profile": ImportProfile.objects.get(name="generic-csv").pk},
    )

    assert page.status_code == 200
    rows = {row.row_number: row for row, _label in page.context["rows"]}
    assert rows[2].customer == {  # row 1 is the header
        "id": summit.pk,
        "name": "Transports Summit SA",
        "ref": "C-0080",
        "match": "name",
        "label": "existing customer, found by its name",
    }
    assert (rows[3].customer["id"], rows[3].customer["match"]) == (None, "new")
    assert rows[4].outcome == "rejected" and "customer_name" in rows[4].changes
    html = page.content.decode()
    assert f'href="/admin/accounts/customer/{summit.pk}/change/">Transports Summit SA</a>' in html
    assert "Brand New Client Ltd: <strong>new customer</strong>" in html
    assert f"#{twin_a.pk} Nordic Cargo AB (N-1)" in html
    assert "go to 1 existing customer(s) and would create 1 new customer(s)" in html
    assert Customer.objects.count() == 3 and not Invoice.objects.exists()
    assert not IntakeBatch.objects.exists()


def test_the_api_intake_matches_too_and_answers_ambiguous_rows_with_their_index(finance, summit):
    CustomerFactory(name="Nordic Cargo AB", source="erp", external_ref="N-1")
    CustomerFactory(name="Nordic Cargo", source="erp", external_ref="N-2")
    client = APIClient()
    client.force_authenticate(finance)
    item = {"issued_on": ISSUED, "due_on": DUE, "currency": "EUR", "amount": "10.00"}

    answer = client.post(
        "/api/v1/invoices/bulk/",
        {
            "source": "erp-feed",
            "invoices": [
                {**item, "number": "A-1", "customer_name": "Transports Summit"},
                {**item, "number": "A-2", "customer_name": "NORDIC CARGO"},
            ],
        },
        format="json",
    )

    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert (body["created"], body["rejected"]) == (1, 1)
    assert [error["index"] for error in body["errors"]] == [1]
    assert "2 customers match this name" in body["errors"][0]["errors"]["customer_name"][0]
    assert Invoice.objects.get(number="A-1").customer == summit


def test_after_a_merge_the_duplicates_key_leads_to_the_survivor(summit, manager):
    from accounts import merging

    load(HEADER + f"OLD-1,Summit Trucks,{ISSUED},{DUE},EUR,10.00\n")  # the old duplicate
    duplicate = Customer.objects.get(name="Summit Trucks")
    merging.merge_customers(survivor=summit, duplicate=duplicate, by=manager, reason="same")

    batch = load(
        HEADER
        + f"OLD-1,Summit Trucks,{ISSUED},{DUE},EUR,10.00\n"
        + f"OLD-2,Summit Trucks,{ISSUED},{DUE},EUR,15.00\n"
    )

    batch.refresh_from_db()
    assert errors_of(batch) == {}
    assert (batch.created, batch.unchanged, batch.rejected) == (1, 1, 0)
    assert set(Invoice.objects.values_list("customer", flat=True)) == {summit.pk}
    assert Invoice.objects.get(number="OLD-2").amount == Decimal("15.00")


def test_a_person_is_never_taken_by_name_alone():
    CustomerFactory(name="Marie Dupont", kind="consumer", source="erp", external_ref="P-1")

    load(HEADER + f"INV-1,MARIE DUPONT,{ISSUED},{DUE},EUR,10.00\n")

    invoice = Invoice.objects.get(number="INV-1")
    assert (invoice.customer.source, invoice.customer.external_ref) == (
        "spreadsheet",
        "MARIE DUPONT",
    )
