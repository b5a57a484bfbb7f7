"""Payment plans: a customer's balance on chosen invoices, paid in dated installments."""

import calendar
import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import bulk, permissions, timeline
from accounts.models import Activity, Invoice

from . import case_tasks, promises, signals
from .models import Installment, PaymentPlan, Task

# The dunning template an installment reminder uses when one of this name exists (per
# language, e-mail channel); otherwise the built-in text below.
PLANNABLE = (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID)


def approval_threshold() -> Decimal:
    return Decimal(settings.PAYMENT_PLAN_APPROVAL_THRESHOLD)


def monthly_installments(
    *, total: Decimal, count: int, first_due_on: dt.date
) -> list[tuple[dt.date, Decimal]]:
    """`total` split into `count` monthly installments; the last one takes the odd cents."""
    total = Decimal(total)
    count = max(int(count), 1)
    share = (total / count).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    rows = []
    for n in range(count):
        month = first_due_on.month - 1 + n
        year, month = first_due_on.year + month // 12, month % 12 + 1
        day = min(first_due_on.day, calendar.monthrange(year, month)[1])
        amount = share if n < count - 1 else total - share * (count - 1)
        rows.append((dt.date(year, month, day), amount))
    return rows


def _check_installments(
    installments: Sequence, *, today: dt.date, errors: promises.FieldErrors
) -> list[tuple[dt.date, Decimal]]:
    checked: list[tuple[dt.date, Decimal]] = []
    if not installments:
        errors.add("installments", _("A plan needs at least one installment."))
        return checked
    for n, row in enumerate(installments, start=1):
        try:
            due_on, amount = row
        except (TypeError, ValueError):
            errors.add("installments", _("Installment %(n)d is not (date, amount).") % {"n": n})
            continue
        if not isinstance(due_on, dt.date) or isinstance(due_on, dt.datetime):
            errors.add("installments", _("Installment %(n)d has no due date.") % {"n": n})
            continue
        local = promises.FieldErrors()
        amount = promises.money(amount, "amount", local)
        if amount is None:
            for message in local.errors["amount"]:
                errors.add("installments", _("Installment %(n)d: ") % {"n": n} + message)
            continue
        checked.append((due_on, amount))
    if "installments" in errors:
        return checked
    if checked[0][0] < today:
        errors.add(
            "installments",
            _("The first installment is due %(date)s, in the past.")
            % {"date": checked[0][0].isoformat()},
        )
    for (earlier, _a), (later, _b) in itertools.pairwise(checked):
        if later <= earlier:
            errors.add(
                "installments",
                _("Installment dates must ascend: %(later)s comes after %(earlier)s.")
                % {"later": later.isoformat(), "earlier": earlier.isoformat()},
            )
            break
    return checked


@transaction.atomic
def propose_plan(
    *,
    customer,
    invoices,
    installments: Sequence[tuple[dt.date, Decimal]],
    by,
    grace_days: int | None = None,
    note: str = "",
    today: dt.date | None = None,
    approval_reason: str = "",
) -> PaymentPlan:
    """Split the open balance of these invoices into installments.

    The installments must add up to exactly the invoices' open balance (a plan settles
    what it covers; leave an invoice out to keep it under normal dunning), in the
    invoices' one currency, on strictly ascending dates from today on. Invoices must be
    open or partially paid (a disputed invoice is settled by its dispute first) and not
    in another proposed or active plan.

    A plan totalling more than PAYMENT_PLAN_APPROVAL_THRESHOLD stays proposed until a
    manager approves it (even one the manager proposed: approving is its own step);
    otherwise it is active at once. A non-empty `approval_reason` (a debtor's request
    outside the portal's rules, say) makes any plan wait for a manager, saying why.
    Either way dunning holds for its invoices from now on. Sends `signals.plan_proposed`:
    dunning then offers an active plan to the customer.
    """
    permissions.require(by, "cases.add_paymentplan", [customer])
    today = today or timezone.localdate()
    errors = promises.FieldErrors()
    if grace_days is None:
        grace_days = PaymentPlan._meta.get_field("grace_days").default
    elif grace_days < 0:
        errors.add("grace_days", _("The grace period cannot be negative."))
    rows = promises.lock_customer_invoices(
        customer=customer, invoices=invoices, statuses=PLANNABLE, errors=errors
    )
    if rows and "invoices" not in errors:
        for pk, number in (
            PaymentPlan.invoices.through.objects.filter(
                invoice_id__in=[invoice.pk for invoice in rows],
                paymentplan__status__in=PaymentPlan.HOLDING_STATUSES,
            )
            .values_list("paymentplan_id", "invoice__number")
            .order_by("paymentplan_id", "invoice__number")
        ):
            errors.add(
                "invoices",
                _("%(n)s is already in payment plan #%(pk)s.") % {"n": number, "pk": pk},
            )
    checked = _check_installments(installments, today=today, errors=errors)
    if rows and checked and "invoices" not in errors and "installments" not in errors:
        open_total = sum((invoice.open_balance for invoice in rows), Decimal("0.00"))
        planned = sum((amount for _d, amount in checked), Decimal("0.00"))
        if planned != open_total:
            errors.add(
                "installments",
                _(
                    "The installments add up to %(currency)s %(planned)s but the chosen "
                    "invoices have %(open)s open; they must match exactly."
                )
                % {"currency": rows[0].currency, "planned": planned, "open": open_total},
            )
    errors.raise_any()
    total = sum((amount for _d, amount in checked), Decimal("0.00"))
    currency = rows[0].currency
    approval_reason = approval_reason.strip()
    needs_approval = total > approval_threshold() or bool(approval_reason)
    now = timezone.now()
    plan = PaymentPlan.objects.create(
        customer=customer,
        currency=currency,
        total_amount=total,
        status=PaymentPlan.Status.PROPOSED if needs_approval else PaymentPlan.Status.ACTIVE,
        grace_days=grace_days,
        note=note.strip(),
        proposed_by=by,
        approved_at=None if needs_approval else now,
    )
    plan.invoices.set(rows)
    Installment.objects.bulk_create(
        Installment(plan=plan, sequence=n, due_on=due_on, amount=amount)
        for n, (due_on, amount) in enumerate(checked, start=1)
    )
    summary = _(
        "Payment plan #%(pk)s: %(currency)s %(total)s in %(count)d installment(s) "
        "from %(first)s to %(last)s for %(invoices)s"
    ) % {
        "pk": plan.pk,
        "currency": currency,
        "total": total,
        "count": len(checked),
        "first": checked[0][0].isoformat(),
        "last": checked[-1][0].isoformat(),
        "invoices": promises.numbers(rows),
    }
    if approval_reason:
        reason = approval_reason.replace("%", "%%")  # `outcome` is formatted below
        outcome = _("proposed; waits for a manager's approval") + f" ({reason})"
    elif needs_approval:
        outcome = _("proposed; waits for a manager's approval (above %(currency)s %(limit)s)")
    else:
        outcome = _("active at once (at or under the approval threshold of %(currency)s %(limit)s)")
    text = (
        summary
        + "; "
        + outcome % {"currency": currency, "limit": approval_threshold()}
        + _("; dunning held for these invoices")
    )
    timeline.add(
        customer=customer,
        invoice=rows[0] if len(rows) == 1 else None,
        kind=Activity.Kind.PAYMENT_PLAN,
        by=by,
        text=text + (f". {plan.note}" if plan.note else ""),
        details={
            "plan": plan.pk,
            "status": plan.status,
            "total": str(total),
            "currency": currency,
            "installments": [[d.isoformat(), str(a)] for d, a in checked],
            "invoices": [invoice.pk for invoice in rows],
        },
    )
    if needs_approval:
        case_tasks.create_task(
            customer=customer,
            kind=Task.Kind.APPROVAL,
            title=_("Approve or reject payment plan #%(pk)s: %(currency)s %(total)s")
            % {"pk": plan.pk, "currency": currency, "total": total},
            due_at=now + dt.timedelta(days=1),
            assignee=None,  # the unassigned queue, which managers work
            source=approval_source(plan.pk),
            details={"plan": plan.pk},
            by=None,  # raised by the system, whoever proposed
        )
    # Dunning offers the plan to the customer (a notice) once it is active: now, or when
    # a manager approves it (see cases/signals.py).
    signals.plan_proposed.send(sender=PaymentPlan, plan=plan, by=by, on=today)
    return plan


def approval_source(plan_id: int) -> str:
    return f"plan-approval:{plan_id}"


def _locked_plan(plan: PaymentPlan) -> PaymentPlan:
    return (
        PaymentPlan.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=plan.pk)
    )


@transaction.atomic
def approve_plan(*, plan: PaymentPlan, by, note: str = "") -> PaymentPlan:
    """A manager approves a proposed plan: it becomes active (dunning stays held), and
    `signals.plan_approved` lets dunning offer it to the customer."""
    permissions.require(by, "cases.approve_paymentplan")
    plan = _locked_plan(plan)
    if plan.status != PaymentPlan.Status.PROPOSED:
        raise ValidationError(
            {
                "status": _("Plan #%(pk)s is %(status)s, not awaiting approval.")
                % {"pk": plan.pk, "status": plan.get_status_display().lower()}
            }
        )
    note = note.strip()
    plan.status = PaymentPlan.Status.ACTIVE
    plan.approved_by = by
    plan.approved_at = timezone.now()
    plan.save(update_fields=["status", "approved_by", "approved_at"])
    case_tasks.complete_for_source(approval_source(plan.pk), outcome="approved", by=by)
    timeline.add(
        customer=plan.customer,
        kind=Activity.Kind.PAYMENT_PLAN,
        by=by,
        text=_("Payment plan #%(pk)s (%(currency)s %(total)s) approved")
        % {"pk": plan.pk, "currency": plan.currency, "total": plan.total_amount}
        + (f": {note}" if note else ""),
        details={"plan": plan.pk, "status": plan.status, "note": note},
    )
    signals.plan_approved.send(
        sender=PaymentPlan, plan=plan, by=by, on=timezone.localdate(plan.approved_at)
    )
    return plan


@transaction.atomic
def reject_plan(*, plan: PaymentPlan, by, reason: str) -> PaymentPlan:
    """A manager rejects a proposed plan, saying why; dunning resumes for its invoices."""
    permissions.require(by, "cases.approve_paymentplan")
    plan = _locked_plan(plan)
    reason = reason.strip()
    errors = promises.FieldErrors()
    if not reason:
        errors.add("reason", _("Say why the plan is rejected."))
    if plan.status != PaymentPlan.Status.PROPOSED:
        errors.add(
            "status",
            _("Plan #%(pk)s is %(status)s, not awaiting approval.")
            % {"pk": plan.pk, "status": plan.get_status_display().lower()},
        )
    errors.raise_any()
    plan.status = PaymentPlan.Status.REJECTED
    plan.closed_at = timezone.now()
    plan.save(update_fields=["status", "closed_at"])
    case_tasks.complete_for_source(approval_source(plan.pk), outcome="rejected", by=by)
    timeline.add(
        customer=plan.customer,
        kind=Activity.Kind.PAYMENT_PLAN,
        by=by,
        text=_("Payment plan #%(pk)s rejected: %(reason)s; dunning resumes for its invoices")
        % {"pk": plan.pk, "reason": reason},
        details={"plan": plan.pk, "status": plan.status, "reason": reason},
    )
    return plan


@transaction.atomic
def cancel_plan(*, plan: PaymentPlan, by, reason: str) -> PaymentPlan:
    """End a proposed or active plan early (the customer withdrew, or it was set up wrong).

    Whoever may propose a plan for the customer may cancel it, saying why. What was paid
    stays paid; the unpaid installments are no longer chased (no reminders, never missed)
    and dunning resumes for the plan's invoices that are still open.
    """
    permissions.require(by, "cases.add_paymentplan", [plan.customer])
    plan = _locked_plan(plan)
    reason = reason.strip()
    errors = promises.FieldErrors()
    if not reason:
        errors.add("reason", _("Say why the plan is cancelled."))
    if plan.status not in PaymentPlan.HOLDING_STATUSES:
        errors.add(
            "status",
            _("Plan #%(pk)s is %(status)s: only a proposed or active plan can be cancelled.")
            % {"pk": plan.pk, "status": plan.get_status_display().lower()},
        )
    errors.raise_any()
    was_proposed = plan.status == PaymentPlan.Status.PROPOSED
    plan.status = PaymentPlan.Status.CANCELLED
    plan.closed_at = timezone.now()
    plan.save(update_fields=["status", "closed_at"])
    if was_proposed:
        task = Task.objects.open().filter(source=approval_source(plan.pk)).first()
        if task is not None:  # nothing left to approve; whoever cancels may not be a manager
            case_tasks.cancel_task(task=task, by=None, reason=_("The plan was cancelled."))
    unpaid = plan.installments.exclude(status=Installment.Status.PAID).count()
    timeline.add(
        customer=plan.customer,
        kind=Activity.Kind.PAYMENT_PLAN,
        by=by,
        text=_(
            "Payment plan #%(pk)s cancelled (%(unpaid)d installment(s) unpaid): %(reason)s; "
            "dunning resumes for its invoices"
        )
        % {"pk": plan.pk, "unpaid": unpaid, "reason": reason},
        details={"plan": plan.pk, "status": plan.status, "reason": reason, "unpaid": unpaid},
    )
    return plan


def _fill(plan_ids: list[int]) -> None:
    """Spread what was paid on these (locked) plans over their installments, in order.

    Money applied to a plan's invoices since it was made fills installment 1, then 2, ...
    (a partial payment leaves the installment pending with its paid_amount). Installments
    newly paid get paid_on (the latest allocation date) and a timeline entry; a plan whose
    installments are all paid is completed. Two reads and at most three writes (one UPDATE
    ... FROM unnest for the installments, COPY for the timeline) for any number of plans.
    """
    if not plan_ids:
        return
    by_plan = {
        row["pk"]: row
        for row in PaymentPlan.objects.filter(bulk.one_of("id", plan_ids))
        .annotate(
            paid=Greatest(
                Coalesce(promises.paid_since_made("payment_plans"), promises.ZERO_MONEY),
                promises.ZERO_MONEY,
            ),
            last_on=promises.last_paid_on("payment_plans"),
        )
        .values("pk", "customer_id", "currency", "paid", "last_on")
    }
    installments = list(
        Installment.objects.filter(bulk.one_of("plan_id", plan_ids)).order_by("plan_id", "sequence")
    )
    left = {pk: row["paid"] for pk, row in by_plan.items()}
    counts: dict[int, int] = defaultdict(int)
    changed, newly_paid = [], []
    for installment in installments:
        counts[installment.plan_id] += 1
        if installment.status == Installment.Status.MISSED:
            continue
        share = max(min(left[installment.plan_id], installment.amount), Decimal("0.00"))
        left[installment.plan_id] -= share
        status = (
            Installment.Status.PAID if share == installment.amount else Installment.Status.PENDING
        )
        if (share, status) == (installment.paid_amount, installment.status):
            continue
        if status == Installment.Status.PAID:
            installment.paid_on = by_plan[installment.plan_id]["last_on"] or timezone.localdate()
            newly_paid.append(installment)
        else:
            installment.paid_on = None  # reopened by a refund since it was paid
        installment.paid_amount, installment.status = share, status
        changed.append(installment)
    bulk.write_rows(Installment, changed, ["paid_amount", "status", "paid_on"])
    unpaid = {i.plan_id for i in installments if i.status != Installment.Status.PAID}
    done = [pk for pk in by_plan if pk not in unpaid and counts[pk]]
    now = timezone.now()
    if done:
        PaymentPlan.objects.filter(bulk.one_of("id", done)).update(
            status=PaymentPlan.Status.COMPLETED, closed_at=now
        )
    paid_text = _("Installment %(n)d of %(count)d of plan #%(pk)s paid: %(currency)s %(amount)s")
    entries = [
        (
            by_plan[i.plan_id]["customer_id"],
            None,
            Activity.Kind.PAYMENT_PLAN,
            None,
            paid_text
            % {
                "n": i.sequence,
                "count": counts[i.plan_id],
                "pk": i.plan_id,
                "currency": by_plan[i.plan_id]["currency"],
                "amount": i.amount,
            },
            {"plan": i.plan_id, "installment": i.pk, "status": i.status},
            now,
        )
        for i in newly_paid
    ]
    done_text = _("Payment plan #%(pk)s completed: every installment paid")
    entries += [
        (
            by_plan[pk]["customer_id"],
            None,
            Activity.Kind.PAYMENT_PLAN,
            None,
            done_text % {"pk": pk},
            {"plan": pk, "status": PaymentPlan.Status.COMPLETED},
            now,
        )
        for pk in done
    ]
    timeline.copy_rows(entries)


def apply_payments(*, invoice_ids: Iterable[int]) -> None:
    """After allocations to these invoices: fill the installments of the plans covering them.

    1. Lock the proposed and active plans that cover any of the invoices (FOR UPDATE, id
       order), so two allocations on one plan fill it one after the other...
    2. ...and recount each plan's payments from the ledger in a new statement, which sees
       the other's committed allocation: the fill is never incremented, so never doubled.
    """
    invoice_ids = list(invoice_ids)
    if not invoice_ids:
        return
    locked = list(
        PaymentPlan.objects.select_for_update()
        .filter(
            promises.touching(PaymentPlan, invoice_ids),
            status__in=PaymentPlan.HOLDING_STATUSES,
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _fill(locked)


@transaction.atomic
def detect_missed_installments(*, today: dt.date) -> list[int]:
    """Break the plans with an installment unpaid past its due date plus the plan's grace.

    1. Find pending installments of proposed or active plans with due_on + grace_days <
       today (due on the 1st with 5 days' grace: still fine on the 6th, missed on the 7th).
       A plan still awaiting approval breaks too: an unapproved plan must not hold dunning
       for ever.
    2. Lock those plans, and recount their payments first (money that arrived by any path
       is honoured), then mark the installments still unpaid missed.
    3. Mark the plans broken, give the customer's agent a call task due today (source
       "plan:<id>:missed", so a re-run adds none), write the timeline. Dunning resumes:
       a broken plan holds nothing.
    Returns the ids of the plans broken.
    """
    candidates = Installment.objects.filter(
        status=Installment.Status.PENDING,
        due_on__lt=today,
        plan__status__in=PaymentPlan.HOLDING_STATUSES,
    ).values_list("plan_id", "due_on", "plan__grace_days")
    plan_ids = sorted(
        {
            plan_id
            for plan_id, due_on, grace in candidates
            if due_on + dt.timedelta(days=grace) < today
        }
    )
    if not plan_ids:
        return []
    locked = list(
        PaymentPlan.objects.select_for_update()
        .filter(bulk.one_of("id", plan_ids), status__in=PaymentPlan.HOLDING_STATUSES)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    _fill(locked)
    missed: dict[int, list[Installment]] = defaultdict(list)
    for installment in Installment.objects.filter(
        bulk.one_of("plan_id", locked), status=Installment.Status.PENDING, due_on__lt=today
    ).select_related("plan"):
        if installment.due_on + dt.timedelta(days=installment.plan.grace_days) < today:
            missed[installment.plan_id].append(installment)
    broken = list(
        PaymentPlan.objects.filter(
            bulk.one_of("id", list(missed)), status__in=PaymentPlan.HOLDING_STATUSES
        )
        .select_related("customer", "customer__assigned_agent")
        .order_by("pk")
    )
    if not broken:
        return []
    now = timezone.now()
    Installment.objects.filter(
        bulk.one_of("id", [i.pk for rows in missed.values() for i in rows])
    ).update(status=Installment.Status.MISSED)
    PaymentPlan.objects.filter(bulk.one_of("id", [p.pk for p in broken])).update(
        status=PaymentPlan.Status.BROKEN, closed_at=now
    )
    case_tasks.create_tasks(
        Task(
            customer=plan.customer,
            kind=Task.Kind.CALL,
            title=_("Call %(customer)s: payment plan #%(pk)s broken (installment missed)")
            % {"customer": plan.customer.name, "pk": plan.pk},
            due_at=case_tasks.due_at_end_of(today),
            source=f"plan:{plan.pk}:missed",
            details={"plan": plan.pk, "installments": [i.pk for i in missed[plan.pk]]},
        )
        for plan in broken
    )

    def missed_text(plan: PaymentPlan) -> str:
        first = missed[plan.pk][0]
        return _(
            "Payment plan #%(pk)s broken: installment %(n)d (%(currency)s %(amount)s due "
            "%(date)s, %(paid)s paid) missed after %(grace)d days' grace; dunning resumes and "
            "a call task goes to %(agent)s"
        ) % {
            "pk": plan.pk,
            "n": first.sequence,
            "currency": plan.currency,
            "amount": first.amount,
            "date": first.due_on.isoformat(),
            "paid": first.paid_amount,
            "grace": plan.grace_days,
            "agent": plan.customer.assigned_agent.get_username()
            if plan.customer.assigned_agent
            else _("the unassigned queue"),
        }

    timeline.add_all(
        timeline.entry(
            Activity.Kind.PAYMENT_PLAN,
            customer=plan.customer_id,
            at=now,
            text=missed_text(plan),
            details={
                "plan": plan.pk,
                "status": PaymentPlan.Status.BROKEN,
                "missed": [i.pk for i in missed[plan.pk]],
                "task_source": f"plan:{plan.pk}:missed",
            },
        )
        for plan in broken
    )
    return [plan.pk for plan in broken]
