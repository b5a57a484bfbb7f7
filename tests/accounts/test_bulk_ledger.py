"""The set-based ledger writers keep exactly the rules of their one-row twins."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts import services
from accounts.models import Activity, Allocation, Invoice, Payment
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
ON = dt.date(2026, 11, 20)


def test_record_payments_inserts_valid_rows_and_returns_errors_for_the_rest():
    customer = CustomerFactory()
    PaymentFactory(source="bank", external_id="REF-1")
    rows = [
        {
            "amount": "100.00",
            "currency": "USD",
            "received_on": ON,
            "customer": customer,
            "source": "bank",
            "external_id": "REF-2",
        },
        {"amount": "0", "currency": "USD", "received_on": ON, "source": "bank"},
        {"amount": "5.00", "currency": "ABC", "received_on": ON, "source": "bank"},
        {
            "amount": "5.00",
            "currency": "USD",
            "received_on": ON,
            "source": "bank",
            "external_id": "REF-1",
        },
        {
            "amount": "7.50",
            "currency": "EUR",
            "received_on": ON,
            "source": "bank",
            "external_id": "REF-2",
        },
    ]
    results = services.record_payments(rows)
    assert isinstance(results[0], Payment) and results[0].pk
    assert [type(r).__name__ for r in results[1:]] == ["ValidationError"] * 4
    assert results[0].unallocated_amount == Decimal("100.00")
    assert Activity.objects.filter(customer=customer, kind="payment").count() == 1
    assert Payment.objects.count() == 2


def test_allocate_many_books_each_plan_all_or_nothing():
    customer = CustomerFactory()
    a = InvoiceFactory(customer=customer, amount=Decimal("60.00"))
    b = InvoiceFactory(customer=customer, amount=Decimal("40.00"))
    c = InvoiceFactory(customer=customer, amount=Decimal("30.00"))
    paid_in_full = PaymentFactory(customer=customer, amount=Decimal("100.00"))
    too_little = PaymentFactory(customer=customer, amount=Decimal("20.00"))
    outcomes = services.allocate_many(
        [
            (paid_in_full.pk, [(a.pk, Decimal("60.00")), (b.pk, Decimal("40.00"))]),
            # 20.00 cannot cover 10 + 15: neither line is booked.
            (too_little.pk, [(c.pk, Decimal("10.00")), (c.pk, Decimal("15.00"))]),
        ],
        rule="invoice_number",
        on=ON,
    )
    assert outcomes[0] == "" and "Only 10.00" in outcomes[1]
    for obj in (a, b, c, paid_in_full, too_little):
        obj.refresh_from_db()
    assert (a.status, b.status, c.status) == ("paid", "paid", "open")
    assert paid_in_full.unallocated_amount == 0 and too_little.unallocated_amount == Decimal("20")
    assert set(Allocation.objects.values_list("rule", flat=True)) == {"invoice_number"}
    texts = list(Activity.objects.filter(kind="allocation").values_list("text", flat=True))
    assert len(texts) == 2 and all("applied to" in t for t in texts)


def test_allocate_many_never_takes_the_same_money_twice():
    customer = CustomerFactory()
    invoice = InvoiceFactory(customer=customer, amount=Decimal("50.00"))
    first = PaymentFactory(customer=customer, amount=Decimal("50.00"))
    second = PaymentFactory(customer=customer, amount=Decimal("50.00"))
    outcomes = services.allocate_many(
        [
            (first.pk, [(invoice.pk, Decimal("50.00"))]),
            (second.pk, [(invoice.pk, Decimal("50.00"))]),
        ]
    )
    assert outcomes[0] == "" and "is paid" in outcomes[1]
    invoice.refresh_from_db()
    assert invoice.open_balance == 0 and Allocation.objects.count() == 1


def test_allocate_many_keeps_currency_and_customer_rules():
    invoice = InvoiceFactory(currency="EUR")
    euro_elsewhere = PaymentFactory(currency="EUR")
    dollars = PaymentFactory(customer=invoice.customer, currency="USD")
    outcomes = services.allocate_many(
        [
            (dollars.pk, [(invoice.pk, Decimal("10.00"))]),
            (euro_elsewhere.pk, [(invoice.pk, Decimal("10.00"))]),
        ]
    )
    assert "never mixed" in outcomes[0] and "another customer" in outcomes[1]
    assert not Allocation.objects.exists()


def test_single_allocate_still_validates_like_before():
    invoice = InvoiceFactory(amount=Decimal("10.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("10.00"))
    services.allocate(payment=payment, invoice=invoice)
    with pytest.raises(ValidationError):
        services.allocate(payment=payment, invoice=invoice)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"
