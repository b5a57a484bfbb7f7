"""The customer-facing pay page behind every Stripe pay link: /pay/<token>/."""

import logging

import stripe
from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Invoice

from .minor_units import to_minor_units
from .paylinks import PAY_LINK_SALT, create_checkout_session, template_url

logger = logging.getLogger(__name__)


def invoice_for_token(token: str) -> Invoice:
    """The one invoice the signed token names; 404 for anything forged or unknown."""
    try:
        invoice_id = signing.loads(token, salt=PAY_LINK_SALT)
    except signing.BadSignature as exc:
        raise Http404 from exc
    if not isinstance(invoice_id, int) or isinstance(invoice_id, bool):
        raise Http404
    try:
        return Invoice.objects.select_related("customer").get(pk=invoice_id)
    except Invoice.DoesNotExist as exc:
        raise Http404 from exc


@never_cache
@require_GET
def pay_page(request, token: str):
    """Send the customer to a payment page for what the invoice owes now.

    1. The token is a signature over the invoice id alone (no expiry: notices are chased
       for months), so it opens this one invoice and nothing else.
    2. A paid, cancelled or written-off invoice answers a small page saying so.
    3. With Stripe, a new Checkout Session for the current open balance (a session lives
       24 hours; the link in a notice lives as long as the invoice is open). Visits in the
       same hour for the same balance share one session through Stripe's idempotency key.
    4. Without Stripe, PAY_LINK_TEMPLATE filled in with the current balance.
    """
    invoice = invoice_for_token(token)
    if not invoice.is_outstanding:
        return render(
            request,
            "integrations/pay_closed.html",
            {"invoice": invoice, "is_paid": invoice.status == Invoice.Status.PAID},
        )
    if not settings.STRIPE_API_KEY:
        return HttpResponseRedirect(template_url(invoice))
    try:
        minor = to_minor_units(invoice.open_balance, invoice.currency)
        hour = timezone.now().strftime("%Y%m%d%H")
        url = create_checkout_session(
            invoice, idempotency_key=f"pay-page:{invoice.pk}:{minor}:{hour}"
        )
    except (stripe.StripeError, ValidationError):
        logger.exception("pay page: no checkout session for invoice %s", invoice.pk)
        return render(
            request,
            "integrations/pay_closed.html",
            {"invoice": invoice, "is_unavailable": True},
            status=503,
        )
    return HttpResponseRedirect(url)
