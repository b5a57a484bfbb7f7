"""Plan offers: the customer receives the payment plan an agent proposed, as a notice.

When a plan an agent proposed becomes active (at or under PAYMENT_PLAN_APPROVAL_THRESHOLD:
at once; above it: when a manager approves it; a rejected or cancelled plan is never
offered; a plan made by the system, `proposed_by` empty, is not offered either),
every active step of an active "plan offer" policy (seeded by dunning 0020: one e-mail
step, template "Payment plan offer") gets one notice for the plan, planned for that day.
The notice names the plan through its first installment (as an installment reminder
names its installment), so the database's one-notice-per-(installment, step) constraint
makes the offer idempotent. The normal sending (`sender.send_due`) sends it through the
guard: contact hours, caps, opt-outs, do-not-contact and every other hold apply, except
the plan's own hold on dunning (as for installment reminders). The step's approval
setting applies as for any step (an "always" step waits in the approval queue).
"""

import datetime as dt

from cases.models import PaymentPlan

from .models import Notice, Policy, Step
from .planner import needs_approval


def offer_steps():
    return Step.objects.filter(
        is_active=True, policy__is_active=True, policy__purpose=Policy.Purpose.PLAN_OFFER
    ).order_by("offset_days", "pk")


def plan_offer(plan: PaymentPlan, *, on: dt.date) -> list[Notice]:
    """The offer notices planned for this plan now (none if it is not active, no agent
    proposed it, it has no installment or it was offered already at every step)."""
    if plan.status != PaymentPlan.Status.ACTIVE or plan.proposed_by_id is None:
        return []
    first = plan.installments.order_by("sequence").first()
    if first is None:
        return []
    planned = []
    for step in offer_steps():
        waits = needs_approval(step, {plan.currency: plan.total_amount})
        notice, created = Notice.objects.get_or_create(
            installment=first,
            step=step,
            defaults={
                "customer_id": plan.customer_id,
                "channel": step.channel,
                "planned_on": on + dt.timedelta(days=max(step.offset_days, 0)),
                "status": Notice.Status.AWAITING_APPROVAL if waits else Notice.Status.PLANNED,
            },
        )
        if created:
            planned.append(notice)
    return planned


def is_offer(notice: Notice) -> bool:
    return notice.installment_id is not None and (
        notice.step.policy.purpose == Policy.Purpose.PLAN_OFFER
    )
