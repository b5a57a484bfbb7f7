"""The agent's worklist: which customers and tasks need them today, in a transparent order.

A customer is on an agent's worklist when it is assigned to them and either has money
past due (active customers only: placed, written-off and closed accounts are not chased)
or has an open task of theirs due by the end of today. The unassigned queue is the same
list for customers (and tasks) with nobody assigned; managers (work_all_customers) see
it and every agent's list, agents only their own.

Priority is the sum of six scores, each shown on the page (PRIORITY_RULES):

- past-due amount, the largest in any one currency (currencies are never added):
  5 points above zero, 10 from 100, 15 from 500, 20 from 1,000, 25 from 5,000, 30 from
  10,000;
- days past due of the oldest past-due invoice, by aging bucket: 1-30 days 5, 31-60 10,
  61-90 15, 91-120 20, over 120 25;
- risk score (cases/risk.py, 0-100) divided by 5: 0-20;
- broken promises in the last 12 months: 5 each, at most 15;
- the customer's next open task: overdue 10, due later today 5;
- predicted late: the highest probability of paying late among the customer's open
  invoices (cases.InvoicePrediction, scored nightly), in whole tenths, when it is at or
  above settings.PREDICTED_LATE_THRESHOLD (0.5: 5 points ... 1.0: 10); 0 below it or
  when nothing is scored. An account the predictions say will pay late ranks above an
  otherwise equal one; a prediction never puts a customer on the list by itself.

The total is at most 110. Ties go to the oldest debt, then the name. The next action is,
in order: the next open task; else checking an open promise to pay; else following up a
dunning pause; else a write-off/placement review when the oldest invoice is more than
WRITE_OFF_REVIEW_DAYS past due; else a call about the past-due amount (today).

One SQL statement computes the page (the agent's customers, their past-due totals per
currency, next task, promises, scores and the total count) with the invoice index that
leads with customer_id; a second lists one page of the tasks due today with their total
and overdue counts (window functions: nothing is cut off unsaid). Both are portable SQL
(PostgreSQL and SQLite).

`next_account` walks the same order one customer at a time: the first customer on the
agent's own list that the agent has not worked today (no timeline entry of theirs since
the start of the day) and that is not the one just left.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import Case, Count, Q, Sum, Value, When, Window
from django.db.models.expressions import Col
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts.models import Activity, Customer, Invoice, InvoiceQuerySet

from .models import InvoicePrediction, PromiseToPay, Task

# (threshold, points): the first threshold the largest past-due amount reaches.
# Whole units, compared as numbers on every backend; any amount past due scores at least 5.
AMOUNT_POINTS = ((10_000, 30), (5_000, 25), (1_000, 20), (500, 15), (100, 10))
ANY_AMOUNT_POINTS = 5
# (first day past due, points) by aging bucket of the oldest past-due invoice.
AGE_POINTS = ((121, 25), (91, 20), (61, 15), (31, 10), (1, 5))
RISK_DIVISOR = 5  # risk score 0-100 becomes 0-20 points
BROKEN_PROMISE_POINTS, BROKEN_PROMISE_MAX = 5, 15
OVERDUE_TASK_POINTS, TASK_DUE_TODAY_POINTS = 10, 5
# (probability, points): whole tenths of the highest probability of paying late, counted
# only at or above settings.PREDICTED_LATE_THRESHOLD (floats: they compare as numbers on
# every backend; they are not money).
PREDICTED_LATE_POINTS = tuple((n / 10, n) for n in range(10, 0, -1))
BROKEN_PROMISE_WINDOW_DAYS = 365

# What the page shows as "why this order", in the order of the columns.
PRIORITY_RULES = [
    ("amount", gettext_noop("Past-due amount (largest currency)"), "5-30"),
    ("age", gettext_noop("Days past due (oldest invoice)"), "5-25"),
    ("risk", gettext_noop("Risk score ÷ 5"), "0-20"),
    ("promises", gettext_noop("Broken promises, 12 months (5 each)"), "0-15"),
    ("task", gettext_noop("Task overdue / due today"), "10 / 5"),
    ("predicted", gettext_noop("Predicted late: highest probability, in tenths"), "0, 5-10"),
]

PAGE_SIZE = 50
TASKS_PAGE_SIZE = 25
DEBTOR_ACTIVITY_DAYS = 7


@dataclass
class WorklistRow:
    customer_id: int
    name: str
    risk_score: int | None
    risk_band: str
    currency: str | None
    past_due_amount: Decimal | None
    oldest_due_on: dt.date | None
    task_id: int | None
    task_title: str
    task_kind: str
    task_due_at: dt.datetime | None
    broken_promises: int
    next_promised_on: dt.date | None
    dunning_paused_until: dt.date | None
    points: dict[str, int]
    priority: int
    days_past_due: int | None = None
    late_probability: Decimal | None = None  # the highest among open invoices; None: unscored
    next_action: str = ""
    deadline: dt.datetime | dt.date | None = None
    is_overdue: bool = False
    # The debtor's own latest move in the last DEBTOR_ACTIVITY_DAYS (a reply, a portal visit
    # or action), shown under the customer's name; None when they did nothing lately.
    debtor_activity: Activity | None = None


@dataclass
class Worklist:
    agent: object | None  # None: the unassigned queue
    today: dt.date
    now: dt.datetime
    rows: list[WorklistRow]
    total: int
    tasks: list[Task]  # one page of the open tasks due by the end of today, earliest first
    overdue_tasks: int  # of all the tasks due today, not only this page
    page: int = 1
    page_size: int = PAGE_SIZE
    rules: list = field(default_factory=lambda: PRIORITY_RULES)
    tasks_total: int = 0
    tasks_page: int = 1
    tasks_page_size: int = TASKS_PAGE_SIZE

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def tasks_pages(self) -> int:
        return max(1, -(-self.tasks_total // self.tasks_page_size))

    @property
    def first_task(self) -> int:
        """The position of this page's first task (1-based), for "tasks 26-50 of 312"."""
        return (self.tasks_page - 1) * self.tasks_page_size + 1 if self.tasks else 0

    @property
    def last_task(self) -> int:
        return (self.tasks_page - 1) * self.tasks_page_size + len(self.tasks)


def can_see(viewer, agent) -> bool:
    """Everyone sees their own worklist; managers see any agent's and the unassigned queue."""
    if viewer.has_perm("accounts.work_all_customers"):
        return True
    return agent is not None and agent.pk == viewer.pk


def _params(values: dict) -> dict:
    """Dates and datetimes as the database driver wants them (SQLite stores text)."""
    ops = connection.ops
    adapted = {}
    for name, value in values.items():
        if isinstance(value, dt.datetime):
            value = ops.adapt_datetimefield_value(value)
        elif isinstance(value, dt.date):
            value = ops.adapt_datefield_value(value)
        adapted[name] = value
    return adapted


# The page in one statement. {customer}... are the models' tables; {scope} and {mine} say
# whose list it is (an agent's, or the unassigned queue); {amount_points} and {age_points}
# are CASE expressions from the tables above. Every value is a named parameter.
#
# Each table is joined only to `scope` (the customers of the list), where an index on
# customer_id serves; the per-customer facts are then combined by one GROUP BY over a
# UNION ALL, never by joining two derived tables. That keeps the work linear in the size
# of the list whatever the planner estimates: joined to each other, two CTEs it
# believed to hold one row each were nested-looped into minutes for a 30,000-customer
# unassigned queue.
PAGE_SQL = """
WITH scope AS (
    SELECT c.id, c.name, c.status, c.risk_score, c.risk_band, c.dunning_paused_until
    FROM {customer} c
    WHERE {scope}
),
past_due AS (
    -- One row per customer and currency: amounts are never added across currencies.
    SELECT i.customer_id, i.currency, SUM(i.open_balance) AS amount,
        MIN(i.due_on) AS oldest_due_on
    FROM {invoice} i JOIN scope s ON s.id = i.customer_id
    WHERE s.status = %(active)s AND i.status IN ({outstanding}) AND i.due_on < %(today)s
    GROUP BY i.customer_id, i.currency
),
largest AS (
    SELECT customer_id, currency, amount,
        MIN(oldest_due_on) OVER (PARTITION BY customer_id) AS oldest_due_on,
        ROW_NUMBER() OVER (PARTITION BY customer_id ORDER BY amount DESC, currency) AS position
    FROM past_due
),
tasks AS (
    SELECT t.customer_id, t.id, t.title, t.kind, t.due_at,
        ROW_NUMBER() OVER (PARTITION BY t.customer_id ORDER BY t.due_at, t.id) AS position
    FROM {task} t JOIN scope s ON s.id = t.customer_id
    WHERE {mine} AND t.status = %(task_open)s
),
promises AS (
    SELECT p.customer_id,
        SUM(CASE WHEN p.status = %(broken)s AND p.promised_on >= %(broken_since)s
            THEN 1 ELSE 0 END) AS broken,
        MIN(CASE WHEN p.status = %(promise_open)s THEN p.promised_on END) AS next_promised_on
    FROM {promise} p JOIN scope s ON s.id = p.customer_id
    WHERE p.status IN (%(broken)s, %(promise_open)s)
    GROUP BY p.customer_id
),
facts AS (
    -- Typed NULLs in the first branch: PostgreSQL types a UNION from left to right.
    -- late_probability: the highest probability of paying late among the customer's open
    -- invoices, probed per customer of the list (the index prediction_customer leads with
    -- customer_id), so other agents' predictions are never read; a prediction left from
    -- last night on an invoice paid since does not count.
    SELECT s.id AS customer_id, s.name, s.risk_score, s.risk_band, s.dunning_paused_until,
        {null_currency} AS currency, {null_amount} AS amount,
        {null_date} AS oldest_due_on, {null_task_id} AS task_id,
        {null_title} AS task_title, {null_kind} AS task_kind, {null_due_at} AS task_due_at,
        0 AS broken, {null_date} AS next_promised_on,
        (SELECT MAX(p.probability_late)
         FROM {prediction} p JOIN {invoice} pi ON pi.id = p.invoice_id
         WHERE p.customer_id = s.id AND pi.status IN ({outstanding})) AS late_probability
    FROM scope s
    UNION ALL
    SELECT customer_id, NULL, NULL, NULL, NULL, currency, amount, oldest_due_on,
        NULL, NULL, NULL, NULL, 0, NULL, NULL
    FROM largest WHERE position = 1
    UNION ALL
    SELECT customer_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        id, title, kind, due_at, 0, NULL, NULL
    FROM tasks WHERE position = 1
    UNION ALL
    SELECT customer_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
        NULL, NULL, NULL, NULL, broken, next_promised_on, NULL
    FROM promises
),
combined AS (
    -- Each column comes from exactly one branch; MAX picks it out of the NULLs.
    SELECT customer_id AS id, MAX(name) AS name, MAX(risk_score) AS risk_score,
        MAX(risk_band) AS risk_band, MAX(dunning_paused_until) AS dunning_paused_until,
        MAX(currency) AS currency, MAX(amount) AS amount, MAX(oldest_due_on) AS oldest_due_on,
        MAX(task_id) AS task_id, MAX(task_title) AS task_title, MAX(task_kind) AS task_kind,
        MAX(task_due_at) AS task_due_at, MAX(broken) AS broken,
        MAX(next_promised_on) AS next_promised_on, MAX(late_probability) AS late_probability
    FROM facts
    GROUP BY customer_id
),
scored AS (
    SELECT id, name, risk_score, risk_band, dunning_paused_until, currency, amount,
        oldest_due_on, task_id, task_title, task_kind, task_due_at, broken, next_promised_on,
        late_probability,
        {amount_points} AS amount_points,
        {age_points} AS age_points,
        COALESCE(risk_score, 0) / {risk_divisor} AS risk_points,
        CASE WHEN broken * {broken_points} >= {broken_max} THEN {broken_max}
            ELSE broken * {broken_points} END AS promise_points,
        CASE WHEN task_due_at < %(now)s THEN {overdue_points}
            WHEN task_due_at < %(tomorrow)s THEN {due_today_points}
            ELSE 0 END AS task_points,
        {predicted_points} AS predicted_points
    FROM combined
    WHERE amount IS NOT NULL OR task_due_at < %(tomorrow)s
)
SELECT id, name, risk_score, risk_band, dunning_paused_until, currency, amount,
    oldest_due_on, task_id, task_title, task_kind, task_due_at, broken, next_promised_on,
    late_probability,
    amount_points, age_points, risk_points, promise_points, task_points, predicted_points,
    amount_points + age_points + risk_points + promise_points + task_points
        + predicted_points AS priority,
    COUNT(*) OVER () AS total
FROM scored
ORDER BY priority DESC, CASE WHEN oldest_due_on IS NULL THEN 1 ELSE 0 END, oldest_due_on,
    name, id
LIMIT %(limit)s OFFSET %(offset)s
"""


def _points_case(column: str, rules, params: dict, *, name: str, default: int = 0) -> str:
    """Points by the first threshold `column` reaches (thresholds as parameters), 0 when
    it is NULL: CASE WHEN column IS NULL THEN 0 WHEN column >= %(amount_0)s THEN 30 ..."""
    whens = [f"WHEN {column} IS NULL THEN 0"]
    for index, (threshold, points, compare) in enumerate(rules):
        whens.append(f"WHEN {column} {compare} %({name}_{index})s THEN {int(points)}")
        params[f"{name}_{index}"] = threshold
    return f"CASE {' '.join(whens)} ELSE {int(default)} END"


# Added to the scope by next_account: not the customer just left, not worked today by
# the agent (any timeline entry of theirs since the start of the day; the index
# activity_customer_time serves the probe).
NOT_WORKED_SQL = """
    AND c.id <> %(after)s
    AND NOT EXISTS (
        SELECT 1 FROM {activity} a
        WHERE a.customer_id = c.id AND a.actor_id = %(agent)s AND a.occurred_at >= %(day_start)s
    )"""


def _page_sql(
    *,
    agent_id: int | None,
    today: dt.date,
    now: dt.datetime,
    limit: int,
    offset: int,
    not_worked_after: int | None = None,
):
    tomorrow = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time()))
    params = {
        "agent": agent_id,
        "active": Customer.Status.ACTIVE,
        "today": today,
        "task_open": Task.Status.OPEN,
        "broken": PromiseToPay.Status.BROKEN,
        "broken_since": today - dt.timedelta(days=BROKEN_PROMISE_WINDOW_DAYS),
        "promise_open": PromiseToPay.Status.OPEN,
        "now": now,
        "tomorrow": tomorrow,
        "limit": limit,
        "offset": offset,
    }
    outstanding = []
    for index, status in enumerate(InvoiceQuerySet.OPEN_STATUSES):
        params[f"outstanding_{index}"] = status
        outstanding.append(f"%(outstanding_{index})s")
    amount_points = _points_case(
        "amount",
        [(threshold, points, ">=") for threshold, points in AMOUNT_POINTS],
        params,
        name="amount",
        default=ANY_AMOUNT_POINTS,
    )
    age_points = _points_case(
        "oldest_due_on",
        [(today - dt.timedelta(days=first), points, "<=") for first, points in AGE_POINTS],
        params,
        name="age",
    )
    threshold = float(settings.PREDICTED_LATE_THRESHOLD)
    predicted_points = _points_case(
        "late_probability",
        [(tenth, points, ">=") for tenth, points in PREDICTED_LATE_POINTS if tenth >= threshold]
        + [(threshold, int(threshold * 10), ">=")],
        params,
        name="predicted",
    )
    scope = "c.assigned_agent_id IS NULL" if agent_id is None else "c.assigned_agent_id = %(agent)s"
    if not_worked_after is not None:
        scope += NOT_WORKED_SQL.format(activity=Activity._meta.db_table)
        params["after"] = not_worked_after
        params["day_start"] = timezone.make_aware(dt.datetime.combine(today, dt.time()))
    sql = PAGE_SQL.format(
        customer=Customer._meta.db_table,
        invoice=Invoice._meta.db_table,
        task=Task._meta.db_table,
        promise=PromiseToPay._meta.db_table,
        prediction=InvoicePrediction._meta.db_table,
        scope=scope,
        mine="t.assignee_id IS NULL" if agent_id is None else "t.assignee_id = %(agent)s",
        outstanding=", ".join(outstanding),
        amount_points=amount_points,
        age_points=age_points,
        risk_divisor=RISK_DIVISOR,
        broken_points=BROKEN_PROMISE_POINTS,
        broken_max=BROKEN_PROMISE_MAX,
        overdue_points=OVERDUE_TASK_POINTS,
        due_today_points=TASK_DUE_TODAY_POINTS,
        predicted_points=predicted_points,
        **{
            f"null_{name}": f"CAST(NULL AS {field.db_type(connection)})"
            for name, field in [
                ("currency", Invoice._meta.get_field("currency")),
                ("amount", Invoice._meta.get_field("open_balance")),
                ("date", Invoice._meta.get_field("due_on")),
                ("task_id", Task._meta.pk),
                ("title", Task._meta.get_field("title")),
                ("kind", Task._meta.get_field("kind")),
                ("due_at", Task._meta.get_field("due_at")),
            ]
        },
    )
    if agent_id is None:
        del params["agent"]
    return sql, _params(params)


def _converter(field_name: str, model=Invoice):
    """Turn a raw column value back into Python as the ORM would (SQLite returns text)."""
    model_field = model._meta.get_field(field_name)
    column = Col(model._meta.db_table, model_field)
    converters = connection.ops.get_db_converters(column) + model_field.get_db_converters(
        connection
    )

    def convert(value):
        for converter in converters:
            value = converter(value, column, connection)
        return value

    return convert


def _next_action(row: WorklistRow, *, today: dt.date, now: dt.datetime) -> None:
    if row.task_id is not None:
        row.next_action = row.task_title
        row.deadline = row.task_due_at
        row.is_overdue = row.task_due_at < now
    elif row.next_promised_on is not None:
        row.next_action = _("Check the promised payment (due %(day)s)") % {
            "day": row.next_promised_on.isoformat()
        }
        row.deadline = row.next_promised_on
        row.is_overdue = row.next_promised_on < today
    elif row.dunning_paused_until is not None and row.dunning_paused_until >= today:
        row.next_action = _("Follow up when the dunning pause ends")
        row.deadline = row.dunning_paused_until
    elif row.days_past_due is not None and row.days_past_due > settings.WRITE_OFF_REVIEW_DAYS:
        row.next_action = _("Review for write-off or agency placement")
        row.deadline = today
    elif row.past_due_amount is not None:
        row.next_action = _("Call about %(currency)s %(amount)s past due") % {
            "currency": row.currency,
            "amount": row.past_due_amount,
        }
        row.deadline = today


def _rows(records, *, today: dt.date, now: dt.datetime) -> tuple[list[WorklistRow], int]:
    """The page query's records as rows (with their next action), and the list's total."""
    to_date = _converter("due_on")
    to_money = _converter("open_balance")
    to_datetime = _converter("due_at", Task)
    to_probability = _converter("probability_late", InvoicePrediction)
    rows, total = [], 0
    for record in records:
        (customer_id, name, risk_score, risk_band, paused_until, currency, amount, oldest,
         task_id, task_title, task_kind, task_due_at, broken, promised_on, late_probability,
         *points, priority, total) = record  # fmt: skip
        row = WorklistRow(
            customer_id=customer_id,
            name=name,
            risk_score=risk_score,
            risk_band=risk_band,
            currency=currency,
            past_due_amount=to_money(amount) if amount is not None else None,
            oldest_due_on=to_date(oldest) if oldest is not None else None,
            task_id=task_id,
            task_title=task_title or "",
            task_kind=task_kind or "",
            task_due_at=to_datetime(task_due_at) if task_due_at is not None else None,
            broken_promises=int(broken or 0),
            next_promised_on=to_date(promised_on) if promised_on is not None else None,
            dunning_paused_until=to_date(paused_until) if paused_until is not None else None,
            late_probability=(
                to_probability(late_probability) if late_probability is not None else None
            ),
            points={
                key: int(value)
                for (key, _label, _r), value in zip(PRIORITY_RULES, points, strict=True)
            },
            priority=int(priority),
        )
        if row.oldest_due_on is not None:
            row.days_past_due = (today - row.oldest_due_on).days
        _next_action(row, today=today, now=now)
        rows.append(row)
    return rows, int(total)


def debtor_moves():
    """Timeline entries the debtor made: replies, portal visits and portal actions (a
    promise, dispute or plan made in the portal carries the portal channel)."""
    return Q(kind__in=[Activity.Kind.REPLY, Activity.Kind.PORTAL]) | Q(
        channel=Activity.Channel.PORTAL, actor__isnull=True
    )


def _add_debtor_activity(rows: list[WorklistRow], *, now: dt.datetime) -> None:
    """Each row's latest debtor move in the last DEBTOR_ACTIVITY_DAYS: one query for the page."""
    if not rows:
        return
    by_customer = {row.customer_id: row for row in rows}
    recent = (
        Activity.objects.filter(
            debtor_moves(),
            customer_id__in=list(by_customer),
            occurred_at__gte=now - dt.timedelta(days=DEBTOR_ACTIVITY_DAYS),
            occurred_at__lte=now,
        )
        .only("customer_id", "kind", "channel", "text", "occurred_at")
        .order_by("customer_id", "-occurred_at", "-id")
    )
    for entry in recent:
        row = by_customer[entry.customer_id]
        if row.debtor_activity is None:
            row.debtor_activity = entry


def worklist(
    *,
    viewer,
    agent=None,
    unassigned: bool = False,
    now: dt.datetime | None = None,
    page: int = 1,
    page_size: int = PAGE_SIZE,
    tasks_page: int = 1,
    tasks_page_size: int = TASKS_PAGE_SIZE,
) -> Worklist:
    """The worklist of `agent` (default: the viewer), or the unassigned queue: one page of
    its customers (`page`) and one page of its tasks due today (`tasks_page`).

    Raises PermissionDenied when the viewer may not see that list.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    target = None if unassigned else (agent or viewer)
    if (unassigned and not viewer.has_perm("accounts.work_all_customers")) or (
        target is not None and not can_see(viewer, target)
    ):
        raise PermissionDenied(_("You may only see your own worklist."))
    page, tasks_page = max(1, page), max(1, tasks_page)
    sql, params = _page_sql(
        agent_id=target.pk if target is not None else None,
        today=today,
        now=now,
        limit=page_size,
        offset=(page - 1) * page_size,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        records = cursor.fetchall()
    rows, total = _rows(records, today=today, now=now)
    _add_debtor_activity(rows, now=now)
    if not rows and page > 1:
        total = _count(viewer=viewer, target=target, today=today, now=now)
    tasks, tasks_total, overdue = due_tasks(
        agent=target, today=today, now=now, page=tasks_page, page_size=tasks_page_size
    )
    return Worklist(
        agent=target,
        today=today,
        now=now,
        rows=rows,
        total=total,
        tasks=tasks,
        overdue_tasks=overdue,
        page=page,
        page_size=page_size,
        tasks_total=tasks_total,
        tasks_page=tasks_page,
        tasks_page_size=tasks_page_size,
    )


def next_account(*, viewer, after: int | None = None, now: dt.datetime | None = None):
    """The next customer the viewer should work: the first on their own worklist, in its
    priority order, that they have not worked today and that is not `after` (the customer
    just left). None when nobody else needs them today. One statement: the page query,
    its scope narrowed by NOT_WORKED_SQL, one row.
    """
    now = now or timezone.now()
    today = timezone.localdate(now)
    sql, params = _page_sql(
        agent_id=viewer.pk,
        today=today,
        now=now,
        limit=1,
        offset=0,
        not_worked_after=after or 0,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        records = cursor.fetchall()
    rows, _total = _rows(records, today=today, now=now)
    return rows[0] if rows else None


def _count(*, viewer, target, today, now) -> int:
    """The total when a page past the end was asked for (the page query had no rows)."""
    sql, params = _page_sql(
        agent_id=target.pk if target is not None else None,
        today=today,
        now=now,
        limit=1,
        offset=0,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        first = cursor.fetchone()
    return int(first[-1]) if first else 0


def due_tasks(
    *,
    agent,
    today: dt.date,
    now: dt.datetime | None = None,
    page: int = 1,
    page_size: int = TASKS_PAGE_SIZE,
) -> tuple[list[Task], int, int]:
    """One page of the open tasks of the agent (None: unassigned) due by the end of
    `today`, earliest first, with the number of them all and of the overdue ones.

    One query: the counts are window functions over the whole set, computed before the
    page is cut. Served by the partial index task_open_by_assignee (assignee, due_at)
    WHERE open. A page past the end asks the counts on their own.
    """
    now = now or timezone.now()
    tomorrow = timezone.make_aware(dt.datetime.combine(today + dt.timedelta(days=1), dt.time()))
    due = Task.objects.open().filter(assignee=agent, due_at__lt=tomorrow)
    overdue = Sum(Case(When(due_at__lt=now, then=Value(1)), default=Value(0)))
    offset = (max(1, page) - 1) * page_size
    tasks = list(
        due.select_related("customer")
        .annotate(all_due=Window(Count("id")), all_overdue=Window(overdue))
        .order_by("due_at", "id")[offset : offset + page_size]
    )
    if tasks:
        return tasks, int(tasks[0].all_due), int(tasks[0].all_overdue or 0)
    counts = due.aggregate(all_due=Count("id"), all_overdue=overdue)
    return tasks, int(counts["all_due"]), int(counts["all_overdue"] or 0)
