"""Answering a kept outbox e-mail "as the debtor", for `make run` and the browser tests.

The reply is the e-mail a debtor's mail program would send: from the address the notice
went to, to its Reply-To (else its sender), "Re:" its subject, In-Reply-To and References
naming its Message-ID, the original quoted below the text. It goes through exactly the
receive path of a real reply (source "outbox").
"""

from __future__ import annotations

import email.message
import email.policy
from email.utils import format_datetime, make_msgid

from django.conf import settings
from django.utils import timezone

from dunning.models import OutboxMessage

from ..models import InboundEmail
from . import receive

OUTBOX_BACKEND = "dunning.outbox.OutboxEmailBackend"


def is_local_outbox() -> bool:
    """Replies "as the debtor" only where mail is kept locally, never in production."""
    return settings.EMAIL_BACKEND == OUTBOX_BACKEND


def reply_to_outbox(*, outbox: OutboxMessage, text: str, attachment=None) -> InboundEmail:
    """Receive a debtor's reply to a kept e-mail; `attachment` is an optional upload."""
    now = timezone.now()
    message = email.message.EmailMessage(policy=email.policy.default)
    message["From"] = outbox.recipient
    message["To"] = outbox.headers.get("Reply-To") or outbox.sender or settings.DEFAULT_FROM_EMAIL
    subject = outbox.subject or ""
    message["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain="debtor.outbox.invalid")
    if outbox.message_id:
        message["In-Reply-To"] = outbox.message_id
        message["References"] = outbox.message_id
    quoted = "\n".join(f"> {line}" for line in (outbox.body_text or "").splitlines())
    header = f"On {format_datetime(outbox.created_at)}, {outbox.sender} wrote:"
    message.set_content(f"{text.strip()}\n\n{header}\n{quoted}\n")
    files = []
    if attachment is not None:
        files.append(
            receive.IncomingFile(
                filename=attachment.name or "attachment",
                content_type=getattr(attachment, "content_type", "") or "",
                size=attachment.size or 0,
                content=attachment,
            )
        )
    inbound, _created = receive.receive_email(
        source=InboundEmail.Source.OUTBOX, message=message, files=files, received_at=now
    )
    return inbound
