"""Payment-gateway webhook endpoints: verify the sender, then hand the event to the pipeline.

Both endpoints are csrf_exempt (the provider has no CSRF token; the signature is the
authentication) and POST-only. Without their secret configured they answer 503 and touch
nothing. A failed signature changes nothing: Stripe's gets 400 (what Stripe documents),
the generic one 401 (the sender failed to authenticate).
"""

import json

import stripe
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..intake.batches import RowRejected
from . import events, generic, stripe_events


def _not_configured(setting: str) -> JsonResponse:
    return JsonResponse({"error": "not configured", "setting": setting}, status=503)


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
    try:
        stripe.Webhook.construct_event(
            body,
            request.headers.get("Stripe-Signature", ""),
            secret,
            tolerance=events.SIGNATURE_TOLERANCE_SECONDS,
        )
    except stripe.SignatureVerificationError:
        return JsonResponse({"error": "invalid signature"}, status=400)
    except (ValueError, TypeError, KeyError, AttributeError):
        event = None  # signed, but not an event: recorded below
    else:
        event = json.loads(body)
    if not (
        isinstance(event, dict)
        and isinstance(event.get("id"), str)
        and event["id"]
        and isinstance(event.get("type"), str)
    ):
        errors = {"event": ["Signed, but not a Stripe event with an id and a type."]}
        events.reject_payload(provider=events.STRIPE, raw={"body": body[:20000]}, errors=errors)
        return JsonResponse({"errors": errors}, status=400)
    outcome = stripe_events.receive_stripe_event(event)
    return JsonResponse(outcome.as_json())


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
        events.reject_payload(
            provider=events.GENERIC,
            raw={"body": request.body.decode("utf-8", "replace")[:20000]},
            errors=exc.errors,
        )
        return JsonResponse({"errors": exc.errors}, status=400)
    outcome = generic.receive_generic_event(payload)
    return JsonResponse(outcome.as_json())
