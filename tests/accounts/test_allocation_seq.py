"""Allocation rows are numbered per invoice (Allocation.seq): 1, 2, ... in the order written."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from accounts import services
from accounts.models import Allocation
from tests.factories import InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
D = Decimal
ON = dt.date(2026, 11, 2)


def seqs(invoice):
    return list(
        Allocation.objects.filter(invoice=invoice).order_by("id").values_list("amount", "seq")
    )


def test_allocate_and_refund_number_the_rows_of_each_invoice():
    invoice = InvoiceFactory(amount=D("100.00"))
    other = InvoiceFactory(customer=invoice.customer, amount=D("50.00"))
    first = PaymentFactory(customer=invoice.customer, amount=D("60.00"))
    second = PaymentFactory(customer=invoice.customer, amount=D("90.00"))
    services.allocate(payment=first, invoice=invoice, on=ON)
    services.allocate(payment=second, invoice=other, amount=D("50.00"), on=ON)
    services.allocate(payment=second, invoice=invoice, amount=D("40.00"), on=ON)
    services.refund_payment(payment=first, amount="10.00", on=ON)  # reverses the 60
    assert seqs(invoice) == [(D("60.00"), 1), (D("40.00"), 2), (D("-10.00"), 3)]
    assert seqs(other) == [(D("50.00"), 1)]


def test_allocate_many_continues_each_invoices_numbering_across_plans():
    invoice = InvoiceFactory(amount=D("100.00"))
    other = InvoiceFactory(customer=invoice.customer, amount=D("100.00"))
    earlier = PaymentFactory(customer=invoice.customer, amount=D("10.00"))
    services.allocate(payment=earlier, invoice=invoice, on=ON)
    one = PaymentFactory(customer=invoice.customer, amount=D("30.00"))
    two = PaymentFactory(customer=invoice.customer, amount=D("200.00"))
    refused = PaymentFactory(customer=invoice.customer, amount=D("5.00"))
    outcomes = services.allocate_many(
        [
            (one.pk, [(invoice.pk, D("20.00")), (other.pk, D("10.00"))]),
            (refused.pk, [(invoice.pk, D("6.00"))]),  # more than the payment holds
            (two.pk, [(invoice.pk, D("30.00")), (other.pk, D("40.00"))]),
        ],
        on=ON,
    )
    assert outcomes[0] == "" and outcomes[1] != "" and outcomes[2] == ""
    assert seqs(invoice) == [(D("10.00"), 1), (D("20.00"), 2), (D("30.00"), 3)]
    assert seqs(other) == [(D("10.00"), 1), (D("40.00"), 2)]


def test_a_number_is_taken_once_per_invoice():
    invoice = InvoiceFactory(amount=D("100.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=D("100.00"))
    services.allocate(payment=payment, invoice=invoice, amount=D("10.00"), on=ON)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            payment=payment, invoice=invoice, amount=D("1.00"), allocated_on=ON, seq=1
        )


@pytest.mark.parametrize("form", ["POSTGRESQL", "PORTABLE"])
def test_the_migration_numbers_existing_rows_in_the_order_they_were_written(form):
    """0017's backfill, both its SQL forms, on rows numbered out of order."""
    from importlib import import_module

    migration = import_module("accounts.migrations.0017_allocation_seq")
    if form == "POSTGRESQL" and connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    invoice = InvoiceFactory(amount=D("100.00"))
    other = InvoiceFactory(customer=invoice.customer, amount=D("100.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=D("100.00"))
    for target in [invoice, other, invoice, invoice]:
        services.allocate(payment=payment, invoice=target, amount=D("5.00"), on=ON)
    rows = Allocation.objects.order_by("id")
    for offset, allocation in enumerate(rows):  # scramble: 100, 101, ...
        Allocation.objects.filter(pk=allocation.pk).update(seq=100 + offset)
    with connection.cursor() as cursor:
        cursor.execute(getattr(migration, form))
    assert [a.seq for a in rows.filter(invoice=invoice)] == [1, 2, 3]
    assert [a.seq for a in rows.filter(invoice=other)] == [1]
