"""The debtor's automatic payment on the portal: see it, set it up through Stripe, cancel it.

Offered only when Stripe is configured (integrations/gateways/autopay.py `is_available`):
otherwise the page says so and shows no button. Setting up is a POST (CSRF) that sends the
debtor to Stripe Checkout in setup mode; Stripe's webhook then makes the mandate, so the
page they come back to may say "confirming" for a few seconds.
"""

import contextlib
import logging

import stripe
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from integrations.gateways import autopay
from integrations.models import AutopayCharge

from .session import portal_view

logger = logging.getLogger(__name__)


@require_http_methods(["GET", "POST"])
@portal_view
def autopay_page(request):
    """GET: the active mandate and the recent charges, or the set-up button. POST: begin
    the set-up and go to Stripe."""
    customer, contact = request.customer, request.contact
    error = ""
    if request.method == "POST" and autopay.is_available():
        back = request.build_absolute_uri(reverse("portal:autopay"))
        try:
            return HttpResponseRedirect(autopay.start_setup(customer, contact, back))
        except (stripe.StripeError, ValidationError):
            logger.exception("portal: automatic payment set-up failed for customer %s", customer.pk)
            error = _("Automatic payment cannot be set up right now. Please try again later.")
    mandate = autopay.active_mandate(customer)
    charges = (
        AutopayCharge.objects.filter(invoice__customer=customer)
        .select_related("invoice")
        .order_by("-created_at", "-id")[:10]
    )
    return render(
        request,
        "portal/autopay.html",
        {
            "company_name": settings.COMPANY_NAME,
            "company_email": settings.DEFAULT_FROM_EMAIL,
            "customer": customer,
            "contact": contact,
            "is_available": autopay.is_available(),
            "charges_overdue": settings.AUTOPAY_CHARGE_OVERDUE,
            "mandate": mandate,
            "charges": charges,
            "error": error,
            "returned": request.GET.get("autopay") == "done" and mandate is None,
            "cancelled": request.GET.get("cancelled") == "1" and mandate is None,
        },
        status=503 if error else 200,
    )


@require_POST
@portal_view
def autopay_cancel(request):
    """Cancel the customer's active automatic payment: the debtor's own decision."""
    mandate = autopay.active_mandate(request.customer)
    if mandate is not None:
        # Cancelled meanwhile (another tab): the page shows how it is now.
        with contextlib.suppress(ValidationError, PermissionDenied):
            autopay.cancel(mandate, request.contact, _("cancelled on the portal"))
    return HttpResponseRedirect(reverse("portal:autopay") + "?cancelled=1")
