"""Stripe's events translated for the payment pipeline: payments, refunds, card disputes."""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.money import ISO_4217

from ..intake import inbox
from ..intake.batches import RowRejected
from ..models import InboxItem
from .events import (
    SIGNATURE_TOLERANCE_SECONDS,
    STRIPE,
    DisputeNotice,
    EventOutcome,
    Ignored,
    MoneyMovement,
    receive_event,
)
from .minor_units import from_minor_units

STRIPE_SUCCESS_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
)
STRIPE_DISPUTE_EVENTS = {"charge.dispute.created": "created", "charge.dispute.closed": "closed"}


def check_event(event) -> dict[str, list[str]]:
    """What keeps a signed body from being stored as a Stripe event, by field (empty: none).

    Checked in the request, before the event is stored: an event id and a type, nothing
    PostgreSQL cannot store (NUL, lone surrogates), and `created` times (the event's and
    its object's) that are Unix seconds no later than five minutes from now.
    """
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"].strip()
        and len(event["id"]) <= 255
        and isinstance(event.get("type"), str)
    ):
        return {"event": [_("Signed, but not a Stripe event with an id and a type.")]}
    errors = inbox.unstorable_fields(event)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    times = {"created": event.get("created")}
    if isinstance(obj, dict):
        times["data.object.created"] = obj.get("created")
    for name, value in times.items():
        if value is not None and _unix_problem(value):
            errors[name] = [_unix_problem(value)]
    return errors


def _unix_problem(value) -> str:
    latest = timezone.now().timestamp() + SIGNATURE_TOLERANCE_SECONDS
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= latest:
        return _("%(value)r is not a time in Unix seconds up to now.") % {"value": value}
    return ""


def apply_stored(item: InboxItem) -> str:
    """The worker's side: apply a stored (checked) event; returns what happened."""
    outcome = receive_stripe_event(item.payload)
    status = "duplicate" if outcome.is_replay else outcome.status
    return f"{status}: {outcome.note}".strip()


def receive_stripe_event(event: dict) -> EventOutcome:
    """Apply a Stripe event whose signature the view has verified."""
    created = event.get("created")
    return receive_event(
        provider=STRIPE,
        event_id=event["id"],
        event_type=event["type"],
        payload=event,
        translate=translate_stripe_event,
        occurred_at=_from_unix(created) if isinstance(created, int) else None,
    )


def translate_stripe_event(event: dict) -> MoneyMovement | DisputeNotice | Ignored:
    event_type = event.get("type", "")
    if event_type not in (*STRIPE_SUCCESS_EVENTS, "charge.refunded", *STRIPE_DISPUTE_EVENTS):
        return Ignored(_("Event type %(type)s moves no money here.") % {"type": event_type})
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict):
        raise RowRejected({"data.object": [_("The event carries no object.")]})
    if event_type in STRIPE_DISPUTE_EVENTS:
        return _translate_stripe_dispute(event_type, obj)
    errors: dict[str, list[str]] = {}
    metadata = obj.get("metadata") or {}
    currency = _stripe_currency(obj.get("currency"), errors)
    on_date = timezone.localdate(_from_unix(obj.get("created") or event.get("created")))
    common = {
        "currency": currency,
        "received_on": on_date,
        "invoice_number": str(metadata.get("invoice_number") or ""),
        "customer_ref": str(metadata.get("customer_ref") or ""),
    }
    if event_type.startswith("checkout.session."):
        if obj.get("mode", "payment") != "payment":
            return Ignored(_("Checkout session in %(m)s mode.") % {"m": obj.get("mode")})
        if obj.get("payment_status") != "paid":
            return Ignored(
                _("Checkout session not paid yet (%(s)s); booked when the payment succeeds.")
                % {"s": obj.get("payment_status")}
            )
        key = _stripe_id(obj.get("payment_intent"))
        if not key:
            errors["payment_intent"] = [_("The session names no payment intent.")]
        amount = _stripe_amount(obj, "amount_total", currency, errors)
        kind, refunded_total = "payment", None
    elif event_type == "payment_intent.succeeded":
        key = _stripe_id(obj.get("id"))
        field = "amount_received" if obj.get("amount_received") is not None else "amount"
        amount = _stripe_amount(obj, field, currency, errors)
        kind, refunded_total = "payment", None
    else:  # charge.refunded
        key = _stripe_id(obj.get("payment_intent")) or _stripe_id(obj.get("id"))
        amount = _stripe_amount(obj, "amount", currency, errors)
        refunded_total = _stripe_amount(obj, "amount_refunded", currency, errors)
        kind = "refund"
        common["received_on"] = timezone.localdate(_from_unix(event.get("created")))
    if errors:
        raise RowRejected(errors)
    if kind == "payment" and amount == 0:
        return Ignored(_("A payment of zero; nothing to book."))
    return MoneyMovement(
        kind=kind,
        payment_key=key,
        amount=amount,
        refunded_total=refunded_total,
        reference=key,
        payer_name=_stripe_payer_name(obj),
        **common,
    )


def _stripe_payer_name(obj: dict) -> str:
    """Who paid, as Stripe names them: the checkout's customer details, the charge's
    billing details (a charge, or a PaymentIntent with its latest charge expanded), or
    the shipping name; empty when the event carries none."""
    charges = obj.get("charges")
    charge_list = charges.get("data") if isinstance(charges, dict) else None
    candidates = [
        obj.get("customer_details"),
        obj.get("billing_details"),
        (obj.get("latest_charge") or {}) if isinstance(obj.get("latest_charge"), dict) else {},
        charge_list[0] if isinstance(charge_list, list) and charge_list else {},
        obj.get("shipping"),
    ]
    for candidate in candidates:
        if not isinstance(candidate, dict):
            continue
        details = candidate.get("billing_details", candidate)
        name = details.get("name") if isinstance(details, dict) else None
        if isinstance(name, str) and name.strip():
            return " ".join(name.split())[:200]
    return ""


def _translate_stripe_dispute(event_type: str, obj: dict) -> DisputeNotice:
    """A Stripe Dispute object: its id, the charge and PaymentIntent it disputes, the
    amount, Stripe's reason and status; the invoice from metadata when the charge is
    expanded (our pay links put it on the PaymentIntent and so on its charge)."""
    errors: dict[str, list[str]] = {}
    dispute_id = _stripe_id(obj.get("id"))
    if not dispute_id:
        errors["id"] = [_("The dispute has no id.")]
    charge = obj.get("charge")
    keys = tuple(k for k in (_stripe_id(obj.get("payment_intent")), _stripe_id(charge)) if k)
    if not keys:
        errors["charge"] = [_("The dispute names neither a charge nor a payment intent.")]
    currency = _stripe_currency(obj.get("currency"), errors)
    amount = _stripe_amount(obj, "amount", currency, errors) if "amount" in obj else None
    if errors:
        raise RowRejected(errors)
    metadata = {
        **_as_dict(charge.get("metadata") if isinstance(charge, dict) else None),
        **_as_dict(obj.get("metadata")),
    }
    return DisputeNotice(
        kind=STRIPE_DISPUTE_EVENTS[event_type],
        dispute_id=dispute_id,
        payment_keys=keys,
        currency=currency,
        amount=amount,
        reason=str(obj.get("reason") or "")[:100],
        status=str(obj.get("status") or "")[:40],
        invoice_number=str(metadata.get("invoice_number") or ""),
        customer_ref=str(metadata.get("customer_ref") or ""),
    )


def _as_dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _stripe_currency(value, errors) -> str:
    currency = value.upper() if isinstance(value, str) else ""
    if currency not in ISO_4217:
        errors["currency"] = [_("%(value)r is not a currency.") % {"value": value}]
    return currency


def _stripe_amount(obj: dict, field: str, currency: str, errors) -> Decimal | None:
    value = obj.get(field)
    if value is None:
        errors[field] = [_("Missing.")]
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        errors[field] = [_("%(value)r is not an amount in minor units.") % {"value": value}]
        return None
    if not currency:
        return None
    try:
        return from_minor_units(value, currency)
    except ValidationError as exc:
        errors[field] = exc.messages
        return None


def _stripe_id(value) -> str:
    if isinstance(value, dict):  # an expanded object
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _from_unix(value) -> dt.datetime:
    if isinstance(value, int) and not isinstance(value, bool) and not _unix_problem(value):
        return dt.datetime.fromtimestamp(value, tz=dt.UTC)
    return timezone.now()
