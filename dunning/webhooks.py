"""The e-mail events webhook: verify the signature, then hand the event to email_events.

POST /dunning/email-events/ with a JSON body (see README, "E-mail bounces and complaints")
and `X-Signature: sha256=<hex HMAC-SHA256 of the raw body with EMAIL_EVENTS_WEBHOOK_SECRET>`.
csrf_exempt: the provider has no CSRF token; the signature is the authentication. Without
the secret the endpoint answers 503; a missing or wrong signature answers 400 and changes
nothing; a replayed event id answers 200 "duplicate" and changes nothing.
"""

import hashlib
import hmac

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import email_events


def is_signed(body: bytes, signature: str, secret: str) -> bool:
    """Constant-time check of the hex HMAC-SHA256 of the body ("sha256=" prefix optional)."""
    given = signature.strip().removeprefix("sha256=").strip().lower()
    if not given:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


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
        event = email_events.parse(request.body)
    except email_events.EventRejected as exc:
        return JsonResponse({"errors": exc.errors}, status=400)
    return JsonResponse(email_events.record(event))
