"""What an agent does with a debtor's message: the promise or dispute it names, in one click.

The console offers both pre-filled from the message (`suggestion`); these functions call
the case services (cases.promises.record_promise, cases.disputes.open_dispute), which
check the agent's rights and the invoices, and then link what was made to the message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Activity, Invoice
from cases import disputes, promises
from cases.models import Dispute, PromiseToPay
from dunning.models import NoticeInvoice

from ..models import InboundEmail

# Dispute words (classify.DISPUTE_WORDS) that say which reason a dispute has.
REASON_WORDS = {
    Dispute.Reason.NOT_RECEIVED: {
        "never received",
        "not received",
        "nicht erhalten",
        "pas reçu",
        "jamais reçu",
        "no recibido",
        "no recibimos",
    },
    Dispute.Reason.QUALITY: {
        "damaged",
        "defective",
        "beschädigt",
        "mangelhaft",
        "endommagé",
        "dañado",
    },
    Dispute.Reason.PRICING: {
        "wrong amount",
        "overcharged",
        "incorrect",
        "falsch",
        "falsche",
        "falschen",
        "erroné",
        "erronée",
        "incorrecto",
        "incorrecta",
    },
    Dispute.Reason.QUANTITY: {"not ordered", "nicht bestellt", "pas commandé", "no pedido"},
}


@dataclass(frozen=True)
class Suggestion:
    invoices: list[Invoice]
    promised_on: dt.date | None
    amount: Decimal | None
    reason: str
    description: str


def suggestion(inbound: InboundEmail) -> Suggestion:
    """The promise and dispute the message suggests: its notice's invoices still open (else
    the customer's open invoices in the promised currency), the date and amount found, the
    dispute reason its words point to."""
    invoices: list[Invoice] = []
    if inbound.customer is None:
        return Suggestion([], None, None, Dispute.Reason.OTHER, "")
    open_invoices = Invoice.objects.filter(
        customer=inbound.customer, status__in=promises.OUTSTANDING
    ).order_by("due_on", "pk")
    if inbound.notice_id:
        invoices = list(
            open_invoices.filter(
                pk__in=NoticeInvoice.objects.filter(notice_id=inbound.notice_id).values(
                    "invoice_id"
                )
            )
        )
    if not invoices:
        currency = inbound.promised_currency or inbound.customer.currency
        invoices = list(open_invoices.filter(currency=currency)) or list(open_invoices)
    currencies = {invoice.currency for invoice in invoices}
    if len(currencies) > 1:  # a promise is in one currency: the customer's own, or the first
        keep = inbound.customer.currency if inbound.customer.currency in currencies else None
        keep = keep or invoices[0].currency
        invoices = [invoice for invoice in invoices if invoice.currency == keep]
    amount = inbound.promised_amount
    if amount is None and inbound.promised_on is not None:
        amount = sum((invoice.open_balance for invoice in invoices), Decimal("0")) or None
    reason = next(
        (
            str(reason)
            for reason, words in REASON_WORDS.items()
            if words.intersection(inbound.dispute_words)
        ),
        str(Dispute.Reason.OTHER),
    )
    return Suggestion(invoices, inbound.promised_on, amount, reason, inbound.text[:2000])


def _channel(inbound: InboundEmail) -> str:
    if inbound.source == InboundEmail.Source.PORTAL:
        return Activity.Channel.PORTAL
    return Activity.Channel.EMAIL


@transaction.atomic
def record_promise(
    *, inbound: InboundEmail, invoices, amount, promised_on: dt.date, by, today=None
) -> PromiseToPay:
    """Record the promise the message makes (cases.promises.record_promise) and link it."""
    if inbound.customer is None:
        raise ValidationError({"customer": [_("The message has no customer.")]})
    promise = promises.record_promise(
        customer=inbound.customer,
        invoices=invoices,
        amount=amount,
        promised_on=promised_on,
        channel=_channel(inbound),
        note=_("From the message of %(day)s: %(subject)s")
        % {
            "day": timezone.localdate(inbound.received_at).isoformat(),
            "subject": inbound.subject or inbound.text[:80],
        },
        by=by,
        today=today,
    )
    InboundEmail.objects.filter(pk=inbound.pk).update(promise=promise)
    inbound.promise = promise
    return promise


@transaction.atomic
def open_dispute(*, inbound: InboundEmail, invoices, reason: str, description: str, by) -> Dispute:
    """Open the dispute the message raises (cases.disputes.open_dispute) and link it; once
    per message (its source names the message)."""
    if inbound.customer is None:
        raise ValidationError({"customer": [_("The message has no customer.")]})
    dispute = disputes.open_dispute(
        customer=inbound.customer,
        invoices=invoices,
        reason=reason,
        description=description,
        by=by,
        source=f"inbound:{inbound.pk}",
    )
    InboundEmail.objects.filter(pk=inbound.pk).update(dispute=dispute)
    inbound.dispute = dispute
    return dispute
