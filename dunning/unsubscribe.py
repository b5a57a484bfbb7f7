"""E-mail opt-out: signed unsubscribe links, the public page behind them, and the opt-out itself."""

import hashlib
import hmac
import re

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from accounts import timeline
from accounts.models import Activity, Contact

from .wording import wording

UNSUBSCRIBE_SALT = "dunning.unsubscribe"
LINK_SOURCE = "unsubscribe link"


def _address_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def token_for(contact: Contact) -> str:
    """A signature over the contact and a digest of its address (not the address itself).

    No expiry: the law wants the opt-out to work for as long as the e-mail can be read.
    A changed address makes old links invalid, so they cannot opt out the new one.
    """
    return signing.dumps([contact.pk, _address_digest(contact.email)], salt=UNSUBSCRIBE_SALT)


def url_for(contact: Contact) -> str:
    path = reverse("dunning:unsubscribe", args=[token_for(contact)])
    return settings.SITE_URL.rstrip("/") + path


def links_to(text: str, contact: Contact | None) -> bool:
    """Whether the text holds a genuine unsubscribe link for this contact (any of its tokens)."""
    if contact is None:
        return False
    prefix = reverse("dunning:unsubscribe", args=["TOKEN"]).split("TOKEN")[0]
    for token in re.findall(re.escape(prefix) + r"([\w:.-]+)/", text):
        try:
            if contact_for_token(token).pk == contact.pk:
                return True
        except Http404:
            continue
    return False


def contact_for_token(token: str) -> Contact:
    """The contact a genuine link names, if it still has that address; 404 otherwise."""
    try:
        contact_id, digest = signing.loads(token, salt=UNSUBSCRIBE_SALT)
    except (signing.BadSignature, TypeError, ValueError) as exc:
        raise Http404 from exc
    if not isinstance(contact_id, int) or not isinstance(digest, str):
        raise Http404
    contact = Contact.objects.select_related("customer").filter(pk=contact_id).first()
    if contact is None or not contact.email:
        raise Http404
    if not hmac.compare_digest(_address_digest(contact.email), digest):
        raise Http404
    return contact


def opt_out_email(
    *, email: str, source: str, details: dict | None = None, at=None
) -> list[Contact]:
    """Opt every contact with this address out of e-mail; returns those it changed.

    The address, not one contact, is what the recipient asked about (or what bounced), so
    all of its contacts stop receiving e-mail, as an SMS STOP does for a number. Each
    contact is changed by a conditional UPDATE and trusts its row count: a contact already
    opted out keeps its first date and source, and two requests at once (a one-click POST
    and a provider complaint, say) write one timeline entry, not two.
    """
    email = email.strip()
    if not email:
        return []
    at = at or timezone.now()
    changed = []
    candidates = Contact.objects.matching(email=email).filter(email_opted_out_at__isnull=True)
    for contact in candidates.select_related("customer"):
        claimed = Contact.objects.filter(pk=contact.pk, email_opted_out_at__isnull=True).update(
            email_opted_out_at=at, email_opt_out_source=source[:100], updated_at=at
        )
        if claimed != 1:
            continue
        contact.email_opted_out_at, contact.email_opt_out_source = at, source[:100]
        timeline.add(
            customer=contact.customer,
            kind=Activity.Kind.HOLD_CHANGE,
            channel=Activity.Channel.EMAIL,
            text=f"{contact.name} opted out of e-mail ({source})",
            details={"contact": contact.pk, "email_opted_out": True, "source": source}
            | (details or {}),
            at=at,
        )
        changed.append(contact)
    return changed


def _masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


# The signed token is the authorisation. RFC 8058 one-click requests are POSTs from the
# mailbox provider with no session and no CSRF token; a forged POST needs the token anyway.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks to confirm (mail scanners follow links); POST opts the address out.

    The POST is also the RFC 8058 one-click unsubscribe that mail clients send to the
    List-Unsubscribe URL with the body List-Unsubscribe=One-Click.
    """
    contact = contact_for_token(token)
    words = wording(contact.customer.language)
    if request.method == "POST":
        one_click = request.POST.get("List-Unsubscribe") == "One-Click"
        opt_out_email(
            email=contact.email,
            source=LINK_SOURCE,
            details={"via": "one-click" if one_click else "unsubscribe page"},
        )
        state = "done"
    else:
        state = "already" if contact.email_opted_out_at else "ask"
    values = {"company": settings.COMPANY_NAME, "email": _masked(contact.email)}
    return render(
        request,
        "dunning/unsubscribe.html",
        {
            "state": state,
            "language": contact.customer.language,
            "title": words["page_title"],
            "question": words["page_question"].format(**values),
            "button": words["page_button"],
            "done": words["page_done"].format(**values),
            "already": words["page_already"].format(**values),
            "note": words["page_note"],
        },
    )
