"""Point-in-time features of invoices, for predicting late payment, in people's numbers.

`invoice_features(invoice_ids, as_of)` returns, per invoice, the figures the predictor
uses (predictions.frame.FEATURES), computed only from rows known at the end of the day
`as_of` (ARCHITECTURE rule 7, "Point in time"):

- ledger rows (invoices, payments, allocations) dated on or before `as_of`;
- case work and timeline rows (disputes, promises, plans, activities: replies and the
  debtor portal's visits and actions among them) stamped on or before `as_of`, in the
  current time zone.

An invoice counts as settled at `as_of` when the allocations known then (an allocation is
known from the later of its own date and its payment's receipt date) bring its open
balance to zero; its settlement day is the day that happened. Every figure here is an
int, a Decimal or None (nothing to compute it from); never a float. The numbers come from
predictions.frame, the same code that trains and scores the model, rounded for people.

Rows whose date the ledger does not keep (a cancellation, a credit limit) are read as
they are now.
"""

import datetime as dt
import math
from decimal import ROUND_HALF_UP, Decimal

from accounts.models import Invoice

from .frame import FEATURES, Ledger, day_number, feature_matrix

__all__ = ["FEATURES", "invoice_features", "to_people"]

COUNTS = {
    "settled_count",
    "recent_late_count",
    "last_days_late",
    "open_count",
    "overdue_count",
    "terms_days",
    "issue_month",
    "due_weekday",
    "days_to_due",
    "customer_age_days",
    "invoices_90_days",
    "disputes",
    "promises_kept",
    "promises_broken",
    "payment_plans",
    "bounces",
    "replies",
    "calls_reached",
    "portal_visits_90_days",
    "portal_actions_90_days",
    "days_since_engagement",
}
# Shares and ratios have 4 places; the rest 2.
SHARES = {"late_share", "late_share_10", "amount_ratio", "credit_use"}


def to_people(vector, names=None) -> dict:
    """One line of the feature matrix as {name: int | Decimal | None} (only `names`, when
    given: the nightly scoring converts only what the reasons read)."""
    answer = {}
    for name, value in zip(FEATURES, vector, strict=True):
        if names is not None and name not in names:
            continue
        if value is None or math.isnan(value):
            answer[name] = None
        elif name in COUNTS:
            answer[name] = round(float(value))
        else:
            places = "0.0001" if name in SHARES else "0.01"
            answer[name] = Decimal(repr(float(value))).quantize(Decimal(places), ROUND_HALF_UP)
    return answer


def invoice_features(invoice_ids, as_of: dt.date) -> dict[int, dict]:
    """{invoice id: {feature name: int | Decimal | None}} as known at the end of `as_of`.

    Invoices issued after `as_of` (unknown then) are left out of the answer."""
    targets = list(
        Invoice.objects.filter(pk__in=list(invoice_ids), issued_on__lte=as_of)
        .exclude(status=Invoice.Status.CANCELLED)
        .values_list("id", "customer_id")
    )
    if not targets:
        return {}
    ledger = Ledger.load({customer for _id, customer in targets})
    ids = [pk for pk, _customer in targets]
    rows = ledger.rows(ids)
    matrix = feature_matrix(ledger, rows, [day_number(as_of)] * len(ids))
    return {pk: to_people(line) for pk, line in zip(ids, matrix, strict=True)}
