"""The one receive path of a debtor's message: store it once, thread it, act on it.

Every way in ends here: a provider's webhook (`mailgun`), the IMAP poll (`imap`), the
local outbox's "reply as the debtor" (`admin`), and the portal's message form
(`from_portal`). For each message:

1. Stored once per (source, Message-ID): a message already stored is returned unchanged
   (a provider's retry, a replayed webhook, a folder read twice). Two deliveries racing
   meet the unique constraint; the loser reads the winner's row.
2. Threaded (`thread`): the token of the reply address (To / Cc / Delivered-To, checked
   against its digest), else In-Reply-To / References naming a notice's Message-ID, else
   the sender's address among the contacts (one customer only). A message matching
   nothing is stored all the same, for managers, and changes nothing.
3. Classified (classify.py): automatic or human, the visible text, a promised date and
   amount, dispute words. Attachments within the bounds (INBOUND_MAX_ATTACHMENTS,
   INBOUND_MAX_ATTACHMENT_BYTES, INBOUND_ATTACHMENT_TYPES) go to the default storage;
   the others are recorded as refused, with the reason.
4. Acted on, in the same transaction: a timeline entry (kind reply) for every matched
   message; for a human one also a pause of the customer's chasing for
   INBOUND_REPLY_PAUSE_DAYS (dunning/holds.py reads `reply_paused_until`) and a task for
   the customer's agent linking the message. An automatic reply changes nothing else.
"""

from __future__ import annotations

import datetime as dt
import email.message
import email.policy
import hmac
import logging
import re
import uuid
from dataclasses import dataclass
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.utils.translation import gettext as _

from accounts import permissions, timeline
from accounts.models import Activity, Contact, Customer
from cases import case_tasks
from cases.models import Task
from dunning.models import Notice
from dunning.sender import message_id_for, reply_token_for

from ..intake import inbox
from ..models import InboundAttachment, InboundEmail
from . import classify

logger = logging.getLogger(__name__)

SHORT_TEXT = 300  # characters of the visible text on the timeline
_TOKEN = re.compile(r"n(\d{1,12})-([0-9a-f]{20})")
_NOTICE_ID = re.compile(r"notice-(\d{1,12})@(.+)")


# --- attachments -------------------------------------------------------------------------


@dataclass(frozen=True)
class IncomingFile:
    """One attachment as it arrived: `content` is bytes or a Django File (an upload);
    `refused` says why it was not even fetched (a whole message over the size bound)."""

    filename: str
    content_type: str
    size: int
    content: bytes | File
    refused: str = ""


def files_of(message: email.message.EmailMessage) -> list[IncomingFile]:
    """The attachments of a parsed e-mail (parts with a file name or marked attachment)."""
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = str(part.get("Content-Disposition", "")).lower()
        filename = part.get_filename()
        if not filename and not disposition.startswith("attachment"):
            continue
        try:
            content = part.get_payload(decode=True) or b""
        except Exception:  # a broken part is refused, not fatal
            content = b""
        found.append(
            IncomingFile(
                filename=filename or f"attachment-{len(found) + 1}",
                content_type=part.get_content_type(),
                size=len(content),
                content=content,
            )
        )
    return found


def refusal(file: IncomingFile, position: int) -> str:
    """Why this attachment (1-based `position` in its message) is not kept, or ""."""
    if file.refused:
        return file.refused
    if position > settings.INBOUND_MAX_ATTACHMENTS:
        return _("more than %(n)d attachments") % {"n": settings.INBOUND_MAX_ATTACHMENTS}
    if file.size > settings.INBOUND_MAX_ATTACHMENT_BYTES:
        return _("larger than %(n)d bytes") % {"n": settings.INBOUND_MAX_ATTACHMENT_BYTES}
    content_type = (file.content_type or "").split(";")[0].strip().lower()
    if content_type not in {t.lower() for t in settings.INBOUND_ATTACHMENT_TYPES}:
        return _("type %(type)s is not accepted") % {"type": content_type or "unknown"}
    return ""


def _store_files(inbound: InboundEmail, files: list[IncomingFile]) -> None:
    for position, file in enumerate(files, start=1):
        name = (get_valid_filename(file.filename) or f"attachment-{position}")[:100]
        row = InboundAttachment(
            email=inbound,
            filename=file.filename[:255],
            content_type=file.content_type[:255],
            size=file.size,
            refused_reason=refusal(file, position)[:200],
        )
        if not row.refused_reason:
            content = file.content
            if isinstance(content, bytes):
                content = ContentFile(content)
            row.file.save(name, content, save=False)
        row.save()


# --- threading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    customer: Customer | None
    contact: Contact | None
    notice: Notice | None
    matched_by: str
    note: str = ""


def notice_for_token(token: str | None) -> Notice | None:
    """The notice a reply-address token names, if its digest is right."""
    match = _TOKEN.fullmatch(token or "")
    if not match:
        return None
    notice_id, given = int(match.group(1)), f"n{match.group(1)}-{match.group(2)}"
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    if not any(
        hmac.compare_digest(given, reply_token_for(notice_id, secret=secret)) for secret in secrets
    ):
        return None
    return Notice.objects.select_related("customer", "contact").filter(pk=notice_id).first()


def notice_for_references(ids: list[str]) -> Notice | None:
    """The first notice whose Message-ID is among `ids` (In-Reply-To first)."""
    for msgid in ids:
        match = _NOTICE_ID.fullmatch(msgid)
        if match and f"<{msgid}>" == message_id_for(int(match.group(1))):
            notice = (
                Notice.objects.select_related("customer", "contact")
                .filter(pk=int(match.group(1)))
                .first()
            )
            if notice is not None:
                return notice
    return None


def _contact_of(customer: Customer, address: str) -> Contact | None:
    if not address:
        return None
    return Contact.objects.matching(email=address).filter(customer=customer).first()


def thread(message: email.message.EmailMessage, sender: str) -> Thread:
    """Which notice, customer and contact a message answers (step 2 of the module)."""
    notice = notice_for_token(classify.reply_token(message))
    matched_by = InboundEmail.MatchedBy.TOKEN
    if notice is None:
        notice = notice_for_references(classify.references(message))
        matched_by = InboundEmail.MatchedBy.REFERENCES
    if notice is not None:
        customer = notice.customer
        contact = _contact_of(customer, sender) or notice.contact
        return Thread(customer, contact, notice, matched_by)
    contacts = list(Contact.objects.matching(email=sender).select_related("customer")[:50])
    customers = {contact.customer_id for contact in contacts}
    if len(customers) == 1:
        contact = contacts[0]
        return Thread(contact.customer, contact, None, InboundEmail.MatchedBy.SENDER)
    note = (
        _("the sender is a contact of %(n)d customers") % {"n": len(customers)}
        if customers
        else _("no reply token, no known Message-ID, unknown sender")
    )
    return Thread(None, None, None, InboundEmail.MatchedBy.UNMATCHED, note)


# --- receiving ---------------------------------------------------------------------------


def header_text(message: email.message.EmailMessage, name: str, limit: int = 500) -> str:
    try:
        value = message.get(name)
    except Exception:  # a malformed header is read as empty
        return ""
    return " ".join(str(value or "").split())[:limit]


def sender_address(message: email.message.EmailMessage) -> str:
    for name in ("From", "Sender", "Return-Path"):
        address = parseaddr(header_text(message, name, 1000))[1]
        if address and "@" in address:
            return address[:254]
    return ""


def _received_at(message: email.message.EmailMessage) -> dt.datetime:
    """The Date header when it is sane (not in the future, not years old), else now."""
    now = timezone.now()
    try:
        sent = parsedate_to_datetime(header_text(message, "Date"))
    except (TypeError, ValueError, IndexError):
        return now
    if sent is None or sent.tzinfo is None:
        return now
    return sent if now - dt.timedelta(days=30) <= sent <= now + dt.timedelta(minutes=5) else now


def bare_message_id(message: email.message.EmailMessage) -> str:
    value = header_text(message, "Message-ID", 1000).strip()
    return value.strip("<>").strip()[:255]


def receive_email(
    *,
    source: str,
    message: email.message.EmailMessage,
    files: list[IncomingFile] | None = None,
    fallback_id: str = "",
    received_at: dt.datetime | None = None,
) -> tuple[InboundEmail, bool]:
    """Store and act on one e-mail; (the message, True) or (the stored one, False) on replay.

    `files`: the attachments when the provider sent them apart from `message` (Mailgun's
    parsed posts); None reads them from the message. `fallback_id` keys a message without
    a Message-ID (a provider's token, an IMAP UID).
    """
    message_id = bare_message_id(message) or fallback_id or f"no-id-{uuid.uuid4().hex}"
    message_id = message_id[:255]
    stored = InboundEmail.objects.filter(source=source, message_id=message_id).first()
    if stored is not None:
        return stored, False
    sender = sender_address(message)
    why_automatic = classify.is_automatic(message) or ""
    text = classify.visible_text(message)
    to = getaddresses([header_text(message, "Delivered-To"), header_text(message, "To")])
    found = thread(message, sender)
    inbound = InboundEmail(
        source=source,
        message_id=message_id,
        in_reply_to=header_text(message, "In-Reply-To"),
        references=" ".join(f"<{m}>" for m in classify.references(message))[:5000],
        sender=sender,
        recipient=next((address for _name, address in to if address), "")[:254],
        subject=header_text(message, "Subject", 255),
        text=text,
        customer=found.customer,
        contact=found.contact,
        notice=found.notice,
        matched_by=found.matched_by,
        match_note=found.note[:200],
        is_automatic=bool(why_automatic),
        automatic_reason=why_automatic[:100],
        received_at=received_at or _received_at(message),
    )
    if files is None:
        files = files_of(message)
    return _store(inbound, files)


_TEXT_FIELDS = ("in_reply_to", "references", "sender", "recipient", "subject", "text")


def _store(inbound: InboundEmail, files: list[IncomingFile]) -> tuple[InboundEmail, bool]:
    for name in _TEXT_FIELDS:  # NUL and lone surrogates cannot be stored (a hostile mail)
        setattr(inbound, name, inbox.storable(getattr(inbound, name)))
    files = [
        IncomingFile(
            inbox.storable(f.filename), inbox.storable(f.content_type), f.size, f.content, f.refused
        )
        for f in files
    ]
    _scan(inbound)
    try:
        with transaction.atomic():
            inbound.save()
            _store_files(inbound, files)
            _act(inbound)
    except IntegrityError:
        stored = InboundEmail.objects.filter(
            source=inbound.source, message_id=inbound.message_id
        ).first()
        if stored is None:
            raise
        return stored, False
    logger.info("inbound %s message %s stored (%s)", inbound.source, inbound.pk, inbound.matched_by)
    return inbound, True


def _scan(inbound: InboundEmail) -> None:
    """Promised date and amount, dispute words (human messages only)."""
    if inbound.is_automatic:
        return
    currency = inbound.customer.currency if inbound.customer else settings.DEFAULT_CURRENCY
    promise = classify.extract_promise(
        inbound.text, today=timezone.localdate(inbound.received_at), default_currency=currency
    )
    if promise is not None:
        inbound.promised_on = promise.promised_on
        inbound.promised_amount = promise.amount
        inbound.promised_currency = promise.currency if promise.amount is not None else ""
    inbound.dispute_words = classify.mentions_dispute(inbound.text)


def _short(text: str) -> str:
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= SHORT_TEXT else one_line[: SHORT_TEXT - 1] + "…"


def _act(inbound: InboundEmail) -> None:
    """Step 4 of the module: timeline, and for a human message a pause and a task."""
    customer = inbound.customer
    if customer is None:
        return
    is_portal = inbound.source == InboundEmail.Source.PORTAL
    channel = Activity.Channel.PORTAL if is_portal else Activity.Channel.EMAIL
    who = inbound.contact.name if inbound.contact else inbound.sender or customer.name
    if inbound.is_automatic:
        text = _("Automatic reply from %(who)s (%(why)s): %(subject)s") % {
            "who": who,
            "why": inbound.automatic_reason,
            "subject": inbound.subject,
        }
    elif is_portal:
        text = _("Portal message from %(who)s: %(text)s") % {
            "who": who,
            "text": _short(inbound.text),
        }
    else:
        text = _("E-mail reply from %(who)s: %(text)s") % {
            "who": who,
            "text": _short(inbound.text) or inbound.subject,
        }
    timeline.add(
        Activity.Kind.REPLY,
        customer=customer,
        channel=channel,
        text=text,
        details={
            "direction": "inbound",
            "inbound_email": inbound.pk,
            "source": inbound.source,
            "notice": inbound.notice_id,
            "message_id": inbound.message_id,
            "automatic": inbound.automatic_reason or None,
            "promised_on": inbound.promised_on.isoformat() if inbound.promised_on else None,
            "dispute_words": inbound.dispute_words,
        },
        at=inbound.received_at,
    )
    if inbound.is_automatic:
        return
    fields = ["task"]
    until = _pause(inbound)
    if until is not None:
        inbound.paused_until = until
        fields.append("paused_until")
    inbound.task = case_tasks.create_task(
        customer=customer,
        kind=Task.Kind.EMAIL,
        title=(
            _("Answer the portal message from %(who)s")
            if is_portal
            else _("Answer the e-mail reply from %(who)s")
        )
        % {"who": who},
        due_at=max(timezone.localdate(inbound.received_at), timezone.localdate())
        + dt.timedelta(days=1),
        source=f"inbound:{inbound.pk}",
        details={
            "inbound_email": inbound.pk,
            "url": reverse("admin:integrations_inboundemail_change", args=[inbound.pk]),
            "subject": inbound.subject,
            "promised_on": inbound.promised_on.isoformat() if inbound.promised_on else None,
            "promised_amount": str(inbound.promised_amount)
            if inbound.promised_amount is not None
            else None,
            "dispute_words": inbound.dispute_words,
        },
    )
    inbound.save(update_fields=fields)


def _pause(inbound: InboundEmail) -> dt.date | None:
    """Pause the customer's chasing for INBOUND_REPLY_PAUSE_DAYS from the reply day (from
    today for a reply read late, from a mailbox polled after a break); a longer reply pause
    already running is kept. Returns the day the pause runs to, or None."""
    days = settings.INBOUND_REPLY_PAUSE_DAYS
    if days <= 0:
        return None
    start = max(timezone.localdate(inbound.received_at), timezone.localdate())
    until = start + dt.timedelta(days=days)
    reason = (
        _("the debtor wrote through the portal on %(day)s")
        if inbound.source == InboundEmail.Source.PORTAL
        else _("the debtor replied by e-mail on %(day)s")
    ) % {"day": timezone.localdate(inbound.received_at).isoformat()}
    changed = (
        Customer.objects.filter(pk=inbound.customer_id)
        .filter(Q(reply_paused_until__isnull=True) | Q(reply_paused_until__lt=until))
        .update(
            reply_paused_until=until, reply_pause_reason=reason[:200], updated_at=timezone.now()
        )
    )
    if not changed:
        return Customer.objects.values_list("reply_paused_until", flat=True).get(
            pk=inbound.customer_id
        )
    inbound.customer.reply_paused_until, inbound.customer.reply_pause_reason = until, reason
    timeline.add(
        Activity.Kind.HOLD_CHANGE,
        customer=inbound.customer,
        text=_("Chasing paused until %(until)s: %(reason)s")
        % {"until": until.isoformat(), "reason": reason},
        details={
            "hold": "reply_paused",
            "until": until.isoformat(),
            "reason": reason,
            "inbound_email": inbound.pk,
        },
        at=inbound.received_at,
    )
    return until


# --- filing an unmatched message ------------------------------------------------------------


@transaction.atomic
def file_unmatched(*, inbound: InboundEmail, customer: Customer, by) -> InboundEmail:
    """File a message nothing matched under `customer`, by a person who may work that
    customer, and act on it as if it had matched (timeline, pause, task). A message that
    has its customer already is refused naming the field."""
    permissions.require(by, "integrations.view_inboundemail", [customer])
    inbound = InboundEmail.objects.select_for_update().get(pk=inbound.pk)
    if inbound.customer_id is not None:
        raise ValidationError({"customer": [_("This message is filed under a customer already.")]})
    inbound.customer = customer
    inbound.contact = _contact_of(customer, inbound.sender)
    inbound.matched_by = InboundEmail.MatchedBy.MANUAL
    inbound.match_note = (
        _("filed by %(who)s") % {"who": by.get_username()} if by is not None else ""
    )[:200]
    _scan(inbound)
    inbound.save(
        update_fields=[
            "customer",
            "contact",
            "matched_by",
            "match_note",
            "promised_on",
            "promised_amount",
            "promised_currency",
            "dispute_words",
        ]
    )
    _act(inbound)
    return inbound


# --- the portal --------------------------------------------------------------------------


def from_portal(
    *, customer: Customer, contact: Contact | None, subject: str, text: str, attachments: list
) -> InboundEmail:
    """A message to the collections team written in the portal: the same path as a human
    e-mail reply (timeline, pause, task). Refuses bad attachments with a ValidationError
    naming the field (``attachments``) and an empty message (``text``)."""
    text = (text or "").strip()
    errors: dict[str, list[str]] = {}
    if not text:
        errors["text"] = [_("Write a message.")]
    elif len(text) > classify.MAX_CHARS:
        errors["text"] = [_("At most %(n)d characters.") % {"n": classify.MAX_CHARS}]
    files = [
        IncomingFile(
            filename=upload.name or "attachment",
            content_type=getattr(upload, "content_type", "") or "application/octet-stream",
            size=upload.size or 0,
            content=upload,
        )
        for upload in attachments or []
    ]
    problems = [
        f"{file.filename}: {why}"
        for position, file in enumerate(files, start=1)
        if (why := refusal(file, position))
    ]
    if problems:
        errors["attachments"] = problems
    if errors:
        raise ValidationError(errors)
    if contact is not None and contact.customer_id != customer.pk:
        raise ValidationError({"contact": [_("This contact belongs to another customer.")]})
    inbound = InboundEmail(
        source=InboundEmail.Source.PORTAL,
        message_id=f"portal-{uuid.uuid4().hex}",
        sender=(contact.email if contact else "")[:254],
        subject=" ".join((subject or "").split())[:255],
        text=text,
        customer=customer,
        contact=contact,
        matched_by=InboundEmail.MatchedBy.PORTAL,
        received_at=timezone.now(),
    )
    return _store(inbound, files)[0]
