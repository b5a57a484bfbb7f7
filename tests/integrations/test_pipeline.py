"""The invoice pipeline's ledger rules: keys, idempotency, changes, partial payments, sync."""

import datetime as dt
import io
from decimal import Decimal

import pytest

from accounts import bulk, services
from accounts.models import Activity, Allocation, Contact, Customer, Invoice, Payment
from integrations.intake import batches, spreadsheets
from integrations.intake.invoices import InvoiceRecord, upsert_invoices
from integrations.models import ImportProfile, IntakeBatch, Rejection
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db

HEADER = (
    "Invoice Number,Customer ID,Customer,Email,Phone,Country,Invoice Date,Due Date,Currency,Amount"
)


def load(text: str, *, profile: str = "generic-csv", by=None, **kwargs) -> IntakeBatch:
    return spreadsheets.import_invoices(
        io.BytesIO(text.encode()),
        filename="invoices.csv",
        profile=ImportProfile.objects.get(name=profile),
        by=by,
        **kwargs,
    )


def counts(batch: IntakeBatch) -> tuple:
    batch.refresh_from_db()
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


def csv_of(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_rows_become_customers_contacts_and_invoices(finance):
    batch = load(
        csv_of(
            "INV-1,C-1,Acme GmbH,ap@acme.example,030 901820,DE,2026-10-01,2026-10-31,EUR,"
            '"1,250.50"',
            "INV-2,C-1,Acme GmbH,,,DE,2026-10-05,,EUR,99",
            "INV-3,,Bolt Ltd,,,GB,01/10/2026,31/10/2026,GBP,10.00",
        ),
        by=finance,
    )
    assert counts(batch) == (3, 3, 0, 0, 0)
    acme = Customer.objects.get(source="spreadsheet", external_ref="C-1")
    assert (acme.name, acme.country, acme.currency) == ("Acme GmbH", "DE", "EUR")
    contact = Contact.objects.get(customer=acme)
    assert (contact.email, contact.phone, contact.is_primary) == (
        "ap@acme.example",
        "+4930901820",
        True,
    )
    first = Invoice.objects.get(source="spreadsheet", number="INV-1")
    assert (first.amount, first.open_balance, first.status) == (
        Decimal("1250.50"),
        Decimal("1250.50"),
        "open",
    )
    # No due date: the profile's default terms (30 days) apply.
    assert Invoice.objects.get(number="INV-2").due_on == dt.date(2026, 11, 4)
    # Keyed on the name when the file has no customer reference for the row.
    assert Customer.objects.filter(source="spreadsheet", external_ref="Bolt Ltd").exists()
    imports = Activity.objects.filter(kind="import")
    assert imports.count() == 2  # one per customer per batch, not one per invoice
    assert imports.get(customer=acme).details["created"] == 2
    assert imports.get(customer=acme).actor == finance


def test_loading_the_same_file_twice_changes_nothing():
    text = csv_of(
        "INV-1,C-1,Acme,ap@acme.example,+14155550123,US,2026-10-01,2026-10-31,USD,100.00",
        "INV-2,C-2,Bolt,,,US,2026-10-01,2026-10-31,USD,200.00",
    )
    load(text)
    activities = Activity.objects.count()
    again = load(text)
    assert counts(again) == (2, 0, 0, 2, 0)
    assert Activity.objects.count() == activities
    assert Customer.objects.count() == 2 and Invoice.objects.count() == 2


def test_a_changed_due_date_updates_the_invoice_and_writes_the_timeline(finance):
    load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00"))
    batch = load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-11-30,USD,100.00"), by=finance)
    assert counts(batch) == (1, 0, 1, 0, 0)
    invoice = Invoice.objects.get(number="INV-1")
    assert invoice.due_on == dt.date(2026, 11, 30)
    entry = Activity.objects.get(kind="status_change", invoice=invoice)
    assert entry.details == {
        "field": "due_on",
        "from": "2026-10-31",
        "to": "2026-11-30",
        "batch": batch.pk,
    }
    assert entry.actor == finance


def test_an_amount_change_on_a_partly_paid_invoice_keeps_what_was_paid():
    load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00"))
    invoice = Invoice.objects.get(number="INV-1")
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("80.00"))
    services.allocate(payment=payment, invoice=invoice)

    batch = load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,120.00"))
    assert counts(batch) == (1, 0, 1, 0, 0)
    invoice.refresh_from_db()
    assert (invoice.amount, invoice.open_balance, invoice.status) == (
        Decimal("120.00"),
        Decimal("40.00"),
        "partially_paid",
    )

    too_low = load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,50.00"))
    assert counts(too_low) == (1, 0, 0, 0, 1)
    assert Rejection.objects.get(batch=too_low).errors == {
        "amount": ["amount 50.00 is below the 80.00 already paid."]
    }
    invoice.refresh_from_db()
    assert invoice.amount == Decimal("120.00")


def test_source_settlement_records_a_payment_and_allocation_once():
    header = HEADER + ",Amount Due"
    load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00,100.00", header=header))
    paid_there = csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00,30.00", header=header)
    batch = load(paid_there)
    assert counts(batch) == (1, 0, 1, 0, 0)
    payment = Payment.objects.get()
    assert (payment.amount, payment.source, payment.method, payment.external_id) == (
        Decimal("70.00"),
        "spreadsheet",
        "other",
        "INV-1:settled-in-spreadsheet:30.00",
    )
    allocation = Allocation.objects.get()
    assert (allocation.amount, allocation.rule) == (Decimal("70.00"), "source-sync")
    invoice = Invoice.objects.get(number="INV-1")
    assert (invoice.open_balance, invoice.status) == (Decimal("30.00"), "partially_paid")

    again = load(paid_there)
    assert counts(again) == (1, 0, 0, 1, 0)
    assert Payment.objects.count() == 1 and Allocation.objects.count() == 1


def test_a_source_saying_more_is_due_than_the_ledger_is_rejected():
    header = HEADER + ",Amount Due"
    load(csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00,40.00", header=header))
    assert Invoice.objects.get().open_balance == Decimal("40.00")
    batch = load(
        csv_of("INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00,100.00", header=header)
    )
    assert counts(batch) == (1, 0, 0, 0, 1)
    assert "refunds" in Rejection.objects.get(batch=batch).errors["amount_due"][0]


def test_repeated_rows_count_once_and_conflicting_repeats_are_rejected():
    batch = load(
        csv_of(
            "INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00",
            "INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,100.00",
            "INV-1,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,150.00",
        )
    )
    assert counts(batch) == (3, 1, 0, 1, 1)
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.row_number == 4
    assert rejection.errors["amount"] == [
        "Invoice INV-1 already appears on row 2 with amount 100.00; this row says 150.00."
    ]


def test_repeats_are_detected_across_chunks():
    rows = [f"INV-{n},C-1,Acme,,,US,2026-10-01,2026-10-31,USD,10.00" for n in range(5)]
    rows.append("INV-0,C-1,Acme,,,US,2026-10-01,2026-10-31,USD,10.00")
    batch = load(csv_of(*rows), chunk_size=2)
    assert counts(batch) == (6, 5, 0, 1, 0)
    assert Activity.objects.filter(kind="import").count() == 1


def test_an_invoice_of_another_customer_or_currency_is_not_moved():
    owner = CustomerFactory(source="spreadsheet", external_ref="C-1")
    InvoiceFactory(customer=owner, source="spreadsheet", number="INV-1", currency="USD")
    CustomerFactory(source="spreadsheet", external_ref="C-9")
    other_currency = load(csv_of("INV-1,C-1,x,,,US,2026-10-01,2026-10-31,EUR,100.00"))
    other_customer = load(csv_of("INV-1,C-9,Other,,,US,2026-10-01,2026-10-31,USD,100.00"))
    assert counts(other_currency) == counts(other_customer) == (1, 0, 0, 0, 1)
    assert list(Rejection.objects.get(batch=other_currency).errors) == ["currency"]
    assert list(Rejection.objects.get(batch=other_customer).errors) == ["customer_name"]
    assert Invoice.objects.get(number="INV-1").customer == owner


def test_a_bad_phone_rejects_the_row_naming_the_field_when_the_profile_is_strict():
    ImportProfile.objects.filter(name="generic-csv").update(warn_only=[])
    batch = load(
        csv_of(
            "INV-1,C-1,Acme,,12,US,2026-10-01,2026-10-31,USD,100.00",
            "INV-2,C-2,Bolt,,(415) 555-0123,US,2026-10-01,2026-10-31,USD,100.00",
        )
    )
    assert counts(batch) == (2, 1, 0, 0, 1)
    assert list(Rejection.objects.get(batch=batch).errors) == ["phone"]
    assert Contact.objects.get().phone == "+14155550123"


def test_records_from_another_adapter_go_through_the_same_upsert(finance):
    batch = batches.open_batch(source="api", kind="invoices", by=finance)
    record = InvoiceRecord(
        number="API-1",
        customer_key="C-1",
        customer_name="Acme",
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 10, 31),
        currency="USD",
        amount=Decimal("10.00"),
        row_number=1,
    )
    tally = upsert_invoices([record, record], batch=batch, by=finance, source="api")
    batches.close_batch(batch, tally)
    assert counts(batch) == (2, 1, 0, 1, 0)
    assert Invoice.objects.get(source="api").customer.external_ref == "C-1"


def test_a_customer_renamed_in_a_later_chunk_of_the_same_file_is_updated():
    batch = load(
        csv_of(
            "INV-1,C-1,Acme,ap@acme.example,,US,2026-10-01,2026-10-31,USD,100.00",
            "INV-2,C-1,Acme Inc,billing@acme.example,,US,2026-10-01,2026-10-31,USD,50.00",
        ),
        chunk_size=1,
    )
    assert counts(batch) == (2, 2, 0, 0, 0)
    customer = Customer.objects.get(source="spreadsheet", external_ref="C-1")
    assert customer.name == "Acme Inc" and customer.updated_at is not None
    assert Contact.objects.get(customer=customer).email == "billing@acme.example"


def test_unchanged_rows_across_chunks_report_each_row_once():
    rows = [
        f"INV-{n},C-{n % 2},Acme {n % 2},,,US,2026-10-01,2026-10-31,USD,10.00" for n in range(5)
    ]
    load(csv_of(*rows))
    seen = []
    again = load(csv_of(*rows), chunk_size=2, on_row=seen.append)
    assert counts(again) == (5, 0, 0, 5, 0)
    assert [(o.row_number, o.outcome) for o in seen] == [(n, "unchanged") for n in range(2, 7)]


def test_streamed_rows_are_written_with_their_defaults_and_no_ids_kept():
    """The pipeline's writer is accounts.bulk.insert_rows without returning ids: rows
    from a generator, JSON, money and timestamps as COPY text, the defaults filled in."""
    customer = CustomerFactory()
    moment = dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC)

    written = bulk.insert_rows(
        Activity,
        ("customer_id", "kind", "text", "details", "occurred_at"),
        (
            (customer.pk, "note", f"line {n}\twith a tab", {"n": n, "sum": "1.10"}, moment)
            for n in range(3)
        ),
        returning=False,
    )

    assert written == []
    stored = list(Activity.objects.filter(customer=customer).order_by("pk"))
    assert [a.text for a in stored] == [f"line {n}\twith a tab" for n in range(3)]
    assert [a.details for a in stored] == [{"n": n, "sum": "1.10"} for n in range(3)]
    assert {a.occurred_at for a in stored} == {moment} and stored[0].invoice_id is None
    with pytest.raises(TypeError, match="never float"):
        bulk.insert_rows(
            Payment,
            ("amount", "currency", "unallocated_amount", "received_on"),
            iter([(Decimal("1.00"), "USD", 1.0, dt.date(2026, 11, 20))]),
            returning=False,
        )
