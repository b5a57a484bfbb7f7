"""Disputes: a customer contests invoices; dunning holds for those invoices until resolved."""

import datetime as dt
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions, services, timeline
from accounts.models import Activity, Invoice, Payment

from . import promises
from .models import Dispute

# A paid invoice can be disputed too (a duplicate charge, goods not received): it has
# nothing to hold, and a credit on resolution stays on the account.
DISPUTABLE = (
    Invoice.Status.OPEN,
    Invoice.Status.PARTIALLY_PAID,
    Invoice.Status.DISPUTED,
    Invoice.Status.PAID,
)
OUTCOMES = {"customer": Dispute.Status.RESOLVED_CUSTOMER, "us": Dispute.Status.RESOLVED_US}


@transaction.atomic
def open_dispute(
    *,
    customer,
    invoices,
    reason: str,
    description: str = "",
    owner=None,
    by,
    source: str = "",
) -> Dispute:
    """Open a dispute on these invoices; dunning holds for them (and only them).

    Their status becomes disputed (the planner chases open and partially paid invoices
    only; the customer's other invoices are still chased). The owner defaults to whoever
    opens it, or the customer's agent when the system does (by=None).

    Idempotent by `source` (e.g. "stripe:dp_123"): a second call with the same source
    returns the first dispute and changes nothing, even when both run at once (the unique
    index decides; the loser reads the winner's row).
    """
    permissions.require(by, "cases.add_dispute", [customer])
    source = source.strip()
    if source:
        existing = Dispute.objects.filter(source=source).first()
        if existing is not None:
            return existing
    errors = promises.FieldErrors()
    if reason not in Dispute.Reason.values:
        errors.add("reason", _("Unknown reason %(value)s.") % {"value": reason})
    if len(source) > Dispute._meta.get_field("source").max_length:
        errors.add("source", _("The source is too long."))
    rows = promises.lock_customer_invoices(
        customer=customer, invoices=invoices, statuses=DISPUTABLE, errors=errors
    )
    errors.raise_any()
    description = description.strip()
    if owner is None:
        owner = by if by is not None else customer.assigned_agent
    try:
        with transaction.atomic():
            dispute = Dispute.objects.create(
                customer=customer,
                reason=reason,
                description=description,
                owner=owner,
                source=source,
                opened_by=by,
            )
    except IntegrityError:
        if source:  # a concurrent call with the same source won
            return Dispute.objects.get(source=source)
        raise
    dispute.invoices.set(rows)
    held = [i for i in rows if i.status in (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID)]
    Invoice.objects.filter(pk__in=[i.pk for i in held]).update(
        status=Invoice.Status.DISPUTED, updated_at=timezone.now()
    )
    text = _("Dispute #%(pk)s opened (%(reason)s) on %(invoices)s") % {
        "pk": dispute.pk,
        "reason": dispute.get_reason_display(),
        "invoices": promises.numbers(rows),
    }
    if held:
        text += _("; dunning held for %(invoices)s") % {"invoices": promises.numbers(held)}
    timeline.add(
        customer=customer,
        invoice=rows[0] if len(rows) == 1 else None,
        kind=Activity.Kind.DISPUTE,
        by=by,
        text=text + (f". {description}" if description else ""),
        details={
            "dispute": dispute.pk,
            "status": dispute.status,
            "reason": reason,
            "invoices": [i.pk for i in rows],
            "held": [i.pk for i in held],
            "owner": owner.pk if owner else None,
            "source": source,
        },
    )
    return dispute


def _locked(dispute: Dispute) -> Dispute:
    return (
        Dispute.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=dispute.pk)
    )


def _refuse_unless_active(dispute: Dispute) -> None:
    if not dispute.is_active:
        raise ValidationError(
            {
                "status": _("Dispute #%(pk)s is already %(status)s.")
                % {"pk": dispute.pk, "status": dispute.get_status_display().lower()}
            }
        )


@transaction.atomic
def start_review(*, dispute: Dispute, by, note: str = "") -> Dispute:
    """Someone takes the dispute up (and owns it, if nobody did); the hold stays."""
    dispute = _locked(dispute)
    permissions.require(by, "cases.change_dispute", [dispute.customer])
    _refuse_unless_active(dispute)
    if dispute.status == Dispute.Status.UNDER_REVIEW:
        raise ValidationError({"status": _("The dispute is already under review.")})
    note = note.strip()
    dispute.status = Dispute.Status.UNDER_REVIEW
    if dispute.owner_id is None and by is not None:
        dispute.owner = by
    dispute.save(update_fields=["status", "owner"])
    timeline.add(
        customer=dispute.customer,
        kind=Activity.Kind.DISPUTE,
        by=by,
        text=_("Dispute #%(pk)s under review") % {"pk": dispute.pk} + (f": {note}" if note else ""),
        details={"dispute": dispute.pk, "status": dispute.status, "note": note},
    )
    return dispute


def _issue_credit(dispute: Dispute, invoices: list[Invoice], amount: Decimal, by, on: dt.date):
    """A credit note for `amount`, applied to the disputed invoices oldest first.

    Through `services.record_payment` and `services.allocate`, so the ledger's own rules,
    locks and timeline entries apply. What the open balances cannot take stays on the
    account as unapplied credit. Returns the credit note and [(invoice, amount applied)].
    """
    credit = services.record_payment(
        amount=amount,
        currency=invoices[0].currency,
        received_on=on,
        customer=dispute.customer,
        kind=Payment.Kind.CREDIT_NOTE,
        remittance_reference=_("Dispute #%(pk)s") % {"pk": dispute.pk},
        source="dispute",
        external_id=str(dispute.pk),
        by=by,
    )
    left, applied = amount, []
    for invoice in sorted(invoices, key=lambda i: (i.due_on, i.pk)):
        take = min(left, invoice.open_balance)
        if take <= 0 or not invoice.is_outstanding:
            continue
        services.allocate(
            payment=credit, invoice=invoice, amount=take, by=by, on=on, rule="dispute"
        )
        applied.append((invoice, take))
        left -= take
    credit.refresh_from_db(fields=["unallocated_amount"])
    return credit, applied


@transaction.atomic
def resolve_dispute(
    *,
    dispute: Dispute,
    outcome: str,
    note: str,
    by,
    credit_amount=None,
) -> Dispute:
    """Close a dispute for the customer ('customer') or for us ('us'), saying why.

    Needs cases.resolve_dispute. Resolved for the customer, it may issue a credit note
    of `credit_amount` (at most what the disputed invoices were issued for), applied to
    them. Each invoice then takes the status its balance says (open, partially paid,
    paid), unless another active dispute still covers it, and dunning resumes for it.
    """
    permissions.require(by, "cases.resolve_dispute")
    dispute = _locked(dispute)
    _refuse_unless_active(dispute)
    note = note.strip()
    errors = promises.FieldErrors()
    if outcome not in OUTCOMES:
        errors.add("outcome", _("The outcome is 'customer' or 'us', not %(v)s.") % {"v": outcome})
    if not note:
        errors.add("note", _("Say how the dispute was resolved."))
    invoices = list(dispute.invoices.select_for_update(of=("self",)).order_by("pk"))
    credit = None
    if credit_amount not in (None, ""):
        credit = promises.money(credit_amount, "credit_amount", errors)
        if outcome != "customer":
            errors.add("credit_amount", _("Only a dispute resolved for the customer is credited."))
        currencies = {i.currency for i in invoices}
        if credit is not None and len(currencies) > 1:
            errors.add("credit_amount", _("The disputed invoices are in several currencies."))
        issued = sum((i.amount for i in invoices), Decimal("0.00"))
        if credit is not None and credit > issued:
            errors.add(
                "credit_amount",
                _("%(amount)s is more than the %(issued)s the disputed invoices were issued for.")
                % {"amount": credit, "issued": issued},
            )
    errors.raise_any()
    on = timezone.localdate()
    applied, credit_note = [], None
    if credit is not None:
        credit_note, applied = _issue_credit(dispute, invoices, credit, by, on)
    dispute.status = OUTCOMES[outcome]
    dispute.resolution_note = note
    dispute.resolved_at = timezone.now()
    dispute.resolved_by = by
    dispute.credit_note = credit_note
    dispute.save(
        update_fields=["status", "resolution_note", "resolved_at", "resolved_by", "credit_note"]
    )
    # Back to the status the balance says, unless another active dispute holds it still.
    still_disputed = Exists(
        Dispute.invoices.through.objects.filter(
            invoice_id=OuterRef("pk"), dispute__status__in=Dispute.ACTIVE_STATUSES
        )
    )
    ids = [i.pk for i in invoices]
    released = list(
        Invoice.objects.filter(pk__in=ids, status=Invoice.Status.DISPUTED)
        .exclude(still_disputed)
        .order_by("due_on", "pk")
        .values_list("pk", "number")
    )
    Invoice.objects.filter(pk__in=[pk for pk, _n in released]).update(
        status=Case(
            When(open_balance=0, then=Value(Invoice.Status.PAID)),
            When(open_balance=F("amount"), then=Value(Invoice.Status.OPEN)),
            default=Value(Invoice.Status.PARTIALLY_PAID),
        ),
        updated_at=timezone.now(),
    )
    kept = sorted(
        Invoice.objects.filter(pk__in=ids, status=Invoice.Status.DISPUTED).values_list(
            "number", flat=True
        )
    )
    text = _("Dispute #%(pk)s resolved %(outcome)s: %(note)s") % {
        "pk": dispute.pk,
        "outcome": _("for the customer") if outcome == "customer" else _("for us"),
        "note": note,
    }
    if credit_note is not None:
        text += _(". Credit note %(currency)s %(amount)s issued") % {
            "currency": credit_note.currency,
            "amount": credit_note.amount,
        }
        if applied:
            text += " " + _("and applied to %(lines)s") % {
                "lines": ", ".join(f"{i.number} ({amount})" for i, amount in applied)
            }
    if released:
        text += _(". Dunning resumes for %(invoices)s") % {
            "invoices": ", ".join(number for _pk, number in released)
        }
    if kept:
        text += _(". %(invoices)s stay(s) held by another open dispute") % {
            "invoices": ", ".join(kept)
        }
    timeline.add(
        customer=dispute.customer,
        invoice=invoices[0] if len(invoices) == 1 else None,
        kind=Activity.Kind.DISPUTE,
        by=by,
        text=text,
        details={
            "dispute": dispute.pk,
            "status": dispute.status,
            "credit_note": credit_note.pk if credit_note else None,
            "credited": {str(i.pk): str(amount) for i, amount in applied},
            "released": [pk for pk, _n in released],
        },
    )
    return dispute
