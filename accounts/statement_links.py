"""What a debtor pays with when no payment provider is set up: a signed, expiring link to
their own statement page (served by `portal`), and the bank-transfer reference that the
reconciliation matcher recognises.

The token is a signature (django.core.signing, with its own salt) over one customer's id
and the customer's reference, timestamped: it opens that customer's page and nothing
else, cannot be made up or changed to another id (no enumeration), and expires after
STATEMENT_LINK_MAX_AGE_DAYS. A customer whose reference changes gets new links.
"""

import hashlib

from django.conf import settings
from django.core import signing
from django.urls import reverse

from .models import Customer, Invoice

STATEMENT_SALT = "portal.statement"
# SEPA's unstructured remittance field holds 140 characters; most banks' forms fewer.
MAX_REFERENCE_LENGTH = 140


class LinkExpired(Exception):
    """A genuine statement link, past STATEMENT_LINK_MAX_AGE_DAYS."""


class LinkInvalid(Exception):
    """Not a statement link this product signed (or one for a customer since changed)."""


def _ref_digest(customer: Customer) -> str:
    return hashlib.sha256(customer.external_ref.encode()).hexdigest()[:12]


def statement_token(customer: Customer) -> str:
    return signing.dumps([customer.pk, _ref_digest(customer)], salt=STATEMENT_SALT)


def statement_url(customer: Customer) -> str:
    """The absolute URL of the customer's statement page, valid for the configured days."""
    path = reverse("portal:statement", args=[statement_token(customer)])
    return settings.SITE_URL.rstrip("/") + path


def customer_for_token(token: str) -> Customer:
    """The one customer a genuine, unexpired token names; LinkExpired or LinkInvalid."""
    max_age = settings.STATEMENT_LINK_MAX_AGE_DAYS * 86400
    try:
        value = signing.loads(token, salt=STATEMENT_SALT, max_age=max_age)
    except signing.SignatureExpired as exc:
        raise LinkExpired from exc
    except signing.BadSignature as exc:
        raise LinkInvalid from exc
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or isinstance(value[0], bool)
    ):
        raise LinkInvalid
    customer = Customer.objects.filter(pk=value[0]).first()
    if customer is None or value[1] != _ref_digest(customer):
        raise LinkInvalid
    return customer


def _quotable(word: str) -> bool:
    """A word the matcher reads as a number (integrations/reconciliation: 3+ characters,
    with a digit, letters, digits and - _ . only)."""
    return (
        len(word) >= 3
        and any(char.isdigit() for char in word)
        and all(char.isalnum() or char in "-_." for char in word)
    )


def transfer_reference(customer: Customer, invoices: list[Invoice]) -> str:
    """The reference to write on a bank transfer paying these invoices.

    The invoice numbers (the matcher books a payment quoting them to those invoices, and
    they name the payer), led by the customer's reference when it reads as one (it names
    the payer even when the numbers do not fit). Whole words only, within 140 characters:
    the oldest invoices first when they do not all fit.
    """
    words = [customer.external_ref] if _quotable(customer.external_ref) else []
    for invoice in sorted(invoices, key=lambda i: (i.due_on, i.number)):
        if len(" ".join([*words, invoice.number])) > MAX_REFERENCE_LENGTH:
            break
        words.append(invoice.number)
    return " ".join(words)
