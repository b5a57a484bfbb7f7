"""Each customer's next action, kept on the customer row for the customer list.

The next action is the customer's next open task (the earliest due, then the oldest):
its due moment and title go into `Customer.next_action_at` / `next_action`, which the
customer list sorts and filters on (see accounts/summaries.py for why such figures live
on the customer row). `case_tasks` refreshes the customers whose tasks it creates,
completes, cancels or reassigns, in the same transaction; the nightly case-work run
refreshes every customer. One portable UPDATE either way, writing only changed rows.
"""

from collections.abc import Iterable

from django.db import connection

from accounts.models import Customer
from accounts.summaries import rows_changed

from .models import Task

CHUNK = 20_000
ID_BATCH = 5_000


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _update_sql(scope: str) -> str:
    customer = _table(Customer)
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    return f"""
        WITH open_tasks AS (
            SELECT t.customer_id, t.due_at, t.title,
                ROW_NUMBER() OVER (PARTITION BY t.customer_id ORDER BY t.due_at, t.id)
                    AS position
            FROM {_table(Task)} t
            WHERE t.status = %s AND {scope.format(col="t.customer_id")}
        ),
        figures AS (
            SELECT c.id AS customer_id, o.due_at AS next_action_at,
                COALESCE(o.title, '') AS next_action
            FROM {customer} c
            LEFT JOIN open_tasks o ON o.customer_id = c.id AND o.position = 1
            WHERE {scope.format(col="c.id")}
        )
        UPDATE {customer}
        SET next_action_at = figures.next_action_at, next_action = figures.next_action
        FROM figures
        WHERE {customer}.id = figures.customer_id
            AND ({customer}.next_action_at {distinct} figures.next_action_at
                OR {customer}.next_action {distinct} figures.next_action)
    """  # noqa: S608 - table names are ours, every value a parameter


def _run(scope: str, params: list) -> int:
    with connection.cursor() as cursor:
        cursor.execute(_update_sql(scope), [Task.Status.OPEN, *params, *params])
        return rows_changed(cursor)


def refresh_next_actions(*, customer_ids: Iterable[int] | None = None) -> int:
    """Recompute the next action of these customers (None: all); returns rows changed."""
    if customer_ids is not None:
        ids = sorted({int(pk) for pk in customer_ids if pk is not None})
        changed = 0
        for start in range(0, len(ids), ID_BATCH):
            batch = ids[start : start + ID_BATCH]
            changed += _run(f"{{col}} IN ({', '.join(['%s'] * len(batch))})", batch)
        return changed
    changed = 0
    last = Customer.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    for start in range(0, last + 1, CHUNK):
        changed += _run("{col} >= %s AND {col} < %s", [start, start + CHUNK])
    return changed
