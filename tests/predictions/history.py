"""A small ledger with habits, for the predictor's tests: some customers pay late, most pay
on time, every invoice paid through the real services (dated payments and allocations)."""

import datetime as dt
import random
from decimal import Decimal

from accounts import services
from tests.factories import CustomerFactory, InvoiceFactory

START = dt.date(2025, 1, 6)


def habits_ledger(*, customers=24, invoices=10, seed=7, late_share=0.35, end=None):
    """Customers issue an invoice every ~3 weeks with 30-day terms from START. A late payer
    pays 10-40 days after the due date nine times in ten, a good payer 0-5 days early nine
    times in ten. Invoices due after `end` stay open. Returns (late payers, good payers)."""
    rng = random.Random(seed)
    late_payers, good_payers = [], []
    for c in range(customers):
        customer = CustomerFactory(name=f"Habit {c}", credit_limit=Decimal("5000.00"))
        is_late = c < customers * late_share
        (late_payers if is_late else good_payers).append(customer)
        issued = START + dt.timedelta(days=rng.randint(0, 10))
        for _n in range(invoices):
            amount = Decimal(rng.randint(100, 900))
            invoice = InvoiceFactory(
                customer=customer,
                amount=amount,
                issued_on=issued,
                due_on=issued + dt.timedelta(days=30),
            )
            habit = is_late if rng.random() < 0.9 else not is_late
            delay = rng.randint(10, 40) if habit else -rng.randint(0, 5)
            paid_on = invoice.due_on + dt.timedelta(days=delay)
            if end is None or paid_on <= end:
                payment = services.record_payment(
                    amount=amount, currency="USD", received_on=paid_on, customer=customer
                )
                services.allocate(payment=payment, invoice=invoice, amount=amount, on=paid_on)
            issued += dt.timedelta(days=21)
    return late_payers, good_payers
