"""Retention: customers whose accounts have been closed for longer than N years are erased.

Closed means nothing has happened for those years: no open invoice, and since the cut-off
no invoice issued or due, no payment received, no timeline entry. RETENTION_CLOSED_ACCOUNT_YEARS
(0, the default: off) sets N; the nightly run calls `apply_retention` after the dunning run.
Each customer is erased in its own transaction by `erasure.erase_customer`, as the system.
"""

import datetime as dt

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Activity, Customer, Invoice, InvoiceQuerySet, Payment

from . import erasure


def closed_accounts(*, years: int, on: dt.date | None = None) -> QuerySet:
    """Customers not erased yet whose accounts have been closed for more than `years`."""
    on = on or timezone.localdate()
    cutoff_on = on - relativedelta(years=years)
    cutoff_at = dt.datetime.combine(cutoff_on, dt.time.min, tzinfo=timezone.get_current_timezone())
    open_or_recent_invoice = Invoice.objects.filter(customer=OuterRef("pk")).filter(
        Q(status__in=InvoiceQuerySet.OPEN_STATUSES)
        | Q(issued_on__gte=cutoff_on)
        | Q(due_on__gte=cutoff_on)
    )
    recent_payment = Payment.objects.filter(customer=OuterRef("pk"), received_on__gte=cutoff_on)
    recent_activity = Activity.objects.filter(customer=OuterRef("pk"), occurred_at__gte=cutoff_at)
    return Customer.objects.filter(erased_at__isnull=True, created_at__lt=cutoff_at).exclude(
        Exists(open_or_recent_invoice) | Exists(recent_payment) | Exists(recent_activity)
    )


def apply_retention(*, on: dt.date | None = None, years: int | None = None) -> list[int]:
    """Erase every customer closed for longer than the retention period; returns their ids.
    Off (returns []) while RETENTION_CLOSED_ACCOUNT_YEARS is 0."""
    years = settings.RETENTION_CLOSED_ACCOUNT_YEARS if years is None else years
    if years <= 0:
        return []
    reason = _("Retention: account closed for more than %(n)d years") % {"n": years}
    erased = []
    for customer_id in (
        closed_accounts(years=years, on=on).order_by("pk").values_list("pk", flat=True)
    ):
        erasure.erase_customer(customer=customer_id, reason=reason, by=None)
        erased.append(customer_id)
    return erased
