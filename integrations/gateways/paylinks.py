"""Pay links: each open invoice's payment URL, our pay page or a configured template."""

from decimal import Decimal
from urllib.parse import quote

import stripe
from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import Activity, Invoice

from .minor_units import to_minor_units

# Salt of the signed invoice id in pay page URLs (/pay/<token>/).
PAY_LINK_SALT = "pay-link"


def ensure_pay_link(invoice: Invoice, *, force: bool = False, by=None) -> str:
    """The invoice's payment URL, created and stored on first use.

    1. An invoice that already has a link keeps it unless `force`.
    2. With STRIPE_API_KEY, our own pay page (`pay_page_url`): a Checkout Session expires
       after 24 hours but notices go out for weeks, so the page makes a fresh session for
       the balance open when the customer clicks. Otherwise PAY_LINK_TEMPLATE filled in.
    3. Lock the invoice and store the link, unless another process stored one meanwhile
       (then that one wins and is returned), with a timeline entry.
    """
    current = Invoice.objects.select_related("customer").get(pk=invoice.pk)
    if current.pay_link and not force:
        invoice.pay_link = current.pay_link
        return current.pay_link
    if not current.is_outstanding:
        raise ValidationError(
            _("Invoice %(n)s is %(status)s; it needs no pay link.")
            % {"n": current.number, "status": current.get_status_display().lower()}
        )
    url = pay_page_url(current) if settings.STRIPE_API_KEY else template_url(current)
    with transaction.atomic():
        before = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)
        if before.pay_link and not force:
            invoice.pay_link = before.pay_link
            return before.pay_link
        Invoice.objects.filter(pk=invoice.pk).update(pay_link=url, updated_at=timezone.now())
        after = Invoice(pk=before.pk, pay_link=url)
        timeline.field_changes(
            before=before,
            after=after,
            kinds={"pay_link": Activity.Kind.STATUS_CHANGE},
            by=by,
            customer=before.customer,
            invoice=before,
        )
    invoice.pay_link = url
    return url


def pay_page_url(invoice: Invoice) -> str:
    """The absolute URL of /pay/<token>/, the token a signature naming only this invoice."""
    token = signing.dumps(invoice.pk, salt=PAY_LINK_SALT)
    return settings.SITE_URL.rstrip("/") + reverse("pay-link", args=[token])


def template_url(invoice: Invoice) -> str:
    values = {
        "number": invoice.number,
        "customer_ref": invoice.customer.external_ref,
        "amount": str(invoice.open_balance),
        "currency": invoice.currency,
        "id": str(invoice.pk),
    }
    try:
        url = settings.PAY_LINK_TEMPLATE.format_map(
            {k: quote(v, safe="") for k, v in values.items()}
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"PAY_LINK_TEMPLATE may use only {{{'}, {'.join(values)}}}: {exc}"
        ) from exc
    return url


def create_checkout_session(
    invoice: Invoice,
    *,
    idempotency_key: str,
    amount: Decimal | None = None,
    success_url: str = "",
    cancel_url: str = "",
) -> str:
    """A Stripe Checkout Session for the invoice's open balance (or `amount` of it, the
    debtor portal's partial payment); returns its URL.

    Its metadata names the invoice and the customer, so the webhook can apply the payment.
    The same `idempotency_key` within Stripe's 24 h window returns the same session.
    """
    amount = invoice.open_balance if amount is None else amount
    metadata = {"invoice_number": invoice.number, "customer_ref": invoice.customer.external_ref}
    params = {
        "mode": "payment",
        "line_items": [
            {
                "quantity": 1,
                "price_data": {
                    "currency": invoice.currency.lower(),
                    "unit_amount": to_minor_units(amount, invoice.currency),
                    "product_data": {"name": _("Invoice %(n)s") % {"n": invoice.number}},
                },
            }
        ],
        "client_reference_id": invoice.number,
        "metadata": metadata,
        # The PaymentIntent (and so its charge) carries the same metadata, so
        # payment_intent.succeeded and charge.refunded find the invoice too.
        "payment_intent_data": {"metadata": metadata},
    }
    success_url = success_url or getattr(settings, "PAY_LINK_SUCCESS_URL", "")
    if success_url:
        params["success_url"] = success_url
    if cancel_url:
        params["cancel_url"] = cancel_url
    session = stripe.checkout.Session.create(
        api_key=settings.STRIPE_API_KEY, idempotency_key=idempotency_key, **params
    )
    return session.url
