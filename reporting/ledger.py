"""Balances as of any date, rebuilt from invoice and allocation dates.

An invoice's balance on a day is its amount less the allocations dated on or before that
day (payments, credit notes and write-off adjustments are positive rows; refunds and
chargebacks are negative rows that name the row they reverse). Allocation rows are never
edited, so any past balance can be rebuilt and last quarter's report reproduces exactly
after later payments, credit notes and refunds.

How it is computed. `accounts.services` keeps `open_balance = amount - Σ allocations` in
the same transaction as every allocation, so

    balance_as_of(d) = amount - Σ allocations dated <= d
                     = open_balance + Σ allocations dated > d

The second form touches only the allocations made *after* the report date: none for
today's report, a few months' worth for last quarter's, instead of the whole history.
Every function here uses it.

Approximations, because some facts carry no date:
- A cancelled invoice has no cancellation date: it is left out of every report, past
  ones included (treated as never issued).
- A written-off invoice counts from its write-off adjustment (an allocation of a
  `write_off` payment, dated) like any other allocation. A residual open balance left on
  a written-off invoice without such an adjustment (older data) is treated as written
  off on every date, so today's total always equals the outstanding open balances.
- The invoice's status (disputed or not) is today's status; disputes are not dated here.
"""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from django.db import connection
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from accounts.models import MONEY, Allocation, Invoice
from accounts.services import one_of

ZERO = Decimal("0.00")
_MONEY_FIELD = DecimalField(**MONEY)
# Statuses whose open balance is not a receivable today (see the module docstring).
NOT_RECEIVABLE_TODAY = (Invoice.Status.WRITTEN_OFF,)
EXCLUDED_STATUSES = (Invoice.Status.CANCELLED,)


def invoice_balances_as_of(
    as_of: dt.date, *, customer_ids: Iterable[int] | None = None
) -> QuerySet:
    """Invoices open on `as_of`, annotated with `balance_as_of` (Decimal, > 0).

    Issued on or before `as_of`, not cancelled, with a positive balance that day. The
    annotation is a correlated subquery over the allocations after `as_of` (served by
    the allocation_invoice_on index), evaluated only for invoices open today or touched
    since; for totals over a whole portfolio, `receivables_as_of` and the aging report
    join the later allocations once instead (see `balances_sql`).
    """
    later = Allocation.objects.filter(invoice=OuterRef("pk"), allocated_on__gt=as_of)
    later_total = later.order_by().values("invoice").annotate(total=Sum("amount")).values("total")
    queryset = Invoice.objects.filter(issued_on__lte=as_of).exclude(status__in=EXCLUDED_STATUSES)
    if customer_ids is not None:
        queryset = queryset.filter(one_of("customer_id", customer_ids))
    return queryset.annotate(
        balance_as_of=Case(
            When(status__in=NOT_RECEIVABLE_TODAY, then=Value(ZERO)),
            default=F("open_balance"),
            output_field=_MONEY_FIELD,
        )
        + Coalesce(Subquery(later_total, output_field=_MONEY_FIELD), Value(ZERO)),
    ).filter(
        # Cheap pre-filter first: only these rows can have a positive balance on as_of.
        (Q(open_balance__gt=0) & ~Q(status__in=NOT_RECEIVABLE_TODAY)) | Exists(later),
        balance_as_of__gt=0,
    )


def balances_sql(as_of: dt.date, *, customer_ids: Iterable[int] | None = None) -> tuple[str, list]:
    """The invoices open on `as_of` as one SQL derived table, with its parameters.

    Columns: invoice_id, customer_id, number, issued_on, due_on, currency, amount,
    status, balance_as_of — the same rows and balances as `invoice_balances_as_of`.
    Use it as `FROM (<sql>) AS open_items` in reports that aggregate in SQL.

    One probe of the allocation_allocated_on index picks the form (so the SQL is only
    valid for a query made right away):
    - no allocation is dated after `as_of` (today's report): the balance is the open
      balance, and the invoices are read alone, with no join;
    - otherwise the allocations after `as_of` are added back, hash-joined, which beats a
      per-invoice subquery when the whole portfolio is read (1M invoices). They come in
      two parts. The rows numbered 1 (an invoice's first allocation; Allocation.seq) are
      at most one per invoice, so they are joined as they are: PostgreSQL builds one
      shared hash of them for all its parallel workers. Only the rows numbered 2 and up
      (partial payments after the first, reversals: 702 of a quarter's 134,264 in the
      bench) are summed per invoice first, which each worker repeats, cheaply. Summing
      all of them per invoice made each worker sort and sum the whole quarter again.
      An invoice without later allocations skips the addition.
    """
    quote = connection.ops.quote_name
    invoice_table = quote(Invoice._meta.db_table)
    allocation_table = quote(Allocation._meta.db_table)
    customer_filter, customer_params = "", []
    if customer_ids is not None:
        ids = list(customer_ids)
        if connection.vendor == "postgresql":
            customer_filter, customer_params = "AND i.customer_id = ANY(%s) ", [ids]
        elif ids:
            customer_filter = f"AND i.customer_id IN ({', '.join(['%s'] * len(ids))}) "
            customer_params = ids
        else:
            customer_filter = "AND 1 = 0 "
    columns = (
        "i.id AS invoice_id, i.customer_id, i.number, i.issued_on, i.due_on, i.currency,"
        " i.amount, i.status"
    )
    if not Allocation.objects.filter(allocated_on__gt=as_of).exists():
        not_counted = ", ".join(["%s"] * len(EXCLUDED_STATUSES + NOT_RECEIVABLE_TODAY))
        sql = (
            f"SELECT {columns}, i.open_balance AS balance_as_of FROM {invoice_table} i "  # noqa: S608
            f"WHERE i.issued_on <= %s AND i.status NOT IN ({not_counted}) {customer_filter}"
            "AND i.open_balance > 0"
        )
        return sql, [as_of, *EXCLUDED_STATUSES, *NOT_RECEIVABLE_TODAY, *customer_params]
    not_today = ", ".join(["%s"] * len(NOT_RECEIVABLE_TODAY))
    excluded = ", ".join(["%s"] * len(EXCLUDED_STATUSES))
    today = f"CASE WHEN i.status IN ({not_today}) THEN 0 ELSE i.open_balance END"
    balance = (
        "(CASE WHEN first_alloc.invoice_id IS NULL AND more_alloc.invoice_id IS NULL "
        f"THEN {today} ELSE {today} + COALESCE(first_alloc.amount, 0)"
        " + COALESCE(more_alloc.total, 0) END)"
    )
    sql = (
        f"SELECT {columns}, {balance} AS balance_as_of "  # noqa: S608
        f"FROM {invoice_table} i "
        f"LEFT JOIN (SELECT invoice_id, amount FROM {allocation_table} "
        "WHERE allocated_on > %s AND seq = 1) first_alloc ON first_alloc.invoice_id = i.id "
        "LEFT JOIN (SELECT invoice_id, SUM(amount) AS total "
        f"FROM {allocation_table} WHERE allocated_on > %s AND seq > 1 GROUP BY invoice_id) "
        "more_alloc ON more_alloc.invoice_id = i.id "
        f"WHERE i.issued_on <= %s AND i.status NOT IN ({excluded}) {customer_filter}"
        f"AND {balance} > 0"
    )
    params = [
        *NOT_RECEIVABLE_TODAY * 2,  # the selected balance
        as_of,  # first allocations after as_of
        as_of,  # further allocations after as_of
        as_of,  # issued on or before as_of
        *EXCLUDED_STATUSES,
        *customer_params,
        *NOT_RECEIVABLE_TODAY * 2,  # the balance in WHERE
    ]
    return sql, params


def receivables_as_of(
    as_of: dt.date, *, customer_ids: Iterable[int] | None = None
) -> dict[str, Decimal]:
    """Total open on `as_of` per currency, e.g. {"EUR": Decimal("1200.00"), ...}.

    One aggregate query; currencies are never added together.
    """
    sql, params = balances_sql(as_of, customer_ids=customer_ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT currency, SUM(balance_as_of) FROM "  # noqa: S608
            f"({sql}) open_items GROUP BY currency ORDER BY currency",
            params,
        )
        return {currency: _money(total) for currency, total in cursor.fetchall()}


def _money(value) -> Decimal:
    """A SUM as Decimal with two places (SQLite may hand back int or float-free text)."""
    return Decimal(str(value)).quantize(Decimal("0.01")) if value is not None else ZERO
