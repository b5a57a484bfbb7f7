"""E-mail events from the provider: bounces, complaints and deliveries, each applied once.

The webhook (integrations/email_events/webhooks.py) checks the signature, validates the
event here (`parse`), stores it, and a worker applies it here (`record`), once per event
key (the provider's id, or a digest of the payload). A hard bounce fails the notice it
answers and opts the address out of e-mail, a complaint ("this is spam") opts it out too,
a delivery marks the notice delivered. Every change goes on the customer's timeline.
"""

import datetime as dt
import json

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import timeline
from accounts.idempotency import payload_key
from accounts.models import Activity

from .models import EmailEvent, Notice
from .unsubscribe import opt_out_email


class EventRejected(Exception):
    """A signed request whose body is not a usable event; `errors` names each bad field."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


def _optional_string(payload: dict, field: str, limit: int, errors: dict) -> str:
    value = payload.get(field)
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > limit:
        errors[field] = [f"A string of at most {limit} characters."]
        return ""
    return value.strip()


# How far in the future an event's occurred_at may be (the sender's clock may run ahead).
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def parse(body: bytes) -> dict:
    """The event as plain values; raises EventRejected naming every bad field."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise EventRejected({"body": [f"Not JSON: {exc}"]}) from exc
    return parse_payload(payload)


def event_key(event: dict) -> str:
    """The event's id, or, when the provider sends none, a digest of the whole payload:
    the same event delivered twice (a retry, a replayed capture) has the same key."""
    return event["id"] or payload_key(event["payload"])


def parse_payload(payload) -> dict:
    """`parse` for a payload already read from JSON (a stored event, for the worker)."""
    if not isinstance(payload, dict):
        raise EventRejected({"body": ["Expected a JSON object."]})
    errors: dict[str, list[str]] = {}
    event = {
        "id": _optional_string(payload, "id", 255, errors),
        "message_id": _optional_string(payload, "message_id", 255, errors),
        "email": _optional_string(payload, "email", 254, errors),
        "reason": _optional_string(payload, "reason", 2000, errors)[:500],
    }
    if payload.get("type") not in EmailEvent.Kind.values:
        errors["type"] = [f"One of: {', '.join(EmailEvent.Kind.values)}."]
    event["type"] = payload.get("type")
    bounce_type = payload.get("bounce_type", "hard")
    if bounce_type not in ("hard", "soft"):
        errors["bounce_type"] = ["hard or soft (default hard)."]
    event["is_permanent"] = bounce_type != "soft"
    event["occurred_at"] = _occurred_at(payload.get("occurred_at"), errors)
    if not errors and not (event["message_id"] or event["email"]):
        errors["message_id"] = ["Give the message_id we sent, the email address, or both."]
    if errors:
        raise EventRejected(errors)
    event["payload"] = payload
    return event


def _occurred_at(value, errors: dict) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            parsed = timezone.make_aware(parsed, dt.UTC)
        # Beyond the clocks' drift an event cannot have happened yet; before 2000 it did
        # not happen here (and year 1 or 9999 with an offset overflows in UTC).
        if parsed is not None and not EARLIEST <= parsed <= timezone.now() + FUTURE_TOLERANCE:
            errors["occurred_at"] = ["A moment between 2000 and now (not in the future)."]
            return None
    except (ValueError, OverflowError):
        parsed = None  # well formed but not a real date, like 2026-13-45T10:00:00Z
    if parsed is None:
        errors["occurred_at"] = ["An ISO 8601 date and time, e.g. 2026-11-23T10:00:00Z."]
    return parsed


def _message_id_forms(message_id: str) -> list[str]:
    """Our Message-IDs are stored with angle brackets; providers report either form."""
    bare = message_id.strip().strip("<>").strip()
    return [f"<{bare}>", bare] if bare else []


@transaction.atomic
def record(event: dict) -> dict:
    """Apply one validated event, at most once per event key (`event_key`).

    1. Store the event. Its key is unique, so a retried or replayed event fails
       the insert inside a savepoint and comes back "duplicate" having changed nothing; of
       two identical events at once, the second waits on the unique index and then fails.
    2. Find the notice by our Message-ID and lock it, so a delivery and a bounce for the
       same message arriving together are applied one after the other.
    3. Move the notice (sent -> delivered; sent or delivered -> failed on a hard bounce;
       never back from failed), opt the address out on a hard bounce or a complaint, and
       write each change on the timeline.
    """
    at = event["occurred_at"] or timezone.now()
    try:
        with transaction.atomic():
            stored = EmailEvent.objects.create(
                event_id=event_key(event),
                kind=event["type"],
                is_permanent=event["is_permanent"],
                message_id=event["message_id"],
                email=event["email"],
                reason=event["reason"],
                payload=event["payload"],
            )
    except IntegrityError:
        return {"status": "duplicate", "id": event_key(event)}
    notice = None
    if event["message_id"]:
        notice = (
            Notice.objects.select_for_update(of=("self",))
            .filter(provider_message_id__in=_message_id_forms(event["message_id"]))
            .select_related("customer")
            .first()
        )
    email = event["email"] or (notice.recipient if notice else "")
    kind, reason = event["type"], event["reason"]
    if notice is not None:
        _apply_to_notice(notice, event, email=email, at=at)
    opted_out = []
    if kind == EmailEvent.Kind.COMPLAINT or (
        kind == EmailEvent.Kind.BOUNCE and event["is_permanent"]
    ):
        opted_out = opt_out_email(
            email=email,
            source=str(kind),
            details={"email_event": stored.pk, "reason": reason},
            at=at,
        )
    stored.notice, stored.opted_out = notice, len(opted_out)
    stored.save(update_fields=["notice", "opted_out"])
    return {
        "status": "recorded",
        "event": stored.pk,
        "notice": notice.pk if notice else None,
        "notice_status": notice.status if notice else None,
        "opted_out": len(opted_out),
    }


def _apply_to_notice(notice: Notice, event: dict, *, email: str, at: dt.datetime) -> None:
    kind, reason = event["type"], event["reason"]
    suffix = f": {reason}" if reason else ""
    if kind == EmailEvent.Kind.BOUNCE and not event["is_permanent"]:
        text = f"E-mail to {email} delayed (soft bounce){suffix}"
    elif kind == EmailEvent.Kind.BOUNCE:
        if notice.status not in (Notice.Status.SENT, Notice.Status.DELIVERED):
            return
        notice.status = Notice.Status.FAILED
        notice.reason = f"bounced: {reason or 'hard bounce'}"[:300]
        notice.save(update_fields=["status", "reason", "updated_at"])
        text = f"E-mail to {email} bounced{suffix}"
    else:
        if notice.status == Notice.Status.SENT:
            # A complaint too means the message reached the inbox: it was delivered.
            notice.status = Notice.Status.DELIVERED
            notice.delivered_at = notice.delivered_at or at
            notice.save(update_fields=["status", "delivered_at", "updated_at"])
        elif kind == EmailEvent.Kind.DELIVERED:
            return  # already delivered, or failed since: nothing new to record
        if kind == EmailEvent.Kind.COMPLAINT:
            text = f"{email} marked the e-mail as spam"
        else:
            text = f"E-mail delivered to {email}"
    timeline.add(
        customer=notice.customer,
        kind=Activity.Kind.DELIVERY,
        channel=Activity.Channel.EMAIL,
        text=text,
        details={
            "notice": notice.pk,
            "message_id": notice.provider_message_id,
            "event": str(kind),
            "reason": reason,
        },
        at=at,
    )
