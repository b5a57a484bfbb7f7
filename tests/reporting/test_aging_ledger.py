"""As-of balances rebuilt from invoice and allocation dates (reporting.ledger)."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts import services
from accounts.models import Invoice, Payment
from reporting.ledger import balances_sql, invoice_balances_as_of, receivables_as_of
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
D = Decimal


def pay(invoice, amount, on, *, kind=Payment.Kind.PAYMENT):
    payment = services.record_payment(
        amount=amount,
        currency=invoice.currency,
        received_on=on,
        customer=invoice.customer,
        kind=kind,
    )
    services.allocate(payment=payment, invoice=invoice, amount=amount, on=on)
    return payment


def balances(as_of, **kwargs):
    return {
        invoice.number: invoice.balance_as_of for invoice in invoice_balances_as_of(as_of, **kwargs)
    }


def sql_balances(as_of, **kwargs):
    from django.db import connection

    sql, params = balances_sql(as_of, **kwargs)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT number, balance_as_of FROM ({sql}) t", params)  # noqa: S608
        return dict(cursor.fetchall())


def test_past_balance_ignores_later_payments_credit_notes_and_refunds():
    customer = CustomerFactory()
    invoice = InvoiceFactory(
        customer=customer,
        number="A-1",
        issued_on=dt.date(2026, 1, 1),
        due_on=dt.date(2026, 1, 31),
        amount=D("1000.00"),
    )
    pay(invoice, "300.00", dt.date(2026, 2, 10))  # partial payment
    pay(invoice, "200.00", dt.date(2026, 3, 5), kind=Payment.Kind.CREDIT_NOTE)
    late = pay(invoice, "500.00", dt.date(2026, 4, 1))  # paid in full
    services.refund_payment(payment=late, amount="120.00", on=dt.date(2026, 4, 20))

    # Hand-computed: 1000 - 300 = 700; - 200 = 500; - 500 = 0; + 120 = 120.
    expected = {
        dt.date(2025, 12, 31): {},  # not yet issued
        dt.date(2026, 1, 1): {"A-1": D("1000.00")},
        dt.date(2026, 2, 9): {"A-1": D("1000.00")},
        dt.date(2026, 2, 10): {"A-1": D("700.00")},
        dt.date(2026, 3, 5): {"A-1": D("500.00")},
        dt.date(2026, 4, 1): {},  # paid: not open that day
        dt.date(2026, 4, 19): {},
        dt.date(2026, 4, 20): {"A-1": D("120.00")},
        dt.date(2026, 12, 31): {"A-1": D("120.00")},
    }
    for as_of, want in expected.items():
        assert balances(as_of) == want, as_of
        assert sql_balances(as_of) == want, as_of
    invoice.refresh_from_db()
    assert invoice.open_balance == D("120.00")  # the ledger itself agrees today


def test_cancelled_invoices_never_count_and_written_off_residuals_do_not_today():
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, number="C-1", status=Invoice.Status.CANCELLED)
    InvoiceFactory(
        customer=customer,
        number="W-1",
        status=Invoice.Status.WRITTEN_OFF,
        open_balance=D("40.00"),
    )
    kept = InvoiceFactory(customer=customer, number="O-1", due_on=dt.date(2026, 11, 1))
    as_of = dt.date(2026, 11, 23)
    assert balances(as_of) == {"O-1": D("100.00")}
    assert sql_balances(as_of) == {"O-1": D("100.00")}
    assert receivables_as_of(as_of) == {"USD": D("100.00")}
    assert kept.open_balance == D("100.00")


def test_a_write_off_adjustment_counts_from_its_own_date():
    invoice = InvoiceFactory(
        number="W-2", issued_on=dt.date(2026, 1, 1), due_on=dt.date(2026, 2, 1)
    )
    pay(invoice, "100.00", dt.date(2026, 6, 30), kind=Payment.Kind.WRITE_OFF)
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.WRITTEN_OFF)
    assert balances(dt.date(2026, 6, 29)) == {"W-2": D("100.00")}
    assert balances(dt.date(2026, 6, 30)) == {}


def test_receivables_are_per_currency_and_never_mixed():
    usd = CustomerFactory()
    eur = CustomerFactory(currency="EUR")
    InvoiceFactory(customer=usd, amount=D("10.10"), issued_on=dt.date(2026, 1, 1))
    InvoiceFactory(customer=usd, amount=D("0.05"), issued_on=dt.date(2026, 1, 1))
    paid = InvoiceFactory(
        customer=eur, currency="EUR", amount=D("99.99"), issued_on=dt.date(2026, 1, 1)
    )
    pay(paid, "99.99", dt.date(2026, 5, 1))
    assert receivables_as_of(dt.date(2026, 4, 30)) == {"EUR": D("99.99"), "USD": D("10.15")}
    assert receivables_as_of(dt.date(2026, 5, 1)) == {"USD": D("10.15")}
    assert receivables_as_of(dt.date(2026, 4, 30), customer_ids=[eur.pk]) == {"EUR": D("99.99")}


def test_customer_filter_restricts_both_forms():
    a, b = CustomerFactory(), CustomerFactory()
    InvoiceFactory(customer=a, number="A")
    InvoiceFactory(customer=b, number="B")
    as_of = dt.date(2026, 11, 23)
    assert set(balances(as_of, customer_ids=[a.pk])) == {"A"}
    assert set(sql_balances(as_of, customer_ids=[b.pk])) == {"B"}
    assert balances(as_of, customer_ids=[]) == {}
    assert sql_balances(as_of, customer_ids=[]) == {}


@pytest.mark.parametrize("is_followed_by_allocations", [False, True])
def test_both_sql_forms_agree_with_the_orm_form(is_followed_by_allocations):
    """balances_sql reads the invoices alone when no allocation is dated after the report
    date and joins the later allocations otherwise; both give the ORM form's balances."""
    customer = CustomerFactory()
    as_of = dt.date(2026, 6, 30)
    InvoiceFactory(customer=customer, number="C-1", status=Invoice.Status.CANCELLED)
    InvoiceFactory(  # a residual left on a written-off invoice: never a receivable
        customer=customer,
        number="W-1",
        status=Invoice.Status.WRITTEN_OFF,
        open_balance=D("40.00"),
        issued_on=dt.date(2026, 1, 1),
    )
    InvoiceFactory(customer=customer, number="O-1", issued_on=dt.date(2026, 1, 1))
    InvoiceFactory(customer=customer, number="F-1", issued_on=dt.date(2026, 7, 1))
    partial = InvoiceFactory(customer=customer, number="P-1", issued_on=dt.date(2026, 1, 1))
    pay(partial, "30.00", dt.date(2026, 5, 1))
    paid = InvoiceFactory(customer=customer, number="X-1", issued_on=dt.date(2026, 1, 1))
    pay(paid, "100.00", dt.date(2026, 6, 1))
    if is_followed_by_allocations:
        later = InvoiceFactory(customer=customer, number="L-1", issued_on=dt.date(2026, 1, 1))
        pay(later, "100.00", dt.date(2026, 7, 15))
    expected = {"O-1": D("100.00"), "P-1": D("70.00")}
    if is_followed_by_allocations:
        expected["L-1"] = D("100.00")  # paid after the date: open on it
    assert balances(as_of) == expected
    assert sql_balances(as_of) == expected
    assert receivables_as_of(as_of) == {"USD": sum(expected.values())}


def test_later_first_and_further_allocations_are_each_added_back_once():
    """balances_sql joins an invoice's later row numbered 1 as it is and sums its later
    rows numbered 2 and up: one row per invoice, whichever of them come after the date."""
    customer = CustomerFactory()
    as_of = dt.date(2026, 6, 30)
    before, after = dt.date(2026, 6, 1), dt.date(2026, 7, 10)
    amounts = {"B-1": [], "A-1": [], "AA-1": [], "BAA-1": [], "BB-1": []}
    plans = {  # when each invoice's allocations are dated, in the order they are written
        "B-1": [before],
        "A-1": [after],
        "AA-1": [after, after],
        "BAA-1": [before, after, after],
        "BB-1": [before, before],
    }
    for number, dates in plans.items():
        invoice = InvoiceFactory(
            customer=customer, number=number, issued_on=dt.date(2026, 1, 1), amount=D("100.00")
        )
        for index, on in enumerate(dates):
            amount = D("10.00") * (index + 1)
            pay(invoice, amount, on)
            amounts[number].append((on, amount))
    late = pay(InvoiceFactory(customer=customer, number="R-1", issued_on=dt.date(2026, 1, 1)),
               "100.00", before)  # fmt: skip
    services.refund_payment(payment=late, amount="25.00", on=after)  # row 2, after the date
    expected = {
        number: D("100.00") - sum(a for on, a in rows if on <= as_of)
        for number, rows in amounts.items()
    }
    assert expected == {
        "B-1": D("90.00"),
        "A-1": D("100.00"),
        "AA-1": D("100.00"),
        "BAA-1": D("90.00"),
        "BB-1": D("70.00"),
    }
    assert sql_balances(as_of) == balances(as_of) == expected  # R-1 was paid in full then
    today = {"B-1": D("90.00"), "A-1": D("90.00"), "AA-1": D("70.00"), "BAA-1": D("40.00")}
    today.update({"BB-1": D("70.00"), "R-1": D("25.00")})  # the refund reopened it
    assert sql_balances(after) == balances(after) == today
    assert receivables_as_of(as_of) == {"USD": sum(expected.values())}
