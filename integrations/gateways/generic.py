"""The generic signed payment webhook: any processor that signs JSON with our shared secret."""

import datetime as dt
import hashlib
import hmac
import json
import re

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.money import ISO_4217, to_amount

from ..intake import inbox
from ..intake.batches import RowRejected
from ..models import InboxItem
from .events import (
    GENERIC,
    SIGNATURE_TOLERANCE_SECONDS,
    EventOutcome,
    MoneyMovement,
    receive_event,
)

GENERIC_EVENT_TYPES = {"payment.succeeded": "payment", "payment.refunded": "refund"}
AMOUNT_PATTERN = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
DATE_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def verify_generic_signature(
    *, body: bytes, signature: str, timestamp: str, secret: str, now: float | None = None
) -> bool:
    """True if `X-Signature` is sha256=HMAC(secret, f"{timestamp}.{body}") and the timestamp
    is within five minutes of now (either way), so an old capture cannot be replayed."""
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return False
    now = timezone.now().timestamp() if now is None else now
    if abs(now - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    given = signature.removeprefix("sha256=").strip().lower()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def parse_generic_body(body: bytes) -> dict:
    """The JSON body, validated; raises RowRejected naming each bad field."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RowRejected({"body": [_("Not JSON: %(error)s") % {"error": exc}]}) from exc
    if not isinstance(payload, dict):
        raise RowRejected({"body": [_("Expected a JSON object.")]})
    unstorable = inbox.unstorable_fields(payload)
    if unstorable:
        raise RowRejected(unstorable)
    event_id = payload.get("id")
    errors = {}
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 255:
        errors["id"] = [_("Required: the event's unique id (a string).")]
    if payload.get("type") not in GENERIC_EVENT_TYPES:
        errors["type"] = [
            _("Must be one of %(types)s.") % {"types": ", ".join(GENERIC_EVENT_TYPES)}
        ]
    if errors:
        raise RowRejected(errors)
    parse_generic_event(payload)  # raises for bad fields before anything is stored
    return payload


def parse_generic_event(payload: dict) -> MoneyMovement:
    errors: dict[str, list[str]] = {}
    kind = GENERIC_EVENT_TYPES.get(payload.get("type"), "")
    raw_amount = payload.get("amount")
    amount = None
    if not isinstance(raw_amount, str):
        errors["amount"] = [_('Send the amount as a decimal string, e.g. "123.45".')]
    elif not AMOUNT_PATTERN.fullmatch(raw_amount) or to_amount(raw_amount) <= 0:
        errors["amount"] = [
            _("%(value)r is not a positive amount with at most two decimals.")
            % {"value": raw_amount}
        ]
    else:
        amount = to_amount(raw_amount)
    currency = payload.get("currency")
    if not isinstance(currency, str) or currency.upper() not in ISO_4217:
        errors["currency"] = [_("%(value)r is not an ISO 4217 currency.") % {"value": currency}]
        currency = ""
    received_on = timezone.localdate()
    raw_on = payload.get("received_on")
    if raw_on not in (None, ""):
        try:
            if not isinstance(raw_on, str) or not DATE_PATTERN.fullmatch(raw_on):
                raise ValueError(raw_on)
            received_on = dt.date.fromisoformat(raw_on)
        except ValueError:
            errors["received_on"] = [
                _("%(value)r is not a date; use YYYY-MM-DD.") % {"value": raw_on}
            ]
    text = {}
    for field in ("invoice_number", "customer_ref", "reference"):
        value = payload.get(field) or ""
        if not isinstance(value, str) or len(value) > 100:
            errors[field] = [_("A string of at most 100 characters.")]
            value = ""
        text[field] = value.strip()
    for field, limit in (("payer_name", 200), ("payer_account", 64)):
        value = payload.get(field) or ""
        if not isinstance(value, str) or len(value) > limit:
            errors[field] = [_("A string of at most %(n)d characters.") % {"n": limit}]
            value = ""
        text[field] = " ".join(value.split())
    if kind == "refund" and not text["reference"]:
        errors["reference"] = [_("A refund must name the payment's reference.")]
    if errors:
        raise RowRejected(errors)
    return MoneyMovement(
        kind=kind,
        payment_key=text["reference"] or str(payload["id"]),
        currency=currency.upper(),
        received_on=received_on,
        amount=amount if kind == "payment" else None,
        refund_amount=amount if kind == "refund" else None,
        **text,
    )


def apply_stored(item: InboxItem) -> str:
    """The worker's side: apply a stored (parsed) event; returns what happened."""
    outcome = receive_generic_event(item.payload)
    status = "duplicate" if outcome.is_replay else outcome.status
    return f"{status}: {outcome.note}".strip()


def receive_generic_event(payload: dict) -> EventOutcome:
    """Apply a generic webhook event already verified and parsed by `parse_generic_body`."""
    return receive_event(
        provider=GENERIC,
        event_id=payload["id"],
        event_type=payload["type"],
        payload=payload,
        translate=parse_generic_event,
    )
