"""Payment rows through the intake pipeline: recorded once, money never changed, exact."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Activity, Payment
from integrations.intake import batches, spreadsheets
from integrations.intake.payments import PaymentParser, upsert_payments
from integrations.models import IntakeBatch, Rejection
from tests.clock import ON
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

DAY = (ON - timedelta(days=3)).isoformat()
HEADER = "source,external_id,customer_ref,amount,currency,received_on,remittance_reference\n"


def load(content: str, *, by=None, **kwargs) -> IntakeBatch:
    return spreadsheets.import_spreadsheet(
        io.BytesIO(content.encode()), kind="payments", filename="payments.csv", by=by, **kwargs
    )


def counts(batch: IntakeBatch) -> tuple:
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


def errors_by_row(batch: IntakeBatch) -> dict[int, dict]:
    return {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}


def test_a_payment_is_recorded_unallocated_with_its_timeline_entry(finance):
    customer = CustomerFactory(external_ref="C-1")

    batch = load(HEADER + f"lockbox,P-1,C-1,120.50,usd,{DAY},INV-1\n", by=finance)

    assert counts(batch) == (1, 1, 0, 0, 0)
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.customer) == ("lockbox", "P-1", customer)
    assert (payment.currency, payment.received_on, payment.method) == (
        "USD",
        ON - timedelta(days=3),
        "bank_transfer",
    )
    assert payment.amount == payment.unallocated_amount == Decimal("120.50")
    assert payment.created_by == finance
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PAYMENT)
    assert entry.actor == finance and "120.50" in entry.text


def test_loading_the_same_file_again_records_nothing_twice():
    CustomerFactory(external_ref="C-1")
    content = HEADER + f"lockbox,P-1,C-1,120.50,USD,{DAY},INV-1\n"
    load(content)

    again = load(content)

    assert counts(again) == (1, 0, 0, 1, 0)
    assert Payment.objects.count() == 1
    assert Activity.objects.filter(kind=Activity.Kind.PAYMENT).count() == 1


def test_a_recorded_payment_keeps_its_money_and_payer_but_its_reference_can_be_corrected():
    CustomerFactory(external_ref="C-1")
    CustomerFactory(external_ref="C-2")
    load(HEADER + f"lockbox,P-1,C-1,120.50,USD,{DAY},INV-1\n")

    batch = load(
        HEADER
        + f"lockbox,P-1,C-1,130.00,USD,{DAY},INV-1\n"  # another amount
        + f"lockbox,P-1,C-2,120.50,USD,{DAY},INV-1\n"  # another payer
        + f"lockbox,P-1,C-1,120.50,USD,{DAY},INV-1 and INV-2\n"  # a corrected reference
    )

    assert counts(batch) == (3, 0, 1, 0, 2)
    errors = errors_by_row(batch)
    assert errors[2].keys() == {"amount"} and "never changes" in errors[2]["amount"][0]
    assert errors[3].keys() == {"customer_ref"} and "never changes" in errors[3]["customer_ref"][0]
    payment = Payment.objects.get()
    assert payment.amount == Decimal("120.50")
    assert payment.remittance_reference == "INV-1 and INV-2"


def test_bad_cells_are_named_by_their_column():
    batch = load(
        "external_id,amount,currency,received_on\n"
        f"P-2,12.345,USD,{DAY}\n"
        f"P-3,abc,USD,{DAY}\n"
        f"P-4,10.00,US,{DAY}\n"
        f"P-5,-5,USD,{DAY}\n"
        "P-6,10.00,USD,31/02/2026\n"
        f",10.00,USD,{DAY}\n"
        "P-8,,USD,\n"
    )

    assert counts(batch) == (7, 0, 0, 0, 7)
    errors = errors_by_row(batch)
    assert errors[2] == {"amount": ["12.345 has more decimals than the ledger keeps (two)."]}
    assert errors[3] == {"amount": ["'abc' is not an amount."]}
    assert errors[4] == {"currency": ["US is not an ISO 4217 currency code."]}
    assert errors[5] == {"amount": ["A payment must be more than zero."]}
    assert errors[6] == {
        "received_on": [
            "'31/02/2026' is not a date in the format YYYY-MM-DD or DD/MM/YYYY or DD.MM.YYYY."
        ]
    }
    assert errors[7] == {"external_id": ["Required: part of the key that finds the row."]}
    assert errors[8] == {"amount": ["Required."], "received_on": ["Required."]}
    assert not Payment.objects.exists()


def test_a_new_payment_needs_an_amount_a_currency_and_a_date():
    batch = load("external_id,amount\nP-1,10.00\n")

    assert errors_by_row(batch) == {2: {"currency": ["Required."], "received_on": ["Required."]}}


def test_defaults_and_an_unknown_payer():
    batch = load(
        f"external_id,amount,currency,received_on,kind\nP-1,10.00,EUR,{DAY},\nP-2,5.00,EUR,{DAY},credit_note\n"
    )

    assert counts(batch) == (2, 2, 0, 0, 0)
    payment, credit = Payment.objects.order_by("external_id")
    assert (payment.source, payment.kind, payment.customer) == ("spreadsheet", "payment", None)
    assert (credit.kind, credit.method) == ("credit_note", "credit_note")


def test_a_preview_writes_nothing_at_all():
    CustomerFactory(external_ref="C-1")

    preview = load(HEADER + f"lockbox,P-1,C-1,120.50,USD,{DAY},INV-1\n", is_dry_run=True)

    assert counts(preview) == (1, 1, 0, 0, 0)
    assert not Payment.objects.exists() and not Activity.objects.exists()
    assert not IntakeBatch.objects.exists()


def test_records_from_the_parser_go_through_upsert_payments():
    record = PaymentParser().parse(
        {"external_id": "P-1", "amount": "99", "currency": "GBP", "received_on": DAY}, row_number=2
    )
    batch = batches.open_batch(source="spreadsheet", kind="payments")

    tally = upsert_payments([record, record], batch=batch)

    assert (tally.created, tally.unchanged) == (1, 1)
    assert Payment.objects.get().amount == Decimal("99.00")
