"""The aging report as of any date: buckets per customer, subtotals per group, totals per currency.

Reads only; every figure is aggregated in SQL over `reporting.ledger.balances_sql` (the
invoices open on the report date, with their balance that day), so a report for a past
date reproduces exactly after later payments, credit notes and refunds.

- `AgingReport` says what to report: the date, the filters, the grouping, the bucket
  edges (AGING_BUCKET_EDGES unless overridden) and whether invoice-level detail is wanted.
- `summary(report)` gives the bucket amounts per group and currency and the totals per
  currency (one query; currencies are never added together).
- `customer_rows(report)` yields one row per customer and currency, with the account's
  details (agent, primary contact, last contact, next scheduled action); `invoice_rows`
  yields the open invoices. Both stream from a server-side cursor in constant memory.

What is rebuilt as of the date and what is today's state:
- balances, buckets, the oldest open invoice and the last contact are as of the date;
- segment, industry, country, agent, credit limit, primary contact, the disputed status
  and the next scheduled action (pending notices and open tasks) are today's.
"""

# SQL here is built from quoted table names and fixed fragments; every value is a parameter.
# ruff: noqa: S608

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import crypto
from accounts.aging import Bucket
from accounts.models import Activity, Contact, Customer, Invoice
from cases.models import Task
from dunning.models import Notice, Step

from .ledger import ZERO, balances_sql

GROUP_BY_CHOICES = [
    ("", gettext_lazy("No grouping")),
    ("segment", gettext_lazy("Segment")),
    ("industry", gettext_lazy("Industry")),
    ("agent", gettext_lazy("Assigned agent")),
    ("country", gettext_lazy("Country")),
]
GROUP_BY_FIELDS = [key for key, _label in GROUP_BY_CHOICES if key]
# Timeline entries that count as contact with the customer.
CONTACT_KINDS = (
    Activity.Kind.CALL,
    Activity.Kind.EMAIL,
    Activity.Kind.SMS,
    Activity.Kind.LETTER,
    Activity.Kind.REPLY,
)
# Notices still to go out: the customer's next scheduled dunning action.
PENDING_NOTICE_STATUSES = (
    Notice.Status.PLANNED,
    Notice.Status.AWAITING_APPROVAL,
    Notice.Status.APPROVED,
    Notice.Status.DEFERRED,
)
FETCH_CHUNK = 2000  # rows per round trip from the server-side cursor


# --- Buckets -------------------------------------------------------------------------------


def parse_edges(value: str | Sequence[int] | None) -> tuple[int, ...]:
    """Bucket edges as increasing positive day counts: "30,60,90,120" -> (30, 60, 90, 120).

    None means the AGING_BUCKET_EDGES setting. Raises ValidationError on anything else.
    """
    if value is None:
        value = settings.AGING_BUCKET_EDGES
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    else:
        parts = list(value)
    try:
        edges = tuple(int(part) for part in parts)
    except (TypeError, ValueError) as exc:
        raise ValidationError(
            _("Bucket edges are whole numbers of days separated by commas, e.g. 30,60,90,120.")
        ) from exc
    if not edges or edges[0] < 1 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise ValidationError(
            _("Bucket edges must be increasing whole numbers of days above zero, e.g. 30,60,90.")
        )
    return edges


def make_buckets(edges: Sequence[int]) -> tuple[Bucket, ...]:
    """Current (day 0 and earlier), then 1-e1, e1+1-e2, ..., and over the last edge.

    With the default edges the keys are those of `accounts.aging.BUCKETS`.
    """
    buckets = [Bucket("current", _("Current"), None, 0)]
    first = 1
    for edge in edges:
        buckets.append(Bucket(f"{first}-{edge}", f"{first}-{edge}", first, edge))
        first = edge + 1
    buckets.append(Bucket(f"{edges[-1]}+", _("Over %(days)d") % {"days": edges[-1]}, first, None))
    return tuple(buckets)


def bucket_of(buckets: Sequence[Bucket], days_past_due: int) -> Bucket:
    for bucket in buckets:
        if bucket.last_day is None or days_past_due <= bucket.last_day:
            return bucket
    raise AssertionError("the last bucket is open-ended")


# --- What to report ------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Which customers and invoices a report covers; empty means all."""

    segment: str = ""
    agent_id: int | None = None
    currency: str = ""
    min_balance: Decimal | None = None  # a customer's total in one currency, at least

    @classmethod
    def from_dict(cls, values: dict | None) -> "Filters":
        values = values or {}
        min_balance = values.get("min_balance")
        agent = values.get("agent_id", values.get("agent"))
        try:
            return cls(
                segment=values.get("segment") or "",
                agent_id=int(agent) if agent not in (None, "") else None,
                currency=(values.get("currency") or "").upper(),
                min_balance=Decimal(str(min_balance)) if min_balance not in (None, "") else None,
            )
        except (ValueError, InvalidOperation) as exc:
            raise ValidationError(_("Invalid report filters: %(error)s") % {"error": exc}) from exc

    def as_dict(self) -> dict:
        """JSON-ready, for ReportExport.filters and ScheduledReport.filters."""
        values = {
            "segment": self.segment,
            "agent_id": self.agent_id,
            "currency": self.currency,
            "min_balance": str(self.min_balance) if self.min_balance is not None else None,
        }
        return {key: value for key, value in values.items() if value not in (None, "")}

    def describe(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the filters that are set, for report headers."""
        described = []
        if self.segment:
            described.append((_("Segment"), str(Customer.Segment(self.segment).label)))
        if self.agent_id is not None:
            agent = get_user_model().objects.filter(pk=self.agent_id).first()
            described.append((_("Agent"), agent.get_username() if agent else f"#{self.agent_id}"))
        if self.currency:
            described.append((_("Currency"), self.currency))
        if self.min_balance is not None:
            described.append((_("Minimum balance"), f"{self.min_balance:,.2f}"))
        return described


@dataclass(frozen=True)
class AgingReport:
    """One aging report: as of a date, filtered, grouped, with its bucket edges."""

    as_of: dt.date
    filters: Filters = field(default_factory=Filters)
    group_by: str = ""
    edges: tuple[int, ...] | None = None  # None: settings.AGING_BUCKET_EDGES
    detail: bool = False
    in_base_currency: bool = False  # also every total converted into BASE_CURRENCY

    def __post_init__(self):
        if self.group_by not in ("", *GROUP_BY_FIELDS):
            raise ValidationError(
                _("Group by one of %(choices)s.") % {"choices": ", ".join(GROUP_BY_FIELDS)}
            )
        if self.filters.segment and self.filters.segment not in Customer.Segment.values:
            raise ValidationError(_("Unknown segment %(value)s.") % {"value": self.filters.segment})
        object.__setattr__(self, "edges", parse_edges(self.edges))

    @property
    def buckets(self) -> tuple[Bucket, ...]:
        return make_buckets(self.edges)

    def options(self) -> dict:
        """Everything that defines the report, JSON-ready (exports and schedules keep it)."""
        return {
            **self.filters.as_dict(),
            "as_of": self.as_of.isoformat(),
            "group_by": self.group_by,
            "edges": list(self.edges),
            "detail": self.detail,
            "in_base_currency": self.in_base_currency,
        }

    @classmethod
    def from_options(cls, options: dict, *, as_of: dt.date | None = None) -> "AgingReport":
        """The inverse of `options`; `as_of` overrides the stored date (scheduled reports)."""
        return cls(
            as_of=as_of or dt.date.fromisoformat(options["as_of"]),
            filters=Filters.from_dict(options),
            group_by=options.get("group_by") or "",
            edges=tuple(options["edges"]) if options.get("edges") else None,
            detail=bool(options.get("detail")),
            in_base_currency=bool(options.get("in_base_currency")),
        )


# --- Results -------------------------------------------------------------------------------


@dataclass
class Amounts:
    """Bucket amounts and their total in one currency."""

    currency: str
    buckets: list[Decimal]
    total: Decimal
    disputed: Decimal
    customers: int | None = 0  # None: not counted (see `summary`)
    invoices: int = 0

    def add(self, other: "Amounts") -> None:
        if other.currency != self.currency:
            raise ValueError("amounts in different currencies are never added")
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]
        self.total += other.total
        self.disputed += other.disputed
        self.invoices += other.invoices
        if self.customers is None or other.customers is None:
            self.customers = None
        else:
            self.customers += other.customers


@dataclass
class GroupRow(Amounts):
    group_key: str = ""
    group_label: str = ""


@dataclass
class Summary:
    report: AgingReport
    groups: list[GroupRow]  # ordered by group, then currency
    totals: dict[str, Amounts]  # per currency, in currency order

    @property
    def customer_count(self) -> int | None:
        counts = [total.customers for total in self.totals.values()]
        return None if None in counts else sum(counts)

    @property
    def invoice_count(self) -> int:
        return sum(total.invoices for total in self.totals.values())

    def subtotals(self, group_key: str) -> list[GroupRow]:
        return [row for row in self.groups if row.group_key == group_key]


@dataclass
class CustomerRow(Amounts):
    customer_id: int = 0
    name: str = ""
    external_ref: str = ""
    group_key: str = ""
    group_label: str = ""
    oldest_invoice_number: str = ""
    oldest_due_on: dt.date | None = None
    oldest_days_past_due: int | None = None
    credit_limit: Decimal | None = None
    credit_limit_currency: str = ""
    segment: str = ""
    industry: str = ""
    country: str = ""
    agent: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    last_contact_on: dt.date | None = None
    last_contact: str = ""  # kind and outcome, in words
    next_action_on: dt.date | None = None
    next_action: str = ""
    report_rows: int | None = None  # with a limit: the rows there are without it


@dataclass
class InvoiceRow:
    invoice_id: int
    customer_id: int
    customer_name: str
    external_ref: str
    group_key: str
    group_label: str
    number: str
    issued_on: dt.date
    due_on: dt.date
    days_past_due: int
    bucket: Bucket
    currency: str
    amount: Decimal
    balance: Decimal
    status: str
    customer_total: Decimal


# --- SQL -----------------------------------------------------------------------------------


class _Sql:
    """SQL text and its parameters, built in order so placeholders and values never drift."""

    def __init__(self):
        self.parts: list[str] = []
        self.params: list = []

    def add(self, text: str, *params) -> "_Sql":
        self.parts.append(text)
        self.params.extend(params)
        return self

    @property
    def text(self) -> str:
        return " ".join(self.parts)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _table(model) -> str:
    return _q(model._meta.db_table)


def _group_expression(group_by: str) -> str:
    """The grouping key, in SQL over `cu` (customer) and `ag` (agent)."""
    return {
        "": "''",
        "segment": "cu.segment",
        "industry": "cu.industry",
        "country": "cu.country",
        "agent": "COALESCE(ag.username, '')",
    }[group_by]


def group_label(group_by: str, key: str) -> str:
    if not group_by:
        return ""
    if not key:
        return {"agent": _("Unassigned")}.get(group_by, _("(none)"))
    if group_by == "segment":
        try:
            return str(Customer.Segment(key).label)
        except ValueError:
            return key
    return key


def _open_items(report: AgingReport, customer_ids=None, *, with_rank: bool = False) -> _Sql:
    """The report's open items in its currency (all currencies when none is set).

    Columns: those of `balances_sql` (and rn, the item's rank by due date within its
    customer and currency, when `with_rank`). No customer columns: `_with_customer` adds
    them, after any aggregation or filter that can do without them.
    """
    balances, balance_params = balances_sql(report.as_of, customer_ids=customer_ids)
    rank = (
        ", ROW_NUMBER() OVER (PARTITION BY oi.customer_id, oi.currency "
        "ORDER BY oi.due_on, oi.invoice_id) AS rn"
        if with_rank
        else ""
    )
    sql = _Sql().add(f"SELECT oi.*{rank}")
    sql.add(f"FROM ({balances}) oi", *balance_params)
    if report.filters.currency:
        sql.add("WHERE oi.currency = %s", report.filters.currency)
    return sql


def _at_least_minimum(expression: str) -> str:
    """`expression` >= the minimum balance, its one parameter. CAST: SQLite binds a
    Decimal as text, and there a number is never >= a text."""
    return f"{expression} >= CAST(%s AS NUMERIC)"


def _with_customer_totals(items: _Sql, report: AgingReport) -> _Sql:
    """The items with customer_total, their customer's total in their currency.

    With a minimum balance, only the items of the customers who reach it. One window sum
    per customer and currency, then a filter: what follows (the bucket sums) reads only
    the remaining items, far cheaper at a million invoices than every bucket per customer.
    """
    sql = _Sql().add(
        "SELECT oi.*, SUM(oi.balance_as_of) OVER (PARTITION BY oi.customer_id, oi.currency)"
        " AS customer_total"
    )
    sql.add(f"FROM ({items.text}) oi", *items.params)
    if report.filters.min_balance is None:
        return sql
    return _Sql().add(
        f"SELECT ct.* FROM ({sql.text}) ct WHERE {_at_least_minimum('ct.customer_total')}",
        *sql.params,
        report.filters.min_balance,
    )


def _with_customer(rows: _Sql, report: AgingReport) -> _Sql:
    """Rows with a customer_id, plus group_key, filtered by segment and agent.

    The customer (and agent) are joined only when the grouping or a filter needs them,
    and as late as possible: after the per-customer aggregation or the minimum-balance
    filter, on the rows that are left.
    """
    filters = report.filters
    sql = _Sql().add(f"SELECT oi.*, {_group_expression(report.group_by)} AS group_key")
    sql.add(f"FROM ({rows.text}) oi", *rows.params)
    if report.group_by or filters.segment or filters.agent_id is not None:
        sql.add(f"JOIN {_table(Customer)} cu ON cu.id = oi.customer_id")
    if report.group_by == "agent":
        sql.add(f"LEFT JOIN {_table(get_user_model())} ag ON ag.id = cu.assigned_agent_id")
    sql.add("WHERE 1 = 1")
    if filters.segment:
        sql.add("AND cu.segment = %s", filters.segment)
    if filters.agent_id is not None:
        sql.add("AND cu.assigned_agent_id = %s", filters.agent_id)
    return sql


def _bucket_sums(report: AgingReport, source: str = "oi") -> _Sql:
    """One SUM per bucket (b0, b1, ...), then total, disputed and the invoice count.

    FILTER, not SUM(CASE ...): each item is added to its own bucket only, instead of a
    zero to every other one. A bucket with no items sums to NULL (read as zero).
    """
    sql = _Sql()
    for index, bucket in enumerate(report.buckets):
        conditions, params = [], []
        if bucket.first_day is not None:  # days past due >= first_day
            conditions.append(f"{source}.due_on <= %s")
            params.append(report.as_of - dt.timedelta(days=bucket.first_day))
        if bucket.last_day is not None:  # days past due <= last_day
            conditions.append(f"{source}.due_on >= %s")
            params.append(report.as_of - dt.timedelta(days=bucket.last_day))
        sql.add(
            f"SUM({source}.balance_as_of) FILTER (WHERE {' AND '.join(conditions)}) AS b{index},",
            *params,
        )
    sql.add(f"SUM({source}.balance_as_of) AS total,")
    sql.add(
        f"SUM({source}.balance_as_of) FILTER (WHERE {source}.status = %s) AS disputed,",
        Invoice.Status.DISPUTED,
    )
    sql.add("COUNT(*) AS invoices")
    return sql


def _per_customer(report: AgingReport, customer_ids=None, *, with_oldest: bool) -> _Sql:
    """One row per customer and currency, aggregated before the customer is joined.

    Columns: customer_id, currency, group_key, b0..bN, total, disputed, invoices (and
    oldest_due_on, oldest_number when `with_oldest`).
    """
    items = _open_items(report, customer_ids, with_rank=with_oldest)
    sums = _bucket_sums(report)
    sql = _Sql().add("SELECT oi.customer_id, oi.currency,")
    sql.add(sums.text, *sums.params)
    if with_oldest:
        sql.add(
            ", MIN(oi.due_on) AS oldest_due_on,"
            " MAX(CASE WHEN oi.rn = 1 THEN oi.number END) AS oldest_number"
        )
    sql.add(f"FROM ({items.text}) oi", *items.params)
    sql.add("GROUP BY oi.customer_id, oi.currency")
    if report.filters.min_balance is not None:
        sql.add(f"HAVING {_at_least_minimum('SUM(oi.balance_as_of)')}", report.filters.min_balance)
    rows = _with_customer(sql, report)
    columns = ", ".join(
        [f"pc.b{index}" for index in range(len(report.buckets))]
        + ["pc.total", "pc.disputed", "pc.invoices"]
        + (["pc.oldest_due_on", "pc.oldest_number"] if with_oldest else [])
    )
    return _Sql().add(
        f"SELECT pc.customer_id, pc.currency, pc.group_key, {columns} FROM ({rows.text}) pc",
        *rows.params,
    )


def _money(value) -> Decimal:
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _amounts(values: Sequence, bucket_count: int) -> tuple[list[Decimal], Decimal, Decimal, int]:
    """(buckets, total, disputed, invoices) from b0..bN, total, disputed, invoices columns."""
    buckets = [_money(value) for value in values[:bucket_count]]
    total, disputed, invoices = values[bucket_count : bucket_count + 3]
    return buckets, _money(total), _money(disputed), int(invoices)


# --- Reads ---------------------------------------------------------------------------------


def summary(report: AgingReport, *, count_customers: bool = False) -> Summary:
    """Bucket amounts per group and currency, and the totals per currency. One query.

    The customers in each group are counted (COUNT DISTINCT) when asked or when a minimum
    balance is set; otherwise `customers` is None. A minimum balance first keeps the items
    of the customers whose total in a currency reaches it (`_with_customer_totals`), then
    the buckets are summed over those: no bucket sums per customer (see bench/aging.py).
    """
    count = len(report.buckets)
    items = _open_items(report)
    if report.filters.min_balance is not None:
        items = _with_customer_totals(items, report)
    items = _with_customer(items, report)
    sums = _bucket_sums(report)
    sql = _Sql().add("SELECT oi.group_key, oi.currency,")
    sql.add(sums.text, *sums.params)
    if count_customers or report.filters.min_balance is not None:
        sql.add(", COUNT(DISTINCT oi.customer_id)")
    else:
        sql.add(", NULL")
    sql.add(f"FROM ({items.text}) oi", *items.params)
    sql.add("GROUP BY oi.group_key, oi.currency ORDER BY oi.group_key, oi.currency")
    # A minimum balance sorts the open items per customer for the window sum. At the
    # default parallel_tuple_cost (0.1) PostgreSQL scans and sorts them in one process;
    # at 0.01 it sorts in every worker and merges (Gather Merge): 0.64-0.71 s instead of
    # 0.83-0.92 s on the bench's million invoices.
    planner = {"parallel_tuple_cost": "0.01"} if report.filters.min_balance is not None else {}
    with planner_settings(**planner), connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        fetched = cursor.fetchall()
    groups, totals = [], {}
    for group_key, currency, *values in fetched:
        buckets, total, disputed, invoices = _amounts(values, count)
        row = GroupRow(
            currency=currency,
            buckets=buckets,
            total=total,
            disputed=disputed,
            invoices=invoices,
            customers=int(values[-1]) if values[-1] is not None else None,
            group_key=group_key,
            group_label=group_label(report.group_by, group_key),
        )
        groups.append(row)
        # Adding up a few group rows of one currency: the rows themselves came from SQL.
        totals.setdefault(
            currency, Amounts(currency=currency, buckets=[ZERO] * count, total=ZERO, disputed=ZERO)
        ).add(row)
    return Summary(report=report, groups=groups, totals=dict(sorted(totals.items())))


@contextmanager
def planner_settings(**values: str) -> Iterator[None]:
    """Run the queries inside with these PostgreSQL planner settings, and no others.

    SET LOCAL (`set_config(..., true)`) in a transaction (a savepoint inside a caller's)
    and put back on the way out, so they never reach a later query of that transaction;
    an error rolls them back with the savepoint. Nothing on other databases.
    """
    if connection.vendor != "postgresql" or not values:
        yield
        return
    names = list(values)
    calls = ", ".join(["set_config(%s, %s, true)"] * len(names))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names)
        saved = cursor.fetchone()
        cursor.execute(f"SELECT {calls}", [v for name in names for v in (name, values[name])])
        yield
        restore = [v for pair in zip(names, saved, strict=True) for v in pair]
        cursor.execute(f"SELECT {calls}", restore)


def _stream(sql: _Sql) -> Iterator[tuple]:
    """Rows from a server-side cursor on PostgreSQL (constant memory), in chunks."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        while rows := cursor.fetchmany(FETCH_CHUNK):
            yield from rows


def _end_of_day(day: dt.date) -> dt.datetime:
    """The first moment after `day` in the company's time zone."""
    return timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time()))


def customer_rows(
    report: AgingReport, *, limit: int | None = None, customer_ids=None
) -> Iterator[CustomerRow]:
    """One row per customer and currency, ordered by group, currency, then largest balance.

    With `limit`, only the `limit` largest balances (ranked within the report; amounts in
    different currencies are compared, never added). Each customer's details come from a
    join or an index probe per row (last contact, next notice, next task), never a query
    per row from Python.
    """
    per_customer = _per_customer(report, customer_ids, with_oldest=True)
    count = len(report.buckets)
    if limit is not None:  # with the number of rows there would be without the limit
        per_customer = _Sql().add(
            f"SELECT top.*, COUNT(*) OVER () AS report_rows FROM ({per_customer.text}) top",
            *per_customer.params,
        )
        per_customer.add("ORDER BY top.total DESC, top.customer_id, top.currency LIMIT %s", limit)
    else:
        per_customer = _Sql().add(
            f"SELECT top.*, CAST(NULL AS BIGINT) AS report_rows FROM ({per_customer.text}) top",
            *per_customer.params,
        )
    sql = _Sql().add(
        "SELECT pc.*, cu.name, cu.external_ref, cu.segment, cu.industry, cu.country,"
        " cu.credit_limit, cu.currency, ag.username,"
        " ct.name, ct.email, ct.phone,"
        " lc.occurred_at, lc.kind, lc.outcome,"
        " nn.planned_on, nn.channel, st.name, tk.due_at, tk.title"
    )
    sql.add(f"FROM ({per_customer.text}) pc", *per_customer.params)
    sql.add(f"JOIN {_table(Customer)} cu ON cu.id = pc.customer_id")
    sql.add(f"LEFT JOIN {_table(get_user_model())} ag ON ag.id = cu.assigned_agent_id")
    sql.add(
        f"LEFT JOIN {_table(Contact)} ct ON ct.customer_id = pc.customer_id AND ct.is_primary = %s",
        True,
    )
    kinds = ", ".join(["%s"] * len(CONTACT_KINDS))
    sql.add(
        f"LEFT JOIN {_table(Activity)} lc ON lc.id = (SELECT a.id FROM {_table(Activity)} a"
        f" WHERE a.customer_id = pc.customer_id AND a.kind IN ({kinds}) AND a.occurred_at < %s"
        " ORDER BY a.occurred_at DESC, a.id DESC LIMIT 1)",
        *CONTACT_KINDS,
        _end_of_day(report.as_of),
    )
    statuses = ", ".join(["%s"] * len(PENDING_NOTICE_STATUSES))
    sql.add(
        f"LEFT JOIN {_table(Notice)} nn ON nn.id = (SELECT n.id FROM {_table(Notice)} n"
        f" WHERE n.customer_id = pc.customer_id AND n.status IN ({statuses})"
        " ORDER BY n.planned_on, n.id LIMIT 1)",
        *PENDING_NOTICE_STATUSES,
    )
    sql.add(f"LEFT JOIN {_table(Step)} st ON st.id = nn.step_id")
    sql.add(
        f"LEFT JOIN {_table(Task)} tk ON tk.id = (SELECT t.id FROM {_table(Task)} t"
        " WHERE t.customer_id = pc.customer_id AND t.status = %s"
        " ORDER BY t.due_at, t.id LIMIT 1)",
        Task.Status.OPEN,
    )
    sql.add("ORDER BY pc.group_key, pc.currency, pc.total DESC, cu.name, pc.customer_id")

    kind_labels = dict(Activity.Kind.choices)
    outcome_labels = dict(Activity.CallOutcome.choices)
    channel_labels = dict(Notice._meta.get_field("channel").choices)
    for values in _stream(sql):
        customer_id, currency, group_key = values[:3]
        buckets, total, disputed, invoices = _amounts(values[3 : 3 + count + 3], count)
        oldest_due_on, oldest_number, report_rows = values[count + 6 : count + 9]
        (name, external_ref, segment, industry, country) = values[count + 9 : count + 14]
        (credit_limit, customer_currency, agent, contact_name, contact_email, contact_phone) = (
            values[count + 14 : count + 20]
        )
        (contact_at, contact_kind, contact_outcome, notice_on, notice_channel, step_name) = values[
            count + 20 : count + 26
        ]
        task_at, task_title = values[count + 26 : count + 28]
        oldest_due_on = _date(oldest_due_on)
        last_contact = ""
        if contact_kind:
            last_contact = str(kind_labels.get(contact_kind, contact_kind))
            if contact_outcome:
                outcome = outcome_labels.get(contact_outcome, contact_outcome)
                last_contact = f"{last_contact}: {outcome}"
        next_on, next_action = _next_action(
            notice_on=_date(notice_on),
            notice_text=_("Notice: %(step)s (%(channel)s)")
            % {
                "step": step_name,
                "channel": channel_labels.get(notice_channel, notice_channel),
            }
            if notice_channel
            else "",
            task_at=_aware(task_at),
            task_text=_("Task: %(title)s") % {"title": task_title} if task_title else "",
        )
        yield CustomerRow(
            currency=currency,
            buckets=buckets,
            total=total,
            disputed=disputed,
            invoices=invoices,
            customers=1,
            customer_id=customer_id,
            name=name,
            external_ref=external_ref,
            group_key=group_key,
            group_label=group_label(report.group_by, group_key),
            oldest_invoice_number=oldest_number or "",
            oldest_due_on=oldest_due_on,
            oldest_days_past_due=(report.as_of - oldest_due_on).days if oldest_due_on else None,
            credit_limit=_money(credit_limit) if credit_limit is not None else None,
            credit_limit_currency=customer_currency if credit_limit is not None else "",
            segment=segment,
            industry=industry,
            country=country,
            agent=agent or "",
            contact_name=contact_name or "",
            contact_email=crypto.decrypt(contact_email or ""),
            contact_phone=crypto.decrypt(contact_phone or ""),
            last_contact_on=timezone.localdate(_aware(contact_at)) if contact_at else None,
            last_contact=last_contact,
            next_action_on=next_on,
            next_action=next_action,
            report_rows=report_rows,
        )


def _date(value) -> dt.date | None:
    """A date column (SQLite hands back text)."""
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _aware(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite
        value = dt.datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


def _next_action(*, notice_on, notice_text, task_at, task_text) -> tuple[dt.date | None, str]:
    """The earlier of the next pending notice and the next open task."""
    task_on = timezone.localdate(task_at) if task_at else None
    if notice_on and (task_on is None or notice_on <= task_on):
        return notice_on, notice_text
    if task_on:
        return task_on, task_text
    return None, ""


def invoice_rows(report: AgingReport, *, customer_ids=None) -> Iterator[InvoiceRow]:
    """The open invoices on the report date, in the order of `customer_rows`, oldest first."""
    items = _with_customer(_with_customer_totals(_open_items(report, customer_ids), report), report)
    sql = _Sql().add(
        "SELECT x.invoice_id, x.customer_id, cu.name, cu.external_ref, x.group_key, x.number,"
        " x.issued_on, x.due_on, x.currency, x.amount, x.balance_as_of, x.status,"
        " x.customer_total"
    )
    sql.add(f"FROM ({items.text}) x", *items.params)
    sql.add(f"JOIN {_table(Customer)} cu ON cu.id = x.customer_id")
    sql.add(
        "ORDER BY x.group_key, x.currency, x.customer_total DESC, cu.name, x.customer_id,"
        " x.due_on, x.invoice_id"
    )
    buckets = report.buckets
    for values in _stream(sql):
        (invoice_id, customer_id, name, external_ref, group_key, number, issued_on, due_on) = (
            values[:8]
        )
        currency, amount, balance, status, customer_total = values[8:]
        due_on = _date(due_on)
        days = (report.as_of - due_on).days
        yield InvoiceRow(
            invoice_id=invoice_id,
            customer_id=customer_id,
            customer_name=name,
            external_ref=external_ref,
            group_key=group_key,
            group_label=group_label(report.group_by, group_key),
            number=number,
            issued_on=_date(issued_on),
            due_on=due_on,
            days_past_due=days,
            bucket=bucket_of(buckets, days),
            currency=currency,
            amount=_money(amount),
            balance=_money(balance),
            status=status,
            customer_total=_money(customer_total),
        )
