"""Inbound e-mail webhooks: Mailgun's inbound routes and Postmark's inbound webhook.

Each adapter only checks the sender and translates the post into an e-mail message and
its attachments; `receive.receive_email` does the rest (stored once, threaded, acted on).

- Mailgun (``forward()`` action of a route, fully parsed): multipart or url-encoded
  fields ``message-headers`` (a JSON list of [name, value]), ``body-plain``,
  ``recipient``, ``attachment-1``.. ``attachment-N``; signed with ``timestamp``,
  ``token`` and ``signature`` = hex HMAC-SHA256 of timestamp + token under the webhook
  signing key (MAILGUN_WEBHOOK_SIGNING_KEY). A bad signature, or a timestamp further than
  INBOUND_SIGNATURE_MAX_AGE_SECONDS from now, answers 403. A replay (same Message-ID, or
  without one the same token) is stored once and answered 200.
- Postmark (inbound webhook, JSON): HTTP basic auth (POSTMARK_INBOUND_BASIC_AUTH,
  "user:password"); ``Headers``, ``TextBody``, ``Attachments`` (base64 ``Content``).

A request larger than INBOUND_MAX_REQUEST_BYTES is refused before it is read (406:
Mailgun does not retry it; Postmark gets 403, which stops its retries too).
"""

import base64
import binascii
import email.message
import email.policy
import hashlib
import hmac
import json
import logging
import time

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..models import InboundEmail
from . import receive

logger = logging.getLogger(__name__)

# Headers of the original message not copied onto the rebuilt one: its body is rebuilt.
_BODY_HEADERS = {"content-type", "content-transfer-encoding", "mime-version", "content-length"}


def _too_big(request: HttpRequest) -> bool:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return True
    return length > settings.INBOUND_MAX_REQUEST_BYTES


def is_signed_by_mailgun(timestamp: str, token: str, signature: str, *, now: float) -> bool:
    """Mailgun's webhook signature: fresh timestamp, HMAC-SHA256(key, timestamp + token)."""
    key = settings.MAILGUN_WEBHOOK_SIGNING_KEY
    if not (key and timestamp and token and signature):
        return False
    try:
        moment = int(timestamp)
    except ValueError:
        return False
    if abs(now - moment) > settings.INBOUND_SIGNATURE_MAX_AGE_SECONDS:
        return False
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


def build_message(
    headers: list[tuple[str, str]], text: str, *, delivered_to: str = ""
) -> email.message.EmailMessage:
    """An e-mail message from a provider's parsed headers and plain text body.

    The original Content-Type stays readable to the classifier (a delivery report is a
    bounce) while the body is the provider's text part.
    """
    message = email.message.EmailMessage(policy=email.policy.default)
    original_type = ""
    for name, value in headers[:500]:
        name, value = str(name).strip(), " ".join(str(value).split())
        if not name or any(c in name for c in ":\r\n "):
            continue
        if name.lower() in _BODY_HEADERS:
            if name.lower() == "content-type":
                original_type = value
            continue
        try:
            message[name] = value
        except (ValueError, TypeError):  # a header the policy cannot hold is skipped
            continue
    if delivered_to and not message.get_all("Delivered-To"):
        message["Delivered-To"] = delivered_to
    message.set_content(text or "", subtype="plain")
    if original_type.lower().startswith("multipart/report"):
        message.make_mixed()
        message.replace_header("Content-Type", original_type)
    return message


@csrf_exempt
@require_POST
def mailgun(request: HttpRequest) -> HttpResponse:
    if not settings.MAILGUN_WEBHOOK_SIGNING_KEY:
        return JsonResponse(
            {"error": "not configured", "setting": "MAILGUN_WEBHOOK_SIGNING_KEY"}, status=503
        )
    if _too_big(request):
        return JsonResponse({"error": "request too large", "field": "body"}, status=406)
    try:
        fields = request.POST
        uploads = request.FILES
    except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent, MultiPartParserError) as exc:
        return JsonResponse({"error": f"request refused: {exc}", "field": "body"}, status=406)
    token = fields.get("token", "")
    if not is_signed_by_mailgun(
        fields.get("timestamp", ""), token, fields.get("signature", ""), now=time.time()
    ):
        return JsonResponse({"error": "invalid Mailgun signature"}, status=403)
    try:
        headers = [tuple(pair) for pair in json.loads(fields.get("message-headers") or "[]")]
        headers = [(str(pair[0]), str(pair[1])) for pair in headers if len(pair) == 2]
    except (ValueError, TypeError):
        headers = []
    if not headers:
        headers = [
            ("From", fields.get("from") or fields.get("sender", "")),
            ("To", fields.get("To") or fields.get("recipient", "")),
            ("Subject", fields.get("subject", "")),
            ("Message-Id", fields.get("Message-Id", "")),
            ("In-Reply-To", fields.get("In-Reply-To", "")),
            ("References", fields.get("References", "")),
        ]
        headers = [(name, value) for name, value in headers if value]
    message = build_message(
        headers, fields.get("body-plain", ""), delivered_to=fields.get("recipient", "")
    )
    files = [
        receive.IncomingFile(
            filename=upload.name or key,
            content_type=upload.content_type or "",
            size=upload.size or 0,
            content=upload,
        )
        for key, upload in sorted(uploads.items(), key=lambda item: _attachment_order(item[0]))
        if key.startswith("attachment")
    ]
    inbound, created = receive.receive_email(
        source=InboundEmail.Source.MAILGUN,
        message=message,
        files=files,
        fallback_id=f"mailgun-token-{token}"[:255],
    )
    return JsonResponse({"id": inbound.pk, "created": created}, status=200)


def _attachment_order(key: str) -> tuple[int, str]:
    number = key.rpartition("-")[2]
    return (int(number) if number.isdigit() else 10**6, key)


def _postmark_authorised(request: HttpRequest) -> bool:
    expected = settings.POSTMARK_INBOUND_BASIC_AUTH
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("basic "):
        return False
    try:
        given = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


@csrf_exempt
@require_POST
def postmark(request: HttpRequest) -> HttpResponse:
    if not settings.POSTMARK_INBOUND_BASIC_AUTH:
        return JsonResponse(
            {"error": "not configured", "setting": "POSTMARK_INBOUND_BASIC_AUTH"}, status=503
        )
    if not _postmark_authorised(request):
        return JsonResponse({"error": "invalid credentials"}, status=401)
    if _too_big(request):
        return JsonResponse({"error": "request too large", "field": "body"}, status=403)
    # Read directly: attachments come base64 in the JSON, beyond DATA_UPLOAD_MAX_MEMORY_SIZE.
    raw = request.read(settings.INBOUND_MAX_REQUEST_BYTES + 1)
    if len(raw) > settings.INBOUND_MAX_REQUEST_BYTES:
        return JsonResponse({"error": "request too large", "field": "body"}, status=403)
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        return JsonResponse({"error": f"not JSON: {exc}", "field": "body"}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "expected a JSON object", "field": "body"}, status=400)
    headers = [
        (str(h.get("Name", "")), str(h.get("Value", "")))
        for h in payload.get("Headers") or []
        if isinstance(h, dict)
    ]
    names = {name.lower() for name, _value in headers}
    for name, key in (
        ("From", "From"),
        ("To", "To"),
        ("Cc", "Cc"),
        ("Subject", "Subject"),
        ("Date", "Date"),
    ):
        if name.lower() not in names and isinstance(payload.get(key), str) and payload[key]:
            headers.append((name, payload[key]))
    message = build_message(
        headers,
        str(payload.get("TextBody") or ""),
        delivered_to=str(payload.get("OriginalRecipient") or ""),
    )
    files = []
    for number, attachment in enumerate(payload.get("Attachments") or [], start=1):
        if not isinstance(attachment, dict):
            continue
        try:
            content = base64.b64decode(str(attachment.get("Content") or ""), validate=False)
        except (binascii.Error, ValueError):
            content = b""
        files.append(
            receive.IncomingFile(
                filename=str(attachment.get("Name") or f"attachment-{number}"),
                content_type=str(attachment.get("ContentType") or ""),
                size=len(content),
                content=content,
            )
        )
    inbound, created = receive.receive_email(
        source=InboundEmail.Source.POSTMARK,
        message=message,
        files=files,
        fallback_id=f"postmark-{payload.get('MessageID') or ''}"[:255]
        if payload.get("MessageID")
        else "",
    )
    return JsonResponse({"id": inbound.pk, "created": created}, status=200)
