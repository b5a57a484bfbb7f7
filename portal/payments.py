"""Paying from the portal: a Stripe Checkout session, or bank-transfer instructions.

Either way the intention goes on the timeline (kind portal) with the invoices, the amount
and, for part of the balance, the debtor's reason; a partial payment also raises a task for
the customer's agent, who may want to call about the rest.
"""

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

import stripe
from django.urls import reverse
from django.utils import timezone

from accounts import timeline
from accounts.models import Activity, Invoice
from accounts.money import format_amount
from accounts.statement_links import transfer_reference
from cases.case_tasks import create_task
from cases.models import Task
from integrations.gateways.paylinks import create_checkout_session

from . import statement

logger = logging.getLogger(__name__)


@dataclass
class Transfer:
    invoices: list[Invoice]
    currency: str
    amount: Decimal
    amount_display: str
    reference: str
    bank: dict
    partial: bool


def _record(request, invoices: list[Invoice], data: dict, *, method: str) -> None:
    customer, contact = request.customer, request.contact
    numbers = ", ".join(invoice.number for invoice in invoices)
    amount = f"{data['currency']} {data['amount']}"
    text = f"{contact.name} will pay {amount} by {method} for {numbers}"
    if data["partial"]:
        text += f" (part of {data['currency']} {data['total']}: {data['reason']})"
    timeline.add(
        Activity.Kind.PORTAL,
        customer=customer,
        invoice=invoices[0] if len(invoices) == 1 else None,
        channel=Activity.Channel.PORTAL,
        text=text,
        details={
            "action": "pay",
            "method": method,
            "contact_id": contact.pk,
            "invoice_ids": [invoice.pk for invoice in invoices],
            "currency": data["currency"],
            "amount": str(data["amount"]),
            "total": str(data["total"]),
            "partial": data["partial"],
            "reason": data.get("reason", ""),
            "note": data.get("note", ""),
        },
    )
    if data["partial"]:
        create_task(
            customer=customer,
            kind=Task.Kind.REVIEW,
            title=f"Partial payment announced in the portal: {amount} of "
            f"{data['currency']} {data['total']} ({data['reason']})",
            due_at=timezone.localdate() + dt.timedelta(days=1),
            source=f"portal-partial:{customer.pk}:{'-'.join(str(i.pk) for i in invoices)}",
            details={"note": data.get("note", ""), "invoice_ids": [i.pk for i in invoices]},
        )


def bank_transfer(request, invoices: list[Invoice], data: dict) -> Transfer:
    _record(request, invoices, data, method="bank transfer")
    return Transfer(
        invoices=invoices,
        currency=data["currency"],
        amount=data["amount"],
        amount_display=format_amount(data["amount"], data["currency"]),
        reference=transfer_reference(request.customer, invoices),
        bank=statement.bank_details(),
        partial=data["partial"],
    )


def checkout(request, invoice: Invoice, data: dict) -> str:
    """A Stripe Checkout URL for this invoice and amount ('' when Stripe refuses)."""
    home = request.build_absolute_uri(reverse("portal:home"))
    try:
        url = create_checkout_session(
            invoice,
            amount=data["amount"],
            idempotency_key=f"portal-{invoice.pk}-{data['amount']}-{timezone.localdate()}",
            success_url=home + "?paid=1",
            cancel_url=request.build_absolute_uri(reverse("portal:pay")),
        )
    except stripe.StripeError:
        logger.exception("portal: no checkout session for invoice %s", invoice.pk)
        return ""
    _record(request, [invoice], data, method="card")
    return url
