"""A debtor's way into the portal: a signed, expiring link per contact, revocable.

The token is a signature (django.core.signing, its own salt, timestamped) over the
contact's id and a digest of the contact's `portal_key`, a random key made with the
contact's first link. It opens the portal for that contact's customer and nothing else:
it cannot be made up or pointed at another id, it expires after PORTAL_LINK_MAX_AGE_DAYS,
and a new key (`revoke`, from the console) invalidates every link and portal session the
contact had. No row is written per link, so every message can carry one.
"""

import hashlib
import secrets

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import Contact
from .statement_links import LinkExpired, LinkInvalid

PORTAL_SALT = "portal.link"

__all__ = ["LinkExpired", "LinkInvalid", "contact_for_token", "portal_token", "portal_url"]


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def ensure_key(contact: Contact) -> str:
    """The contact's portal key, made (and saved, that field alone) on first use."""
    if not contact.portal_key:
        key = secrets.token_hex(16)
        # Only where still empty: two workers making the first link race to one key.
        Contact.objects.filter(pk=contact.pk, portal_key="").update(portal_key=key)
        contact.portal_key = Contact.objects.values_list("portal_key", flat=True).get(pk=contact.pk)
    return contact.portal_key


def portal_token(contact: Contact) -> str:
    return signing.dumps([contact.pk, key_digest(ensure_key(contact))], salt=PORTAL_SALT)


def portal_url(contact: Contact) -> str:
    """The absolute URL that logs this contact into the portal, valid for the configured days."""
    path = reverse("portal:link", args=[portal_token(contact)])
    return settings.SITE_URL.rstrip("/") + path


def contact_for_token(token: str) -> Contact:
    """The contact a genuine, unexpired, unrevoked token names; LinkExpired or LinkInvalid."""
    max_age = settings.PORTAL_LINK_MAX_AGE_DAYS * 86400
    try:
        value = signing.loads(token, salt=PORTAL_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
        or not isinstance(value[1], str)
    ):
        raise LinkInvalid
    contact = Contact.objects.select_related("customer").filter(pk=value[0]).first()
    if contact is None or not contact.portal_key or value[1] != key_digest(contact.portal_key):
        raise LinkInvalid
    return contact


def revoke(contacts, *, by=None, reason: str = "") -> int:
    """A new key for each of these contacts: their links and portal sessions stop working.
    Each revocation goes on the customer's timeline, naming who and why."""
    from . import timeline
    from .models import Activity

    count = 0
    for contact in contacts:
        Contact.objects.filter(pk=contact.pk).update(portal_key=secrets.token_hex(16))
        timeline.add(
            Activity.Kind.OVERRIDE,
            customer=contact.customer_id,
            by=by,
            channel=Activity.Channel.PORTAL,
            text=f"Portal access of {contact.name} revoked" + (f": {reason}" if reason else ""),
            details={"action": "revoke_portal_access", "contact_id": contact.pk},
        )
        count += 1
    return count
