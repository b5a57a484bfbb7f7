"""The risk score: 0-100 per customer (higher is riskier), its band, and the factors behind it.

Seven factors from the last 12 months, each a fraction from 0 to 1 times its weight; the
score is the sum of the points, rounded (WEIGHTS add up to 100):

====================  ======  ==========================================================
factor                weight  fraction
====================  ======  ==========================================================
late_share            25      invoices that fell due in the last 12 months and were paid
                              after their due date or are still unpaid, of those invoices
                              (paid ones count when we know the day they were paid: the
                              last allocation that paid them)
days_late             15      average days late of those late invoices / 60, at most 1
trend                 10      average days to pay (issue to payment) of invoices paid in
                              the last 90 days minus that of the 9 months before, / 30;
                              0 when paying faster or when either period paid nothing
broken_promises       15      broken / (kept + broken) promises resolved in 12 months
disputes              5       disputes opened in 12 months, not resolved in the
                              customer's favour, / 3, at most 1
past_due_share        20      past-due balance / open balance, in the currency where that
                              share is highest (currencies are never added)
credit_utilisation    10      open balance in the customer's own currency / credit limit,
                              at most 1; 0 without a credit limit
====================  ======  ==========================================================

Bands: low below 34, medium from 34 to 66, high from 67 (BAND_LIMITS). Each factor's
weight, measured value and points are stored in Customer.risk_factors, so the console
shows why. A band change is written to the timeline (kind risk); a first score of "low"
is not news and is not.

With RISK_DRIVES_SEGMENT (default on) the score chooses the dunning policy: a customer
in band high moves from the standard segment to high_risk (whose policy is firmer),
unless it has its own dunning policy; strategic customers are never moved. When its
band drops, a customer the score moved goes back to the segment it came from; a
customer someone put in high_risk by hand stays there. The band can also choose the
policy within a segment, without moving anyone: a dunning policy may be set for one
segment and band (dunning.Policy.risk_band), e.g. standard customers in band high.
"""

import datetime as dt
import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop, ngettext

from accounts import bulk, timeline
from accounts.models import Activity, Allocation, Customer, Invoice, RiskBand

from .models import Dispute
from .promises import promise_record

WEIGHTS = {
    "late_share": 25,
    "days_late": 15,
    "trend": 10,
    "broken_promises": 15,
    "disputes": 5,
    "past_due_share": 20,
    "credit_utilisation": 10,
}
LABELS = {
    "late_share": gettext_noop("Invoices paid late or unpaid past due (12 months)"),
    "days_late": gettext_noop("Average days late (full at 60)"),
    "trend": gettext_noop("Paying slower: last 90 days vs the 9 months before (full at +30)"),
    "broken_promises": gettext_noop("Broken promises to pay (12 months)"),
    "disputes": gettext_noop("Disputes opened, not resolved for the customer (full at 3)"),
    "past_due_share": gettext_noop("Share of the open balance past due"),
    "credit_utilisation": gettext_noop("Credit limit used"),
}
FULL_DAYS_LATE = 60
FULL_TREND_DAYS = 30
FULL_DISPUTES = 3
WINDOW_DAYS = 365
RECENT_DAYS = 90
# score < 34: low; < 67: medium; otherwise high.
BAND_LIMITS = ((34, RiskBand.LOW), (67, RiskBand.MEDIUM))
CHUNK = 5_000

ONE, ZERO = Decimal(1), Decimal(0)
TENTH = Decimal("0.1")


def band_for(score: int) -> str:
    for limit, band in BAND_LIMITS:
        if score < limit:
            return band
    return RiskBand.HIGH


@dataclass
class ScoreResult:
    scored: int = 0
    band_changes: int = 0
    segment_changes: int = 0


def _days(later: str, earlier: str) -> str:
    """SQL for whole days from one date expression to another, on PostgreSQL and SQLite."""
    if connection.vendor == "postgresql":
        return f"({later} - {earlier})"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _in_ids(column: str, ids: list[int], params: dict) -> str:
    if connection.vendor == "postgresql":
        params["ids"] = ids
        return f"{column} = ANY(%(ids)s)"
    names = []
    for index, pk in enumerate(ids):
        params[f"id_{index}"] = pk
        names.append(f"%(id_{index})s")
    return f"{column} IN ({', '.join(names)})"


# Per customer: invoices that fell due in the window (paid late or still unpaid), and days
# to pay of invoices paid in the last 90 days and the 9 months before. An invoice's paid
# day is its last positive allocation; the subquery runs only for paid invoices and reads
# allocation_invoice_on (invoice_id, allocated_on).
BEHAVIOUR_SQL = """
SELECT customer_id,
    SUM(CASE WHEN in_window = 1 THEN 1 ELSE 0 END) AS considered,
    SUM(CASE WHEN in_window = 1 AND days_late > 0 THEN 1 ELSE 0 END) AS late,
    SUM(CASE WHEN in_window = 1 AND days_late > 0 THEN days_late ELSE 0 END) AS late_days,
    SUM(CASE WHEN paid_on >= %(recent_from)s THEN days_to_pay ELSE 0 END) AS recent_days,
    SUM(CASE WHEN paid_on >= %(recent_from)s THEN 1 ELSE 0 END) AS recent_paid,
    SUM(CASE WHEN paid_on >= %(window_from)s AND paid_on < %(recent_from)s
        THEN days_to_pay ELSE 0 END) AS earlier_days,
    SUM(CASE WHEN paid_on >= %(window_from)s AND paid_on < %(recent_from)s
        THEN 1 ELSE 0 END) AS earlier_paid
FROM (
    SELECT customer_id, paid_on,
        CASE WHEN due_on >= %(window_from)s AND due_on < %(today)s
            AND (status <> %(paid)s OR paid_on IS NOT NULL) THEN 1 ELSE 0 END AS in_window,
        CASE WHEN paid_on IS NOT NULL THEN {paid_late} ELSE {unpaid_late} END AS days_late,
        {days_to_pay} AS days_to_pay
    FROM (
        SELECT i.customer_id, i.due_on, i.issued_on, i.status,
            CASE WHEN i.status = %(paid)s THEN (
                SELECT MAX(a.allocated_on) FROM {allocation} a
                WHERE a.invoice_id = i.id AND a.amount > 0
            ) END AS paid_on
        FROM {invoice} i
        WHERE {scope} AND i.status <> %(cancelled)s
            AND (i.due_on >= %(window_from)s OR i.status = %(paid)s)
    ) invoices
) facts
GROUP BY customer_id
"""


def _behaviour(ids: list[int], today: dt.date) -> dict[int, tuple]:
    params = {
        "today": today,
        "window_from": today - dt.timedelta(days=WINDOW_DAYS),
        "recent_from": today - dt.timedelta(days=RECENT_DAYS),
        "paid": Invoice.Status.PAID,
        "cancelled": Invoice.Status.CANCELLED,
    }
    ops = connection.ops
    params = {
        name: ops.adapt_datefield_value(value) if isinstance(value, dt.date) else value
        for name, value in params.items()
    }
    sql = BEHAVIOUR_SQL.format(
        allocation=Allocation._meta.db_table,
        invoice=Invoice._meta.db_table,
        scope=_in_ids("i.customer_id", ids, params),
        paid_late=_days("paid_on", "due_on"),
        unpaid_late=_days("%(today)s", "due_on"),
        days_to_pay=_days("paid_on", "issued_on"),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _balances(ids: list[int], today: dt.date) -> dict[int, dict[str, tuple[Decimal, Decimal]]]:
    """Per customer and currency: (open balance, past-due balance)."""
    balances: dict[int, dict[str, tuple[Decimal, Decimal]]] = {}
    rows = (
        Invoice.objects.outstanding()
        .filter(bulk.one_of("customer_id", ids))
        .order_by()
        .values("customer_id", "currency")
        .annotate(
            open=Sum("open_balance"),
            past_due=Sum("open_balance", filter=Q(due_on__lt=today)),
        )
        .values_list("customer_id", "currency", "open", "past_due")
    )
    for customer_id, currency, open_total, past_due in rows:
        balances.setdefault(customer_id, {})[currency] = (open_total, past_due or ZERO)
    return balances


def _disputes(ids: list[int], since: dt.datetime) -> dict[int, int]:
    return dict(
        Dispute.objects.filter(bulk.one_of("customer_id", ids), opened_at__gte=since)
        .exclude(status=Dispute.Status.RESOLVED_CUSTOMER)
        .order_by()
        .values("customer_id")
        .annotate(n=Count("pk"))
        .values_list("customer_id", "n")
    )


def _promises(ids: list[int], since: dt.datetime) -> dict[int, tuple[int, int]]:
    """(kept, broken) promises per customer, from the promises module."""
    return {
        pk: (record.kept, record.broken) for pk, record in promise_record(ids, since=since).items()
    }


def _points(weight: int, fraction: Decimal) -> Decimal:
    fraction = min(ONE, max(ZERO, fraction))
    return (weight * fraction).quantize(TENTH, rounding=ROUND_HALF_UP)


def _share(part, whole) -> Decimal:
    return Decimal(part) / Decimal(whole) if whole else ZERO


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).quantize(ONE, rounding=ROUND_HALF_UP)}%"


# How each factor's measurement reads, translated once per chunk (gettext per customer and
# factor was a third of the scoring time).
VALUE_TEXTS = {
    "late_share": gettext_noop("%(late)d of %(n)d invoices"),
    "days_late": gettext_noop("%(days)s days on average"),
    "trend": gettext_noop("%(earlier)s → %(recent)s days to pay"),
    "no_trend": gettext_noop("not enough payments to compare"),
    "broken_promises": gettext_noop("%(broken)d broken, %(kept)d kept"),
    "no_past_due": gettext_noop("nothing past due"),
    "credit_utilisation": gettext_noop("%(percent)s of %(currency)s %(limit)s"),
    "no_credit_limit": gettext_noop("no credit limit"),
}


class _Texts(dict):
    """VALUE_TEXTS in the active language, and the plural of disputes per count."""

    def __init__(self):
        super().__init__({key: _(text) for key, text in VALUE_TEXTS.items()})
        self._disputes: dict[int, str] = {}

    def disputes(self, n: int) -> str:
        if n not in self._disputes:
            self._disputes[n] = ngettext("%(n)d dispute", "%(n)d disputes", n) % {"n": n}
        return self._disputes[n]


def score_one(
    *,
    behaviour: tuple | None,
    balances: dict[str, tuple[Decimal, Decimal]],
    promises: tuple[int, int],
    disputes: int,
    currency: str,
    credit_limit: Decimal | None,
    texts: _Texts | None = None,
) -> tuple[int, list[dict]]:
    """The score and its factors from one customer's aggregates (no queries)."""
    texts = texts or _Texts()
    considered, late, late_days, recent_days, recent_paid, earlier_days, earlier_paid = (
        behaviour or (0, 0, 0, 0, 0, 0, 0)
    )
    factors = []

    def factor(key: str, fraction: Decimal, value: str) -> None:
        factors.append(
            {
                "key": key,
                "label": LABELS[key],
                "weight": WEIGHTS[key],
                "value": value,
                "points": float(_points(WEIGHTS[key], fraction)),
            }
        )

    factor(
        "late_share",
        _share(late, considered),
        texts["late_share"] % {"late": late or 0, "n": considered or 0},
    )
    average_late = _share(late_days, late)
    factor(
        "days_late",
        average_late / FULL_DAYS_LATE,
        texts["days_late"] % {"days": average_late.quantize(TENTH)},
    )
    if recent_paid and earlier_paid:
        recent, earlier = _share(recent_days, recent_paid), _share(earlier_days, earlier_paid)
        factor(
            "trend",
            (recent - earlier) / FULL_TREND_DAYS,
            texts["trend"] % {"earlier": earlier.quantize(TENTH), "recent": recent.quantize(TENTH)},
        )
    else:
        factor("trend", ZERO, texts["no_trend"])
    kept, broken = promises
    factor(
        "broken_promises",
        _share(broken, kept + broken),
        texts["broken_promises"] % {"broken": broken, "kept": kept},
    )
    factor(
        "disputes",
        Decimal(disputes) / FULL_DISPUTES,
        texts.disputes(disputes),
    )
    worst, worst_currency = ZERO, ""
    for code, (open_total, past_due) in sorted(balances.items()):
        share = _share(past_due, open_total)
        if share > worst:
            worst, worst_currency = share, code
    factor(
        "past_due_share",
        worst,
        f"{worst_currency} {_percent(worst)}" if worst_currency else texts["no_past_due"],
    )
    own_open = balances.get(currency, (ZERO, ZERO))[0]
    if credit_limit:
        used = _share(own_open, credit_limit)
        factor(
            "credit_utilisation",
            used,
            texts["credit_utilisation"]
            % {"percent": _percent(used), "currency": currency, "limit": credit_limit},
        )
    else:
        factor("credit_utilisation", ZERO, texts["no_credit_limit"])
    total = sum(Decimal(str(f["points"])) for f in factors)
    return int(total.quantize(ONE, rounding=ROUND_HALF_UP)), factors


def score_customers(*, customer_ids=None, now: dt.datetime) -> ScoreResult:
    """Recompute the risk score of these customers (None: all), in chunks of CHUNK.

    Each chunk, in one transaction:
    1. Lock the customers (so a segment edit in the console is not overwritten) and read
       their current band, segment and credit limit.
    2. Four aggregates: payment behaviour (one SQL statement), balances per currency,
       disputes, promises kept and broken (accounts.promises.promise_record).
    3. Score each customer in Python from those few numbers (no queries).
    4. Write every score with one UPDATE ... FROM jsonb_to_recordset(...) (bulk_update
       elsewhere), and the timeline entries for band and segment changes with one INSERT.
    """
    today = timezone.localdate(now)
    if customer_ids is None:
        ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    else:
        ids = sorted(set(customer_ids))
    result = ScoreResult()
    for start in range(0, len(ids), CHUNK):
        _score_chunk(ids[start : start + CHUNK], now=now, today=today, result=result)
    return result


def rescore_after_payment(customer_ids) -> ScoreResult:
    """After money arrives: rescore the payers now (the ledger's payment hooks call this)."""
    return score_customers(customer_ids=list(customer_ids), now=timezone.now())


@transaction.atomic
def _score_chunk(ids: list[int], *, now: dt.datetime, today: dt.date, result: ScoreResult):
    customers = list(
        Customer.objects.select_for_update()
        .filter(bulk.one_of("id", ids))
        .order_by("pk")
        .values_list(
            "pk",
            "risk_score",
            "risk_band",
            "segment",
            "dunning_policy_id",
            "currency",
            "credit_limit",
            "risk_factors__segment_before",
        )
    )
    if not customers:
        return
    ids = [row[0] for row in customers]
    since = now - dt.timedelta(days=WINDOW_DAYS)
    behaviour = _behaviour(ids, today)
    balances = _balances(ids, today)
    disputes = _disputes(ids, since)
    promises = _promises(ids, since)
    drives_segment = settings.RISK_DRIVES_SEGMENT
    texts = _Texts()
    updates, entries = [], []
    for pk, old_score, old_band, segment, policy_id, currency, limit, segment_before in customers:
        score, factors = score_one(
            behaviour=behaviour.get(pk),
            balances=balances.get(pk, {}),
            promises=promises.get(pk, (0, 0)),
            disputes=disputes.get(pk, 0),
            currency=currency,
            credit_limit=limit,
            texts=texts,
        )
        band = band_for(score)
        new_segment = segment
        if segment_before and segment != Customer.Segment.HIGH_RISK:
            segment_before = None  # someone moved it since; the score no longer holds it
        if drives_segment:
            if band == RiskBand.HIGH and segment == Customer.Segment.STANDARD and policy_id is None:
                new_segment, segment_before = Customer.Segment.HIGH_RISK, segment
            elif band != RiskBand.HIGH and segment_before:
                new_segment, segment_before = segment_before, None
        details = {
            "version": 1,
            "as_of": today.isoformat(),
            "score": score,
            "band": band,
            "factors": factors,
        }
        if segment_before and new_segment == Customer.Segment.HIGH_RISK:
            details["segment_before"] = segment_before
        updates.append((pk, score, band, details, new_segment))
        if band != old_band and (old_band or band != RiskBand.LOW):
            result.band_changes += 1
            entries.append(_band_entry(pk, old_band, old_score, band, score, factors, now))
        if new_segment != segment:
            result.segment_changes += 1
            entries.append(_segment_entry(pk, segment, new_segment, band, now))
    _store(updates, now)
    timeline.copy_rows(entries)
    result.scored += len(updates)


def _label(choices, value: str) -> str:
    return str(dict(choices.choices).get(value, value or "—"))


def _band_entry(pk, old_band, old_score, band, score, factors, now) -> tuple:
    top = sorted(factors, key=lambda f: f["points"], reverse=True)[:3]
    reasons = "; ".join(f"{_(f['label'])}: {f['value']} ({f['points']:g})" for f in top)
    return (
        pk,
        None,
        Activity.Kind.RISK,
        None,
        _("Risk band %(old)s → %(new)s (score %(score)d): %(reasons)s")
        % {
            "old": _label(RiskBand, old_band),
            "new": _label(RiskBand, band),
            "score": score,
            "reasons": reasons,
        },
        {"from": old_band, "to": band, "from_score": old_score, "score": score},
        now,
    )


def _segment_entry(pk, old, new, band, now) -> tuple:
    return (
        pk,
        None,
        Activity.Kind.STATUS_CHANGE,
        None,
        _("segment: %(old)s → %(new)s (risk band %(band)s)")
        % {
            "old": _label(Customer.Segment, old),
            "new": _label(Customer.Segment, new),
            "band": _label(RiskBand, band),
        },
        {"field": "segment", "from": old, "to": new, "reason": "risk"},
        now,
    )


def _store(updates: list[tuple], now: dt.datetime) -> None:
    """One UPDATE for the chunk: UPDATE ... FROM jsonb_to_recordset(...) on PostgreSQL."""
    if not updates:
        return
    if connection.vendor != "postgresql":
        Customer.objects.bulk_update(
            [
                Customer(
                    pk=pk,
                    risk_score=score,
                    risk_band=band,
                    risk_factors=details,
                    segment=segment,
                    risk_scored_at=now,
                )
                for pk, score, band, details, segment in updates
            ],
            ["risk_score", "risk_band", "risk_factors", "segment", "risk_scored_at"],
            batch_size=500,
        )
        return
    # One JSON document for the whole chunk: quoting thousands of JSON strings one by one
    # in an array parameter cost the driver more than the UPDATE itself.
    rows = [
        {"id": pk, "score": score, "band": band, "factors": details, "segment": segment}
        for pk, score, band, details, segment in updates
    ]
    encoder = Customer._meta.get_field("risk_factors").encoder
    table = connection.ops.quote_name(Customer._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS c SET risk_score = v.score, risk_band = v.band, "  # noqa: S608
            "risk_factors = v.factors, risk_scored_at = %s, segment = v.segment, "
            "updated_at = CASE WHEN c.segment <> v.segment THEN %s ELSE c.updated_at END "
            "FROM jsonb_to_recordset(%s::jsonb) "
            "AS v(id bigint, score smallint, band text, factors jsonb, segment text) "
            "WHERE c.id = v.id",
            [now, now, json.dumps(rows, cls=encoder)],
        )
