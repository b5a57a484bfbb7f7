import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts import services
from accounts.models import Activity, Allocation, Invoice, Payment
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
ON = dt.date(2026, 11, 20)


def paid_pair(amount="100.00", paid="100.00"):
    invoice = InvoiceFactory(amount=Decimal(amount))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal(paid))
    services.allocate(payment=payment, invoice=invoice)
    return invoice, payment


def test_refund_reopens_a_paid_invoice_with_a_linked_reversal():
    invoice, payment = paid_pair()
    reversals = services.refund_payment(payment=payment, amount="40.00", on=ON, reason="damaged")
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.open_balance == Decimal("40.00")
    assert invoice.status == Invoice.Status.PARTIALLY_PAID
    assert payment.refunded_amount == Decimal("40.00")
    assert payment.unallocated_amount == 0
    [reversal] = reversals
    assert reversal.amount == Decimal("-40.00") and reversal.reverses.amount == Decimal("100.00")
    assert Activity.objects.filter(invoice=invoice, details__reverses__isnull=False).exists()


def test_full_chargeback_makes_the_invoice_open_again():
    invoice, payment = paid_pair()
    services.refund_payment(payment=payment, amount="100.00", is_chargeback=True)
    invoice.refresh_from_db()
    assert (invoice.open_balance, invoice.status) == (Decimal("100.00"), Invoice.Status.OPEN)
    assert Allocation.objects.get(amount__lt=0).rule == "chargeback"


def test_refund_takes_unapplied_money_first():
    invoice, payment = paid_pair(amount="60.00", paid="100.00")
    services.refund_payment(payment=payment, amount="30.00")
    invoice.refresh_from_db()
    payment.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert payment.unallocated_amount == Decimal("10.00")
    assert not Allocation.objects.filter(amount__lt=0).exists()
    services.refund_payment(payment=payment, amount="25.00")
    invoice.refresh_from_db()
    assert invoice.open_balance == Decimal("15.00")


def test_refund_reverses_newest_allocation_first_and_never_twice():
    customer = CustomerFactory()
    older = InvoiceFactory(customer=customer, amount=Decimal("50.00"))
    newer = InvoiceFactory(customer=customer, amount=Decimal("50.00"))
    payment = PaymentFactory(customer=customer, amount=Decimal("100.00"))
    services.allocate(payment=payment, invoice=older, on=dt.date(2026, 11, 1))
    services.allocate(payment=payment, invoice=newer, on=dt.date(2026, 11, 2))
    services.refund_payment(payment=payment, amount="30.00")
    services.refund_payment(payment=payment, amount="30.00")
    older.refresh_from_db()
    newer.refresh_from_db()
    assert newer.open_balance == Decimal("50.00")
    assert older.open_balance == Decimal("10.00")


def test_refund_more_than_the_payment_holds_is_refused():
    _, payment = paid_pair()
    services.refund_payment(payment=payment, amount="70.00")
    with pytest.raises(ValidationError, match=r"Only 30\.00"):
        services.refund_payment(payment=payment, amount="30.01")


def test_database_refuses_a_negative_allocation_that_reverses_nothing():
    invoice, payment = paid_pair()
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            payment=payment, invoice=invoice, amount=Decimal("-1.00"), allocated_on=ON, seq=9
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(refunded_amount=Decimal("100.01"))
