"""Which messages get paid: notices sent, delivered, bounced, replied and paid, per group.

For the notices sent between two days (the sent day in the site's time zone; installment
reminders left out, they list no invoices of their own), grouped by any of step,
template, channel, segment, risk band and experiment variant:

- sent: the sender stamped `sent_at` (the provider took it, or the letter was produced).
- delivered: `delivered_at` set or the status delivered (the e-mail provider's or
  Twilio's delivery report, also on the timeline as a delivery entry), or a delivered or
  complaint EmailEvent for the notice.
- bounced: a hard-bounce EmailEvent for the notice, or the notice failed after it was
  sent (a hard bounce or an undelivered SMS turns a sent notice to failed).
- replied: a reply on the customer's timeline (Activity kind reply) within
  REPLY_WINDOW_DAYS after the notice was sent. Replies are not tied to one message, so a
  reply counts for every notice sent to that customer in the days before it.
- paid within 7 / 14 days: some invoice the notice lists was fully settled by
  allocations dated up to the sent day + 7 / 14 (payments and credit notes, never
  write-offs), as dunning/outcomes.py defines it for the experiments. A rate counts only
  the notices whose window has closed on the report's as-of day (sent at least 7 or 14
  days before), so a recent week does not look bad for want of time; the rate's total
  says how many that is.
- cash collected within 14 days: allocations of payments (reversals subtract) to the
  invoices the notice lists, dated from the sent day to the sent day + 14, per currency
  (the invoices'), never added across currencies, over the notices whose 14 days have
  passed. A payment applied to an invoice listed on two notices in the same fortnight
  counts for both.

Every rate carries its Wilson score interval (95%). Segment and risk band are the
customer's today (neither is stored on the notice). Everything is counted in SQL, in
one statement whatever the number of notices.

`compare_variants` sets the variants of each experimenting step side by side: the
paid-within-14-days rate with its interval, how each variant's notices were assigned
(weights or Thompson sampling), and the probability that each variant is the best,
from 20,000 Monte Carlo draws from each variant's Beta(1 + paid, 1 + not paid) posterior
(seeded, so the page says the same thing twice).
"""

# SQL here is built from quoted table names and fixed fragments; every value is a parameter.
# ruff: noqa: S608

import datetime as dt
import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from statistics import NormalDist

import numpy as np
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy

from accounts.models import Activity, Allocation, Invoice, Payment, RiskBand
from accounts.models import Customer as CustomerModel
from dunning import outcomes, variants
from dunning.models import Channel, EmailEvent, Notice, NoticeInvoice, Step, StepVariant

PERMISSION = "reporting.view_effectiveness_report"
REPLY_WINDOW_DAYS = 7
CONFIDENCE = 0.95
Z = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2)  # 1.959963984540054
MONTE_CARLO_DRAWS = 20_000
CENT = Decimal("0.01")

DIMENSIONS = [
    ("step", gettext_lazy("Step")),
    ("template", gettext_lazy("Template")),
    ("channel", gettext_lazy("Channel")),
    ("segment", gettext_lazy("Segment")),
    ("risk_band", gettext_lazy("Risk band")),
    ("variant", gettext_lazy("Variant")),
]
DIMENSION_NAMES = [name for name, _label in DIMENSIONS]


def _dimension_fields(name: str, prefix: str = "") -> dict:
    """The columns a dimension groups by (relative to Notice, or through `prefix`)."""
    p = prefix
    return {
        "step": {
            "step_pk": F(f"{p}step_id"),
            "policy_name": F(f"{p}step__policy__name"),
            "step_name": F(f"{p}step__name"),
            "offset_days": F(f"{p}step__offset_days"),
        },
        # The template the notice was rendered from: its variant's, else its step's.
        "template": {
            "template_name": Coalesce(
                F(f"{p}variant__template__name"), F(f"{p}step__template__name"), Value("")
            ),
        },
        "channel": {"channel_code": F(f"{p}channel")},
        "segment": {"segment_code": F(f"{p}customer__segment")},
        "risk_band": {"risk_band_code": F(f"{p}customer__risk_band")},
        "variant": {
            "variant_pk": F(f"{p}variant_id"),
            "variant_label": Coalesce(F(f"{p}variant__label"), Value("")),
        },
    }[name]


@dataclass(frozen=True)
class Rate:
    """`hits` of `total`, with its Wilson score interval (None when nothing was counted)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.hits, self.total)

    @property
    def display(self) -> str:
        """ "45.0% (38.1-52.0)": the rate and its 95% interval in percent; "—" for none."""
        if not self.total:
            return "—"
        low, high = self.interval
        return f"{self.value * 100:.1f}% ({low * 100:.1f}-{high * 100:.1f})"


def wilson_interval(hits: int, total: int, z: float = Z) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None for no trials.

    Unlike the normal approximation it stays within 0..1 and is not empty at 0 or n hits.
    """
    if total <= 0:
        return None
    if not 0 <= hits <= total:
        raise ValueError("hits must be between 0 and total")
    p = hits / total
    z2 = z * z
    denominator = 1 + z2 / total
    centre = (p + z2 / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z2 / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Row:
    """One group's figures; `group` holds the dimension columns (step_name, channel_code...)."""

    group: dict
    sent: int
    delivered: Rate
    bounced: Rate
    replied: Rate
    paid_7: Rate
    paid_14: Rate
    collected_14: dict[str, Decimal] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return group_label(self.group)


def group_label(group: dict) -> str:
    """The group's columns in words: "Standard: Overdue e-mail (+7d) · E-mail · A"."""
    parts = []
    if "step_name" in group:
        sign = "+" if group["offset_days"] >= 0 else ""
        parts.append(
            f"{group['policy_name']}: {group['step_name']} ({sign}{group['offset_days']}d)"
        )
    if "template_name" in group:
        parts.append(group["template_name"] or "—")
    if "channel_code" in group:
        channel = group["channel_code"]
        parts.append(str(Channel(channel).label) if channel else "—")
    if "segment_code" in group:
        segment = group["segment_code"]
        parts.append(str(CustomerModel.Segment(segment).label) if segment else "—")
    if "risk_band_code" in group:
        band = group["risk_band_code"]
        parts.append(str(RiskBand(band).label) if band else str(gettext_lazy("not scored")))
    if "variant_label" in group:
        parts.append(group["variant_label"] or str(gettext_lazy("no variant")))
    return " · ".join(parts)


@dataclass(frozen=True)
class Report:
    """What to count: notices sent from `sent_from` to `sent_until` (both included), the
    day outcomes are judged on (`as_of`), and the grouping (none: one total row)."""

    sent_from: dt.date
    sent_until: dt.date
    as_of: dt.date
    group_by: tuple[str, ...] = ("step",)

    def __post_init__(self):
        unknown = set(self.group_by) - set(DIMENSION_NAMES)
        if unknown:
            raise ValueError(f"unknown grouping: {', '.join(sorted(unknown))}")


def sent_notices(report: Report) -> QuerySet:
    """Dunning notices sent in the report's days, annotated with `sent_on`."""
    zone = timezone.get_current_timezone()
    start = dt.datetime.combine(report.sent_from, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(report.sent_until + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return outcomes.with_sent_on(
        Notice.objects.filter(sent_at__gte=start, sent_at__lt=end, installment__isnull=True)
    )


def _group_fields(group_by, prefix: str = "") -> dict:
    fields = {}
    for name in group_by:
        fields.update(_dimension_fields(name, prefix))
    return fields


def _sort_key(group: dict) -> tuple:
    return tuple(
        ("" if value is None else str(value)) if not isinstance(value, int) else f"{value:+08d}"
        for value in group.values()
    )


def _base(report: Report, fields: dict) -> tuple[str, list]:
    """SQL of the sent notices, one row each: id, sent day, group columns and the flags
    delivered, bounced and replied (built by the ORM, so dates are this database's)."""
    delivered_event = EmailEvent.objects.filter(
        notice=OuterRef("pk"), kind__in=[EmailEvent.Kind.DELIVERED, EmailEvent.Kind.COMPLAINT]
    )
    bounce_event = EmailEvent.objects.filter(
        notice=OuterRef("pk"), kind=EmailEvent.Kind.BOUNCE, is_permanent=True
    )
    reply = Activity.objects.filter(
        customer=OuterRef("customer_id"),
        kind=Activity.Kind.REPLY,
        occurred_at__gte=OuterRef("sent_at"),
        occurred_at__lt=OuterRef("reply_until"),
    )
    flag = functools.partial(ExpressionWrapper, output_field=BooleanField())
    notices = (
        sent_notices(report)
        .annotate(
            reply_until=ExpressionWrapper(
                F("sent_at") + dt.timedelta(days=REPLY_WINDOW_DAYS), output_field=DateTimeField()
            )
        )
        .annotate(
            notice_pk=F("pk"),
            is_delivered=flag(
                Q(delivered_at__isnull=False)
                | Q(status=Notice.Status.DELIVERED)
                | Exists(delivered_event)
            ),
            is_bounced=flag(Q(status=Notice.Status.FAILED) | Exists(bounce_event)),
            is_replied=Exists(reply),
            **fields,
        )
        .values("notice_pk", "sent_on", "is_delivered", "is_bounced", "is_replied", *fields)
        .order_by()
    )
    sql, params = notices.query.sql_with_params()
    return sql, list(params)


LINES_SQL = """
WITH n AS ({base}),
l AS (
    SELECT nl.notice_id, i.currency,
        CASE WHEN COALESCE(SUM(CASE WHEN p.kind <> %s AND a.allocated_on <= {day_7}
            THEN a.amount ELSE 0 END), 0) >= i.amount THEN 1 ELSE 0 END AS paid_7,
        CASE WHEN COALESCE(SUM(CASE WHEN p.kind <> %s AND a.allocated_on <= {day_14}
            THEN a.amount ELSE 0 END), 0) >= i.amount THEN 1 ELSE 0 END AS paid_14,
        COALESCE(SUM(CASE WHEN p.kind = %s AND a.allocated_on >= n.sent_on
            THEN a.amount ELSE 0 END), 0) AS collected
    FROM n
    JOIN {lines} nl ON nl.notice_id = n.notice_pk
    JOIN {invoices} i ON i.id = nl.invoice_id
    LEFT JOIN {allocations} a ON a.invoice_id = i.id AND a.allocated_on <= {day_14}
    LEFT JOIN {payments} p ON p.id = a.payment_id
    GROUP BY nl.id, nl.notice_id, i.currency, i.amount
)
"""


def _plus_days(column: str, days: int) -> str:
    if connection.vendor == "postgresql":
        return f"({column} + {int(days)})"
    return f"date({column}, '+{int(days)} days')"


def _lines_sql(report: Report, fields: dict) -> tuple[str, list]:
    """`WITH n AS (the sent notices), l AS (their invoices)`: per invoice line, whether the
    invoice was fully settled within 7 and 14 days (payments and credit notes, never
    write-offs) and the cash applied to it within 14 days (see dunning/outcomes.py).

    Set-based: one pass joining lines, invoices and the allocations up to 14 days after
    the sent day, instead of a correlated subquery per notice (several times faster at
    hundreds of thousands of notices, and PostgreSQL can run it in parallel)."""
    base, params = _base(report, fields)
    quote = connection.ops.quote_name
    sql = LINES_SQL.format(
        base=base,
        lines=quote(NoticeInvoice._meta.db_table),
        invoices=quote(Invoice._meta.db_table),
        allocations=quote(Allocation._meta.db_table),
        payments=quote(Payment._meta.db_table),
        day_7=_plus_days("n.sent_on", 7),
        day_14=_plus_days("n.sent_on", 14),
    )
    return sql, [*params, Payment.Kind.WRITE_OFF, Payment.Kind.WRITE_OFF, Payment.Kind.PAYMENT]


def _fetch(sql: str, params: list) -> list[tuple]:
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # The planner prices the report high enough to compile it, which costs more
            # than it saves on a query that runs once (about 1.7 s at 300,000 notices).
            cursor.execute("SET LOCAL jit = off")
            # Room to hash a few hundred thousand lines without spilling to disk.
            cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(sql, params)
        return cursor.fetchall()


def rows(report: Report) -> list[Row]:
    """The report's rows, one per group (sorted by the group's columns): two queries."""
    known_7 = outcomes.outcome_known_by(report.as_of, 7)
    known_14 = outcomes.outcome_known_by(report.as_of, 14)
    fields = _group_fields(report.group_by)
    names = list(fields)
    columns = "".join(f"n.{name}, " for name in names)
    group_by = f" GROUP BY {', '.join(f'n.{name}' for name in names)}" if names else ""
    lines, params = _lines_sql(report, fields)
    one_if = "SUM(CASE WHEN {} THEN 1 ELSE 0 END)"
    # One statement, so the notices and their lines are worked out once: the counts per
    # group (part 0), then the cash per group and currency (part 1).
    records = _fetch(
        f"{lines}, p AS (SELECT notice_id, MAX(paid_7) AS paid_7, MAX(paid_14) AS paid_14 "
        "FROM l GROUP BY notice_id) "
        f"SELECT 0, {columns}NULL, COUNT(*), {one_if.format('n.is_delivered')}, "
        f"{one_if.format('n.is_bounced')}, {one_if.format('n.is_replied')}, "
        f"{one_if.format('n.sent_on <= %s')}, {one_if.format('n.sent_on <= %s AND p.paid_7 = 1')}, "
        f"{one_if.format('n.sent_on <= %s')}, {one_if.format('n.sent_on <= %s AND p.paid_14 = 1')},"
        " "
        "0 FROM n LEFT JOIN p ON p.notice_id = n.notice_pk"
        f"{group_by} "
        f"UNION ALL SELECT 1, {columns}l.currency, 0, 0, 0, 0, 0, 0, 0, 0, SUM(l.collected) "
        "FROM n JOIN l ON l.notice_id = n.notice_pk WHERE n.sent_on <= %s"
        f"{group_by}{', ' if names else ' GROUP BY '}l.currency",
        [*params, known_7, known_7, known_14, known_14, known_14],
    )  # fmt: skip
    result = {}
    width = len(names)
    for part, *record in sorted(records, key=lambda record: record[0]):
        key, (currency, sent, delivered, bounced, replied, *outcome, amount) = (
            tuple(record[:width]),
            record[width:],
        )
        if part == 0 and sent:  # (with no grouping, nothing sent still gives a row of zeros)
            known_7_count, paid_7, known_14_count, paid_14 = (int(value or 0) for value in outcome)
            result[key] = Row(
                group=dict(zip(names, key, strict=True)),
                sent=sent,
                delivered=Rate(int(delivered), sent),
                bounced=Rate(int(bounced), sent),
                replied=Rate(int(replied), sent),
                paid_7=Rate(paid_7, known_7_count),
                paid_14=Rate(paid_14, known_14_count),
            )
        elif part == 1 and key in result and amount is not None:
            result[key].collected_14[currency] = Decimal(str(amount)).quantize(CENT)
    return sorted(result.values(), key=lambda row: _sort_key(row.group))


# --- experiments ----------------------------------------------------------------------------


def probability_best(
    results: list[tuple[int, int]], *, draws: int = MONTE_CARLO_DRAWS, seed: int = 0
):
    """For (paid, known) per variant: the share of posterior draws in which each is best.

    Each variant's paid rate is drawn from Beta(1 + paid, 1 + known - paid) (a uniform
    prior updated with what happened); ties are vanishingly rare and go to the first.
    """
    if not results:
        return []
    rng = np.random.default_rng(seed)
    paid = np.array([hits for hits, _known in results], dtype=float)
    known = np.array([known for _hits, known in results], dtype=float)
    samples = rng.beta(1 + paid, 1 + known - paid, size=(draws, len(results)))
    wins = np.bincount(samples.argmax(axis=1), minlength=len(results))
    return [float(count) / draws for count in wins]


@dataclass
class VariantResult:
    variant_id: int
    label: str
    template: str
    is_active: bool
    weight: int
    sent: int
    paid_14: Rate
    by_weights: int
    by_thompson: int
    probability_best: float = 0.0


@dataclass
class Experiment:
    step: Step
    adaptive: bool
    # How new customers are assigned on the report's as-of day: "weights" or "thompson".
    assigning_by: str
    variants: list[VariantResult]


def compare_variants(report: Report) -> list[Experiment]:
    """Each step with variant notices sent in the report's days, its variants side by side."""
    known_14 = outcomes.outcome_known_by(report.as_of, 14)
    records = (
        sent_notices(report)
        .filter(variant__isnull=False)
        .annotate(is_paid_14=outcomes.paid_within(14))
        .values("step_id", "variant_id")
        .annotate(
            sent=Count("pk"),
            known_14=Count("pk", filter=Q(sent_on__lte=known_14)),
            paid_14=Count("pk", filter=Q(sent_on__lte=known_14, is_paid_14=True)),
            by_weights=Count("pk", filter=Q(variant_drawn_by=StepVariant.DrawnBy.WEIGHTS)),
            by_thompson=Count("pk", filter=Q(variant_drawn_by=StepVariant.DrawnBy.THOMPSON)),
        )
        .order_by()
    )
    by_step = defaultdict(dict)
    for record in records:
        by_step[record["step_id"]][record["variant_id"]] = record
    steps = (
        Step.objects.filter(pk__in=by_step)
        .select_related("policy")
        .order_by("policy__name", "offset_days", "pk")
    )
    all_variants = StepVariant.objects.filter(step__in=steps).select_related("template")
    variants_of = defaultdict(list)
    for variant in all_variants.order_by("label", "pk"):
        variants_of[variant.step_id].append(variant)
    experiments = []
    for step in steps:
        shown = []
        for variant in variants_of[step.pk]:
            record = by_step[step.pk].get(variant.pk)
            if record is None and not variant.is_active:
                continue
            record = record or {}
            shown.append(
                VariantResult(
                    variant_id=variant.pk,
                    label=variant.label,
                    template=str(variant.template),
                    is_active=variant.is_active,
                    weight=variant.weight,
                    sent=record.get("sent", 0),
                    paid_14=Rate(record.get("paid_14", 0), record.get("known_14", 0)),
                    by_weights=record.get("by_weights", 0),
                    by_thompson=record.get("by_thompson", 0),
                )
            )
        chances = probability_best([(v.paid_14.hits, v.paid_14.total) for v in shown])
        for result, chance in zip(shown, chances, strict=True):
            result.probability_best = chance
        active = [variant for variant in variants_of[step.pk] if variant.is_active]
        stats = variants.variant_outcomes(step, on=report.as_of) if step.adaptive_variants else {}
        thompson = bool(active) and variants.uses_thompson(step, active, stats)
        experiments.append(
            Experiment(
                step=step,
                adaptive=step.adaptive_variants,
                assigning_by=StepVariant.DrawnBy.THOMPSON
                if thompson
                else StepVariant.DrawnBy.WEIGHTS,
                variants=shown,
            )
        )
    return experiments
