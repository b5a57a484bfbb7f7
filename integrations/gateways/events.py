"""Payment events: a provider's event stored once, its money booked or refunded in the ledger.

Each provider adapter (`stripe_events`, `generic`) translates its event into a
`MoneyMovement` (or, for a Stripe card dispute, a `DisputeNotice`); one pipeline
(`receive_event`) stores the event once, books or refunds the money through
`accounts.services` (disputes through `cases.disputes`), and accounts for the event in
an intake batch.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services, timeline
from accounts.models import Activity, Customer, Invoice, Payment
from accounts.money import ISO_4217
from cases import disputes
from cases.models import Dispute

from ..intake import batches
from ..intake.batches import RowRejected
from ..models import IntakeBatch, Rejection, WebhookEvent
from .minor_units import from_minor_units

# How far a signed webhook's timestamp may be from now, either way (Stripe's default too).
SIGNATURE_TOLERANCE_SECONDS = 300

STRIPE = "stripe"
GENERIC = "generic"
HEALTH_SOURCE = {STRIPE: "stripe", GENERIC: "payments-webhook"}
BATCH_SOURCE = {STRIPE: IntakeBatch.Source.STRIPE, GENERIC: IntakeBatch.Source.WEBHOOK}
PAYMENT_METHOD = {STRIPE: Payment.Method.CARD, GENERIC: Payment.Method.OTHER}

# A refund that arrives before its payment (generic webhook only) is stored with this note
# prefix and applied when the payment arrives.
DEFERRED = "Deferred:"


# --- what an event asks the ledger to do ---------------------------------------------


@dataclass(frozen=True)
class MoneyMovement:
    """One provider event, translated: a payment received, or (part of) it refunded.

    `payment_key` identifies the payment across all its events (Stripe: the PaymentIntent
    id) and becomes Payment.external_id, so two events about one payment book it once.
    For a refund, either `refunded_total` (cumulative, Stripe's charge.amount_refunded) or
    `refund_amount` (this event's refund alone, generic webhook) is set.
    """

    kind: str  # "payment" or "refund"
    payment_key: str
    currency: str
    received_on: dt.date
    amount: Decimal | None = None  # the payment's gross amount, when the event carries it
    invoice_number: str = ""
    customer_ref: str = ""
    reference: str = ""
    refunded_total: Decimal | None = None
    refund_amount: Decimal | None = None
    payer_name: str = ""  # who paid, as the provider names them (card holder, sender)
    payer_account: str = ""


@dataclass(frozen=True)
class DisputeNotice:
    """A cardholder disputed a card payment (Stripe charge.dispute.*): opened or closed.

    `payment_keys` are the PaymentIntent's and the charge's ids: whichever our Payment was
    booked under (its external_id). `reason` and `status` are Stripe's words
    (fraudulent, product_not_received, ...; needs_response, won, lost, ...).
    """

    kind: str  # "created" or "closed"
    dispute_id: str
    payment_keys: tuple[str, ...]
    currency: str
    amount: Decimal | None
    reason: str
    status: str
    invoice_number: str = ""
    customer_ref: str = ""


@dataclass(frozen=True)
class Ignored:
    """An event we store but that moves no money (another type, an unpaid session...)."""

    note: str


@dataclass
class EventOutcome:
    event_id: str
    status: str
    note: str = ""
    is_replay: bool = False
    batch_id: int | None = None
    payment_id: int | None = None

    def as_json(self) -> dict:
        return {
            "event": self.event_id,
            "status": "duplicate" if self.is_replay else self.status,
            "note": self.note,
            "batch": self.batch_id,
            "payment": self.payment_id,
        }


@dataclass
class _Result:
    status: str
    note: str
    counted_as: str  # "created", "updated", "unchanged" or "rejected"
    payment: Payment | None = None
    errors: dict | None = None


# --- the shared pipeline ---------------------------------------------------------------


def receive_event(
    *,
    provider: str,
    event_id: str,
    event_type: str,
    payload: dict,
    translate: Callable[[dict], "MoneyMovement | DisputeNotice | Ignored"],
    occurred_at: dt.datetime | None = None,
) -> EventOutcome:
    """Store a verified provider event once and apply it to the ledger.

    1. Open an intake batch (the event is its one row) and insert the WebhookEvent. The
       unique (provider, event_id) constraint makes a replay, or a concurrent second
       delivery, fail that insert: it is counted unchanged and nothing else happens.
    2. Translate the payload. An event that cannot be read (no amount, unknown currency)
       is stored as failed with a Rejection row, so finance sees it in the dead-letter list.
    3. Book or refund the money (`apply_movement`), serialised per payment by an advisory
       lock so that two events about one payment never both book it.
    4. Close the batch: read = created + updated + unchanged + rejected.
    All in one transaction, retried as a whole on transient database errors.
    """

    def operation() -> EventOutcome:
        with transaction.atomic():
            batch = batches.open_batch(
                source=BATCH_SOURCE[provider], kind=IntakeBatch.Kind.PAYMENTS
            )
            tally = batches.Tally()
            try:
                with transaction.atomic():
                    event = WebhookEvent.objects.create(
                        provider=provider,
                        event_id=event_id,
                        event_type=event_type,
                        payload=payload,
                        status=WebhookEvent.Status.PROCESSED,
                        occurred_at=occurred_at,
                    )
            except IntegrityError:
                tally.unchanged += 1
                batches.close_batch(batch, tally)
                return EventOutcome(
                    event_id=event_id,
                    status=WebhookEvent.Status.PROCESSED,
                    note=_("Already received; nothing changed."),
                    is_replay=True,
                    batch_id=batch.pk,
                )
            result = _apply(provider, event_id, event_type, payload, translate)
            if result.counted_as == "rejected":
                batches.reject(
                    tally,
                    batch,
                    row_number=1,
                    raw=_rejection_raw(event_id, event_type, payload),
                    errors=result.errors or {"event": [result.note]},
                    at_stake=event_at_stake(payload),
                )
            else:
                setattr(tally, result.counted_as, getattr(tally, result.counted_as) + 1)
            event.status, event.note = result.status, result.note
            event.save(update_fields=["status", "note"])
            batches.close_batch(batch, tally)
            return EventOutcome(
                event_id=event_id,
                status=result.status,
                note=result.note,
                batch_id=batch.pk,
                payment_id=result.payment.pk if result.payment else None,
            )

    return batches.with_retries(operation, source=HEALTH_SOURCE[provider])


def _apply(provider, event_id, event_type, payload, translate) -> _Result:
    try:
        movement = translate(payload)
    except RowRejected as exc:
        return _Result(WebhookEvent.Status.FAILED, str(exc), "rejected", errors=exc.errors)
    if isinstance(movement, Ignored):
        return _Result(WebhookEvent.Status.IGNORED, movement.note, "unchanged")
    try:
        with transaction.atomic():
            if isinstance(movement, DisputeNotice):
                return apply_dispute(provider=provider, notice=movement, event_id=event_id)
            return apply_movement(
                provider=provider, movement=movement, event_id=event_id, translate=translate
            )
    except ValidationError as exc:
        rejected = RowRejected.from_validation_error(exc, default_field="event")
        return _Result(
            WebhookEvent.Status.FAILED, str(rejected), "rejected", errors=rejected.errors
        )


def apply_movement(
    *,
    provider: str,
    movement: MoneyMovement,
    event_id: str,
    translate: Callable[[dict], MoneyMovement],
) -> _Result:
    """Book a payment (and allocate it) or refund one; idempotent per payment key.

    `translate` reads a stored payload of this provider again: a refund that arrived
    before its payment is applied from its stored event when the payment arrives.
    """
    _lock_payment_key(provider, movement.payment_key)
    existing = (
        Payment.objects.select_for_update()
        .filter(source=provider, external_id=movement.payment_key)
        .first()
    )
    if movement.kind == "payment":
        if existing is not None:
            return _Result(
                WebhookEvent.Status.PROCESSED,
                _("Payment %(key)s was already booked (payment #%(id)s); nothing changed.")
                % {"key": movement.payment_key, "id": existing.pk},
                "unchanged",
                existing,
            )
        payment, note = book_payment(provider=provider, movement=movement)
        note += _apply_deferred_refunds(provider, payment, translate)
        return _Result(WebhookEvent.Status.PROCESSED, note, "created", payment)

    notes = []
    counted_as = "updated"
    if existing is None:
        if movement.amount is None:
            return _defer_refund(movement)
        # Stripe sent the refund before the success event: the charge carries everything
        # the payment needs, so book it now; the success event will then find it booked.
        existing, note = book_payment(provider=provider, movement=movement)
        notes.append(note)
        counted_as = "created"
    notes.append(refund(payment=existing, movement=movement, event_id=event_id))
    return _Result(
        WebhookEvent.Status.PROCESSED, " ".join(n for n in notes if n), counted_as, existing
    )


def book_payment(*, provider: str, movement: MoneyMovement) -> tuple[Payment, str]:
    """Record the payment and apply it to its invoice; money that cannot be applied stays
    on the payment as unapplied cash, with the reason returned as a note."""
    invoice, why_not = find_invoice(movement.invoice_number, movement.customer_ref)
    customer = invoice.customer if invoice else find_customer(movement.customer_ref)
    payment = services.record_payment(
        amount=movement.amount,
        currency=movement.currency,
        received_on=movement.received_on,
        customer=customer,
        method=PAYMENT_METHOD[provider],
        remittance_reference=(movement.reference or movement.invoice_number)[:255],
        payer_name=movement.payer_name,
        payer_account=movement.payer_account,
        source=provider,
        external_id=movement.payment_key,
    )
    if invoice is None:
        return payment, _("Booked as unapplied cash: %(why)s") % {"why": why_not}
    try:
        with transaction.atomic():
            allocation = services.allocate(payment=payment, invoice=invoice, rule=provider)
    except ValidationError as exc:
        return payment, _("Booked as unapplied cash: %(why)s") % {"why": " ".join(exc.messages)}
    left = payment.amount - allocation.amount
    note = _("%(currency)s %(amount)s applied to %(n)s.") % {
        "currency": payment.currency,
        "amount": allocation.amount,
        "n": invoice.number,
    }
    if left > 0:
        note += " " + _("%(left)s left unapplied (more than the invoice owed).") % {"left": left}
    return payment, note


def refund(*, payment: Payment, movement: MoneyMovement, event_id: str) -> str:
    """Refund what the event says has been refunded and we have not refunded yet."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if movement.currency != payment.currency:
        raise ValidationError(
            {
                "currency": _("The refund is in %(r)s but payment #%(id)s is in %(p)s.")
                % {"r": movement.currency, "id": payment.pk, "p": payment.currency}
            }
        )
    if movement.refunded_total is not None:
        # Cumulative: a replay, or an older event arriving after a newer one, adds nothing.
        delta = movement.refunded_total - payment.refunded_amount
    else:
        delta = movement.refund_amount
    if delta <= 0:
        return _("Refunds of payment #%(id)s already total %(total)s; nothing changed.") % {
            "id": payment.pk,
            "total": payment.refunded_amount,
        }
    services.refund_payment(
        payment=payment,
        amount=delta,
        on=movement.received_on,
        reason=_("%(reference)s (event %(event)s)")
        % {"reference": movement.reference or movement.payment_key, "event": event_id},
    )
    return _("Refunded %(currency)s %(amount)s of payment #%(id)s.") % {
        "currency": payment.currency,
        "amount": delta,
        "id": payment.pk,
    }


def apply_dispute(*, provider: str, notice: DisputeNotice, event_id: str) -> _Result:
    """Open a dispute on the invoices the disputed payment paid, or record how it closed.

    1. Serialise the events of one dispute (an advisory lock, as for payments).
    2. Find the invoices: those of the dispute already opened for it; else those the
       payment booked under the PaymentIntent (or charge) was applied to; failing that,
       the invoice the dispute's or charge's metadata names.
       A dispute that names no invoice of ours is refused, so it waits in the dead-letter
       list for finance instead of vanishing.
    3. Created: `cases.disputes.open_dispute` with reason "other" and Stripe's reason
       in the description, keyed by source "stripe:<dispute id>" (idempotent): outstanding
       invoices become disputed and dunning holds for them; it writes the timeline.
    4. Closed: the outcome (won: the charge stands; lost: the money went back to the
       cardholder) goes on the invoice's timeline. The dispute itself stays for finance to
       resolve: a lost one needs its chargeback booked (a refund of the payment).
    """
    _lock_payment_key(provider, f"dispute:{notice.dispute_id}")
    payment = (
        Payment.objects.filter(source=provider, external_id__in=notice.payment_keys)
        .order_by("pk")
        .first()
    )
    source = f"{provider}:{notice.dispute_id}"
    opened = Dispute.objects.filter(source=source).first()
    invoices = _disputed_invoices(payment, notice, opened)
    if not invoices:
        raise ValidationError(
            {
                "charge": _(
                    "Stripe dispute %(id)s is about a payment (%(keys)s) applied to no invoice "
                    "of ours; open the dispute by hand."
                )
                % {"id": notice.dispute_id, "keys": ", ".join(notice.payment_keys)}
            }
        )
    customer = invoices[0].customer
    amount = f"{notice.currency} {notice.amount}" if notice.amount is not None else notice.currency
    if notice.kind == "created":
        if opened is not None:
            return _Result(
                WebhookEvent.Status.PROCESSED,
                _("Dispute #%(pk)s was already open for Stripe dispute %(id)s; nothing changed.")
                % {"pk": opened.pk, "id": notice.dispute_id},
                "unchanged",
                payment,
            )
        dispute = disputes.open_dispute(
            customer=customer,
            invoices=invoices,
            reason=Dispute.Reason.OTHER,
            description=_(
                "Card dispute %(id)s at Stripe over %(amount)s: %(reason)s (Stripe status "
                "%(status)s)."
            )
            % {
                "id": notice.dispute_id,
                "amount": amount,
                "reason": notice.reason or _("no reason given"),
                "status": notice.status or "?",
            },
            by=None,
            source=source,
        )
        return _Result(
            WebhookEvent.Status.PROCESSED,
            _("Dispute #%(pk)s opened on %(n)s.")
            % {"pk": dispute.pk, "n": ", ".join(i.number for i in invoices)},
            "created",
            payment,
        )
    outcomes = {
        "won": _("won: the charge stands"),
        "lost": _("lost: %(amount)s went back to the cardholder") % {"amount": amount},
    }
    outcome = outcomes.get(notice.status) or _("closed as %(status)s") % {
        "status": notice.status or "?"
    }
    text = _("Stripe card dispute %(id)s %(outcome)s.") % {
        "id": notice.dispute_id,
        "outcome": outcome,
    }
    if opened is not None and opened.is_active:
        text += " " + _("Dispute #%(pk)s waits for finance to resolve it.") % {"pk": opened.pk}
    timeline.add(
        customer=customer,
        invoice=invoices[0] if len(invoices) == 1 else None,
        kind=Activity.Kind.DISPUTE,
        text=text,
        details={
            "stripe_dispute": notice.dispute_id,
            "status": notice.status,
            "dispute": opened.pk if opened else None,
            "invoices": [i.pk for i in invoices],
            "payment": payment.pk if payment else None,
            "event": event_id,
        },
    )
    return _Result(WebhookEvent.Status.PROCESSED, text, "updated", payment)


def _disputed_invoices(
    payment: Payment | None, notice: DisputeNotice, opened: Dispute | None
) -> list[Invoice]:
    if opened is not None:
        return list(opened.invoices.select_related("customer").order_by("due_on", "pk"))
    if payment is not None:
        invoices = list(
            Invoice.objects.select_related("customer")
            .filter(allocations__payment=payment, allocations__amount__gt=0)
            .distinct()
            .order_by("due_on", "pk")
        )
        if invoices:
            return invoices
    invoice, _why_not = find_invoice(notice.invoice_number, notice.customer_ref)
    return [invoice] if invoice is not None else []


def _defer_refund(movement: MoneyMovement) -> _Result:
    note = (
        DEFERRED
        + " "
        + _(
            "refund of payment %(key)s, which has not been received yet; it is applied "
            "automatically when the payment arrives."
        )
        % {"key": movement.payment_key}
    )
    return _Result(WebhookEvent.Status.FAILED, note, "rejected", errors={"reference": [note]})


def _apply_deferred_refunds(
    provider: str, payment: Payment, translate: Callable[[dict], MoneyMovement]
) -> str:
    """Apply refunds that arrived before this payment (generic webhook), oldest first."""
    if provider != GENERIC:
        return ""
    waiting = WebhookEvent.objects.select_for_update().filter(
        provider=provider,
        status=WebhookEvent.Status.FAILED,
        note__startswith=DEFERRED,
        payload__reference=payment.external_id,
    )
    notes = []
    for event in waiting.order_by("received_at", "id"):
        try:
            with transaction.atomic():
                note = refund(
                    payment=payment,
                    movement=translate(event.payload),
                    event_id=event.event_id,
                )
        except (ValidationError, RowRejected) as exc:
            # The payment stays booked; this refund waits for finance instead.
            messages = exc.messages if isinstance(exc, ValidationError) else [str(exc)]
            event.note = f"{event.note}\n" + _(
                "Payment #%(id)s arrived but the refund could not be applied: %(why)s"
            ) % {"id": payment.pk, "why": " ".join(messages)}
            event.note = event.note.removeprefix(DEFERRED).lstrip()
            event.save(update_fields=["note"])
            continue
        event.status = WebhookEvent.Status.PROCESSED
        event.note = f"{event.note}\n" + _("Applied on arrival of the payment: %(note)s") % {
            "note": note
        }
        event.save(update_fields=["status", "note"])
        Rejection.objects.filter(
            batch__source=BATCH_SOURCE[provider],
            raw__event_id=event.event_id,
            status=Rejection.Status.OPEN,
        ).update(
            status=Rejection.Status.RETRIED,
            resolution=_("Applied when payment #%(id)s arrived.") % {"id": payment.pk},
            resolved_at=timezone.now(),
        )
        notes.append(note)
    return "".join(" " + n for n in notes)


def _lock_payment_key(provider: str, key: str) -> None:
    """Serialise all events about one payment until this transaction ends (PostgreSQL)."""
    if connection.vendor != "postgresql":
        return  # SQLite has one writer at a time anyway
    digest = hashlib.sha256(f"payment:{provider}:{key}".encode()).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)]
        )


def find_invoice(number: str, customer_ref: str = "") -> tuple[Invoice | None, str]:
    """The invoice our pay link named, or None and why not."""
    if not number:
        return None, _("the event names no invoice.")
    invoices = list(Invoice.objects.select_related("customer").filter(number=number)[:10])
    if customer_ref:
        # A merged customer's reference names the customer it was merged into.
        survivors = set(
            Customer.objects.filter(
                external_ref=customer_ref, merged_into__isnull=False
            ).values_list("merged_into_id", flat=True)
        )
        invoices = [
            i
            for i in invoices
            if i.customer.external_ref == customer_ref or i.customer_id in survivors
        ]
    if len(invoices) == 1:
        return invoices[0], ""
    if not invoices:
        if customer_ref and Invoice.objects.filter(number=number).exists():
            return None, _("invoice %(n)s does not belong to customer %(ref)s.") % {
                "n": number,
                "ref": customer_ref,
            }
        return None, _("no invoice %(n)s.") % {"n": number}
    return None, _("invoice number %(n)s is ambiguous (several customers).") % {"n": number}


def find_customer(customer_ref: str) -> Customer | None:
    if not customer_ref:
        return None
    named = Customer.objects.filter(external_ref=customer_ref).select_related("merged_into")[:3]
    # A merged customer's reference names the customer it was merged into.
    customers = {(c.merged_into or c).pk: c.merged_into or c for c in named}
    return next(iter(customers.values())) if len(customers) == 1 else None


def event_at_stake(payload) -> tuple[Decimal, str] | None:
    """The money a refused event carries, to rank it in the dead-letter list: the generic
    webhook's decimal amount, or a Stripe object's amount in minor units."""
    if not isinstance(payload, dict):
        return None
    if "amount" in payload and not isinstance(payload.get("data"), dict):
        return batches.amount_at_stake(payload.get("amount"), payload.get("currency"))
    obj = (payload.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        return None
    currency = str(obj.get("currency") or "").upper()
    for name in ("amount_received", "amount_total", "amount"):
        value = obj.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and currency in ISO_4217:
            try:
                return batches.amount_at_stake(from_minor_units(value, currency), currency)
            except (ValidationError, ArithmeticError):
                return None
    return None


def _rejection_raw(event_id: str, event_type: str, payload: dict) -> dict:
    return {
        "event_id": event_id,
        "type": event_type,
        "payload": json.dumps(payload, sort_keys=True, default=str)[:20000],
    }
