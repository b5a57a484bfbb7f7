"""The local outbox: an e-mail backend and an SMS sink that keep messages in the database.

An e-mail is kept with everything a provider would have received: the text and HTML parts,
the extra headers (List-Unsubscribe, Message-ID) and its attachments, whose files go to the
default storage under outbox/ and are downloaded from the admin.
"""

import uuid
from email.mime.base import MIMEBase

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone
from django.utils.text import get_valid_filename

from .models import OutboxMessage


def _html_part(message) -> str:
    return next(
        (
            content
            for content, mimetype in getattr(message, "alternatives", [])
            if mimetype == "text/html"
        ),
        "",
    )


def _keep_attachments(message) -> list[dict]:
    """Store each attachment's file once per message; what the outbox row lists."""
    kept = []
    folder = f"outbox/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"
    for n, attachment in enumerate(message.attachments, start=1):
        if isinstance(attachment, MIMEBase):
            filename = attachment.get_filename() or f"attachment-{n}"
            mimetype = attachment.get_content_type()
            content = attachment.get_payload(decode=True) or b""
        else:
            filename, content, mimetype = attachment
            filename = filename or f"attachment-{n}"
            mimetype = mimetype or "application/octet-stream"
        if isinstance(content, str):
            content = content.encode()
        name = get_valid_filename(filename) or f"attachment-{n}"
        path = default_storage.save(f"{folder}/{name}", ContentFile(content))
        kept.append(
            {"filename": filename, "mimetype": mimetype, "size": len(content), "path": path}
        )
    return kept


class OutboxEmailBackend(BaseEmailBackend):
    """Django e-mail backend that stores every message as an OutboxMessage."""

    def send_messages(self, email_messages):
        kept = []
        for message in email_messages:
            attachments = _keep_attachments(message)
            for recipient in message.recipients():
                kept.append(
                    OutboxMessage(
                        channel="email",
                        recipient=recipient,
                        sender=message.from_email,
                        subject=message.subject,
                        body_text=message.body,
                        body_html=_html_part(message),
                        message_id=message.extra_headers.get("Message-ID", ""),
                        headers={str(k): str(v) for k, v in message.extra_headers.items()},
                        attachments=attachments,
                    )
                )
        OutboxMessage.objects.bulk_create(kept)
        return len(email_messages)


def keep_sms(*, to: str, body: str, sender: str = "") -> str:
    """Keep an SMS locally; returns an id in the shape a provider would."""
    message = OutboxMessage.objects.create(
        channel="sms", recipient=to, sender=sender, body_text=body
    )
    return f"local-sms-{message.pk}"
