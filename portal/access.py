"""Asking for access: a new link and a one-time code by e-mail, for an address we know.

`request_access` answers nothing: the page says the same whether or not the address is
known, and the sending happens in a Celery task, so the answer takes the same time either
way. Each contact with that address gets its own message (an address may belong to
contacts of several customers; each link and code opens only that contact's customer),
sent through the one sender as a transactional notice (dunning/transactional.py) with the
link and the code masked in what is stored.
"""

import datetime as dt
import hashlib
import hmac
import secrets

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Contact, Customer
from accounts.portal_links import portal_url

from .models import AccessCode
from .session import count

CODE_DIGITS = 6


def code_hash(code: str) -> str:
    key = hashlib.sha256(f"portal-code:{settings.SECRET_KEY}".encode()).digest()
    return hmac.new(key, code.encode(), hashlib.sha256).hexdigest()


def reachable_contacts(email: str):
    """Contacts with this e-mail whose customer may still use the portal."""
    return (
        Contact.objects.matching(email=email)
        .filter(customer__erased_at__isnull=True)
        .exclude(customer__status=Customer.Status.MERGED)
        .select_related("customer")
    )


def request_access(email: str) -> list[int]:
    """The contacts to send a link and a code to for this address: none if it is unknown or
    past PORTAL_ACCESS_REQUESTS_PER_HOUR. The caller queues `tasks.send_access` for them
    and must not show the result."""
    email = email.strip().lower()
    if not email:
        return []
    digest = hashlib.sha256(email.encode()).hexdigest()
    if count(f"portal:access:{digest}", window=3600) > settings.PORTAL_ACCESS_REQUESTS_PER_HOUR:
        return []
    return list(reachable_contacts(email).values_list("pk", flat=True)[:20])


def send_access(contact_id: int, *, now: dt.datetime | None = None):
    """Make a code for this contact and e-mail it with a fresh link; the notice sent."""
    from dunning import transactional

    now = now or timezone.now()
    contact = Contact.objects.select_related("customer").get(pk=contact_id)
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    row = AccessCode.objects.create(
        contact=contact,
        code_hash=code_hash(code),
        expires_at=now + dt.timedelta(minutes=settings.PORTAL_CODE_MINUTES),
    )
    return transactional.send(
        "portal_access",
        customer=contact.customer,
        contact=contact,
        context={
            "link": portal_url(contact),
            "code": code,
            "minutes": settings.PORTAL_CODE_MINUTES,
        },
        key=f"portal-access:{row.pk}",
        secrets=("link", "code"),
    )


def check_code(email: str, code: str, *, now: dt.datetime | None = None) -> Contact | None:
    """The contact whose live code this is (the code is then used up), or None.

    Live codes are those of contacts with this address, unused, unexpired and under
    PORTAL_CODE_ATTEMPTS; a wrong code counts one attempt against each of them, so
    guessing a six-digit code has PORTAL_CODE_ATTEMPTS tries per code sent.
    """
    now = now or timezone.now()
    code = "".join(char for char in code if char.isdigit())
    live = AccessCode.objects.filter(
        contact__in=reachable_contacts(email),
        used_at__isnull=True,
        expires_at__gt=now,
        attempts__lt=settings.PORTAL_CODE_ATTEMPTS,
    )
    with transaction.atomic():
        rows = list(live.select_for_update().order_by("-expires_at"))
        if len(code) == CODE_DIGITS:
            wanted = code_hash(code)
            for row in rows:
                if hmac.compare_digest(row.code_hash, wanted):
                    AccessCode.objects.filter(pk=row.pk).update(used_at=now)
                    return Contact.objects.select_related("customer").get(pk=row.contact_id)
        AccessCode.objects.filter(pk__in=[row.pk for row in rows]).update(
            attempts=F("attempts") + 1
        )
    return None
