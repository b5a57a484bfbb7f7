"""Write-offs and agency placements: reviewed, proposed, approved by a manager, reversible.

- `propose_reviews` (nightly): a customer with an outstanding invoice more than
  WRITE_OFF_REVIEW_DAYS past due gets one review task for its agent (source
  "recovery-review:<customer id>", so a re-run adds none).
- `propose_recovery`: an agent or manager proposes a write-off or a placement of chosen
  invoices (one currency: the adjustment is one payment); an approval task goes to the
  managers' unassigned queue.
- `approve_recovery` (cases.approve_recovery, never the proposer): a write-off closes the
  balances with an adjustment, never a deletion: a Payment of kind write_off (method
  adjustment) allocated to each invoice by accounts.services, then the invoices are
  marked written off (never chased again); the customer is marked written off when nothing
  else is outstanding, which holds all dunning and contact (the planner skips customers
  that are not active). A placement marks the customer placed_with_agency (our dunning
  stops) and records the agency. Open call and e-mail tasks of a customer we stop
  contacting are cancelled.
- `reject_recovery`, `reverse_recovery` (the same permission, with a reason): a reversal
  takes the adjustment back with services.refund_payment (negative allocations naming the
  ones they reverse), restores each invoice's status from its balance (disputed when a
  dispute on it is still active) and makes the customer active again.

Every step writes the timeline (kind write_off or placement, and status_change for the
customer's status) naming who and why.
"""

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, CharField, Exists, F, Min, OuterRef, Q, Sum, Value, When
from django.db.models.functions import Cast, Concat
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions, services, summaries, timeline
from accounts.models import Activity, Customer, Invoice, Payment
from accounts.money import to_amount

from . import case_tasks
from .models import Dispute, Recovery, Task

CONTACT_TASKS = (Task.Kind.CALL, Task.Kind.EMAIL)
# A review closed (done or cancelled) this recently is not raised again for the customer.
REVIEW_REPEAT_DAYS = 30


def review_source(customer_id: int) -> str:
    return f"recovery-review:{customer_id}"


def approval_source(recovery_id: int) -> str:
    return f"recovery-approval:{recovery_id}"


def _kind_entry(recovery: Recovery) -> str:
    if recovery.kind == Recovery.Kind.WRITE_OFF:
        return Activity.Kind.WRITE_OFF
    return Activity.Kind.PLACEMENT


def _numbers(invoices) -> str:
    return ", ".join(invoice.number for invoice in invoices)


@transaction.atomic
def propose_reviews(*, today: dt.date) -> list[Task]:
    """Raise a review task for each active customer with an invoice past the review age.

    One aggregate finds the customers (their oldest such invoice and the amount over the
    age per currency). Skipped: customers with a recovery already proposed, and those
    whose last review closed less than REVIEW_REPEAT_DAYS ago (someone decided to go on
    collecting). The tasks go in through case_tasks.create_tasks: one INSERT, and a
    customer whose review task is still open gets no second one (its source is unique
    among open tasks).
    """
    days = settings.WRITE_OFF_REVIEW_DAYS
    cutoff = today - dt.timedelta(days=days)
    proposed = Recovery.objects.filter(
        customer_id=OuterRef("customer_id"), status=Recovery.Status.PROPOSED
    )
    reviewed = Task.objects.filter(
        customer_id=OuterRef("customer_id"),
        kind=Task.Kind.REVIEW,
        source=Concat(Value("recovery-review:"), Cast(OuterRef("customer_id"), CharField())),
        completed_at__gte=timezone.now() - dt.timedelta(days=REVIEW_REPEAT_DAYS),
    )
    rows = (
        Invoice.objects.outstanding()
        .filter(due_on__lt=cutoff, customer__status=Customer.Status.ACTIVE)
        .exclude(Exists(proposed))
        .exclude(Exists(reviewed))
        .order_by()
        .values("customer_id", "currency")
        .annotate(total=Sum("open_balance"), oldest=Min("due_on"))
        .values_list("customer_id", "currency", "total", "oldest")
    )
    found: dict[int, dict] = {}
    for customer_id, currency, total, oldest in rows:
        entry = found.setdefault(customer_id, {"amounts": {}, "oldest": oldest})
        entry["amounts"][currency] = str(to_amount(str(total)))  # SQLite sums are floats
        entry["oldest"] = min(entry["oldest"], oldest)
    if not found:
        return []
    customers = Customer.objects.in_bulk(list(found))
    due_at = case_tasks.due_at_end_of(today)
    tasks = []
    for customer_id, entry in sorted(found.items()):
        amounts = ", ".join(f"{code} {amount}" for code, amount in sorted(entry["amounts"].items()))
        tasks.append(
            Task(
                customer=customers[customer_id],
                kind=Task.Kind.REVIEW,
                title=_("Review for write-off or agency placement: %(amounts)s over %(days)d days")
                % {"amounts": amounts, "days": days},
                description=_(
                    "The oldest outstanding invoice fell due on %(day)s. Propose a write-off "
                    "or a placement with a collections agency, or note why collection goes on."
                )
                % {"day": entry["oldest"].isoformat()},
                due_at=due_at,
                source=review_source(customer_id),
                details={"amounts": entry["amounts"], "oldest_due_on": entry["oldest"].isoformat()},
            )
        )
    return case_tasks.create_tasks(tasks)


@transaction.atomic
def propose_recovery(
    *, customer: Customer, invoices, kind: str, by, reason: str, agency_name: str = ""
) -> Recovery:
    """Propose writing off, or placing with an agency, these outstanding invoices.

    Refused: another customer's invoice, one not outstanding, two currencies, an invoice
    already in a proposed or approved recovery, a placement without an agency, no reason.
    """
    permissions.require(by, "cases.add_recovery", [customer])
    invoices = list(
        Invoice.objects.select_for_update()
        .filter(pk__in=[invoice.pk for invoice in invoices])
        .order_by("pk")
    )
    reason, agency_name = (reason or "").strip(), (agency_name or "").strip()
    check_proposal(
        customer=customer, invoices=invoices, kind=kind, reason=reason, agency_name=agency_name
    )
    recovery = Recovery.objects.create(
        customer=customer,
        kind=kind,
        reason=reason,
        agency_name=agency_name,
        proposed_by=by,
    )
    recovery.invoices.set(invoices)
    currency = invoices[0].currency
    total = sum((invoice.open_balance for invoice in invoices), Decimal("0.00"))
    timeline.add(
        customer=customer,
        kind=_kind_entry(recovery),
        by=by,
        text=_("%(what)s proposed for %(numbers)s (%(currency)s %(total)s): %(reason)s")
        % {
            "what": recovery.get_kind_display(),
            "numbers": _numbers(invoices),
            "currency": currency,
            "total": total,
            "reason": reason,
        }
        + (f" — {agency_name}" if agency_name else ""),
        details={
            "recovery": recovery.pk,
            "event": "proposed",
            "invoices": [invoice.pk for invoice in invoices],
            "amount": str(total),
            "currency": currency,
        },
    )
    review = Task.objects.open().filter(source=review_source(customer.pk)).first()
    if review is not None:
        case_tasks.complete_task(
            task=review,
            outcome=f"{kind}_proposed",
            note=_("Recovery #%(id)s proposed") % {"id": recovery.pk},
            by=by,
        )
    case_tasks.create_task(
        customer=customer,
        kind=Task.Kind.APPROVAL,
        title=_("Approve or reject %(what)s #%(id)s: %(currency)s %(total)s")
        % {
            "what": recovery.get_kind_display().lower(),
            "id": recovery.pk,
            "currency": currency,
            "total": total,
        },
        due_at=timezone.now() + dt.timedelta(days=1),
        assignee=None,
        source=approval_source(recovery.pk),
        details={"recovery": recovery.pk},
        by=None,  # raised by the system for the managers (the unassigned queue)
    )
    return recovery


def check_proposal(
    *, customer: Customer, invoices: list[Invoice], kind: str, reason: str, agency_name: str
) -> None:
    """Raise ValidationError (by field) if this proposal cannot be made; the admin's form
    calls it too, so the errors show on the form."""
    if kind not in Recovery.Kind.values:
        raise ValidationError({"kind": _("Unknown kind %(value)s.") % {"value": kind}})
    if not (reason or "").strip():
        raise ValidationError({"reason": _("Say why.")})
    if kind == Recovery.Kind.AGENCY and not (agency_name or "").strip():
        raise ValidationError({"agency_name": _("Name the collections agency.")})
    if not invoices:
        raise ValidationError({"invoices": _("Choose at least one invoice.")})
    _check_invoices(customer, invoices)
    live = (
        Recovery.objects.filter(
            invoices__in=invoices,
            status__in=(Recovery.Status.PROPOSED, Recovery.Status.APPROVED),
        )
        .values_list("pk", flat=True)
        .first()
    )
    if live is not None:
        raise ValidationError(
            {
                "invoices": _("Some of these invoices are already in recovery #%(id)s.")
                % {"id": live}
            }
        )


def _check_invoices(customer: Customer, invoices: list[Invoice]) -> None:
    foreign = [invoice.number for invoice in invoices if invoice.customer_id != customer.pk]
    if foreign:
        raise ValidationError(
            {
                "invoices": _("%(numbers)s belong to another customer.")
                % {"numbers": ", ".join(foreign)}
            }
        )
    closed = [invoice.number for invoice in invoices if not invoice.is_outstanding]
    if closed:
        raise ValidationError(
            {"invoices": _("%(numbers)s are not outstanding.") % {"numbers": ", ".join(closed)}}
        )
    if len({invoice.currency for invoice in invoices}) > 1:
        raise ValidationError(
            {"invoices": _("Choose invoices in one currency; currencies are never mixed.")}
        )


def _require_manager(by, recovery: Recovery) -> None:
    if by is None:
        raise PermissionDenied(_("A manager decides write-offs and placements."))
    permissions.require(by, "cases.approve_recovery", [recovery.customer])


def _lock(recovery: Recovery, status: str) -> Recovery:
    recovery = (
        Recovery.objects.select_for_update(of=("self",))
        .select_related("customer", "adjustment")
        .get(pk=recovery.pk)
    )
    if recovery.status != status:
        raise ValidationError(
            _("This %(what)s is %(status)s.")
            % {
                "what": recovery.get_kind_display().lower(),
                "status": recovery.get_status_display().lower(),
            }
        )
    return recovery


def _set_customer_status(customer: Customer, status: str, *, by) -> None:
    """Change the customer's status (locked, re-read) with its status_change entry."""
    before = Customer.objects.select_for_update().get(pk=customer.pk)
    if before.status == status:
        return
    Customer.objects.filter(pk=customer.pk).update(status=status, updated_at=timezone.now())
    after = Customer.objects.get(pk=customer.pk)
    timeline.field_changes(
        before=before,
        after=after,
        kinds={"status": Activity.Kind.STATUS_CHANGE},
        by=by,
        customer=after,
    )
    customer.status = status


def _stop_contact_tasks(customer: Customer, *, by, reason: str) -> None:
    for task in Task.objects.open().filter(customer=customer, kind__in=CONTACT_TASKS):
        case_tasks.cancel_task(task=task, by=by, reason=reason)


@transaction.atomic
def approve_recovery(*, recovery: Recovery, by, today: dt.date | None = None) -> Recovery:
    """Carry out a proposed write-off or placement (see the module docstring).

    1. Lock the recovery (it must be proposed) and refuse the proposer and anyone without
       cases.approve_recovery: four eyes on every write-off.
    2. Write-off: lock the invoices, re-check them, record one adjustment Payment for their
       open balances and allocate it with services.allocate_many (the ledger rules, the
       allocation timeline entries); mark them written off.
       Placement: record the agency.
    3. Stop our contact: customer status written_off (when nothing else is outstanding)
       or placed_with_agency; cancel open call and e-mail tasks.
    4. Timeline: the decision, and the status change.
    """
    recovery = _lock(recovery, Recovery.Status.PROPOSED)
    _require_manager(by, recovery)
    if recovery.proposed_by_id == by.pk:
        raise PermissionDenied(_("Someone other than the proposer must approve this."))
    customer = recovery.customer
    today = today or timezone.localdate()
    invoices = list(recovery.invoices.select_for_update().order_by("pk"))
    if recovery.kind == Recovery.Kind.WRITE_OFF:
        _check_invoices(customer, invoices)
        total = sum((invoice.open_balance for invoice in invoices), Decimal("0.00"))
        adjustment = services.record_payment(
            amount=total,
            currency=invoices[0].currency,
            received_on=today,
            customer=customer,
            kind=Payment.Kind.WRITE_OFF,
            method=Payment.Method.ADJUSTMENT,
            remittance_reference=_("Write-off #%(id)s") % {"id": recovery.pk},
            source="recovery",
            external_id=f"recovery:{recovery.pk}",  # unique per source: one adjustment, ever
            by=by,
        )
        [refused] = services.allocate_many(
            [(adjustment.pk, [(invoice.pk, invoice.open_balance) for invoice in invoices])],
            by=by,
            rule="write_off",
            on=today,
        )
        if refused:
            raise ValidationError(refused)
        Invoice.objects.filter(pk__in=[invoice.pk for invoice in invoices]).update(
            status=Invoice.Status.WRITTEN_OFF, updated_at=timezone.now()
        )
        recovery.adjustment = adjustment
        still_open = Invoice.objects.outstanding().filter(customer=customer).exists()
        text = _("Write-off approved: %(currency)s %(total)s on %(numbers)s") % {
            "currency": adjustment.currency,
            "total": total,
            "numbers": _numbers(invoices),
        }
        details = {"amount": str(total), "currency": adjustment.currency, "payment": adjustment.pk}
        new_status = None if still_open else Customer.Status.WRITTEN_OFF
    else:
        text = _("Placed with %(agency)s: %(numbers)s") % {
            "agency": recovery.agency_name,
            "numbers": _numbers(invoices),
        }
        details = {"agency": recovery.agency_name}
        new_status = Customer.Status.PLACED_WITH_AGENCY
    recovery.status = Recovery.Status.APPROVED
    recovery.decided_by = by
    recovery.decided_at = timezone.now()
    recovery.save(update_fields=["status", "decided_by", "decided_at", "adjustment"])
    timeline.add(
        customer=customer,
        kind=_kind_entry(recovery),
        by=by,
        text=f"{text} — {recovery.reason}",
        details={"recovery": recovery.pk, "event": "approved", **details},
    )
    if new_status is not None:
        _set_customer_status(customer, new_status, by=by)
        _stop_contact_tasks(
            customer, by=by, reason=_("%(what)s approved") % {"what": recovery.get_kind_display()}
        )
    case_tasks.complete_for_source(approval_source(recovery.pk), outcome="approved", by=by)
    return recovery


@transaction.atomic
def reject_recovery(*, recovery: Recovery, by, reason: str) -> Recovery:
    """Turn a proposal down, saying why; collection goes on as before."""
    recovery = _lock(recovery, Recovery.Status.PROPOSED)
    _require_manager(by, recovery)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why.")})
    recovery.status = Recovery.Status.REJECTED
    recovery.decided_by = by
    recovery.decided_at = timezone.now()
    recovery.save(update_fields=["status", "decided_by", "decided_at"])
    timeline.add(
        customer=recovery.customer,
        kind=_kind_entry(recovery),
        by=by,
        text=_("%(what)s #%(id)s rejected: %(reason)s")
        % {"what": recovery.get_kind_display(), "id": recovery.pk, "reason": reason},
        details={"recovery": recovery.pk, "event": "rejected", "reason": reason},
    )
    case_tasks.complete_for_source(approval_source(recovery.pk), outcome="rejected", by=by)
    return recovery


@transaction.atomic
def reverse_recovery(*, recovery: Recovery, by, reason: str) -> Recovery:
    """Undo an approved write-off or placement, with a reason (see the module docstring)."""
    recovery = _lock(recovery, Recovery.Status.APPROVED)
    _require_manager(by, recovery)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the decision is reversed.")})
    customer = recovery.customer
    details: dict = {"recovery": recovery.pk, "event": "reversed", "reason": reason}
    if recovery.kind == Recovery.Kind.WRITE_OFF and recovery.adjustment is not None:
        adjustment = recovery.adjustment
        left = adjustment.amount - adjustment.refunded_amount
        if left > 0:
            services.refund_payment(
                payment=adjustment,
                amount=left,
                by=by,
                reason=_("Write-off #%(id)s reversed: %(reason)s")
                % {"id": recovery.pk, "reason": reason},
            )
        _restore_statuses([invoice.pk for invoice in recovery.invoices.all()])
        details.update(amount=str(left), currency=adjustment.currency)
    recovery.status = Recovery.Status.REVERSED
    recovery.reversed_by = by
    recovery.reversed_at = timezone.now()
    recovery.reversal_reason = reason
    recovery.save(update_fields=["status", "reversed_by", "reversed_at", "reversal_reason"])
    timeline.add(
        customer=customer,
        kind=_kind_entry(recovery),
        by=by,
        text=_("%(what)s #%(id)s reversed: %(reason)s")
        % {"what": recovery.get_kind_display(), "id": recovery.pk, "reason": reason},
        details=details,
    )
    if customer.status in (Customer.Status.WRITTEN_OFF, Customer.Status.PLACED_WITH_AGENCY):
        _set_customer_status(customer, Customer.Status.ACTIVE, by=by)
    return recovery


def _restore_statuses(invoice_ids: list[int]) -> None:
    """Written-off invoices take the status their balance says again, in one UPDATE:
    disputed while a dispute on them is active, else paid, partially paid or open."""
    active_dispute = Dispute.invoices.through.objects.filter(
        invoice_id=OuterRef("pk"), dispute__status__in=Dispute.ACTIVE_STATUSES
    )
    Invoice.objects.filter(pk__in=invoice_ids, status=Invoice.Status.WRITTEN_OFF).update(
        status=Case(
            When(
                Q(open_balance__gt=0) & Q(Exists(active_dispute)),
                then=Value(Invoice.Status.DISPUTED),
            ),
            When(open_balance=0, then=Value(Invoice.Status.PAID)),
            When(open_balance__lt=F("amount"), then=Value(Invoice.Status.PARTIALLY_PAID)),
            default=Value(Invoice.Status.OPEN),
        ),
        updated_at=timezone.now(),
    )
    customers = Invoice.objects.filter(pk__in=invoice_ids).values_list("customer_id", flat=True)
    summaries.refresh_past_due(customer_ids=customers)
