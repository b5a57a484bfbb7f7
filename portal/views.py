"""The customer's statement page: /statement/<token>/, opened from a message, no login."""

import time

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.statement_links import LinkExpired, LinkInvalid, customer_for_token
from staff.lockout import client_ip

from . import statement


def _over_the_limit(request) -> bool:
    """One more request from this client address this minute; True past the limit.

    Counted before the token is read, so guessing tokens costs the same as reading pages
    (and a signature cannot be guessed anyway). The counter lives in the cache (Redis in
    production: shared by every web node), one key per address and minute.
    """
    key = f"portal:statement:{client_ip(request)}:{int(time.time() // 60)}"
    cache.add(key, 0, timeout=90)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=90)
        count = 1
    return count > settings.STATEMENT_PAGE_REQUESTS_PER_MINUTE


@never_cache
@require_GET
def statement_page(request, token: str):
    """The open invoices and balance per currency of the one customer the token names,
    with how to pay: an invoice's own pay link where it has one, and bank transfer
    instructions with the reference the reconciliation matcher books by.

    1. Too many requests from one address: 429, whatever the token.
    2. A forged, altered or unknown token: 404, the same answer as any wrong address.
    3. An expired one: 410 and a page saying how to reach us for a new link.
    """
    if _over_the_limit(request):
        response = HttpResponse(
            "Too many requests; try again in a minute.", status=429, content_type="text/plain"
        )
        response["Retry-After"] = "60"
        return response
    try:
        customer = customer_for_token(token)
    except LinkInvalid as exc:
        raise Http404 from exc
    except LinkExpired:
        return render(request, "portal/expired.html", _company(), status=410)
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        content = statement.build(customer, as_of=timezone.localdate())
        response = render(
            request,
            "portal/statement.html",
            {**_company(), "statement": content, "customer": customer},
        )
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to pay pages
    return response


def _company() -> dict:
    return {"company_name": settings.COMPANY_NAME, "company_email": settings.DEFAULT_FROM_EMAIL}
