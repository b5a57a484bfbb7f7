"""Point-in-time features for many (invoice, as-of day) pairs at once, as numpy arrays.

The one implementation of the predictor's features: training, backtests and the nightly
scoring all call `feature_matrix`, and `predictions.features.invoice_features` (one as-of
day, Decimal and int values for people and tests) reads the same numbers, so what a
model learns from and what it is scored on cannot drift apart.

How it stays point in time (ARCHITECTURE rule 7) and fast:

1. The ledger of the customers concerned is loaded once (`Ledger.load`, a fixed handful
   of queries streamed as tuples): invoices, allocations (an allocation is known from the
   later of its own date and its payment's receipt date), and dated case work and timeline
   events (counted from the local day they were stamped).
2. Every fact becomes an event on a day: an invoice issued, an allocation known, an
   invoice settled (its open balance reached zero) and, if a reversal reopened it,
   unsettled again, a dispute opened, a promise resolved...
3. A feature at (customer, day) is a sum over that customer's events up to that day: the
   events are sorted once by (group, day) with running totals, and each pair is answered
   with two binary searches (`_Prefix`). Nothing dated after the as-of day is ever summed.

Settlement history is per customer in every currency (lateness is a habit, not a
currency); open and overdue figures are in the invoice's own currency; credit use is in
the customer's currency; case work and engagement count over the year before the as-of
day, portal visits and actions over the 90 days before it, and days_since_engagement is
the days since the debtor's last reply or portal entry on or before the as-of day (missing
when there is none). "Recent" means the last RECENT invoices by settlement day; a
settlement later undone by a reversal still counts among them (rare, and said here rather
than hidden). A cancelled invoice is no history at all (its status is read as it is now).
"""

import datetime as dt
from array import array
from dataclasses import dataclass

import numpy as np
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from accounts.models import Activity, Allocation, Customer, Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay

RECENT = 5
LONGER = 10  # the window of the longer record (late_share_10)
YEAR = 365  # case work and engagement are counted over the year before the as-of day
SPAN = 1 << 22  # more days than any date's ordinal: (group, day) packs into one int64
NEVER = SPAN - 1  # the day an interval that has not ended ends
EPSILON = 0.005  # half a cent: balances this close to zero are settled

FEATURES = (
    "settled_count",
    "late_share",
    "mean_days_late",
    "recent_mean_days_late",
    "recent_late_count",
    "late_share_10",
    "trend_days_late",
    "last_days_late",
    "mean_days_to_due",
    "recent_days_to_due",
    "open_count",
    "open_amount",
    "overdue_count",
    "overdue_amount",
    "amount_ratio",
    "terms_days",
    "issue_month",
    "due_weekday",
    "days_to_due",
    "customer_age_days",
    "invoices_90_days",
    "disputes",
    "promises_kept",
    "promises_broken",
    "payment_plans",
    "credit_use",
    "bounces",
    "replies",
    "calls_reached",
    "portal_visits_90_days",
    "portal_actions_90_days",
    "days_since_engagement",
)
INDEX = {name: i for i, name in enumerate(FEATURES)}
# Case work and engagement are counted over the year (YEAR) unless named here: the debtor
# portal is new, and what a debtor did there lately says more than a year's total.
WINDOWS = {"portal_visits_90_days": 90, "portal_actions_90_days": 90}
# The debtor's own moves, for days_since_engagement: a reply or anything in the portal.
ENGAGEMENT = ("replies", "portal_visits_90_days", "portal_actions_90_days")
# A portal timeline entry (Activity.Kind.PORTAL) whose details' "action" is this is a visit
# (the debtor opened the portal: portal.session.login); every other portal entry is an
# action (pay, promise, dispute, a plan asked for...).
PORTAL_VISIT = "visit"
REACHED = (
    Activity.CallOutcome.REACHED,
    Activity.CallOutcome.PROMISE_TO_PAY,
    Activity.CallOutcome.DISPUTE,
)


def day_number(day: dt.date) -> int:
    return day.toordinal()


def from_day_number(n: int) -> dt.date:
    return dt.date.fromordinal(int(n))


class _Prefix:
    """Running totals of event values per group, queried at (group, day) pairs.

    `at(groups, days)` answers, for each pair, the sum of the values of the events of that
    group on or before that day: two searchsorted calls over the packed (group, day) keys.
    """

    def __init__(self, groups, days, values, *, keep_values=False):
        groups = np.asarray(groups, dtype=np.int64)
        days = np.asarray(days, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        order = np.lexsort((days, groups))
        self.order = order  # event positions in (group, day) order, for callers' own columns
        self.keys = groups[order] * SPAN + days[order]
        self.totals = np.vstack([np.zeros((1, values.shape[1])), np.cumsum(values[order], axis=0)])
        self.values = values[order] if keep_values else None

    def bounds(self, groups, days):
        groups = np.asarray(groups, dtype=np.int64)
        first = np.searchsorted(self.keys, groups * SPAN, side="left")
        upto = np.searchsorted(self.keys, groups * SPAN + np.asarray(days), side="right")
        return first, upto

    def at(self, groups, days):
        first, upto = self.bounds(groups, days)
        return self.totals[upto] - self.totals[first]


@dataclass
class Ledger:
    """The facts of a set of customers' ledgers, as arrays indexed by row position."""

    invoice_ids: np.ndarray  # sorted
    customer: np.ndarray  # customer id per invoice
    currency: np.ndarray  # currency code (index into `currencies`) per invoice
    amount: np.ndarray  # float64: features only, never booked
    issued: np.ndarray  # day numbers
    due: np.ndarray
    currencies: list
    # Settlement intervals: invoice row, first day settled, first day open again (NEVER).
    settled_row: np.ndarray
    settled_from: np.ndarray
    settled_until: np.ndarray
    # Allocations: invoice row, day known, amount.
    allocation_row: np.ndarray
    allocation_day: np.ndarray
    allocation_amount: np.ndarray
    # Per customer: its currency code and credit limit (nan when none).
    customer_ids: np.ndarray  # sorted
    customer_currency: np.ndarray
    credit_limit: np.ndarray
    # Dated case work and timeline events: {kind: (customer ids, day numbers)}.
    events: dict

    @classmethod
    def load(cls, customer_ids=None) -> "Ledger":
        """Everything known now about these customers (all customers when None)."""

        def mine(queryset, field="customer_id"):
            if customer_ids is None:
                return queryset
            return queryset.filter(**{f"{field}__in": list(customer_ids)})

        currencies = sorted(
            set(_customer_currencies(customer_ids))
            | set(
                mine(Invoice.objects.all()).order_by().values_list("currency", flat=True).distinct()
            )
        )
        code = {c: i for i, c in enumerate(currencies)}
        # Streamed into typed columns: a million invoices never sit in memory as objects.
        invoice_ids, customer, currency, amount, issued, due = _columns(
            mine(Invoice.objects.exclude(status=Invoice.Status.CANCELLED))
            .order_by("id")
            .values_list("id", "customer_id", "currency", "amount", "issued_on", "due_on")
            .iterator(chunk_size=20000),
            "qqqdqq",
            lambda r: (r[0], r[1], code[r[2]], r[3], r[4].toordinal(), r[5].toordinal()),
        )

        known = mine(
            Allocation.objects.annotate(known_on=Greatest("allocated_on", "payment__received_on")),
            "invoice__customer_id",
        ).exclude(invoice__status=Invoice.Status.CANCELLED)
        allocation_invoice, allocation_day, allocation_amount = _columns(
            known.order_by()
            .values_list("invoice_id", "known_on", "amount")
            .iterator(chunk_size=20000),
            "qqd",
            lambda a: (a[0], a[1].toordinal(), a[2]),
        )
        m = len(allocation_invoice)
        allocation_row = np.searchsorted(invoice_ids, allocation_invoice)
        # Allocations count from the invoice's issue day at the earliest (the history of an
        # invoice starts when it exists).
        if m:
            allocation_day = np.maximum(allocation_day, issued[allocation_row])
        settled_row, settled_from, settled_until = _settlements(
            amount, allocation_row, allocation_day, allocation_amount
        )

        customers = list(
            mine(Customer.objects.all(), "id")
            .order_by("id")
            .values_list("id", "currency", "credit_limit")
        )
        customer_ids_arr = np.fromiter((c[0] for c in customers), np.int64, len(customers))
        customer_currency = np.fromiter(
            (code.get(c[1], -1) for c in customers), np.int64, len(customers)
        )
        credit_limit = np.fromiter(
            (float(c[2]) if c[2] else np.nan for c in customers), np.float64, len(customers)
        )
        return cls(
            invoice_ids=invoice_ids,
            customer=customer,
            currency=currency,
            amount=amount,
            issued=issued,
            due=due,
            currencies=currencies,
            settled_row=settled_row,
            settled_from=settled_from,
            settled_until=settled_until,
            allocation_row=allocation_row,
            allocation_day=allocation_day,
            allocation_amount=allocation_amount,
            customer_ids=customer_ids_arr,
            customer_currency=customer_currency,
            credit_limit=credit_limit,
            events=_events(mine),
        )

    def rows(self, invoice_ids) -> np.ndarray:
        """Row positions of these invoice ids (-1 for one not in the ledger)."""
        ids = np.asarray(invoice_ids, dtype=np.int64)
        pos = np.searchsorted(self.invoice_ids, ids)
        pos = np.minimum(pos, max(len(self.invoice_ids) - 1, 0))
        found = (len(self.invoice_ids) > 0) & (self.invoice_ids[pos] == ids)
        return np.where(found, pos, -1)

    def settled_on(self, rows, as_of_days) -> np.ndarray:
        """For each (row, day): the day its last settlement known then began, or -1 when
        the invoice is open (or unknown) that day."""
        answer = np.full(len(rows), -1, dtype=np.int64)
        if not len(self.settled_row):
            return answer
        prefix = _Prefix(self.settled_row, self.settled_from, self.settled_from)
        first, upto = prefix.bounds(rows, as_of_days)
        has = upto > first
        last = prefix.order[np.where(has, upto - 1, 0)]
        until = self.settled_until[last]
        start = self.settled_from[last]
        open_again = until <= np.asarray(as_of_days)
        return np.where(has & ~open_again, start, -1)


def _columns(rows, typecodes: str, convert) -> list[np.ndarray]:
    """Typed numpy columns from an iterator of tuples, `convert` applied to each tuple
    (typecodes: "q" int64, "d" float64); nothing but the columns is kept."""
    columns = [array(code) for code in typecodes]
    appends = [column.append for column in columns]
    for row in rows:
        for append, value in zip(appends, convert(row), strict=True):
            append(value)
    return [
        np.frombuffer(column, dtype=np.int64 if code == "q" else np.float64).copy()
        if len(column)
        else np.zeros(0, dtype=np.int64 if code == "q" else np.float64)
        for column, code in zip(columns, typecodes, strict=True)
    ]


def _customer_currencies(customer_ids):
    queryset = Customer.objects.all()
    if customer_ids is not None:
        queryset = queryset.filter(id__in=list(customer_ids))
    return queryset.values_list("currency", flat=True).distinct()


def _settlements(amount, allocation_row, allocation_day, allocation_amount):
    """Intervals of days each invoice is settled: its running total of allocations (by the
    day each became known) reaches its amount; a reversal that brings it back below ends
    the interval. Allocations of one day count together.

    Most invoices never see a reversal: their running total only grows, so they settle
    once, on the day of the first allocation that reaches the amount, and stay settled
    (found for all of them at once). Invoices with a negative allocation are walked day by
    day."""
    empty = np.zeros(0, dtype=np.int64)
    if not len(allocation_row):
        return empty, empty, empty
    order = np.lexsort((allocation_day, allocation_row))
    rows, days, amounts = allocation_row[order], allocation_day[order], allocation_amount[order]
    starts_at = np.concatenate([[0], np.flatnonzero(np.diff(rows)) + 1])
    sizes = np.diff(np.append(starts_at, len(rows)))
    total = np.cumsum(amounts)
    before = np.repeat(total[starts_at] - amounts[starts_at], sizes)
    running = total - before
    reached = running >= amount[rows] - EPSILON
    reversed_group = np.maximum.reduceat((amounts < 0).astype(np.int8), starts_at) > 0
    # Growing only: the first allocation that reaches the amount.
    index = np.arange(len(rows))
    first = np.minimum.reduceat(np.where(reached, index, len(rows)), starts_at)
    simple = ~reversed_group & (first < len(rows))
    out_rows = [rows[starts_at[simple]]]
    out_starts = [days[first[simple]]]
    out_ends = [np.full(int(simple.sum()), NEVER, dtype=np.int64)]
    # With a reversal: day by day.
    walked_rows, walked_starts, walked_ends = [], [], []
    for g in np.flatnonzero(reversed_group):
        start_i, end_i = starts_at[g], starts_at[g] + sizes[g]
        row = rows[start_i]
        these_days = days[start_i:end_i]
        paid_by_day = reached[start_i:end_i]
        last_of_day = np.flatnonzero(np.diff(these_days, append=NEVER + 1))
        settled_since = None
        for i in last_of_day:
            if paid_by_day[i] and settled_since is None:
                settled_since = these_days[i]
            elif not paid_by_day[i] and settled_since is not None:
                walked_rows.append(row)
                walked_starts.append(settled_since)
                walked_ends.append(these_days[i])
                settled_since = None
        if settled_since is not None:
            walked_rows.append(row)
            walked_starts.append(settled_since)
            walked_ends.append(NEVER)
    out_rows.append(np.asarray(walked_rows, dtype=np.int64))
    out_starts.append(np.asarray(walked_starts, dtype=np.int64))
    out_ends.append(np.asarray(walked_ends, dtype=np.int64))
    return (
        np.concatenate(out_rows).astype(np.int64),
        np.concatenate(out_starts).astype(np.int64),
        np.concatenate(out_ends).astype(np.int64),
    )


def _events(mine) -> dict:
    """Dated case work and timeline events per customer, by the local day they happened."""
    tz = timezone.get_current_timezone()

    def dated(queryset, field):
        pairs = list(
            queryset.annotate(day=TruncDate(field, tzinfo=tz))
            .exclude(**{f"{field}__isnull": True})
            .order_by()
            .values_list("customer_id", "day")
            .iterator(chunk_size=20000)
        )
        n = len(pairs)
        return (
            np.fromiter((p[0] for p in pairs), np.int64, n),
            np.fromiter((p[1].toordinal() for p in pairs), np.int64, n),
        )

    activities = mine(Activity.objects.all())
    replies, visits, actions = _engagement(activities, tz)
    return {
        "disputes": dated(mine(Dispute.objects.all()), "opened_at"),
        "promises_kept": dated(
            mine(PromiseToPay.objects.filter(status=PromiseToPay.Status.KEPT)), "resolved_at"
        ),
        "promises_broken": dated(
            mine(PromiseToPay.objects.filter(status=PromiseToPay.Status.BROKEN)), "resolved_at"
        ),
        "payment_plans": dated(mine(PaymentPlan.objects.all()), "created_at"),
        "bounces": dated(
            activities.filter(kind=Activity.Kind.DELIVERY, details__event="bounce"), "occurred_at"
        ),
        "replies": replies,
        "calls_reached": dated(
            activities.filter(kind=Activity.Kind.CALL, outcome__in=REACHED), "occurred_at"
        ),
        "portal_visits_90_days": visits,
        "portal_actions_90_days": actions,
    }


def _engagement(activities, tz):
    """Replies, portal visits and portal actions, (customer ids, day numbers) each, read in
    one streamed query (kind as 0 reply, 1 visit, 2 action)."""
    customer, day, kind = _columns(
        activities.filter(kind__in=(Activity.Kind.REPLY, Activity.Kind.PORTAL))
        .annotate(day=TruncDate("occurred_at", tzinfo=tz))
        .order_by()
        .values_list("customer_id", "day", "kind", "details__action")
        .iterator(chunk_size=20000),
        "qqq",
        lambda a: (
            a[0],
            a[1].toordinal(),
            0 if a[2] == Activity.Kind.REPLY else 1 if a[3] == PORTAL_VISIT else 2,
        ),
    )
    return tuple((customer[kind == k], day[kind == k]) for k in (0, 1, 2))


def feature_matrix(ledger: Ledger, rows, as_of_days) -> np.ndarray:
    """A float matrix, one line per (invoice row, as-of day) pair and one column per name in
    FEATURES; nan where there is nothing to compute a figure from."""
    rows = np.asarray(rows, dtype=np.int64)
    days = np.asarray(as_of_days, dtype=np.int64)
    n = len(rows)
    out = np.full((n, len(FEATURES)), np.nan)
    if not n:
        return out
    cust = ledger.customer[rows]
    cur = ledger.currency[rows]
    due = ledger.due[rows]
    issued = ledger.issued[rows]
    amount = ledger.amount[rows]
    ncur = max(len(ledger.currencies), 1)

    # --- 1. Settlement history, all currencies. -------------------------------------------
    srow, sfrom, suntil = ledger.settled_row, ledger.settled_from, ledger.settled_until
    s_cust = ledger.customer[srow]
    s_delta = (sfrom - ledger.due[srow]).astype(np.float64)  # signed: negative = early
    s_late = np.maximum(s_delta, 0)
    s_is_late = (s_delta > 0).astype(np.float64)
    s_amount = ledger.amount[srow]
    # Counted while settled: +1 from the day it settled, -1 from the day a reversal undid it.
    values = np.column_stack([np.ones(len(srow)), s_is_late, s_late, s_delta])
    counted = _Prefix(
        np.concatenate([s_cust, s_cust]),
        np.concatenate([sfrom, suntil]),
        np.concatenate([values, -values]),
    ).at(cust, days)
    # The target itself, when already settled at the as-of day, is not its own history.
    own_from = ledger.settled_on(rows, days)
    own = own_from >= 0
    own_delta = np.where(own, own_from - due, 0).astype(np.float64)
    own_values = np.column_stack(
        [own.astype(float), own & (own_delta > 0), np.maximum(own_delta, 0), own_delta]
    )
    counted = counted - own_values
    count = counted[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        has = count > 0
        out[:, INDEX["settled_count"]] = count
        out[:, INDEX["late_share"]] = np.where(has, counted[:, 1] / count, np.nan)
        out[:, INDEX["mean_days_late"]] = np.where(has, counted[:, 2] / count, np.nan)
        out[:, INDEX["mean_days_to_due"]] = np.where(has, counted[:, 3] / count, np.nan)

    # Recent and last: by settlement day, the target left out.
    ordered = _Prefix(
        s_cust, sfrom, np.column_stack([s_late, s_is_late, s_delta]), keep_values=True
    )
    first, upto = ordered.bounds(cust, days)
    # Where the target sits in that order (it settled on own_from): drop it from the window.
    own_pos = np.full(n, -1)
    if own.any():
        sorted_rows = srow[ordered.order]
        for i in np.flatnonzero(own):
            window = np.arange(first[i], upto[i])
            hit = window[sorted_rows[window] == rows[i]]
            own_pos[i] = hit[-1] if len(hit) else -1
    recent_late, recent_count, recent_delta, recent_n, last = _recent(
        ordered, first, upto, own_pos, RECENT
    )
    _late10, count10, _delta10, n10, _last10 = _recent(ordered, first, upto, own_pos, LONGER)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, INDEX["late_share_10"]] = np.where(n10 > 0, count10 / n10, np.nan)
    earlier_n = count - recent_n
    with np.errstate(invalid="ignore", divide="ignore"):
        recent_mean = np.where(recent_n > 0, recent_late / recent_n, np.nan)
        earlier_sum = counted[:, 2] - recent_late
        earlier_mean = np.where(earlier_n > 0, earlier_sum / earlier_n, np.nan)
        out[:, INDEX["recent_mean_days_late"]] = recent_mean
        out[:, INDEX["recent_late_count"]] = recent_count
        out[:, INDEX["trend_days_late"]] = recent_mean - earlier_mean
        out[:, INDEX["last_days_late"]] = last
        out[:, INDEX["recent_days_to_due"]] = np.where(
            recent_n > 0, recent_delta / recent_n, np.nan
        )

    # --- 2. Open and overdue in the invoice's currency, credit use in the customer's. ----
    inv_group = ledger.customer * ncur + ledger.currency
    a_rows = ledger.allocation_row
    a_group = inv_group[a_rows]
    s_group = inv_group[srow]
    s_after_due = np.maximum(sfrom, ledger.due[srow] + 1)
    overdue_until = np.maximum(suntil, ledger.due[srow] + 1)
    keep = s_after_due < overdue_until
    balance = _Prefix(
        np.concatenate([inv_group, a_group, s_group, s_group]),
        np.concatenate([ledger.issued, ledger.allocation_day, sfrom, suntil]),
        np.concatenate(
            [
                np.column_stack([ledger.amount, np.ones(len(inv_group))]),
                np.column_stack([-ledger.allocation_amount, np.zeros(len(a_rows))]),
                np.column_stack([np.zeros(len(srow)), -np.ones(len(srow))]),
                np.column_stack([np.zeros(len(srow)), np.ones(len(srow))]),
            ]
        ),
    )
    a_overdue_day = np.maximum(ledger.allocation_day, ledger.due[a_rows] + 1)
    overdue = _Prefix(
        np.concatenate([inv_group, a_group, s_group[keep], s_group[keep]]),
        np.concatenate([ledger.due + 1, a_overdue_day, s_after_due[keep], overdue_until[keep]]),
        np.concatenate(
            [
                np.column_stack([ledger.amount, np.ones(len(inv_group))]),
                np.column_stack([-ledger.allocation_amount, np.zeros(len(a_rows))]),
                np.column_stack([np.zeros(keep.sum()), -np.ones(keep.sum())]),
                np.column_stack([np.zeros(keep.sum()), np.ones(keep.sum())]),
            ]
        ),
    )
    target_group = cust * ncur + cur
    open_now = balance.at(target_group, days)
    overdue_now = overdue.at(target_group, days)
    out[:, INDEX["open_amount"]] = np.maximum(open_now[:, 0], 0)
    out[:, INDEX["open_count"]] = open_now[:, 1]
    out[:, INDEX["overdue_amount"]] = np.maximum(overdue_now[:, 0], 0)
    out[:, INDEX["overdue_count"]] = overdue_now[:, 1]

    cpos = np.searchsorted(ledger.customer_ids, cust)
    c_currency = ledger.customer_currency[cpos]
    limit = ledger.credit_limit[cpos]
    exposure = balance.at(cust * ncur + np.maximum(c_currency, 0), days)[:, 0]
    del balance, overdue  # the largest running totals: let them go before the next ones
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, INDEX["credit_use"]] = np.where(
            (limit > 0) & (c_currency >= 0), np.maximum(exposure, 0) / limit, np.nan
        )

    # --- 3. The invoice, against the customer's usual amount in that currency. -----------
    # Usual: the geometric mean of the amounts of invoices settled in that currency.
    logs = np.log(np.maximum(s_amount, 0.01))
    usual = _Prefix(
        np.concatenate([s_group, s_group]),
        np.concatenate([sfrom, suntil]),
        np.concatenate(
            [
                np.column_stack([np.ones(len(srow)), logs]),
                -np.column_stack([np.ones(len(srow)), logs]),
            ]
        ),
    ).at(target_group, days)
    own_log = np.where(own, np.log(np.maximum(amount, 0.01)), 0)
    usual_n = usual[:, 0] - own
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        usual_amount = np.exp((usual[:, 1] - own_log) / usual_n)
        out[:, INDEX["amount_ratio"]] = np.where(usual_n > 0, amount / usual_amount, np.nan)
    out[:, INDEX["terms_days"]] = due - issued
    out[:, INDEX["days_to_due"]] = due - days
    out[:, INDEX["issue_month"]] = _months(issued)
    out[:, INDEX["due_weekday"]] = (due - 1) % 7 + 1  # day 1 (1 January of year 1) was a Monday

    # --- 4. The customer's tenure and activity. -------------------------------------------
    issued_prefix = _Prefix(ledger.customer, ledger.issued, np.ones(len(ledger.customer)))
    first_issue = _first_day(ledger.customer, ledger.issued, cust)
    out[:, INDEX["customer_age_days"]] = np.where(first_issue > 0, days - first_issue, 0)
    out[:, INDEX["invoices_90_days"]] = (
        issued_prefix.at(cust, days)[:, 0] - issued_prefix.at(cust, days - 90)[:, 0]
    )

    # --- 5. Case work and engagement, counted over the year up to the as-of day. ---------
    # A year, not all time: a count that only grows with tenure would mean something else
    # in a young ledger than in an old one, and the model learns from the old to score the new.
    for name, (who, when) in ledger.events.items():
        if len(who):
            window = WINDOWS.get(name, YEAR)
            counts = _Prefix(who, when, np.ones(len(who)))
            out[:, INDEX[name]] = counts.at(cust, days)[:, 0] - counts.at(cust, days - window)[:, 0]
        else:
            out[:, INDEX[name]] = 0
    # Days since the debtor last replied or used the portal, known on the as-of day.
    who = np.concatenate([ledger.events[name][0] for name in ENGAGEMENT])
    when = np.concatenate([ledger.events[name][1] for name in ENGAGEMENT])
    out[:, INDEX["days_since_engagement"]] = days - _last_day(who, when, cust, days)
    return out


def _last_day(groups, days, targets, as_of_days):
    """For each (target group, as-of day): the latest of that group's days on or before the
    as-of day; nan when it has none."""
    if not len(groups):
        return np.full(len(targets), np.nan)
    keys = np.sort(np.asarray(groups, dtype=np.int64) * SPAN + np.asarray(days, dtype=np.int64))
    upto = np.searchsorted(keys, targets * SPAN + as_of_days, side="right")
    before = keys[np.maximum(upto - 1, 0)]
    found = (upto > 0) & (before // SPAN == targets)
    return np.where(found, (before % SPAN).astype(np.float64), np.nan)


def _recent(ordered: _Prefix, first, upto, own_pos, window: int):
    """Sums over the last `window` settled invoices before each pair's day, leaving out the
    target's own position when it is among them; and the last one's days late."""
    n = len(first)
    late = np.zeros(n)
    late_count = np.zeros(n)
    delta = np.zeros(n)
    taken = np.zeros(n)
    last = np.full(n, np.nan)
    values = ordered.values
    # Up to window + 1 positions back, skipping the target's own.
    for back in range(1, window + 2):
        pos = upto - back
        valid = (pos >= first) & (pos != own_pos) & (taken < window)
        idx = np.where(valid, pos, 0)
        picked = values[idx] if len(values) else np.zeros((n, 3))
        late += np.where(valid, picked[:, 0], 0)
        late_count += np.where(valid, picked[:, 1], 0)
        delta += np.where(valid, picked[:, 2], 0)
        last = np.where(valid & np.isnan(last), picked[:, 0], last)
        taken += valid
    return late, late_count, delta, taken, last


def _first_day(groups, days, targets):
    order = np.lexsort((days, groups))
    g, d = groups[order], days[order]
    pos = np.searchsorted(g, targets, side="left")
    pos_c = np.minimum(pos, max(len(g) - 1, 0))
    found = (len(g) > 0) & (g[pos_c] == targets)
    return np.where(found, d[pos_c], 0)


def _months(day_numbers) -> np.ndarray:
    """Calendar months of day numbers, through numpy's datetime64 (fast for millions)."""
    epoch = dt.date(1970, 1, 1).toordinal()
    dates = (np.asarray(day_numbers) - epoch).astype("datetime64[D]")
    return dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
