"""Who is using the portal: the contact (and so the one customer) a link or a code logged in.

The session holds the contact's id and a digest of the contact's portal key at login: a
revoked key (accounts/portal_links.revoke) ends the session on the next request. A portal
session ends after PORTAL_SESSION_MINUTES without a request (checked on the server, so it
holds whatever the browser's clock says). Every portal request, logged in or
not, counts against PORTAL_REQUESTS_PER_MINUTE for its client address.
"""

import functools
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache

from accounts import timeline
from accounts.models import Activity, Contact
from accounts.portal_links import ensure_key, key_digest
from staff.lockout import client_ip

CONTACT = "portal_contact"
KEY = "portal_key"
SEEN = "portal_seen"  # when the portal session was last used (Unix seconds, server clock)
LANGUAGES = {code for code, _name in settings.LANGUAGES}


def count(key: str, *, window: int) -> int:
    """One more hit on a counter living `window` seconds in the cache (shared by every web
    node in production: Redis); returns the count in this window."""
    bucket = f"{key}:{int(time.time() // window)}"
    cache.add(bucket, 0, timeout=window + 30)
    try:
        return cache.incr(bucket)
    except ValueError:  # expired between add and incr
        cache.add(bucket, 1, timeout=window + 30)
        return 1


def over_the_limit(request: HttpRequest) -> bool:
    return count(f"portal:ip:{client_ip(request)}", window=60) > settings.PORTAL_REQUESTS_PER_MINUTE


def too_many() -> HttpResponse:
    response = HttpResponse(
        "Too many requests; try again in a minute.", status=429, content_type="text/plain"
    )
    response["Retry-After"] = "60"
    return response


def private(response: HttpResponse) -> HttpResponse:
    """Headers every portal page carries: never indexed, the address never sent on."""
    response["X-Robots-Tag"] = "noindex, nofollow"
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form
    # posts, which the CSRF check refuses; off the site no referrer leaves either way.
    response["Referrer-Policy"] = "same-origin"
    return response


def language_of(customer) -> str:
    return customer.language if customer.language in LANGUAGES else settings.LANGUAGE_CODE


def login(request: HttpRequest, contact: Contact, *, via: str) -> None:
    """Log this contact into the portal (a new session key: no fixation) and note the visit
    on the customer's timeline."""
    request.session.cycle_key()
    request.session[CONTACT] = contact.pk
    request.session[KEY] = key_digest(ensure_key(contact))
    request.session[SEEN] = int(timezone.now().timestamp())
    timeline.add(
        Activity.Kind.PORTAL,
        customer=contact.customer,
        channel=Activity.Channel.PORTAL,
        text=f"{contact.name} opened the portal ({via})",
        details={"contact_id": contact.pk, "via": via, "action": "visit"},
    )


def logout(request: HttpRequest) -> None:
    for name in (CONTACT, KEY, SEEN):
        request.session.pop(name, None)
    request.session.cycle_key()


def current_contact(request: HttpRequest) -> Contact | None:
    """The logged-in contact, or None (not logged in, or the contact's key was revoked)."""
    contact_id = request.session.get(CONTACT)
    if not isinstance(contact_id, int):
        return None
    now = int(timezone.now().timestamp())
    seen = request.session.get(SEEN)
    if not isinstance(seen, int) or now - seen > settings.PORTAL_SESSION_MINUTES * 60:
        logout(request)
        return None
    contact = Contact.objects.select_related("customer").filter(pk=contact_id).first()
    if (
        contact is None
        or not contact.portal_key
        or request.session.get(KEY) != key_digest(contact.portal_key)
    ):
        logout(request)
        return None
    if now - seen > 60:  # written at most once a minute
        request.session[SEEN] = now
    return contact


def portal_view(view):
    """A portal page: rate-limited, logged in (else to the sign-in page), in the customer's
    language, never cached or indexed. Sets request.contact and request.customer."""

    @functools.wraps(view)
    @never_cache
    def wrapped(request: HttpRequest, *args, **kwargs):
        if over_the_limit(request):
            return too_many()
        contact = current_contact(request)
        if contact is None:
            return redirect("portal:login")
        request.contact = contact
        request.customer = contact.customer
        with translation.override(language_of(contact.customer)):
            response = view(request, *args, **kwargs)
            if hasattr(response, "render") and callable(response.render):
                response = response.render()
        return private(response)

    return wrapped


def public_view(view):
    """A portal page before login (sign-in, code, link): rate-limited, never cached or
    indexed, in the browser's language as Django's locale middleware chose it."""

    @functools.wraps(view)
    @never_cache
    def wrapped(request: HttpRequest, *args, **kwargs):
        if over_the_limit(request):
            return too_many()
        return private(view(request, *args, **kwargs))

    return wrapped
