"""Reads several callers share: search over the ledger, the timeline, lookup lists."""

import re

from django.core.cache import cache
from django.db.models import Q, QuerySet

from .models import Activity, Contact, Customer, Invoice

# A search never expands into more customers than this; narrower terms find the rest.
MAX_MATCHED_CUSTOMERS = 2000


def customer_ids_matching(term: str) -> list[int]:
    """Customers whose name, reference, contact e-mail or phone matches the term.

    Materialised as a short id list so the invoice search can OR it with its own index
    conditions (a bitmap OR in PostgreSQL) instead of probing a subquery per row.
    """
    term = term.strip()
    if not term:
        return []
    contact_match = Q(email__iexact=term) if "@" in term else Q(email__icontains=term)
    digits = re.sub(r"\D", "", term).lstrip("0")  # national trunk prefix
    if len(digits) >= 6:
        contact_match |= Q(phone__contains=digits)
    by_customer = Customer.objects.filter(
        Q(name__icontains=term) | Q(external_ref=term)
    ).values_list("pk", flat=True)[:MAX_MATCHED_CUSTOMERS]
    by_contact = (
        Contact.objects.filter(contact_match)
        .values_list("customer_id", flat=True)
        .distinct()[:MAX_MATCHED_CUSTOMERS]
    )
    return sorted({*by_customer, *by_contact})


def search_customers(queryset: QuerySet, term: str) -> QuerySet:
    if not term.strip():
        return queryset
    return queryset.filter(pk__in=customer_ids_matching(term))


def search_invoices(queryset: QuerySet, term: str) -> QuerySet:
    """Invoices by number (exact or part) or by anything that finds their customer."""
    term = term.strip()
    if not term:
        return queryset
    return queryset.filter(
        Q(number__icontains=term) | Q(customer_id__in=customer_ids_matching(term))
    )


def invoice_currencies() -> list[str]:
    """Currencies in use on invoices, cached: a DISTINCT over a million rows is not free."""
    currencies = cache.get("invoice_currencies")
    if currencies is None:
        currencies = sorted(
            Invoice.objects.order_by().values_list("currency", flat=True).distinct()
        )
        cache.set("invoice_currencies", currencies, 600)
    return currencies


def timeline(customer: Customer) -> QuerySet:
    """The customer's timeline, newest first."""
    return Activity.objects.filter(customer=customer).select_related("actor", "invoice")
