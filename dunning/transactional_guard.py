"""What the one sender asks about a transactional notice (dunning/transactional.py): its
guard (`recipient`), its message with secrets clear to send and masked to store
(`render`), and its timeline entry (`recorded`)."""

import datetime as dt
import threading
from urllib.parse import urlsplit

from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import Contact

from . import rendering
from .models import Notice, Policy

# What the contact asked for just now: sent even to an address opted out of e-mail.
REQUESTED = ("portal_access",)
# An opt-out whose source says the address does not take mail (dunning/email_events.py).
BOUNCED_SOURCES = ("bounce",)
MASK = "••••••"

# notice id -> the clear values of its secrets, for the send in this process only.
_clear = threading.local()


def is_transactional(notice: Notice) -> bool:
    return notice.step.policy.purpose == Policy.Purpose.TRANSACTIONAL


def mask(value: str) -> str:
    """What is stored instead of a secret: a link keeps its site, a code nothing."""
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}/{MASK}"
    return MASK


def recipient(notice: Notice, contacts: list[Contact]) -> tuple[Contact | None, str]:
    """The guard of a transactional notice: its contact, or None and why not."""
    if notice.customer.erased_at is not None:
        return None, "customer's personal data erased"
    contact = next((c for c in contacts if c.pk == notice.contact_id), None)
    if contact is None:
        return None, "the contact no longer exists"
    if not contact.email:
        return None, "no e-mail address"
    if contact.email_opted_out_at is not None:
        if contact.email_opt_out_source in BOUNCED_SOURCES:
            return None, "the address bounced"
        if notice.step.name not in REQUESTED:
            return None, "the contact opted out of e-mail"
    return contact, ""


class SecretGone(Exception):
    """A notice with secrets whose clear values this process no longer has."""


def render(notice: Notice, contact: Contact, *, on: dt.date) -> tuple[dict, dict]:
    """The variables and the message: what is sent (secrets clear) and, under "stored",
    the same message with the secrets masked, which the sender records."""
    stored_context = dict(notice.context)
    secret_names = stored_context.pop("_secrets", [])
    invoice_ids = stored_context.pop("_invoices", [])
    clear = clear_values().get(notice.pk)
    if secret_names and clear is None:
        raise SecretGone("its one-time values were not stored and are gone; the debtor asks again")
    invoices = list(notice.customer.invoices.filter(pk__in=invoice_ids))
    base = rendering.notice_context(
        customer=notice.customer, invoices=invoices, contact=contact, on=on
    )

    def content_with(values: dict) -> dict:
        return rendering.render_notice(
            notice.step.template,
            {**base, **values},
            customer=notice.customer,
            contact=contact,
            channel=notice.channel,
        )

    stored = content_with(stored_context)
    if not secret_names:
        return {**base, **stored_context}, {**stored, "stored": stored}
    sent = content_with({**stored_context, **clear})
    return {**base, **stored_context}, {**sent, "stored": stored}


def recorded(notice: Notice, stored: dict, *, kind: str, channel: str, now) -> str:
    """The timeline entry of a sent transactional notice (masked text), one per invoice
    it names, or one for the customer."""
    invoice_ids = notice.context.get("_invoices") or [None]
    timeline.add_all(
        timeline.entry(
            kind,
            customer=notice.customer,
            invoice=invoice_id,
            channel=channel,
            text=_("%(step)s: “%(subject)s” to %(to)s")
            % {"step": notice.step.name, "subject": stored["subject"], "to": notice.recipient},
            details={
                "notice": notice.pk,
                "step": notice.step_id,
                "message_id": notice.provider_message_id,
                "transactional": notice.step.name,
            },
            at=now,
        )
        for invoice_id in invoice_ids
    )
    return "sent"


def clear_values() -> dict:
    if not hasattr(_clear, "values"):
        _clear.values = {}
    return _clear.values
