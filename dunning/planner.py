"""The nightly planner: which invoice is at which step today, written to the outbox.

Set-based: one query per active step selects the invoices whose due date puts them at
that step today (plus a short catch-up window for nights the run did not happen), minus
everything on hold. Invoices are grouped into one notice per customer per step, so a
customer gets one message listing every invoice at that step, never one per invoice.

The steps of an installments policy plan reminders the same way, from the installments of
active payment plans instead of invoices: one notice per installment and step, ever.

A step with a predicted-lateness threshold (Step.min_probability_late) reaches only the
invoices whose prediction (cases.InvoicePrediction) is at or above it, in the same query;
an invoice without a prediction is not reached, since such a step is meant for invoices
known to be likely late. Each planned line keeps the invoice's probability that night.
"""

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BooleanField, Count, Exists, ExpressionWrapper, F, OuterRef, Q, Sum
from django.utils import timezone

from accounts.models import Invoice
from cases.models import Installment, PaymentPlan

from . import variants
from .holds import customers_on_hold, held_invoices
from .models import (
    Channel,
    HighValueThreshold,
    Notice,
    NoticeInvoice,
    Policy,
    Step,
)

# An arbitrary constant naming the planner's PostgreSQL advisory lock.
PLANNER_LOCK_ID = 0x44554E4E  # "DUNN"


class PlannerBusy(Exception):
    """A run holds the planner lock: a dry run (a forecast) would have to wait for it."""


@dataclass
class PlanResult:
    evaluated: int = 0
    planned: int = 0
    awaiting_approval: int = 0
    suppressed: int = 0
    notices: list[int] = field(default_factory=list)
    # A dry run's notices by policy, step, channel, status and agent (`forecast`).
    forecast: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "evaluated": self.evaluated,
            "planned": self.planned,
            "awaiting_approval": self.awaiting_approval,
            "suppressed": self.suppressed,
        }


def policy_condition(policy: Policy) -> Q:
    """Invoices whose customer follows this policy, in SQL.

    A customer follows, in this order: its own policy; else the active dunning policy of
    its segment for its risk band; else the active one of its segment for any band (an
    empty band). So an any-band policy takes the customers of its segment whose band has
    no policy of its own (unscored customers, band empty, included).
    """
    chosen = Q(customer__dunning_policy=policy)
    if not policy.segment:
        return chosen
    by_segment = Q(customer__dunning_policy__isnull=True, customer__segment=policy.segment)
    if policy.risk_band:
        return chosen | (by_segment & Q(customer__risk_band=policy.risk_band))
    band_has_own_policy = Policy.objects.filter(
        is_active=True,
        purpose=Policy.Purpose.DUNNING,
        segment=policy.segment,
        risk_band=OuterRef("customer__risk_band"),
    ).exclude(risk_band="")
    return chosen | (by_segment & ~Exists(band_has_own_policy))


def due_invoices(step: Step, on: dt.date, catch_up: int = 0):
    """Open invoices at this step on `on` (or up to `catch_up` days ago), not yet noticed."""
    latest_due = on - dt.timedelta(days=step.offset_days)
    earliest_due = latest_due - dt.timedelta(days=catch_up)
    already = NoticeInvoice.objects.filter(invoice=OuterRef("pk"), step=step)
    invoices = (
        Invoice.objects.filter(
            status__in=(Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID),
            due_on__gte=earliest_due,
            due_on__lte=latest_due,
        )
        .filter(policy_condition(step.policy))
        .exclude(Exists(already))
    )
    if step.min_probability_late is not None:
        # An inner join: no prediction, no notice at this step.
        invoices = invoices.filter(prediction__probability_late__gte=step.min_probability_late)
    return invoices


def needs_approval(
    step: Step,
    balances: dict[str, Decimal] | None,
    thresholds: defaultdict[str, Decimal] | None = None,
) -> bool:
    """Legal and "always" steps wait; "high value" ones when a balance in some currency
    reaches that currency's threshold (HighValueThreshold, else the setting)."""
    if step.channel == Channel.LEGAL or step.approval == Step.Approval.ALWAYS:
        return True
    if step.approval == Step.Approval.HIGH_VALUE:
        thresholds = HighValueThreshold.by_currency() if thresholds is None else thresholds
        return any(total >= thresholds[currency] for currency, total in (balances or {}).items())
    return False


def plan(*, on: dt.date, dry_run: bool = False, rng: random.Random | None = None) -> PlanResult:
    """Write today's notices to the outbox; safe to run twice (the second plans nothing).

    1. Take the planner lock (PostgreSQL advisory lock, held for the transaction), so two
       runs started together plan one after the other instead of interleaving.
    2. For each active step of each active policy, select its due invoices in one query
       and drop those whose customer is on hold for the step's channel (counted as
       suppressed: they will be planned when the hold ends, within the catch-up window,
       or by the next step).
    3. Group the rest by customer: one notice per customer per step, listing the invoices.
       High-value and legal notices wait for approval. A step with template variants
       gives each customer one (dunning/variants.py, drawn with `rng`).
    4. Insert notices and their invoice lines; the unique (invoice, step) constraint makes
       a second notice for the same invoice and step impossible, lock or no lock.
    """
    result = PlanResult()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if dry_run:  # a forecast does not queue behind a real run: it says so
                    cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PLANNER_LOCK_ID])
                    if not cursor.fetchone()[0]:
                        raise PlannerBusy
                else:
                    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PLANNER_LOCK_ID])
        steps = list(
            Step.objects.filter(is_active=True, policy__is_active=True).select_related("policy")
        )
        for step in steps:
            if step.policy.purpose == Policy.Purpose.INSTALLMENTS:
                _plan_reminders(step, on, result)
            elif step.policy.purpose == Policy.Purpose.PLAN_OFFER:
                continue  # planned when a plan becomes active (dunning/offers.py)
            elif step.policy.purpose == Policy.Purpose.TRANSACTIONAL:
                continue  # sent when the debtor asks (dunning/transactional.py)
            else:
                _plan_step(step, on, result, catch_up=catch_up_days(step, steps), rng=rng)
        if dry_run:
            result.forecast = _summary(result.notices)
            result.notices = []  # rolled back: these ids name nothing
            transaction.set_rollback(True)
    return result


def forecast(*, on: dt.date) -> PlanResult:
    """What a run on `on` would plan, written nowhere: the planner itself runs, in a
    transaction rolled back at the end, so the forecast is exactly its rules (steps,
    catch-up window, holds, approvals, the notices already planned) and not a copy of them.
    The case work that runs before it at night (broken promises, plans) is not foreseen."""
    return plan(on=on, dry_run=True)


def next_run_on(now: dt.datetime, *, hour: int = 1, minute: int = 30) -> dt.date:
    """The day the next nightly run plans for: it plans for its own local date, so a run
    at 01:30 plans for tomorrow when asked in the afternoon."""
    local = timezone.localtime(now)
    run_at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if run_at <= local:
        run_at += dt.timedelta(days=1)
    return run_at.date()


def _summary(notice_ids: list[int]) -> list[dict]:
    """Notices counted by policy, step, channel, status and agent, with their invoices."""
    if not notice_ids:
        return []
    return list(
        Notice.objects.filter(pk__in=notice_ids)
        .values(
            "step__policy__name",
            "step__name",
            "step__offset_days",
            "channel",
            "status",
            "customer__assigned_agent__username",
        )
        .annotate(notices=Count("pk", distinct=True), invoices=Count("lines"))
        .order_by("step__policy__name", "step__offset_days", "channel", "status")
    )


def catch_up_days(step: Step, steps: list[Step]) -> int:
    """How many missed days a step may catch up: never into the policy's next step."""
    later = [
        other.offset_days
        for other in steps
        if other.policy_id == step.policy_id and other.offset_days > step.offset_days
    ]
    window = settings.DUNNING_CATCH_UP_DAYS
    if later:
        window = min(window, min(later) - step.offset_days - 1)
    return max(window, 0)


def _plan_step(
    step: Step, on: dt.date, result: PlanResult, *, catch_up: int, rng: random.Random | None = None
) -> None:
    held = customers_on_hold(on, step.channel, prefix="customer__") | held_invoices(on)
    rows = list(
        due_invoices(step, on, catch_up)
        .annotate(is_held=ExpressionWrapper(held, output_field=BooleanField()))
        .values_list("pk", "customer_id", "is_held", "prediction__probability_late")
    )
    result.evaluated += len(rows)
    by_customer: dict[int, list[int]] = defaultdict(list)
    probability: dict[int, Decimal | None] = {}
    for invoice_id, customer_id, is_held, probability_late in rows:
        if is_held:
            result.suppressed += 1
        else:
            by_customer[customer_id].append(invoice_id)
            probability[invoice_id] = probability_late
    if not by_customer:
        return
    balances: dict[int, dict[str, Decimal]] = defaultdict(dict)
    thresholds = None
    if step.approval == Step.Approval.HIGH_VALUE:
        # The balance in each currency on its own: currencies are never added together.
        thresholds = HighValueThreshold.by_currency()
        per_currency = (
            Invoice.objects.outstanding()
            .filter(customer_id__in=by_customer)
            .values("customer_id", "currency")
            .annotate(total=Sum("open_balance"))
            .values_list("customer_id", "currency", "total")
        )
        for customer_id, currency, total in per_currency:
            balances[customer_id][currency] = total
    assigned = variants.assign(step, by_customer, on=on, rng=rng)
    notices = []
    for customer_id in by_customer:
        waits = needs_approval(step, balances.get(customer_id), thresholds)
        variant_id, drawn_by = assigned.get(customer_id, (None, ""))
        notices.append(
            Notice(
                customer_id=customer_id,
                step=step,
                channel=step.channel,
                planned_on=on,
                status=Notice.Status.AWAITING_APPROVAL if waits else Notice.Status.PLANNED,
                variant_id=variant_id,
                variant_drawn_by=drawn_by,
            )
        )
        if waits:
            result.awaiting_approval += 1
        else:
            result.planned += 1
    Notice.objects.bulk_create(notices, batch_size=1000)
    lines = [
        NoticeInvoice(
            notice=notice,
            invoice_id=invoice_id,
            step=step,
            probability_late=probability[invoice_id],
        )
        for notice in notices
        for invoice_id in by_customer[notice.customer_id]
    ]
    NoticeInvoice.objects.bulk_create(lines, batch_size=2000)
    result.notices.extend(notice.pk for notice in notices)


def due_installments(step: Step, on: dt.date):
    """Unpaid installments of active plans that this reminder step reaches on `on`, not yet
    reminded at this step.

    A step `offset_days` before the due date (negative) reminds from that day until the due
    date itself, so a night without a run catches up; a step after it, on its day only.
    """
    latest_due = on - dt.timedelta(days=step.offset_days)
    earliest_due = on - dt.timedelta(days=max(step.offset_days, 0))
    already = Notice.objects.filter(installment=OuterRef("pk"), step=step)
    return (
        Installment.objects.filter(
            status=Installment.Status.PENDING,
            plan__status=PaymentPlan.Status.ACTIVE,
            paid_amount__lt=F("amount"),
            due_on__gte=earliest_due,
            due_on__lte=latest_due,
        )
        .exclude(Exists(already))
        .order_by("due_on", "pk")
    )


def _plan_reminders(step: Step, on: dt.date, result: PlanResult) -> None:
    """One notice per installment due at this step; customers on hold are left for later."""
    held = customers_on_hold(
        on, step.channel, prefix="plan__customer__", is_installment_reminder=True
    )
    rows = list(
        due_installments(step, on)
        .annotate(is_held=ExpressionWrapper(held, output_field=BooleanField()))
        .values_list("pk", "plan__customer_id", "is_held")
    )
    result.evaluated += len(rows)
    waits = needs_approval(step, None)
    notices = []
    for installment_id, customer_id, is_held in rows:
        if is_held:
            result.suppressed += 1
            continue
        notices.append(
            Notice(
                customer_id=customer_id,
                step=step,
                channel=step.channel,
                installment_id=installment_id,
                planned_on=on,
                status=Notice.Status.AWAITING_APPROVAL if waits else Notice.Status.PLANNED,
            )
        )
    if waits:
        result.awaiting_approval += len(notices)
    else:
        result.planned += len(notices)
    Notice.objects.bulk_create(notices, batch_size=1000)
    result.notices.extend(notice.pk for notice in notices)
