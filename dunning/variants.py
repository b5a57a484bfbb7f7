"""Template experiments: which variant of a step each customer gets, and how it was drawn.

A step with active variants (StepVariant) sends each customer one of their templates
instead of its own. The planner asks `assign` for the customers it plans at the step:

1. Sticky by lookup: a customer who already had a notice at this step with a variant
   still active keeps that variant (and the record of how it was first drawn), so one
   customer never sees both versions of the same reminder. The lookup is one query over
   this step's notices for the customers planned; a variant made inactive releases its
   customers, who are drawn again.
2. Everyone else is drawn at random: by weight (weight / sum of the active weights); or,
   on an adaptive step once every active variant has EXPERIMENT_MIN_SAMPLE sent notices
   whose 14-day outcome is known (dunning/outcomes.py), by Thompson sampling: for each
   customer draw once from each variant's Beta(1 + paid, 1 + not paid) and take the
   largest, which sends most traffic to the variant most likely to be best while still
   trying the others now and then.
3. Every assignment is recorded on the notice: the variant and how it was drawn
   ("weights" or "thompson"), so the report can tell an experiment from an exploitation.

Draws use the `random.Random` passed in (tests pass a seeded one), else a fresh one.
Customers are drawn in id order, so a seeded generator gives the same assignment.
"""

import datetime as dt
import random

from django.conf import settings
from django.db.models import Count, Q

from . import outcomes
from .models import Notice, Step, StepVariant

Assignment = tuple[int, str]  # (variant id, how it was drawn)


def variant_outcomes(step: Step, *, on: dt.date) -> dict[int, tuple[int, int]]:
    """{variant id: (notices with a known 14-day outcome on `on`, of which paid within 14 days)}."""
    rows = (
        outcomes.with_sent_on(Notice.objects.filter(step=step, variant__isnull=False))
        .filter(sent_on__lte=outcomes.outcome_known_by(on))
        .annotate(is_paid=outcomes.paid_within(outcomes.OUTCOME_DAYS))
        .values("variant_id")
        .annotate(sent=Count("pk"), paid=Count("pk", filter=Q(is_paid=True)))
        .values_list("variant_id", "sent", "paid")
    )
    return {variant_id: (sent, paid) for variant_id, sent, paid in rows}


def uses_thompson(step: Step, variants: list[StepVariant], stats: dict) -> bool:
    """Adaptive, and every active variant has its minimum sample of known outcomes."""
    minimum = settings.EXPERIMENT_MIN_SAMPLE
    return step.adaptive_variants and all(
        stats.get(variant.pk, (0, 0))[0] >= minimum for variant in variants
    )


def assign(
    step: Step, customer_ids, *, on: dt.date, rng: random.Random | None = None
) -> dict[int, Assignment]:
    """Each customer's variant for this step: {customer id: (variant id, drawn by)};
    empty when the step has no active variant (its notices use the step's template)."""
    variants = list(step.variants.filter(is_active=True).order_by("pk"))
    if not variants:
        return {}
    rng = rng or random.Random()  # noqa: S311 - an experiment draw, not a secret
    customer_ids = sorted(set(customer_ids))
    assigned: dict[int, Assignment] = {}
    previous = (
        Notice.objects.filter(step=step, customer_id__in=customer_ids, variant__in=variants)
        .order_by("customer_id", "planned_on", "pk")
        .values_list("customer_id", "variant_id", "variant_drawn_by")
    )
    for customer_id, variant_id, drawn_by in previous:
        assigned[customer_id] = (variant_id, drawn_by or StepVariant.DrawnBy.WEIGHTS)
    stats = variant_outcomes(step, on=on) if step.adaptive_variants else {}
    thompson = uses_thompson(step, variants, stats)
    weights = [variant.weight for variant in variants]
    for customer_id in customer_ids:
        if customer_id in assigned:
            continue
        if thompson:
            draws = [
                rng.betavariate(1 + paid, 1 + sent - paid)
                for sent, paid in (stats[variant.pk] for variant in variants)
            ]
            chosen = variants[draws.index(max(draws))]
            assigned[customer_id] = (chosen.pk, StepVariant.DrawnBy.THOMPSON)
        else:
            chosen = rng.choices(variants, weights=weights)[0]
            assigned[customer_id] = (chosen.pk, StepVariant.DrawnBy.WEIGHTS)
    return assigned
