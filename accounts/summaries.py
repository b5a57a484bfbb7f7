"""The customer's collection summary: amount past due, oldest due date, kept on the row.

The customer list sorts and filters 200,000 customers by amount past due, days past due,
risk and next action. Aggregating a million invoices for each page view cannot be fast,
so the figures are kept on the customer row (columns `past_due_amount`,
`past_due_currency`, `past_due_currencies`, `oldest_due_on`, `past_due_changed_on`; the next
action's columns are kept by `cases.summaries`) and indexed, and the list is one index
scan on one table.

Why columns on the customer and not a one-to-one summary table: the list then needs no
join. A LEFT JOIN to a summary table cannot be ordered by the summary's index (the
planner must keep customers without a summary row), so every sorted page would sort all
customers; an INNER JOIN would hide a customer whose row is missing. A column with a
database default exists for every customer however it was created (forms, the API, the
intake's COPY writer). `Customer.save` leaves these columns alone, so an edit made on a
stale copy never writes an old balance back.

Kept up to date in two ways:

1. The ledger's services that move one invoice's balance or status (a new or changed
   invoice, an allocation, a refund, a reversed write-off) call
   `refresh_past_due(customer_ids=...)` in their own transaction, so the list is right
   as soon as the payment is booked. The bulk paths (`services.allocate_many`, so
   reconciliation and write-offs; the intake's invoice upserts) queue the same refresh
   to a worker when they commit (`services.refresh_past_due_later`): rewriting a
   customer row touches every index of the customer table, which inline cost
   reconciliation a quarter of its booking time.
2. The nightly case-work run calls it for every customer (`customer_ids=None`): an
   invoice that falls due overnight is past due tomorrow with no write to the ledger.

`oldest_due_on` is the due date of the oldest open invoice, due or not, so the days past
due (today minus that date) are right on any day without a refresh; `past_due_amount` is
as of the last refresh (the night, or the last ledger write);
`past_due_changed_on` is the day the figures last changed. Rows whose figures did not
change are not written, so a night's refresh rewrites only the customers whose debt moved.

Amounts are never added across currencies: `past_due_amount` is the largest past-due
total in any one currency (the worklist's rule), `past_due_currency` names it and
`past_due_currencies` says how many currencies are past due.

One statement either way, portable SQL (PostgreSQL and SQLite): an UPDATE from the
aggregated open invoices, which writes only the rows whose figures changed.
"""

import datetime as dt
from collections.abc import Iterable

from django.db import connection
from django.utils import timezone

from .models import Customer, Invoice, InvoiceQuerySet

CHUNK = 20_000  # customers per UPDATE in a full refresh: short locks, bounded memory
ID_BATCH = 5_000  # ids per UPDATE when named (parameter limits of both backends)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _distinct(column: str) -> str:
    """The stored `column` differs from the computed one (NULL-safe on both backends)."""
    operator = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return f"{_table(Customer)}.{column} {operator} figures.{column}"


def _update_sql(scope: str) -> str:
    statuses = ", ".join(["%s"] * len(InvoiceQuerySet.OPEN_STATUSES))
    columns = ("past_due_amount", "past_due_currency", "past_due_currencies", "oldest_due_on")
    changed = " OR ".join(_distinct(column) for column in columns)
    # The chunk's customers without an open invoice get zeros (LEFT JOIN from the chunk).
    return f"""
        WITH per_currency AS (
            SELECT i.customer_id, i.currency,
                SUM(CASE WHEN i.due_on < %s THEN i.open_balance ELSE 0 END) AS past_due,
                MIN(i.due_on) AS oldest_due_on
            FROM {_table(Invoice)} i
            WHERE i.status IN ({statuses}) AND i.open_balance > 0
                AND {scope.format(col="i.customer_id")}
            GROUP BY i.customer_id, i.currency
        ),
        ranked AS (
            SELECT customer_id, currency, past_due, oldest_due_on,
                ROW_NUMBER() OVER (
                    PARTITION BY customer_id ORDER BY past_due DESC, currency
                ) AS position,
                SUM(CASE WHEN past_due > 0 THEN 1 ELSE 0 END)
                    OVER (PARTITION BY customer_id) AS currencies,
                MIN(oldest_due_on) OVER (PARTITION BY customer_id) AS oldest
            FROM per_currency
        ),
        figures AS (
            SELECT c.id AS customer_id,
                COALESCE(CASE WHEN r.past_due > 0 THEN r.past_due END, 0) AS past_due_amount,
                COALESCE(CASE WHEN r.past_due > 0 THEN r.currency END, '') AS past_due_currency,
                COALESCE(r.currencies, 0) AS past_due_currencies,
                r.oldest AS oldest_due_on
            FROM {_table(Customer)} c
            LEFT JOIN ranked r ON r.customer_id = c.id AND r.position = 1
            WHERE {scope.format(col="c.id")}
        )
        UPDATE {_table(Customer)}
        SET past_due_amount = figures.past_due_amount,
            past_due_currency = figures.past_due_currency,
            past_due_currencies = figures.past_due_currencies,
            oldest_due_on = figures.oldest_due_on,
            past_due_changed_on = %s
        FROM figures
        WHERE {_table(Customer)}.id = figures.customer_id
            AND ({changed})
    """  # noqa: S608 - table names are ours, every value a parameter


def rows_changed(cursor) -> int:
    """Rows the last UPDATE changed. Python's sqlite3 reports no row count for a statement
    that starts with WITH, so SQLite is asked with changes()."""
    if connection.vendor == "sqlite":
        cursor.execute("SELECT changes()")
        return cursor.fetchone()[0]
    return max(cursor.rowcount, 0)


def _run(scope: str, scope_params: list, today: dt.date) -> int:
    sql = _update_sql(scope)
    params = [
        today,
        *InvoiceQuerySet.OPEN_STATUSES,
        *scope_params,
        *scope_params,
        today,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return rows_changed(cursor)


def refresh_past_due(
    *, customer_ids: Iterable[int] | None = None, today: dt.date | None = None
) -> int:
    """Recompute the past-due columns of these customers (None: every customer, in
    chunks of CHUNK ids); returns how many rows changed.

    Called inside the ledger write's transaction for the customers it touched; the
    UPDATE locks their rows in id order (ids sorted), so two writers cannot deadlock on
    them.
    """
    today = today or timezone.localdate()
    if customer_ids is not None:
        ids = sorted({int(pk) for pk in customer_ids if pk is not None})
        changed = 0
        for start in range(0, len(ids), ID_BATCH):
            batch = ids[start : start + ID_BATCH]
            placeholders = ", ".join(["%s"] * len(batch))
            changed += _run(f"{{col}} IN ({placeholders})", batch, today)
        return changed
    changed = 0
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, last + 1, CHUNK):
        changed += _run("{col} >= %s AND {col} < %s", [start, start + CHUNK], today)
    return changed
