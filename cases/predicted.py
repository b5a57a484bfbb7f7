"""Reads of the nightly predictions for one customer: the customer page's panel and the
payment-plan suggestion (cases/plan_suggestions.py) share them.

A prediction (cases.InvoicePrediction) exists for each invoice open at the last nightly
scoring; one left on an invoice paid since is ignored (only outstanding invoices count).
"Predicted late" is a probability at or above settings.PREDICTED_LATE_THRESHOLD.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Customer, Invoice, InvoiceQuerySet

from .models import InvoicePrediction

ZERO = Value(Decimal("0.00"), output_field=DecimalField(max_digits=14, decimal_places=2))
TOP_REASONS = 3


def late_threshold() -> Decimal:
    return Decimal(str(settings.PREDICTED_LATE_THRESHOLD))


def open_invoice_predictions(customer: Customer, *, limit: int = 50) -> list[InvoicePrediction]:
    """The predictions of the customer's open invoices, most likely late first (ties: the
    earliest due), with their invoices; at most `limit`. One query."""
    return list(
        InvoicePrediction.objects.filter(
            customer=customer, invoice__status__in=InvoiceQuerySet.OPEN_STATUSES
        )
        .select_related("invoice")
        .order_by("-probability_late", "invoice__due_on", "invoice_id")[:limit]
    )


@dataclass(frozen=True)
class LateShare:
    """One currency of a customer's open balance, and how much of it is predicted late."""

    currency: str
    open_amount: Decimal
    late_amount: Decimal  # open balance of the invoices predicted late
    scored_amount: Decimal  # open balance of the invoices with a prediction

    @property
    def late_share(self) -> Decimal:
        """0 to 1, of the whole open balance (an invoice not scored counts as not late)."""
        if not self.open_amount:
            return Decimal("0")
        return self.late_amount / self.open_amount


def late_shares(customer: Customer, *, statuses=None) -> list[LateShare]:
    """Per currency (never added across currencies), the customer's open balance and the
    part of it predicted late, largest balance first. One aggregate query.
    `statuses`: the invoice statuses counted (default: every outstanding one)."""
    threshold = late_threshold()
    rows = (
        Invoice.objects.filter(
            customer=customer, status__in=statuses or InvoiceQuerySet.OPEN_STATUSES
        )
        .values("currency")
        .annotate(
            open_amount=Coalesce(Sum("open_balance"), ZERO),
            late_amount=Coalesce(
                Sum("open_balance", filter=Q(prediction__probability_late__gte=threshold)), ZERO
            ),
            scored_amount=Coalesce(Sum("open_balance", filter=Q(prediction__isnull=False)), ZERO),
        )
        .order_by("-open_amount", "currency")
    )
    return [LateShare(**row) for row in rows if row["open_amount"] > 0]
