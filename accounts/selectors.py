"""Reads several callers share: search over the ledger, the timeline, lookup lists."""

import re

from django.core.cache import cache
from django.db.models import Q, QuerySet

from .models import Activity, Contact, Customer, Invoice

# A search never expands into more customers than this; narrower terms find the rest.
MAX_MATCHED_CUSTOMERS = 2000
# Up to this many matching invoices the list is built from their ids, not by walking dates.
# Measured at 1M invoices: ~10,000 matches by the date walk (and its capped count) take
# 200-300 ms, by their ids ~30 ms. Past 30,000 matches (3%) the walk meets them quickly.
# (SQLite accepts at most 32,766 parameters in one query.)
SPARSE_MATCHES = 30_000
PHONE_TERM = re.compile(r"\+?[\d\s().-]+")
# pg_trgm cannot serve a LIKE pattern shorter than this; shorter terms match exactly.
MIN_INFIX_CHARS = 3


def _customer_matches(term: str) -> tuple[QuerySet, QuerySet]:
    """Unordered id querysets: customers by name or reference, and by contact e-mail/phone."""
    is_infix = len(term) >= MIN_INFIX_CHARS
    by_name = Q(name__icontains=term) if is_infix else Q(name__iexact=term)
    # E-mails and phones are encrypted: found by exact value through their keyed hashes
    # (an e-mail in any case, a phone in any form that parses as international).
    email = term if "@" in term else ""
    # A phone is digits with the signs people write numbers with (not "INV-123456").
    is_phone = PHONE_TERM.fullmatch(term) and len(re.sub(r"\D", "", term)) >= 6
    phone = term if is_phone else ""
    regions = customer_countries() if phone and not phone.startswith("+") else ()
    by_customer = (
        Customer.objects.filter(by_name | Q(external_ref=term))
        .order_by()
        .values_list("pk", flat=True)
    )
    by_contact = (
        Contact.objects.matching(email=email, phone=phone, regions=regions)
        .order_by()
        .values_list("customer_id", flat=True)
        .distinct()
    )
    return by_customer, by_contact


def customer_countries() -> list[str]:
    """The customers' countries: the regions in which a phone number typed in national
    form is read for a search (asked only for such a term)."""
    return sorted(
        Customer.objects.exclude(country="").order_by().values_list("country", flat=True).distinct()
    )


def customer_ids_matching(term: str) -> list[int] | None:
    """Ids of the customers a search term finds, or None when more than MAX_MATCHED_CUSTOMERS.

    A short list lets the caller use the customer index directly instead of probing a
    subquery for every row; past the limit the caller should use `customers_matching`.
    """
    term = term.strip()
    if not term:
        return []
    by_customer, by_contact = _customer_matches(term)
    ids = {*by_customer[: MAX_MATCHED_CUSTOMERS + 1], *by_contact[: MAX_MATCHED_CUSTOMERS + 1]}
    return sorted(ids) if len(ids) <= MAX_MATCHED_CUSTOMERS else None


def customers_matching(term: str, field: str = "pk") -> Q:
    """The search as a condition on `field` (a customer id column), complete at any size."""
    by_customer, by_contact = _customer_matches(term.strip())
    return Q(**{f"{field}__in": by_customer}) | Q(**{f"{field}__in": by_contact})


def search_customers(queryset: QuerySet, term: str) -> QuerySet:
    term = term.strip()
    if not term:
        return queryset
    ids = customer_ids_matching(term)
    return queryset.filter(customers_matching(term) if ids is None else Q(pk__in=ids))


def search_invoices(queryset: QuerySet, term: str) -> QuerySet:
    """Invoices by number (exact or part) or by anything that finds their customer.

    1. Find the matching customers, as a short id list when there are few.
    2. When the matching invoices are few, filter on their ids: PostgreSQL then fetches
       exactly those rows and sorts them, instead of walking the due-date index through a
       million rows in the hope of meeting them early (its estimate for "these customers'
       invoices" is too coarse to choose well).
    3. When they are many, filter with subqueries: the date walk meets matches quickly.
    """
    term = term.strip()
    if not term:
        return queryset
    if len(term) >= MIN_INFIX_CHARS:
        by_number = Q(number__icontains=term)
    else:
        by_number = Q(number__iexact=term)
    customer_ids = customer_ids_matching(term)
    if customer_ids is not None:
        ids = {
            # No LIMIT here: bounded by these customers' invoices, and a LIMIT invites a scan.
            *Invoice.objects.filter(customer_id__in=customer_ids)
            .order_by()
            .values_list("pk", flat=True),
            *Invoice.objects.filter(by_number)
            .order_by()
            .values_list("pk", flat=True)[: SPARSE_MATCHES + 1],
        }
        if len(ids) <= SPARSE_MATCHES:
            return queryset.filter(pk__in=ids)
    return queryset.filter(by_number | customers_matching(term, field="customer_id"))


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
