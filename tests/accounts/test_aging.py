import datetime as dt

import pytest

from accounts.aging import BUCKETS, aging_bucket, days_past_due
from accounts.models import Invoice
from tests.factories import InvoiceFactory

AS_OF = dt.date(2026, 11, 23)

# (days past due, bucket): every edge of every bucket.
BOUNDARIES = [
    (-30, "current"),
    (-1, "current"),
    (0, "current"),
    (1, "1-30"),
    (30, "1-30"),
    (31, "31-60"),
    (60, "31-60"),
    (61, "61-90"),
    (90, "61-90"),
    (91, "91-120"),
    (120, "91-120"),
    (121, "120+"),
    (900, "120+"),
]


@pytest.mark.parametrize(("days", "bucket"), BOUNDARIES)
def test_bucket_in_python_at_each_boundary(days, bucket):
    due_on = AS_OF - dt.timedelta(days=days)
    assert days_past_due(due_on, AS_OF) == days
    assert aging_bucket(days) == bucket
    invoice = Invoice(due_on=due_on)
    assert invoice.days_past_due(AS_OF) == days
    assert invoice.aging_bucket(AS_OF) == bucket


@pytest.mark.django_db
def test_bucket_in_sql_matches_python_at_each_boundary():
    for days, _ in BOUNDARIES:
        due_on = AS_OF - dt.timedelta(days=days)
        InvoiceFactory(number=f"D{days}", due_on=due_on)
    rows = Invoice.objects.with_aging(AS_OF).values_list("number", "days_past_due", "aging_bucket")
    computed = {number: (days, bucket) for number, days, bucket in rows}
    assert computed == {f"D{days}": (days, bucket) for days, bucket in BOUNDARIES}


@pytest.mark.django_db
def test_bucket_filter_selects_exactly_its_invoices_and_only_outstanding_ones():
    for days, _ in BOUNDARIES:
        InvoiceFactory(number=f"D{days}", due_on=AS_OF - dt.timedelta(days=days))
    InvoiceFactory(
        number="PAID45",
        due_on=AS_OF - dt.timedelta(days=45),
        open_balance=0,
        status=Invoice.Status.PAID,
    )
    for bucket in BUCKETS:
        expected = {f"D{days}" for days, key in BOUNDARIES if key == bucket.key}
        found = set(Invoice.objects.in_bucket(bucket.key, AS_OF).values_list("number", flat=True))
        assert found == expected, bucket.key


def test_buckets_cover_every_day_once():
    for days in range(-10, 400):
        matching = [
            b
            for b in BUCKETS
            if (b.first_day is None or days >= b.first_day)
            and (b.last_day is None or days <= b.last_day)
        ]
        assert len(matching) == 1, days
        assert matching[0].key == aging_bucket(days)
