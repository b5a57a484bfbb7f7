"""The e-mail events webhook: verify the signature, validate, store, answer 202.

POST /dunning/email-events/ with a JSON body (see README, "E-mail bounces and complaints")
and `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with EMAIL_EVENTS_WEBHOOK_SECRET>`.
csrf_exempt: the provider has no CSRF token; the signature is the authentication. Without
the secret the endpoint answers 503; a missing or wrong signature answers 400 and changes
nothing; a signed body that is not a usable event (a NUL character, an `occurred_at` that
is no date) answers 400 naming each field and waits in the dead-letter list. A good event
is stored once under its key (its id, or a digest of the payload when it has none) and
answered 202; a worker applies it (`dunning.email_events.record`). The same key again
answers 200 "duplicate" and changes nothing, so a replayed complaint cannot opt a contact
out again after they opted back in.

It lives here, not in dunning, because storing and dead-lettering belong to intake.
"""

import hashlib
import hmac
import json

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from dunning import email_events

from ..intake import inbox
from ..intake.batches import RowRejected
from ..models import InboxItem, IntakeBatch


def is_signed(body: bytes, signature: str, secret: str) -> bool:
    """Constant-time check of the hex HMAC-SHA256 of the body ("sha256=" prefix optional)."""
    given = signature.strip().removeprefix("sha256=").strip().lower()
    if not given:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def read_event(body: bytes) -> dict:
    """The validated event; raises EventRejected naming every bad field."""
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise email_events.EventRejected({"body": [f"Not JSON: {exc}"]}) from exc
    unstorable = inbox.unstorable_fields(payload)
    if unstorable:
        raise email_events.EventRejected(unstorable)
    return email_events.parse_payload(payload)


@csrf_exempt
@require_POST
def email_events_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.EMAIL_EVENTS_WEBHOOK_SECRET
    if not secret:
        return JsonResponse(
            {"error": "not configured", "setting": "EMAIL_EVENTS_WEBHOOK_SECRET"}, status=503
        )
    if not is_signed(request.body, request.headers.get("X-Signature", ""), secret):
        return JsonResponse({"error": "invalid signature"}, status=400)
    try:
        event = read_event(request.body)
    except email_events.EventRejected as exc:
        inbox.dead_letter(
            source=IntakeBatch.Source.EMAIL_EVENTS,
            kind=IntakeBatch.Kind.CONTACTS,
            raw={"body": inbox.body_text(request.body)},
            errors=exc.errors,
        )
        return JsonResponse({"errors": inbox.storable(exc.errors)}, status=400)
    key = email_events.event_key(event)
    _item, is_new = inbox.accept(
        source=InboxItem.Source.EMAIL_EVENTS, key=key, payload=event["payload"]
    )
    if not is_new:
        return JsonResponse({"status": "duplicate", "id": key})
    return JsonResponse({"status": "queued", "id": key}, status=202)


def apply_stored(item: InboxItem) -> str:
    """The worker's side: apply a stored (validated) event; returns what happened."""
    try:
        event = email_events.parse_payload(item.payload)
    except email_events.EventRejected as exc:
        raise RowRejected(exc.errors) from exc
    result = email_events.record(event)
    return json.dumps(result, sort_keys=True)
