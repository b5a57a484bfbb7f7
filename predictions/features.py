"""Point-in-time features of invoices, for predicting late payment.

`invoice_features(invoice_ids, as_of)` returns, per invoice, numbers computed only from rows
known at the end of the day `as_of` (ARCHITECTURE rule 7, "Point in time"):

- ledger rows (invoices, payments, allocations) dated on or before `as_of`;
- case work and timeline rows (disputes, promises, plans, activities) stamped before the
  start of the day after `as_of` in the current time zone.

An invoice counts as settled at `as_of` when the allocations known then (an allocation is
known from the later of its own date and its payment's receipt date) bring its open
balance to zero; its settlement date is the latest of those dates. Every figure is an int,
a Decimal or None (nothing to compute it from); never a float.

Set-based: a fixed handful of queries for any number of invoices, whatever their history.
Rows whose date the ledger does not keep (a cancellation, a credit limit change) are read
as they are now; see /work/notes/Q-docs.md.
"""

import datetime as dt
import statistics
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.models import Activity, Allocation, Customer, Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay

ZERO = Decimal("0")
RECENT = 5  # how many of the last settled invoices make "recent"
REACHED = (
    Activity.CallOutcome.REACHED,
    Activity.CallOutcome.PROMISE_TO_PAY,
    Activity.CallOutcome.DISPUTE,
)

FEATURES = (
    "settled_count",
    "late_share",
    "mean_days_late",
    "recent_mean_days_late",
    "recent_late_count",
    "trend_days_late",
    "last_days_late",
    "open_count",
    "open_amount",
    "overdue_count",
    "overdue_amount",
    "amount_ratio",
    "terms_days",
    "issue_month",
    "due_weekday",
    "disputes",
    "promises_kept",
    "promises_broken",
    "payment_plans",
    "credit_use",
    "bounces",
    "replies",
    "calls_reached",
)


def _q(value, places="0.0001"):
    return None if value is None else Decimal(value).quantize(Decimal(places), ROUND_HALF_UP)


def _mean(values):
    return _q(Decimal(sum(values)) / len(values), "0.01") if values else None


def _end_of_day(as_of: dt.date) -> dt.datetime:
    """The first moment after `as_of` in the current time zone: timeline rows before it count."""
    return timezone.make_aware(dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time()))


def _per_customer(queryset, cutoff_field, cutoff, **counts):
    rows = (
        queryset.filter(**{f"{cutoff_field}__lt": cutoff}).values("customer_id").annotate(**counts)
    )
    return {row.pop("customer_id"): row for row in rows}


def invoice_features(invoice_ids, as_of: dt.date) -> dict[int, dict]:
    """{invoice id: {feature name: int | Decimal | None}} as known at the end of `as_of`.

    Invoices issued after `as_of` (unknown then) are left out of the answer."""
    targets = list(
        Invoice.objects.filter(pk__in=list(invoice_ids), issued_on__lte=as_of).values(
            "id", "customer_id", "currency", "amount", "issued_on", "due_on"
        )
    )
    if not targets:
        return {}
    customer_ids = {t["customer_id"] for t in targets}
    cutoff = _end_of_day(as_of)

    # 1. What allocations known at as_of paid on each of the customers' invoices, then the
    #    invoices themselves, streamed as tuples (a whole book fits in little memory).
    known = Allocation.objects.annotate(
        known_on=Greatest("allocated_on", "payment__received_on")
    ).filter(invoice__customer_id__in=customer_ids, known_on__lte=as_of)
    paid = {
        invoice_id: (amount, last)
        for invoice_id, amount, last in known.values_list("invoice_id")
        .annotate(paid=Sum("amount"), last=Max("known_on"))
        .iterator(chunk_size=10000)
    }
    history = (
        Invoice.objects.filter(customer_id__in=customer_ids, issued_on__lte=as_of)
        .exclude(status=Invoice.Status.CANCELLED)
        .values_list("id", "customer_id", "currency", "amount", "due_on")
        .iterator(chunk_size=10000)
    )
    settled = defaultdict(list)  # customer -> [(settled_on, due_on, id, currency, amount)]
    open_rows = defaultdict(list)  # customer -> [(currency, due_on, balance)]
    for invoice_id, cid, currency, amount, due_on in history:
        amount_paid, last = paid.get(invoice_id, (None, None))
        balance = amount - (amount_paid or ZERO)
        if balance <= ZERO and last:
            settled[cid].append((last, due_on, invoice_id, currency, amount))
        elif balance > ZERO:
            open_rows[cid].append((currency, due_on, balance))
    for rows in settled.values():
        rows.sort()

    # 2. Case work and the timeline, counted per customer.
    mine = {"customer_id__in": customer_ids}
    disputes = _per_customer(Dispute.objects.filter(**mine), "opened_at", cutoff, n=Count("id"))
    promises = _per_customer(
        PromiseToPay.objects.filter(**mine),
        "resolved_at",
        cutoff,
        kept=Count("id", filter=Q(status=PromiseToPay.Status.KEPT)),
        broken=Count("id", filter=Q(status=PromiseToPay.Status.BROKEN)),
    )
    plans = _per_customer(PaymentPlan.objects.filter(**mine), "created_at", cutoff, n=Count("id"))
    engagement = _per_customer(
        Activity.objects.filter(**mine),
        "occurred_at",
        cutoff,
        bounces=Count("id", filter=Q(kind=Activity.Kind.DELIVERY, details__event="bounce")),
        replies=Count("id", filter=Q(kind=Activity.Kind.REPLY)),
        calls_reached=Count("id", filter=Q(kind=Activity.Kind.CALL, outcome__in=REACHED)),
    )
    customers = {
        c["id"]: c
        for c in Customer.objects.filter(pk__in=customer_ids).values(
            "id", "currency", "credit_limit"
        )
    }

    answer = {}
    for t in targets:
        cid = t["customer_id"]
        # Settled strictly before this invoice's own settlement: it is open or unknown here,
        # and an invoice settled at as_of still excludes itself.
        past = [s for s in settled[cid] if s[2] != t["id"]]
        late = [max((s[0] - s[1]).days, 0) for s in past]
        recent, earlier = late[-RECENT:], late[:-RECENT]
        same_currency = [s[4] for s in past if s[3] == t["currency"]]
        median = statistics.median(same_currency) if same_currency else None
        opened = [o for o in open_rows[cid] if o[0] == t["currency"]]
        overdue = [o for o in opened if o[1] < as_of]
        customer = customers[cid]
        limit = customer["credit_limit"]
        exposure = sum((o[2] for o in open_rows[cid] if o[0] == customer["currency"]), ZERO)
        recent_mean, earlier_mean = _mean(recent), _mean(earlier)
        promise = promises.get(cid, {})
        touch = engagement.get(cid, {})
        answer[t["id"]] = {
            "settled_count": len(late),
            "late_share": _q(Decimal(sum(1 for d in late if d > 0)) / len(late)) if late else None,
            "mean_days_late": _mean(late),
            "recent_mean_days_late": recent_mean,
            "recent_late_count": sum(1 for d in recent if d > 0),
            "trend_days_late": (recent_mean - earlier_mean if earlier_mean is not None else None),
            "last_days_late": late[-1] if late else None,
            "open_count": len(opened),
            "open_amount": sum((o[2] for o in opened), ZERO),
            "overdue_count": len(overdue),
            "overdue_amount": sum((o[2] for o in overdue), ZERO),
            "amount_ratio": _q(t["amount"] / median) if median else None,
            "terms_days": (t["due_on"] - t["issued_on"]).days,
            "issue_month": t["issued_on"].month,
            "due_weekday": t["due_on"].isoweekday(),
            "disputes": disputes.get(cid, {}).get("n", 0),
            "promises_kept": promise.get("kept", 0),
            "promises_broken": promise.get("broken", 0),
            "payment_plans": plans.get(cid, {}).get("n", 0),
            "credit_use": _q(exposure / limit) if limit else None,
            "bounces": touch.get("bounces", 0),
            "replies": touch.get("replies", 0),
            "calls_reached": touch.get("calls_reached", 0),
        }
    return answer
