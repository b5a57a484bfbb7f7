"""Dunning's answers to case work's `plan_proposed` and `plan_approved`
(see cases/signals.py): an active plan is offered to the customer (dunning/offers.py)."""

from . import offers


def on_plan_proposed(sender, *, plan, on, **kwargs) -> None:
    """A plan proposed at or under the approval threshold is active at once: offer it.
    One that waits for a manager is offered when approved (`on_plan_approved`)."""
    offers.plan_offer(plan, on=on)


def on_plan_approved(sender, *, plan, on, **kwargs) -> None:
    offers.plan_offer(plan, on=on)
