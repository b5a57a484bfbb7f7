"""Payment-gateway webhook endpoints: verify the sender, validate, store, answer 202.

Both endpoints are csrf_exempt (the provider has no CSRF token; the signature is the
authentication) and POST-only. Without their secret configured they answer 503 and touch
nothing. A failed signature, or a signature timestamped more than five minutes from now
either way, changes nothing: Stripe's gets 400 (what Stripe documents), the generic one
401 (the sender failed to authenticate). A signed payload that cannot be stored or read
(a NUL character, a date that does not exist, no event id) answers 400 naming the field
and waits in the dead-letter list. A good event is stored once by its id (one INSERT,
`intake.inbox.accept`) and answered 202; a Celery worker applies it to the ledger
(`integrations.tasks`). The same event id again answers 200 "duplicate" and changes nothing.
"""

import json

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..intake import inbox
from ..intake.batches import RowRejected
from ..models import InboxItem, IntakeBatch
from . import events, generic, stripe_events


def _not_configured(setting: str) -> JsonResponse:
    return JsonResponse({"error": "not configured", "setting": setting}, status=503)


def _stored(item: InboxItem, is_new: bool) -> JsonResponse:
    if not is_new:
        return JsonResponse({"event": item.key, "status": "duplicate"}, status=200)
    return JsonResponse({"event": item.key, "status": "queued"}, status=202)


def _refused(source: str, body: bytes, errors: dict) -> JsonResponse:
    inbox.dead_letter(
        source=source,
        kind=IntakeBatch.Kind.PAYMENTS,
        raw={"body": inbox.body_text(body)},
        errors=errors,
    )
    return JsonResponse({"errors": inbox.storable(errors)}, status=400)


def signature_timestamp(header: str) -> int | None:
    """The `t=` of a Stripe-Signature header (already verified), or None."""
    for part in header.split(","):
        name, _sep, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            return int(value)
    return None


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _not_configured("STRIPE_WEBHOOK_SECRET")
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return JsonResponse({"error": "invalid signature"}, status=400)
    header = request.headers.get("Stripe-Signature", "")
    try:
        # Checks the signature, and that the timestamp is not older than the tolerance...
        stripe.WebhookSignature.verify_header(
            body, header, secret, tolerance=events.SIGNATURE_TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError:
        return JsonResponse({"error": "invalid signature"}, status=400)
    # ...but not that it is not in the future: a capture signed ahead of time (or by a
    # sender whose clock runs fast) would otherwise replay for as long as it likes.
    timestamp = signature_timestamp(header) or 0
    if timestamp > timezone.now().timestamp() + events.SIGNATURE_TOLERANCE_SECONDS:
        return JsonResponse(
            {"error": "invalid signature: timestamp more than five minutes in the future"},
            status=400,
        )
    try:
        event = json.loads(body)
    except (ValueError, RecursionError) as exc:
        errors = {"body": [f"Signed, but not JSON: {exc.__class__.__name__}"]}
        return _refused(IntakeBatch.Source.STRIPE, request.body, errors)
    errors = stripe_events.check_event(event)
    if errors:
        return _refused(IntakeBatch.Source.STRIPE, request.body, errors)
    return _stored(*inbox.accept(source=InboxItem.Source.STRIPE, key=event["id"], payload=event))


@csrf_exempt
@require_POST
def payments_webhook(request: HttpRequest) -> JsonResponse:
    secret = settings.PAYMENTS_WEBHOOK_SECRET
    if not secret:
        return _not_configured("PAYMENTS_WEBHOOK_SECRET")
    if not generic.verify_generic_signature(
        body=request.body,
        signature=request.headers.get("X-Signature", ""),
        timestamp=request.headers.get("X-Timestamp", ""),
        secret=secret,
    ):
        return JsonResponse(
            {"error": "invalid signature or timestamp outside five minutes"}, status=401
        )
    try:
        payload = generic.parse_generic_body(request.body)
    except RowRejected as exc:
        # Signed but unusable: kept in the dead-letter list, and no event is stored, so
        # the sender can fix the payload and send it again under the same id.
        return _refused(IntakeBatch.Source.WEBHOOK, request.body, exc.errors)
    return _stored(
        *inbox.accept(source=InboxItem.Source.PAYMENTS_WEBHOOK, key=payload["id"], payload=payload)
    )
