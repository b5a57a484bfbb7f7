"""Aging-bucket alerts: tell the agent when an account enters 31-60, 61-90 or over 90 days
past due, and a week before it crosses into the next of those buckets."""

import datetime as dt

from django.conf import settings
from django.db.models import Min, Q
from django.utils.translation import gettext as _

from accounts.models import Customer, Invoice

from . import case_tasks
from .models import Task

# The first day past due of each bucket an agent is told about (31-60, 61-90, over 90).
ALERT_DAYS = (31, 61, 91)
WARN_DAYS_AHEAD = 7


def _label(first_day: int) -> str:
    return _("over 90 days") if first_day == 91 else f"{first_day}-{first_day + 29}"


def raise_aging_alerts(*, on: dt.date) -> int:
    """Raise the day's alerts as tasks (kind alert) for each customer's agent; returns how many.

    1. One aggregate over outstanding invoices gives each customer's oldest due date, kept
       only where the account entered a bucket within the catch-up window (a missed night
       is caught up) or will cross into one within WARN_DAYS_AHEAD days.
    2. Each alert's source names the customer, the bucket, the kind of alert and the oldest
       due date, so it is raised once: sources already raised, open or done, are skipped.
    3. create_tasks inserts them with their timeline entries in one go.
    """
    window = settings.DUNNING_CATCH_UP_DAYS
    ranges = Q()
    for first_day in ALERT_DAYS:
        ranges |= Q(
            oldest__range=(
                on - dt.timedelta(first_day + window),
                on - dt.timedelta(first_day - WARN_DAYS_AHEAD),
            )
        )
    rows = (
        Invoice.objects.outstanding()
        .values("customer_id")
        .annotate(oldest=Min("due_on"))
        .filter(ranges)
        .values_list("customer_id", "oldest")
    )
    wanted = {}
    for customer_id, oldest in rows:
        days = (on - oldest).days
        for first_day in ALERT_DAYS:
            if first_day <= days <= first_day + window:
                kind, text = "entered", _("%(name)s entered %(bucket)s past due")
            elif first_day - WARN_DAYS_AHEAD <= days < first_day:
                kind, text = "crossing", _("%(name)s crosses into %(bucket)s in %(n)d day(s)")
            else:
                continue
            source = f"aging:{customer_id}:{first_day}:{kind}:{oldest.isoformat()}"
            wanted[source] = (customer_id, text, first_day, first_day - days, oldest)
    if not wanted:
        return 0
    raised = set(Task.objects.filter(source__in=wanted).values_list("source", flat=True))
    wanted = {source: row for source, row in wanted.items() if source not in raised}
    customers = Customer.objects.select_related("assigned_agent").in_bulk(
        {row[0] for row in wanted.values()}
    )
    tasks = []
    for source, (customer_id, text, first_day, days_left, oldest) in wanted.items():
        customer = customers[customer_id]
        tasks.append(
            Task(
                customer=customer,
                kind=Task.Kind.ALERT,
                title=text % {"name": customer.name, "bucket": _label(first_day), "n": days_left},
                due_at=case_tasks.due_at_end_of(on),
                source=source,
                details={"bucket_first_day": first_day, "oldest_due_on": oldest.isoformat()},
            )
        )
    return len(case_tasks.create_tasks(tasks))
