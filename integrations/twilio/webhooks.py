"""Twilio webhooks: SMS delivery status and inbound replies (with STOP / START handling).

Both are signed (X-Twilio-Signature; Twilio's scheme carries no timestamp). The endpoint
checks the signature and that every field can be stored (a NUL character answers 400
naming the field, and the request waits in the dead-letter list), stores the request once
under its key and answers at once; a worker applies it. The key of an inbound message is
its MessageSid, of a status callback the MessageSid and the status, and of a request
without a MessageSid a digest of all its fields: the same message delivered twice writes
one timeline entry.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from accounts import timeline
from accounts.idempotency import payload_key
from accounts.models import Activity, Contact
from dunning.models import Notice

from ..intake import inbox
from ..models import InboxItem, IntakeBatch

logger = logging.getLogger(__name__)

# Twilio's standard opt-out and opt-in keywords (matched on the whole trimmed message).
OPT_OUT_WORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"}
OPT_IN_WORDS = {"START", "UNSTOP"}
FAILED_STATUSES = {"failed", "undelivered"}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def is_signed_by_twilio(request: HttpRequest) -> bool:
    """Check X-Twilio-Signature over the public URL Twilio called and the POSTed fields."""
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature:
        return False
    url = settings.SITE_URL.rstrip("/") + request.get_full_path()
    params = {key: request.POST.get(key) for key in request.POST}
    return RequestValidator(settings.TWILIO_AUTH_TOKEN).validate(url, params, signature)


def _guarded(view):
    @csrf_exempt
    @require_POST
    def wrapped(request: HttpRequest) -> HttpResponse:
        if not settings.TWILIO_AUTH_TOKEN:
            return JsonResponse(
                {"error": "not configured", "setting": "TWILIO_AUTH_TOKEN"}, status=503
            )
        if not is_signed_by_twilio(request):
            return JsonResponse({"error": "invalid Twilio signature"}, status=403)
        return view(request)

    wrapped.__name__ = view.__name__
    return wrapped


def _store(request: HttpRequest, source: str, key_fields: tuple[str, ...]) -> HttpResponse | None:
    """Store the request's fields once; a 400 response if they cannot be stored."""
    fields = {key: request.POST.get(key) for key in request.POST}
    errors = inbox.unstorable_fields(fields)
    if errors:
        inbox.dead_letter(
            source=IntakeBatch.Source.TWILIO,
            kind=IntakeBatch.Kind.CONTACTS,
            raw=fields,
            errors=errors,
        )
        return JsonResponse({"errors": inbox.storable(errors)}, status=400)
    sid = fields.get("MessageSid") or ""
    key = ":".join(fields.get(name) or "" for name in key_fields) if sid else ""
    inbox.accept(source=source, key=key or payload_key(fields), payload=fields)
    return None


@_guarded
def status_callback(request: HttpRequest) -> HttpResponse:
    refused = _store(request, InboxItem.Source.TWILIO_STATUS, ("MessageSid", "MessageStatus"))
    return refused or HttpResponse(status=204)


@_guarded
def inbound(request: HttpRequest) -> HttpResponse:
    refused = _store(request, InboxItem.Source.TWILIO_INBOUND, ("MessageSid",))
    return refused or HttpResponse(EMPTY_TWIML, content_type="text/xml")


def apply_stored_status(item: InboxItem) -> str:
    """The worker's side of a status callback."""
    fields = item.payload
    notice = record_status(
        sid=fields.get("MessageSid") or "",
        status=fields.get("MessageStatus") or "",
        error_code=fields.get("ErrorCode") or "",
    )
    return f"notice {notice.pk}: {notice.status}" if notice else "no notice with that sid"


def apply_stored_reply(item: InboxItem) -> str:
    """The worker's side of an inbound message."""
    fields = item.payload
    contacts = record_reply(
        sender=fields.get("From") or "",
        body=fields.get("Body") or "",
        message_sid=fields.get("MessageSid") or "",
    )
    return f"recorded for {len(contacts)} contact(s)"


def contacts_at(phone: str):
    """The contacts with this phone number (E.164): the one place a reply finds its sender,
    so an encrypted phone column with a keyed hash only changes this lookup."""
    return Contact.objects.matching(phone=phone).select_related("customer")


@transaction.atomic
def record_status(*, sid: str, status: str, error_code: str = "") -> Notice | None:
    """Move the notice to delivered or failed once; queued/sending/sent change nothing."""
    notice = (
        Notice.objects.select_for_update()
        .filter(provider_message_id=sid)
        .select_related("customer")
        .first()
    )
    if notice is None or not sid:
        logger.info("twilio status for unknown message %s: %s", sid, status)
        return None
    if status == "delivered" and notice.status != Notice.Status.DELIVERED:
        notice.status = Notice.Status.DELIVERED
        notice.delivered_at = timezone.now()
        text = f"SMS delivered to {notice.recipient}"
    elif status in FAILED_STATUSES and notice.status != Notice.Status.FAILED:
        notice.status = Notice.Status.FAILED
        notice.reason = f"{status}" + (f": Twilio error {error_code}" if error_code else "")
        text = f"SMS to {notice.recipient} {notice.reason}"
    else:
        return notice
    notice.save(update_fields=["status", "delivered_at", "reason", "updated_at"])
    timeline.add(
        customer=notice.customer,
        kind=Activity.Kind.DELIVERY,
        channel=Activity.Channel.SMS,
        text=text,
        details={"notice": notice.pk, "message_id": sid, "status": status, "error": error_code},
    )
    return notice


@transaction.atomic
def record_reply(*, sender: str, body: str, message_sid: str = "") -> list[Contact]:
    """Put a reply on the timeline of every customer with a contact at that number.

    STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT opts those contacts out of SMS; START
    or UNSTOP opts them back in. Each change is written to the timeline.
    """
    contacts = list(contacts_at(sender)) if sender else []
    if not sender or not contacts:
        logger.info("SMS reply from an unknown number %s", sender)
        return []
    word = body.strip().upper()
    now = timezone.now()
    for contact in contacts:
        timeline.add(
            customer=contact.customer,
            kind=Activity.Kind.REPLY,
            channel=Activity.Channel.SMS,
            text=f"SMS reply from {contact.name} ({sender}): {body.strip()}",
            details={
                "direction": "inbound",
                "from": sender,
                "contact": contact.pk,
                "message_sid": message_sid,
            },
            at=now,
        )
        if word in OPT_OUT_WORDS and contact.sms_opted_out_at is None:
            contact.sms_opted_out_at, contact.sms_opt_out_source = now, f"SMS reply {word}"
        elif word in OPT_IN_WORDS and contact.sms_opted_out_at is not None:
            contact.sms_opted_out_at, contact.sms_opt_out_source = None, ""
        else:
            continue
        contact.save(update_fields=["sms_opted_out_at", "sms_opt_out_source", "updated_at"])
        change = "opted out of" if word in OPT_OUT_WORDS else "opted back in to"
        timeline.add(
            customer=contact.customer,
            kind=Activity.Kind.HOLD_CHANGE,
            channel=Activity.Channel.SMS,
            text=f"{contact.name} {change} SMS ({word})",
            details={"contact": contact.pk, "sms_opted_out": word in OPT_OUT_WORDS},
            at=now,
        )
    return contacts
