"""Retention: only accounts closed for longer than the setting are erased, nightly."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts import timeline
from accounts.models import Activity, Customer, Invoice
from privacy import retention
from privacy.tasks import apply_retention
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

YEARS_AGO_8 = ON - dt.timedelta(days=8 * 365)


def customer_with(name: str, *, due_on: dt.date, status: str = Invoice.Status.PAID):
    customer = CustomerFactory(name=name)
    Customer.objects.filter(pk=customer.pk).update(
        created_at=dt.datetime(2015, 1, 5, tzinfo=dt.UTC)
    )
    ContactFactory(customer=customer, name=f"{name} AP")
    invoice = InvoiceFactory(
        customer=customer,
        amount=Decimal("100.00"),
        issued_on=due_on - dt.timedelta(days=30),
        due_on=due_on,
    )
    if status == Invoice.Status.PAID:
        Invoice.objects.filter(pk=invoice.pk).update(status=status, open_balance=0)
    return customer


@pytest.fixture
def book():
    return {
        "old_closed": customer_with("Old Closed", due_on=YEARS_AGO_8),
        "old_but_open": customer_with(
            "Old But Open", due_on=YEARS_AGO_8, status=Invoice.Status.OPEN
        ),
        "recent": customer_with("Recent", due_on=ON - dt.timedelta(days=400)),
        "old_touched": customer_with("Old Touched", due_on=YEARS_AGO_8),
    }


@pytest.mark.django_db
def test_retention_picks_only_accounts_closed_longer_than_the_setting(book, settings):
    timeline.add(Activity.Kind.NOTE, customer=book["old_touched"], text="Asked for a copy")
    settings.RETENTION_CLOSED_ACCOUNT_YEARS = 0
    assert apply_retention() == 0  # off by default
    settings.RETENTION_CLOSED_ACCOUNT_YEARS = 7

    assert set(retention.closed_accounts(years=7)) == {book["old_closed"]}
    assert apply_retention() == 1

    names = {key: Customer.objects.get(pk=c.pk).name for key, c in book.items()}
    assert names == {
        "old_closed": f"Erased customer #{book['old_closed'].pk}",
        "old_but_open": "Old But Open",
        "recent": "Recent",
        "old_touched": "Old Touched",
    }
    entry = Activity.objects.get(customer=book["old_closed"], kind=Activity.Kind.ERASURE)
    assert entry.actor is None and "7 years" in entry.details["reason"]
    assert apply_retention() == 0  # erased once; the erasure entry itself is no new activity
    settings.RETENTION_CLOSED_ACCOUNT_YEARS = 10
    assert list(retention.closed_accounts(years=10)) == []
