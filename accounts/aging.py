"""Days past due and aging buckets, computed the same way in Python and in SQL."""

import datetime as dt
from dataclasses import dataclass

from django.db import models
from django.db.models import Case, Q, Value, When


@dataclass(frozen=True)
class Bucket:
    key: str
    label: str
    first_day: int | None  # days past due, inclusive; None = not yet due
    last_day: int | None  # inclusive; None = open-ended


# Day 0 (the due date itself) and earlier is current; day 1 is the first late day.
BUCKETS = (
    Bucket("current", "Current", None, 0),
    Bucket("1-30", "1-30", 1, 30),
    Bucket("31-60", "31-60", 31, 60),
    Bucket("61-90", "61-90", 61, 90),
    Bucket("91-120", "91-120", 91, 120),
    Bucket("120+", "Over 120", 121, None),
)
BUCKET_CHOICES = [(bucket.key, bucket.label) for bucket in BUCKETS]
BUCKETS_BY_KEY = {bucket.key: bucket for bucket in BUCKETS}


def days_past_due(due_on: dt.date, as_of: dt.date) -> int:
    return (as_of - due_on).days


def aging_bucket(days: int) -> str:
    for bucket in BUCKETS:
        if bucket.last_day is None or days <= bucket.last_day:
            return bucket.key
    raise AssertionError("the last bucket is open-ended")


def due_on_range(bucket_key: str, as_of: dt.date) -> Q:
    """The bucket as a condition on due_on, so a filter can use the due_on index."""
    bucket = BUCKETS_BY_KEY[bucket_key]
    condition = Q()
    if bucket.first_day is not None:
        condition &= Q(due_on__lte=as_of - dt.timedelta(days=bucket.first_day))
    if bucket.last_day is not None:
        condition &= Q(due_on__gte=as_of - dt.timedelta(days=bucket.last_day))
    return condition


def bucket_expression(as_of: dt.date) -> Case:
    """The aging bucket of each row's due_on as of a date, as a SQL CASE."""
    whens = [
        When(due_on_range(bucket.key, as_of), then=Value(bucket.key))
        for bucket in BUCKETS
        if bucket.last_day is not None
    ]
    return Case(*whens, default=Value(BUCKETS[-1].key), output_field=models.CharField())


class DaysBetween(models.Func):
    """Whole days from a date column to a fixed date, as an integer, on SQLite and PostgreSQL."""

    output_field = models.IntegerField()

    def __init__(self, start, end: dt.date, **extra):
        super().__init__(start, Value(end, output_field=models.DateField()), **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        # date - date is an integer number of days in PostgreSQL.
        start, end = self.source_expressions
        end_sql, end_params = compiler.compile(end)
        start_sql, start_params = compiler.compile(start)
        return f"({end_sql}::date - {start_sql})", (*end_params, *start_params)

    def as_sqlite(self, compiler, connection, **extra_context):
        start, end = self.source_expressions
        end_sql, end_params = compiler.compile(end)
        start_sql, start_params = compiler.compile(start)
        sql = f"CAST(julianday({end_sql}) - julianday({start_sql}) AS INTEGER)"
        return sql, (*end_params, *start_params)
