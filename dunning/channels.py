"""Delivery channels: hand a rendered notice to the e-mail system or to Twilio.

Without SMTP settings e-mail goes to the local outbox (the default e-mail backend), and
without Twilio credentials so do SMS; either way the notice records the message id.
"""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.urls import reverse

from . import outbox


def send_email(to: str, content: dict, *, message_id: str = "") -> str:
    """Send a rendered notice; its extra headers (List-Unsubscribe...) go with it.

    `message_id`: the sender passes one derived from the notice (the same on every
    attempt, so a provider or MTA that keeps Message-IDs can drop a second copy); without
    one, a fresh one is made. Returns the Message-ID sent.
    """
    message_id = message_id or make_msgid(domain=settings.EMAIL_MESSAGE_ID_DOMAIN)
    message = EmailMultiAlternatives(
        subject=content["subject"],
        body=content["body_text"],
        to=[to],
        headers={**content.get("headers", {}), "Message-ID": message_id},
    )
    if content["body_html"]:
        message.attach_alternative(content["body_html"], "text/html")
    message.send()
    return message_id


def twilio_configured() -> bool:
    return bool(
        settings.TWILIO_ACCOUNT_SID
        and settings.TWILIO_AUTH_TOKEN
        and (settings.TWILIO_FROM_NUMBER or settings.TWILIO_MESSAGING_SERVICE_SID)
    )


def send_sms(to: str, body: str) -> str:
    """Send through Twilio's Messaging API (status reported to our callback); the SID."""
    if not twilio_configured():
        return outbox.keep_sms(to=to, body=body, sender=settings.TWILIO_FROM_NUMBER)
    from twilio.rest import Client

    client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    sender = (
        {"messaging_service_sid": settings.TWILIO_MESSAGING_SERVICE_SID}
        if settings.TWILIO_MESSAGING_SERVICE_SID
        else {"from_": settings.TWILIO_FROM_NUMBER}
    )
    callback = settings.SITE_URL.rstrip("/") + reverse("integrations:twilio-status")
    message = client.messages.create(to=to, body=body, status_callback=callback, **sender)
    return message.sid
