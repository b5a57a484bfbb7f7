"""The local outbox: an e-mail backend and an SMS sink that keep messages in the database."""

from django.core.mail.backends.base import BaseEmailBackend

from .models import OutboxMessage


class OutboxEmailBackend(BaseEmailBackend):
    """Django e-mail backend that stores every message as an OutboxMessage."""

    def send_messages(self, email_messages):
        kept = []
        for message in email_messages:
            html = next(
                (
                    content
                    for content, mimetype in getattr(message, "alternatives", [])
                    if mimetype == "text/html"
                ),
                "",
            )
            for recipient in message.recipients():
                kept.append(
                    OutboxMessage(
                        channel="email",
                        recipient=recipient,
                        sender=message.from_email,
                        subject=message.subject,
                        body_text=message.body,
                        body_html=html,
                        message_id=message.extra_headers.get("Message-ID", ""),
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
