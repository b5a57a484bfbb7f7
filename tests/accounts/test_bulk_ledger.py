"""The set-based ledger writers keep exactly the rules of their one-row twins."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from accounts import bulk, services
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


def test_bulk_timeline_entries_say_what_the_one_row_services_say():
    def book(*, is_bulk: bool) -> list[tuple]:
        customer = CustomerFactory()
        invoice = InvoiceFactory(
            customer=customer, number="INV-7", source=f"bulk-{is_bulk}", amount=Decimal("80.00")
        )
        if is_bulk:
            [payment] = services.record_payments(
                [{"amount": "50.00", "currency": "USD", "received_on": ON, "customer": customer}]
            )
            services.allocate_many(
                [(payment.pk, [(invoice.pk, Decimal("30.00"))])], rule="exact_amount"
            )
        else:
            payment = services.record_payment(
                amount="50.00", currency="USD", received_on=ON, customer=customer
            )
            services.allocate(
                payment=payment, invoice=invoice, amount=Decimal("30.00"), rule="exact_amount"
            )
        allocation = Allocation.objects.get(payment=payment)
        entries = Activity.objects.filter(customer=customer).order_by("kind")
        assert [e.details["payment"] for e in entries] == [payment.pk, payment.pk]
        assert entries[0].details["allocation"] == allocation.pk
        assert entries[0].invoice_id == invoice.pk
        return [
            (
                e.kind,
                e.text,
                {k: v for k, v in e.details.items() if k not in ("payment", "allocation")},
            )
            for e in entries
        ]

    assert book(is_bulk=True) == book(is_bulk=False)


def test_insert_rows_writes_text_json_and_money_exactly_and_fills_defaults():
    customer = CustomerFactory()
    awkward = 'tab\there, line\nbreak, back\\slash, "quotes", \\N, ünïcödé €'
    rows = bulk.insert_rows(
        Activity,
        ["customer_id", "kind", "text", "details"],
        [
            (customer.pk, "note", awkward, {"text": awkward, "amount": "12.30", "n": [1, None]}),
            (customer.pk, "note", "", {}),
        ],
    )
    stored = Activity.objects.order_by("pk")
    assert [row[0] for row in rows] == [a.pk for a in stored]
    first = stored[0]
    assert first.text == awkward and first.details == {
        "text": awkward,
        "amount": "12.30",
        "n": [1, None],
    }
    assert first.occurred_at is not None and first.invoice_id is None and first.channel == ""
    [payment_row] = bulk.insert_rows(
        Payment,
        ["kind", "amount", "currency", "unallocated_amount", "received_on"],
        [("payment", Decimal("1234567.89"), "EUR", Decimal("0.01"), ON)],
    )
    payment = Payment.objects.get(pk=payment_row[0])
    assert (payment.amount, payment.unallocated_amount) == (Decimal("1234567.89"), Decimal("0.01"))
    assert payment.refunded_amount == 0 and payment.created_at is not None
    assert payment.source == "manual" and payment.customer_id is None


def test_insert_rows_takes_ids_the_ordinary_inserts_then_skip():
    customer = CustomerFactory()
    made = bulk.insert_rows(
        Payment,
        ["customer_id", "amount", "currency", "unallocated_amount", "received_on"],
        [(customer.pk, Decimal("5.00"), "USD", Decimal("5.00"), ON)] * 3,
    )
    later = PaymentFactory()  # would collide if the ids were not taken from the sequence
    assert later.pk not in {row[0] for row in made} and Payment.objects.count() == 4


def test_insert_rows_refuses_float_money_and_unknown_columns():
    with pytest.raises(TypeError, match="never float"):
        bulk.insert_rows(
            Payment,
            ["amount", "currency", "unallocated_amount", "received_on"],
            [(10.1, "USD", Decimal("10.10"), ON)],
        )
    with pytest.raises(ValueError, match="no column"):
        bulk.insert_rows(Payment, ["amount", "colour"], [(Decimal("1"), "red")])
    assert not Payment.objects.exists()


def test_allocate_many_books_each_plan_under_its_own_rule():
    customer = CustomerFactory()
    a = InvoiceFactory(customer=customer, amount=Decimal("10.00"))
    b = InvoiceFactory(customer=customer, amount=Decimal("20.00"))
    first = PaymentFactory(customer=customer, amount=Decimal("10.00"))
    second = PaymentFactory(customer=customer, amount=Decimal("20.00"))
    outcomes = services.allocate_many(
        [
            (first.pk, [(a.pk, Decimal("10.00"))], "invoice_number"),
            (second.pk, [(b.pk, Decimal("20.00"))]),  # the call's rule
        ],
        rule="exact_amount",
    )
    assert outcomes == ["", ""]
    assert dict(Allocation.objects.values_list("invoice_id", "rule")) == {
        a.pk: "invoice_number",
        b.pk: "exact_amount",
    }
    entries = Activity.objects.filter(kind="allocation")
    assert {e.invoice_id: e.details["rule"] for e in entries} == {
        a.pk: "invoice_number",
        b.pk: "exact_amount",
    }


def test_one_of_filters_like_in_for_many_values_and_for_none():
    payments = [PaymentFactory(external_id=f"E-{n}", source="bank") for n in range(3)]
    wanted = [payments[0].pk, payments[2].pk, 10**9]
    assert sorted(
        Payment.objects.filter(bulk.one_of("id", wanted)).values_list("pk", flat=True)
    ) == [
        payments[0].pk,
        payments[2].pk,
    ]
    assert set(
        Payment.objects.filter(bulk.one_of("external_id", {"E-1", "nope"})).values_list(
            "external_id", flat=True
        )
    ) == {"E-1"}
    assert not Payment.objects.filter(bulk.one_of("id", [])).exists()
