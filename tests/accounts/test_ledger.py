import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from accounts import services
from accounts.models import Activity, Allocation, Invoice, Payment
from accounts.money import to_amount, totals_by_currency
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def refresh(*objs):
    for obj in objs:
        obj.refresh_from_db()


# --- database constraints ------------------------------------------------------------


def test_database_refuses_negative_open_balance():
    invoice = InvoiceFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(open_balance=Decimal("-0.01"))


def test_database_refuses_open_balance_above_amount():
    invoice = InvoiceFactory(amount=Decimal("100.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(open_balance=Decimal("100.01"))


def test_database_refuses_paid_status_with_a_balance():
    invoice = InvoiceFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID)


def test_database_refuses_allocating_more_than_the_payment_holds():
    payment = PaymentFactory(amount=Decimal("50.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(unallocated_amount=Decimal("-1.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(unallocated_amount=Decimal("50.01"))


def test_database_refuses_non_positive_amounts():
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(amount=Decimal("0.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        PaymentFactory(amount=Decimal("-5.00"))


def test_database_refuses_duplicate_invoice_number_from_the_same_source():
    InvoiceFactory(number="INV-1", source="xero")
    InvoiceFactory(number="INV-1", source="quickbooks")  # another source may reuse it
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceFactory(number="INV-1", source="xero")


# --- allocation rules ----------------------------------------------------------------


def test_partial_allocation_leaves_invoice_partially_paid_and_logs_it():
    invoice = InvoiceFactory(amount=Decimal("250.00"))
    payment = services.record_payment(
        customer=invoice.customer, amount="100.00", currency="USD", received_on=dt.date(2026, 11, 1)
    )
    allocation = services.allocate(payment=payment, invoice=invoice, on=dt.date(2026, 11, 2))
    refresh(invoice, payment)
    assert allocation.amount == Decimal("100.00")
    assert invoice.open_balance == Decimal("150.00")
    assert invoice.status == Invoice.Status.PARTIALLY_PAID
    assert payment.unallocated_amount == Decimal("0.00")
    kinds = list(Activity.objects.filter(customer=invoice.customer).values_list("kind", flat=True))
    assert sorted(kinds) == ["allocation", "payment"]
    entry = Activity.objects.get(kind="allocation")
    assert entry.invoice == invoice
    assert entry.details["amount"] == "100.00"


def test_full_allocation_marks_invoice_paid_and_keeps_the_rest_unallocated():
    invoice = InvoiceFactory(amount=Decimal("80.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("100.00"))
    services.allocate(payment=payment, invoice=invoice)
    refresh(invoice, payment)
    assert invoice.open_balance == 0
    assert invoice.status == Invoice.Status.PAID
    assert payment.unallocated_amount == Decimal("20.00")


def test_one_payment_split_across_invoices():
    customer = CustomerFactory()
    first = InvoiceFactory(customer=customer, amount=Decimal("60.00"))
    second = InvoiceFactory(customer=customer, amount=Decimal("60.00"))
    payment = PaymentFactory(customer=customer, amount=Decimal("100.00"))
    services.allocate(payment=payment, invoice=first)
    services.allocate(payment=payment, invoice=second)
    refresh(first, second, payment)
    assert (first.open_balance, second.open_balance) == (Decimal("0.00"), Decimal("20.00"))
    assert payment.unallocated_amount == 0
    assert sum(a.amount for a in Allocation.objects.filter(payment=payment)) == payment.amount


def test_allocating_more_than_the_payment_holds_is_refused():
    invoice = InvoiceFactory(amount=Decimal("500.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("100.00"))
    with pytest.raises(ValidationError, match=r"Only 100\.00 of this payment"):
        services.allocate(payment=payment, invoice=invoice, amount="100.01")
    refresh(invoice, payment)
    assert invoice.open_balance == Decimal("500.00")
    assert payment.unallocated_amount == Decimal("100.00")
    assert not Allocation.objects.exists()


def test_allocating_more_than_the_invoice_owes_is_refused():
    invoice = InvoiceFactory(amount=Decimal("40.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("100.00"))
    with pytest.raises(ValidationError, match=r"has only 40\.00 open"):
        services.allocate(payment=payment, invoice=invoice, amount="40.01")


def test_currencies_are_never_mixed():
    invoice = InvoiceFactory(currency="EUR")
    payment = PaymentFactory(customer=invoice.customer, currency="USD")
    with pytest.raises(ValidationError, match="currencies are never mixed"):
        services.allocate(payment=payment, invoice=invoice)


def test_payment_of_one_customer_cannot_pay_another_customers_invoice():
    invoice = InvoiceFactory()
    payment = PaymentFactory()  # a different customer
    with pytest.raises(ValidationError, match="another customer"):
        services.allocate(payment=payment, invoice=invoice)


def test_paid_and_cancelled_invoices_take_no_more_money():
    paid = InvoiceFactory(open_balance=Decimal("0.00"), status=Invoice.Status.PAID)
    payment = PaymentFactory(customer=paid.customer)
    with pytest.raises(ValidationError, match="is paid"):
        services.allocate(payment=payment, invoice=paid)


def test_payment_from_unknown_payer_takes_the_customer_of_its_invoice():
    invoice = InvoiceFactory()
    payment = services.record_payment(
        amount="100.00", currency="USD", received_on=dt.date(2026, 11, 20)
    )
    assert payment.customer is None
    services.allocate(payment=payment, invoice=invoice)
    refresh(payment)
    assert payment.customer == invoice.customer


def test_credit_note_reduces_the_balance_like_a_payment():
    invoice = InvoiceFactory(amount=Decimal("300.00"))
    credit = services.record_payment(
        customer=invoice.customer,
        kind=Payment.Kind.CREDIT_NOTE,
        amount="75.50",
        currency="USD",
        received_on=dt.date(2026, 11, 20),
    )
    assert credit.method == Payment.Method.CREDIT_NOTE
    services.allocate(payment=credit, invoice=invoice)
    refresh(invoice)
    assert invoice.open_balance == Decimal("224.50")
    assert "credit note" in Activity.objects.get(kind="allocation").text


def test_disputed_invoice_stays_disputed_until_paid_in_full():
    invoice = InvoiceFactory(amount=Decimal("100.00"), status=Invoice.Status.DISPUTED)
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("100.00"))
    services.allocate(payment=payment, invoice=invoice, amount="30.00")
    refresh(invoice)
    assert invoice.status == Invoice.Status.DISPUTED
    services.allocate(payment=payment, invoice=invoice)
    refresh(invoice)
    assert invoice.status == Invoice.Status.PAID


def test_money_is_decimal_with_an_iso_currency():
    with pytest.raises(TypeError):
        to_amount(0.1)
    assert to_amount("10.005") == Decimal("10.01")
    with pytest.raises(ValidationError, match="not an amount"):
        to_amount("ten")
    with pytest.raises(ValidationError, match="not an ISO 4217 currency"):
        services.record_payment(amount="10", currency="XXY", received_on=dt.date(2026, 1, 1))
    assert totals_by_currency(
        [("USD", Decimal("1.10")), ("EUR", Decimal("2.00")), ("USD", Decimal("0.90"))]
    ) == {"EUR": Decimal("2.00"), "USD": Decimal("2.00")}


def test_open_balances_are_totalled_per_currency():
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, currency="USD", amount=Decimal("10.00"))
    InvoiceFactory(customer=customer, currency="USD", amount=Decimal("5.25"))
    InvoiceFactory(customer=customer, currency="EUR", amount=Decimal("7.00"))
    InvoiceFactory(
        customer=customer, currency="EUR", open_balance=Decimal("0"), status=Invoice.Status.PAID
    )
    assert services.open_balances(customer) == {"EUR": Decimal("7.00"), "USD": Decimal("15.25")}


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_allocations_never_overdraw_a_payment():
    """Two connections race to put the same 100.00 on two invoices: exactly one wins."""
    customer = CustomerFactory()
    invoices = [InvoiceFactory(customer=customer, amount=Decimal("100.00")) for _ in range(2)]
    payment = PaymentFactory(customer=customer, amount=Decimal("100.00"))
    barrier = threading.Barrier(2)
    outcomes = []

    def worker(invoice):
        try:
            barrier.wait(timeout=5)
            services.allocate(payment=payment, invoice=invoice, amount="100.00")
            outcomes.append("ok")
        except ValidationError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(invoice,)) for invoice in invoices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused"]
    payment.refresh_from_db()
    assert payment.unallocated_amount == 0
    assert Allocation.objects.filter(payment=payment).count() == 1
    assert sum(i.open_balance for i in Invoice.objects.filter(customer=customer)) == Decimal("100")
