"""Settlement history in: paid dates, amounts paid and disputes from spreadsheets and the API."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Activity, Allocation, Invoice, Payment
from cases.models import Dispute
from integrations.intake import spreadsheets
from integrations.models import ImportProfile, IntakeBatch, Rejection
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = (
    "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount,Paid Date,Amount Paid,Disputed\n"
)


def load(content: str, profile: str = "generic-csv", **kwargs) -> IntakeBatch:
    batch = spreadsheets.import_invoices(
        io.BytesIO(content.encode()),
        filename="history.csv",
        profile=ImportProfile.objects.get(name=profile),
        **kwargs,
    )
    batch.refresh_from_db()
    return batch


def counts(batch):
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


HISTORY = (
    HEADER
    + "H-1,Acme,2025-01-10,2025-02-09,USD,1000.00,2025-02-20,,\n"  # paid in full, late
    + "H-2,Acme,2025-03-01,2025-03-31,USD,500.00,2025-03-15,200.00,\n"  # part paid
    + "H-3,Acme,2025-04-01,2025-05-01,USD,300.00,,,yes\n"  # open and disputed
    + "H-4,Acme,2025-05-01,2025-05-31,USD,400.00,,,\n"  # open
)


def test_history_books_dated_payments_and_allocations_and_disputes():
    batch = load(HISTORY)
    assert counts(batch) == (4, 4, 0, 0, 0)
    h1, h2, h3, h4 = (Invoice.objects.get(number=f"H-{n}") for n in range(1, 5))
    assert (h1.open_balance, h1.status) == (Decimal("0.00"), Invoice.Status.PAID)
    assert (h2.open_balance, h2.status) == (Decimal("300.00"), Invoice.Status.PARTIALLY_PAID)
    assert h4.open_balance == Decimal("400.00")
    paid = {p.amount: p for p in Payment.objects.all()}
    assert set(paid) == {Decimal("1000.00"), Decimal("200.00")}
    assert paid[Decimal("1000.00")].received_on == dt.date(2025, 2, 20)
    assert paid[Decimal("200.00")].received_on == dt.date(2025, 3, 15)
    assert paid[Decimal("1000.00")].source == "spreadsheet"
    allocations = {a.invoice.number: a for a in Allocation.objects.select_related("invoice")}
    assert allocations["H-1"].amount == Decimal("1000.00")
    assert allocations["H-1"].allocated_on == dt.date(2025, 2, 20)
    assert allocations["H-2"].allocated_on == dt.date(2025, 3, 15)
    dispute = Dispute.objects.get()
    assert list(dispute.invoices.values_list("number", flat=True)) == ["H-3"]
    h3.refresh_from_db()
    assert h3.status == Invoice.Status.DISPUTED
    assert Activity.objects.filter(kind=Activity.Kind.PAYMENT).count() == 2
    assert Activity.objects.filter(kind=Activity.Kind.ALLOCATION, invoice=h1).exists()


def test_reimporting_the_same_history_books_nothing_and_counts_rows_unchanged():
    load(HISTORY)
    again = load(HISTORY)
    assert counts(again) == (4, 0, 0, 4, 0)
    assert Payment.objects.count() == 2
    assert Allocation.objects.count() == 2
    assert Dispute.objects.count() == 1


def test_a_later_file_with_more_paid_books_only_the_difference():
    load(HISTORY)
    later = HEADER + "H-2,Acme,2025-03-01,2025-03-31,USD,500.00,2025-04-02,450.00,\n"
    batch = load(later)
    assert counts(batch) == (1, 0, 1, 0, 0)
    payment = Payment.objects.get(received_on=dt.date(2025, 4, 2))
    assert payment.amount == Decimal("250.00")
    assert Invoice.objects.get(number="H-2").open_balance == Decimal("50.00")
    assert counts(load(later)) == (1, 0, 0, 1, 0)
    assert Payment.objects.count() == 3


def test_bad_paid_dates_and_amounts_are_refused_naming_the_field():
    batch = load(
        HEADER
        + "B-1,Acme,2026-10-01,2026-10-31,USD,100.00,2026-12-01,,\n"  # after today (11-23)
        + "B-2,Acme,2026-10-01,2026-10-31,USD,100.00,2026-09-30,,\n"  # before the issue date
        + "B-3,Acme,2026-10-01,2026-10-31,USD,100.00,2026-10-15,150.00,\n"  # more than owed
        + "B-4,Acme,2026-10-01,2026-10-31,USD,100.00,,,maybe\n"
    )
    assert counts(batch) == (4, 0, 0, 0, 4)
    errors = {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}
    assert set(errors[2]) == {"paid_on"} and "future" in errors[2]["paid_on"][0]
    assert set(errors[3]) == {"paid_on"} and "before the issue date" in errors[3]["paid_on"][0]
    assert set(errors[4]) == {"amount_paid"}
    assert set(errors[5]) == {"disputed"}
    assert not Payment.objects.exists()


def test_the_preview_writes_nothing():
    preview = spreadsheets.preview_spreadsheet(
        io.BytesIO(HISTORY.encode()),
        kind="invoices",
        profile=ImportProfile.objects.get(name="generic-csv"),
    )
    assert preview is not None
    assert not Payment.objects.exists()
    assert not Allocation.objects.exists()
    assert not Dispute.objects.exists()
    assert not Invoice.objects.exists()


def test_vendor_profiles_read_their_paid_columns():
    xero = (
        "ContactName,InvoiceNumber,InvoiceDate,DueDate,Total,InvoiceAmountPaid,"
        "InvoiceAmountDue,FullyPaidOnDate,Currency\n"
        "Acme,X-1,10/01/2025,09/02/2025,100.00,100.00,0.00,20/02/2025,GBP\n"
        "Acme,X-2,10/01/2025,09/02/2025,80.00,30.00,50.00,,GBP\n"
    )
    batch = load(xero, profile="xero")
    assert counts(batch) == (2, 2, 0, 0, 0)
    dated = Payment.objects.get(source="xero", received_on=dt.date(2025, 2, 20))
    assert dated.amount == Decimal("100.00")
    # Paid without a date: the amount due settles it as of today, as before.
    assert Invoice.objects.get(number="X-2").open_balance == Decimal("50.00")
    quickbooks = (
        "Date,Transaction Type,Num,Customer,Due Date,Amount,Open Balance,Date Paid,Amount Paid\n"
        "01/15/2025,Invoice,Q-1,Bolt Inc,02/14/2025,200.00,0.00,02/28/2025,200.00\n"
    )
    load(quickbooks, profile="quickbooks-online")
    payment = Payment.objects.get(source="quickbooks")
    assert (payment.amount, payment.received_on) == (Decimal("200.00"), dt.date(2025, 2, 28))
    assert Invoice.objects.get(number="Q-1").status == Invoice.Status.PAID


def test_the_bulk_api_takes_paid_history_and_stays_idempotent(finance):
    client = APIClient()
    client.force_authenticate(finance)
    body = {
        "source": "erp",
        "invoices": [
            {
                "number": "E-1",
                "customer_name": "Acme",
                "issued_on": "2025-06-01",
                "due_on": "2025-07-01",
                "currency": "EUR",
                "amount": "900.00",
                "paid_on": "2025-07-10",
                "amount_paid": "600.00",
                "disputed": True,
            },
            {
                "number": "E-2",
                "customer_name": "Acme",
                "issued_on": "2025-06-01",
                "due_on": "2025-07-01",
                "currency": "EUR",
                "amount": "100.00",
                "paid_on": "2025-05-01",
            },
            {
                "number": "E-3",
                "customer_name": "Acme",
                "issued_on": "2025-06-01",
                "due_on": "2025-07-01",
                "currency": "EUR",
                "amount": "100.00",
                "amount_paid": 50.0,
                "paid_on": "2025-06-05",
            },
        ],
    }
    response = client.post("/api/v1/invoices/bulk/", body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert (data["created"], data["rejected"]) == (1, 2)
    errors = {e["index"]: e["errors"] for e in data["errors"]}
    assert "paid_on" in errors[1] and "amount_paid" in errors[2]
    payment = Payment.objects.get(source="erp")
    assert (payment.amount, payment.received_on) == (Decimal("600.00"), dt.date(2025, 7, 10))
    assert Invoice.objects.get(number="E-1").open_balance == Decimal("300.00")
    assert Dispute.objects.count() == 1
    again = client.post("/api/v1/invoices/bulk/", body, format="json").json()
    assert (again["created"], again["unchanged"]) == (0, 1)
    assert Payment.objects.count() == 1 and Dispute.objects.count() == 1


def test_the_single_invoice_api_books_a_paid_date_and_amount(finance):
    customer = CustomerFactory()
    client = APIClient()
    client.force_authenticate(finance)
    invoice = {
        "customer": customer.pk,
        "number": "S-1",
        "issued_on": "2025-11-01",
        "due_on": "2025-12-01",
        "currency": "USD",
        "amount": "120.00",
    }
    created = client.post(
        "/api/v1/invoices/",
        {**invoice, "paid_on": "2025-12-09", "amount_paid": "100.00"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["open_balance"] == "20.00"
    payment = Payment.objects.get()
    assert (payment.amount, payment.received_on) == (Decimal("100.00"), dt.date(2025, 12, 9))
    assert Allocation.objects.get().allocated_on == dt.date(2025, 12, 9)
    whole = client.post(
        "/api/v1/invoices/", {**invoice, "number": "S-2", "paid_on": "2025-11-20"}, format="json"
    )
    assert whole.json()["status"] == "paid"
    early = client.post(
        "/api/v1/invoices/", {**invoice, "number": "S-3", "paid_on": "2025-10-01"}, format="json"
    )
    assert early.status_code == 400 and "paid_on" in early.json()
    future = client.post(
        "/api/v1/invoices/", {**invoice, "number": "S-4", "paid_on": "2027-01-01"}, format="json"
    )
    assert future.status_code == 400 and "paid_on" in future.json()
    too_much = client.post(
        "/api/v1/invoices/",
        {**invoice, "number": "S-5", "paid_on": "2025-11-20", "amount_paid": "500.00"},
        format="json",
    )
    assert too_much.status_code == 400 and "amount_paid" in too_much.json()
    assert Payment.objects.count() == 2


def test_paid_rows_cost_no_query_per_row():
    def rows(start, n):
        return "".join(
            f"P-{i},Acme {i % 3},2025-01-10,2025-02-09,USD,100.00,2025-02-20,60.00,\n"
            for i in range(start, start + n)
        )

    load(HEADER + rows(0, 3))  # the customers exist before the counted loads
    with CaptureQueriesContext(connection) as few:
        load(HEADER + rows(100, 5))
    with CaptureQueriesContext(connection) as many:
        load(HEADER + rows(200, 60))
    assert Payment.objects.count() == 68
    assert len(many.captured_queries) == len(few.captured_queries)


def test_a_paid_disputed_invoice_gets_a_resolved_dispute_dated_by_its_history():
    """The predictor counts a customer's past disputes on the day they were known: an
    invoice the history says was disputed and paid gets a resolved dispute raised no later
    than its due date and resolved the day it was paid; once, however often re-imported."""
    from django.utils import timezone

    content = HEADER + "H-9,Acme,2025-01-10,2025-02-09,USD,100.00,2025-03-20,,yes\n"
    load(content)
    load(content)
    dispute = Dispute.objects.get()
    assert dispute.status == Dispute.Status.RESOLVED_US
    assert list(dispute.invoices.values_list("number", flat=True)) == ["H-9"]
    assert timezone.localtime(dispute.opened_at).date() == dt.date(2025, 2, 9)
    assert timezone.localtime(dispute.resolved_at).date() == dt.date(2025, 3, 20)
    assert Invoice.objects.get(number="H-9").status == Invoice.Status.PAID
