"""Every write to the ledger that carries a business rule, each in one transaction.

The admin, the API, management commands and Celery tasks call these functions; none of
them writes an Invoice balance or a Payment's unallocated amount directly. Rights are
checked through `permissions.require`, the timeline is written through `timeline`, and
the set-based paths write through `bulk` (COPY).
"""

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Max, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from . import signals, summaries, tasks, timeline
from .bulk import insert_rows, one_of, write_rows
from .models import (
    SUMMARY_FIELDS,
    Activity,
    Allocation,
    Contact,
    Customer,
    Invoice,
    Payment,
    check_received_on,
)
from .money import to_amount, validate_currency
from .permissions import require, require_customer_edit

logger = logging.getLogger(__name__)


@transaction.atomic
def add_note(*, customer: Customer, text: str, by, invoice: Invoice | None = None) -> Activity:
    require(by, "accounts.log_activity", [customer])
    if not text.strip():
        raise ValidationError({"text": _("A note needs some text.")})
    return timeline.add(
        Activity.Kind.NOTE, customer=customer, text=text.strip(), by=by, invoice=invoice
    )


@transaction.atomic
def log_call(
    *,
    customer: Customer,
    outcome: str,
    by,
    text: str = "",
    invoice: Invoice | None = None,
    phone: str = "",
) -> Activity:
    """Log a call on the customer's timeline; the open call tasks due by the end of today
    for that customer are closed as fulfilled by it (cases/receivers.py)."""
    require(by, "accounts.log_activity", [customer])
    if outcome not in Activity.CallOutcome.values:
        raise ValidationError(
            {"outcome": _("Unknown call outcome %(value)s.") % {"value": outcome}}
        )
    call = timeline.add(
        Activity.Kind.CALL,
        customer=customer,
        channel=Activity.Channel.PHONE,
        outcome=outcome,
        text=text.strip(),
        by=by,
        invoice=invoice,
        details={"phone": phone} if phone else {},
    )
    # Case work closes the call task this call fulfils (cases/receivers.py).
    signals.call_logged.send(sender=log_call, activity=call, by=by)
    return call


@transaction.atomic
def assign_customers(*, customers: Iterable[Customer], agent, by, reason: str = "") -> int:
    """Hand customers to an agent (or to nobody); one timeline entry per customer changed.

    `reason` (such as the routing rule that chose the agent) is added to each entry.
    """
    customers = [c for c in customers if c.assigned_agent_id != (agent.pk if agent else None)]
    require(by, "accounts.assign_customer", customers)
    if agent is not None and not agent.is_active:
        raise ValidationError({"agent": _("%(name)s is not an active user.") % {"name": agent}})
    previous = {c.pk: c.assigned_agent for c in customers}
    Customer.objects.filter(pk__in=previous).update(assigned_agent=agent, updated_at=timezone.now())
    new_name = agent.get_username() if agent else _("nobody")
    timeline.each(
        customers,
        kind=Activity.Kind.ASSIGNMENT,
        by=by,
        text=lambda c: (
            _("Assigned to %(new)s (was %(old)s)")
            % {
                "new": new_name,
                "old": previous[c.pk].get_username() if previous[c.pk] else _("unassigned"),
            }
            + (f": {reason}" if reason else "")
        ),
        details=lambda c: {
            "from": previous[c.pk].pk if previous[c.pk] else None,
            "to": agent.pk if agent else None,
            **({"reason": reason} if reason else {}),
        },
    )
    return len(customers)


def _check_pause(*, until: dt.date, reason: str, by, today: dt.date | None) -> str:
    """The pause's reason, stripped; refuses an empty reason, a past date, or too long a pause.

    Agents may pause for AGENT_MAX_PAUSE_DAYS at most; longer needs pause_dunning_unlimited.
    """
    today = today or timezone.localdate()
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why dunning is paused.")})
    if until < today:
        raise ValidationError({"until": _("The pause must end today or later.")})
    limit = settings.AGENT_MAX_PAUSE_DAYS
    if (
        by is not None
        and (until - today).days > limit
        and not by.has_perm("accounts.pause_dunning_unlimited")
    ):
        raise ValidationError(
            {"until": _("Agents may pause dunning for at most %(days)d days.") % {"days": limit}}
        )
    return reason


@transaction.atomic
def pause_dunning(
    *, customers: Iterable[Customer], until: dt.date, reason: str, by, today: dt.date | None = None
) -> int:
    """Hold all automatic dunning for these customers up to and including `until`."""
    customers = list(customers)
    require(by, "accounts.pause_dunning", customers)
    reason = _check_pause(until=until, reason=reason, by=by, today=today)
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        dunning_paused_until=until, dunning_pause_reason=reason, updated_at=timezone.now()
    )
    timeline.each(
        customers,
        kind=Activity.Kind.HOLD_CHANGE,
        by=by,
        text=_("Dunning paused until %(until)s: %(reason)s")
        % {"until": until.isoformat(), "reason": reason},
        details={"hold": "dunning_paused", "until": until.isoformat(), "reason": reason},
    )
    return len(customers)


@transaction.atomic
def pause_invoices(
    *, invoices: Iterable[Invoice], until: dt.date, reason: str, by, today: dt.date | None = None
) -> int:
    """Hold dunning for these invoices only (the customer's other invoices go on)."""
    invoices = list(invoices)
    customers = {invoice.customer_id: invoice.customer for invoice in invoices}
    require(by, "accounts.pause_dunning", customers.values())
    reason = _check_pause(until=until, reason=reason, by=by, today=today)
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(
        dunning_paused_until=until, dunning_pause_reason=reason, updated_at=timezone.now()
    )
    now = timezone.now()
    timeline.add_all(
        timeline.entry(
            Activity.Kind.HOLD_CHANGE,
            customer=invoice.customer_id,
            invoice=invoice,
            by=by,
            at=now,
            text=_("Dunning for %(n)s paused until %(until)s: %(reason)s")
            % {"n": invoice.number, "until": until.isoformat(), "reason": reason},
            details={"hold": "invoice_paused", "until": until.isoformat(), "reason": reason},
        )
        for invoice in invoices
    )
    return len(invoices)


@transaction.atomic
def resume_dunning(*, customers: Iterable[Customer], by, reason: str = "") -> int:
    customers = [c for c in customers if c.dunning_paused_until is not None]
    require(by, "accounts.pause_dunning", customers)
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        dunning_paused_until=None, dunning_pause_reason="", updated_at=timezone.now()
    )
    reason = reason.strip()
    timeline.each(
        customers,
        kind=Activity.Kind.HOLD_CHANGE,
        by=by,
        text=_("Dunning resumed") + (f": {reason}" if reason else ""),
        details={"hold": "dunning_paused", "until": None, "reason": reason},
    )
    return len(customers)


@transaction.atomic
def resume_invoices(*, invoices: Iterable[Invoice], by, reason: str = "") -> int:
    """Lift the pause on these invoices; dunning picks them up at its next run."""
    invoices = [i for i in invoices if i.dunning_paused_until is not None]
    require(by, "accounts.pause_dunning", {i.customer_id: i.customer for i in invoices}.values())
    Invoice.objects.filter(pk__in=[i.pk for i in invoices]).update(
        dunning_paused_until=None, dunning_pause_reason="", updated_at=timezone.now()
    )
    reason = reason.strip()
    now = timezone.now()
    timeline.add_all(
        timeline.entry(
            Activity.Kind.HOLD_CHANGE,
            customer=invoice.customer_id,
            invoice=invoice,
            by=by,
            at=now,
            text=_("Dunning for %(n)s resumed") % {"n": invoice.number}
            + (f": {reason}" if reason else ""),
            details={"hold": "invoice_paused", "until": None, "reason": reason},
        )
        for invoice in invoices
    )
    return len(invoices)


# Fields whose every change belongs on the timeline, with the kind of entry it makes.
TRACKED_CUSTOMER_FIELDS = {
    "status": Activity.Kind.STATUS_CHANGE,
    "segment": Activity.Kind.STATUS_CHANGE,
    "credit_limit": Activity.Kind.STATUS_CHANGE,
    "assigned_agent": Activity.Kind.ASSIGNMENT,
    "dunning_paused_until": Activity.Kind.HOLD_CHANGE,
    "do_not_contact": Activity.Kind.HOLD_CHANGE,
    "cease_communication": Activity.Kind.HOLD_CHANGE,
    "is_in_dispute": Activity.Kind.HOLD_CHANGE,
    "is_in_payment_plan": Activity.Kind.HOLD_CHANGE,
    "is_bankrupt": Activity.Kind.HOLD_CHANGE,
}


def _changed_fields(before: models.Model, after: models.Model) -> list[str]:
    """The names of the fields whose stored values differ between two versions of a row."""
    return [
        field.name
        for field in after._meta.concrete_fields
        if not field.primary_key and getattr(before, field.attname) != getattr(after, field.attname)
    ]


@transaction.atomic
def save_customer(*, customer: Customer, by) -> Customer:
    """Save a new or edited customer and record each tracked change on the timeline.

    What `by` may change is checked field by field against the customer as stored
    (`permissions.require_customer_edit`): the same rules the console and the API apply.
    """
    before = None
    if customer.pk:
        before = Customer.objects.select_for_update().get(pk=customer.pk)
    # The summary columns are never saved by an edit (Customer.save), so a stale copy's
    # figures are no change anyone asked for.
    changed = _changed_fields(before if before is not None else Customer(), customer)
    require_customer_edit(
        by, before=before, fields=[name for name in changed if name not in SUMMARY_FIELDS]
    )
    customer.full_clean()
    customer.save()
    if before is None:
        timeline.add(
            Activity.Kind.STATUS_CHANGE, customer=customer, by=by, text=_("Customer created")
        )
        return customer
    timeline.field_changes(
        before=before,
        after=customer,
        kinds=TRACKED_CUSTOMER_FIELDS,
        by=by,
        customer=customer,
    )
    return customer


@transaction.atomic
def save_contact(*, contact: Contact, by) -> Contact:
    """Save a new or edited contact of a customer `by` may work.

    A contact stays with its customer: moving it to another would hand one debtor's
    person (and their opt-outs) to another account.
    """
    if contact.pk:
        stored = Contact.objects.select_related("customer").get(pk=contact.pk)
        if stored.customer_id != contact.customer_id:
            raise ValidationError({"customer": _("A contact cannot move to another customer.")})
        require(by, "accounts.change_contact", [stored.customer])
    else:
        require(by, "accounts.add_contact", [contact.customer])
    if contact.is_primary:
        other = (
            Contact.objects.filter(customer_id=contact.customer_id, is_primary=True)
            .exclude(pk=contact.pk)
            .first()
        )
        if other is not None:
            raise ValidationError(
                {
                    "is_primary": _("%(name)s is already this customer's primary contact.")
                    % {"name": other.name}
                }
            )
    contact.full_clean()
    contact.save()
    return contact


def refresh_past_due_later(*, customer_ids: Iterable[int]) -> None:
    """The bulk paths' refresh of the customer list's figures (accounts/summaries.py):
    queued to a worker when the transaction commits, instead of done inside it.

    Why: recomputing and rewriting a customer row touches every index of the customer
    table (fourteen, a trigram GIN among them). Inline, a reconciliation chunk of 2,500
    payments paid for it on its own critical path (10,000 bank lines took 3.2-3.6 s to
    match and book instead of 2.7 s). Queued, a worker does it moments later. A broker
    that cannot be reached is logged, not raised: the nightly refresh repairs the figures.
    """
    ids = sorted({int(pk) for pk in customer_ids if pk is not None})
    if not ids:
        return

    def enqueue():
        try:
            tasks.refresh_past_due.delay(ids)
        except Exception:
            logger.exception("past-due refresh of %s customers not queued", len(ids))

    transaction.on_commit(enqueue, robust=True)


def open_balances(customer: Customer) -> dict[str, Decimal]:
    """The customer's open balance per currency (never summed across currencies)."""
    rows = (
        Invoice.objects.outstanding()
        .filter(customer=customer)
        .values("currency")
        .annotate(total=Sum("open_balance"))
        .order_by("currency")
    )
    return {row["currency"]: row["total"] for row in rows}


@transaction.atomic
def save_new_invoice(*, invoice: Invoice, by=None) -> Invoice:
    """Validate and store a new invoice; its whole amount is open."""
    invoice.amount = to_amount(invoice.amount)
    invoice.open_balance = invoice.amount
    invoice.status = Invoice.Status.OPEN
    invoice.full_clean()
    invoice.save()
    summaries.refresh_past_due(customer_ids=[invoice.customer_id])
    return invoice


TRACKED_INVOICE_FIELDS = ("issued_on", "due_on", "reference", "pay_link")


@transaction.atomic
def save_invoice(*, invoice: Invoice, by) -> Invoice:
    """Save an edited invoice; a changed date or reference is written to the timeline."""
    before = Invoice.objects.select_for_update().get(pk=invoice.pk)
    invoice.full_clean()
    invoice.save()
    timeline.field_changes(
        before=before,
        after=invoice,
        kinds=dict.fromkeys(TRACKED_INVOICE_FIELDS, Activity.Kind.STATUS_CHANGE),
        by=by,
        customer=invoice.customer,
        invoice=invoice,
    )
    summaries.refresh_past_due(customer_ids={before.customer_id, invoice.customer_id})
    return invoice


@transaction.atomic
def record_payment(
    *,
    amount,
    currency: str,
    received_on: dt.date,
    customer: Customer | None = None,
    kind: str = Payment.Kind.PAYMENT,
    method: str = Payment.Method.BANK_TRANSFER,
    remittance_reference: str = "",
    payer_name: str = "",
    payer_account: str = "",
    source: str = "manual",
    external_id: str = "",
    by=None,
) -> Payment:
    """Record money received (or a credit note); allocate it with `allocate`.

    `payer_name` and `payer_account` are who sent the money as the bank or provider named
    them (kept for unapplied cash, whose customer is not known yet)."""
    amount = to_amount(amount)
    if amount <= 0:
        raise ValidationError({"amount": _("A payment must be more than zero.")})
    validate_currency(currency)
    payment = Payment(
        customer=customer,
        kind=kind,
        amount=amount,
        currency=currency,
        received_on=received_on,
        method=method,
        remittance_reference=remittance_reference,
        payer_name=payer_name[:200],
        payer_account=payer_account[:64],
        source=source,
        external_id=external_id,
    )
    return save_new_payment(payment=payment, by=by)


@transaction.atomic
def save_new_payment(*, payment: Payment, by=None) -> Payment:
    """Validate and store a new payment, wholly unallocated, with its timeline entry."""
    if payment.kind == Payment.Kind.CREDIT_NOTE:
        payment.method = Payment.Method.CREDIT_NOTE
    payment.unallocated_amount = payment.amount
    payment.created_by = by
    payment.full_clean()
    payment.save()
    if payment.customer is not None:
        timeline.payment_received(payment, by=by)
    return payment


def check_allocation(*, payment: Payment, invoice: Invoice, amount=None) -> Decimal:
    """Return the amount to allocate, or raise ValidationError saying what is wrong."""
    if payment.currency != invoice.currency:
        raise ValidationError(
            _("Payment is in %(p)s but invoice %(n)s is in %(i)s; currencies are never mixed.")
            % {"p": payment.currency, "n": invoice.number, "i": invoice.currency}
        )
    if payment.customer_id is not None and payment.customer_id != invoice.customer_id:
        raise ValidationError(
            _("Invoice %(n)s belongs to another customer than this payment.")
            % {"n": invoice.number}
        )
    if not invoice.is_outstanding:
        raise ValidationError(
            _("Invoice %(n)s is %(status)s and takes no more money.")
            % {"n": invoice.number, "status": invoice.get_status_display().lower()}
        )
    amount = (
        min(payment.unallocated_amount, invoice.open_balance)
        if amount is None
        else to_amount(amount)
    )
    if amount <= 0:
        raise ValidationError({"amount": _("An allocation must be more than zero.")})
    if amount > payment.unallocated_amount:
        raise ValidationError(
            {
                "amount": _("Only %(left)s of this payment is unallocated.")
                % {"left": payment.unallocated_amount}
            }
        )
    if amount > invoice.open_balance:
        raise ValidationError(
            {
                "amount": _("Invoice %(n)s has only %(left)s open.")
                % {"n": invoice.number, "left": invoice.open_balance}
            }
        )
    return amount


@transaction.atomic
def allocate(
    *,
    payment: Payment,
    invoice: Invoice,
    amount=None,
    by=None,
    on: dt.date | None = None,
    rule: str = "manual",
) -> Allocation:
    """Apply part of a payment to an invoice.

    1. Lock the payment and then the invoice (always in that order, so two allocations
       of the same pair cannot deadlock) and re-read their balances.
    2. Refuse a currency mismatch, another customer's invoice, or more than either holds;
       with no amount, apply as much as both allow.
    3. Move both balances with UPDATE ... SET x = x - amount. The CHECK constraints on
       Invoice and Payment refuse a negative balance even if a caller skipped step 2.
    4. Set the invoice's status from its new balance and write the timeline entry, all in
       the same transaction as the balances.
    """
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    invoice = Invoice.objects.select_for_update().select_related("customer").get(pk=invoice.pk)
    amount = check_allocation(payment=payment, invoice=invoice, amount=amount)
    on = on or timezone.localdate()
    new_balance = invoice.open_balance - amount
    new_status = invoice.status_for_balance(new_balance)
    try:
        with transaction.atomic():
            Payment.objects.filter(pk=payment.pk).update(
                unallocated_amount=F("unallocated_amount") - amount,
                customer_id=invoice.customer_id,
            )
            Invoice.objects.filter(pk=invoice.pk).update(
                open_balance=F("open_balance") - amount,
                status=new_status,
                updated_at=timezone.now(),
            )
    except IntegrityError as exc:  # a concurrent writer raced past step 2
        raise ValidationError(_("The allocation would overdraw the payment or invoice.")) from exc
    allocation = Allocation.objects.create(
        payment=payment,
        invoice=invoice,
        amount=amount,
        allocated_on=on,
        seq=next_allocation_seqs([invoice.pk])[invoice.pk],
        rule=rule,
        created_by=by,
    )
    timeline.allocation_applied(
        payment=payment, invoice=invoice, allocation=allocation, new_balance=new_balance, by=by
    )
    summaries.refresh_past_due(customer_ids=[invoice.customer_id])
    signals.allocations_applied.send(sender=Allocation, invoice_ids=[invoice.pk])
    return allocation


@transaction.atomic
def refund_payment(
    *,
    payment: Payment,
    amount,
    by=None,
    on: dt.date | None = None,
    reason: str = "",
    is_chargeback: bool = False,
) -> list[Allocation]:
    """Give money back to the payer (a refund) or lose it to the card network (a chargeback).

    1. Lock the payment; refuse more than it still holds (amount minus earlier refunds).
    2. Take the money from its unapplied part first: that reopens nothing.
    3. Take the rest from its allocations, newest first, each by a negative Allocation row
       that names the row it reverses; each invoice's balance goes back up and its status
       follows (a paid invoice reopens, so the dunning chases it again).
    4. Write one timeline entry per reopened invoice and one for the refund itself.
    Returns the reversal rows.
    """
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    amount = to_amount(amount)
    refundable = payment.amount - payment.refunded_amount
    if amount <= 0:
        raise ValidationError({"amount": _("A refund must be more than zero.")})
    if amount > refundable:
        raise ValidationError(
            {"amount": _("Only %(left)s of this payment can be refunded.") % {"left": refundable}}
        )
    on = on or timezone.localdate()
    if is_chargeback:
        what = _("Chargeback")
    elif payment.kind == Payment.Kind.WRITE_OFF:
        what = _("Write-off reversed")  # the adjustment goes, no money moves
    else:
        what = _("Refund")
    from_unapplied = min(payment.unallocated_amount, amount)
    remaining = amount - from_unapplied
    reversals = []
    applied = (
        Allocation.objects.filter(payment=payment, amount__gt=0)
        .annotate(reversed_total=Sum("reversals__amount"))
        .select_related("invoice", "invoice__customer")
        .order_by("-allocated_on", "-id")
    )
    for allocation in applied:
        if remaining <= 0:
            break
        net = allocation.amount + (allocation.reversed_total or Decimal("0"))
        take = min(net, remaining)
        if take <= 0:
            continue
        invoice = Invoice.objects.select_for_update().get(pk=allocation.invoice_id)
        new_balance = invoice.open_balance + take
        invoice.status = invoice.status_for_balance(new_balance)
        Invoice.objects.filter(pk=invoice.pk).update(
            open_balance=new_balance, status=invoice.status, updated_at=timezone.now()
        )
        reversal = Allocation.objects.create(
            payment=payment,
            invoice=invoice,
            amount=-take,
            allocated_on=on,
            seq=next_allocation_seqs([invoice.pk])[invoice.pk],
            rule="chargeback" if is_chargeback else "refund",
            reverses=allocation,
            reason=reason,
            created_by=by,
        )
        reversals.append(reversal)
        timeline.add(
            Activity.Kind.ALLOCATION,
            customer=invoice.customer,
            invoice=invoice,
            by=by,
            text=_("%(what)s: %(currency)s %(amount)s taken back from %(n)s; %(left)s open again")
            % {
                "what": what,
                "currency": invoice.currency,
                "amount": take,
                "n": invoice.number,
                "left": new_balance,
            },
            details={
                "payment": payment.pk,
                "allocation": reversal.pk,
                "reverses": allocation.pk,
                "amount": str(-take),
                "status": invoice.status,
            },
        )
        remaining -= take
    if remaining > 0:  # allocations and unapplied amount did not add up: a ledger defect
        raise ValidationError(_("The payment's allocations do not account for its amount."))
    Payment.objects.filter(pk=payment.pk).update(
        unallocated_amount=F("unallocated_amount") - from_unapplied,
        refunded_amount=F("refunded_amount") + amount,
    )
    summaries.refresh_past_due(customer_ids={r.invoice.customer_id for r in reversals})
    if payment.customer_id:
        timeline.add(
            Activity.Kind.PAYMENT,
            customer=payment.customer,
            by=by,
            text=_("%(what)s of %(currency)s %(amount)s")
            % {"what": what, "currency": payment.currency, "amount": amount}
            + (f": {reason}" if reason else ""),
            details={
                "payment": payment.pk,
                "refund": str(amount),
                "is_chargeback": is_chargeback,
            },
        )
    return reversals


PAYMENT_COLUMNS = (
    "customer_id",
    "kind",
    "amount",
    "currency",
    "unallocated_amount",
    "received_on",
    "method",
    "remittance_reference",
    "payer_name",
    "payer_account",
    "source",
    "external_id",
    "created_by_id",
)
ALLOCATION_COLUMNS = (
    "payment_id",
    "invoice_id",
    "amount",
    "allocated_on",
    "seq",
    "rule",
    "created_by_id",
)


def paid_history_problems(
    *, paid_on: dt.date | None, amount_paid, amount, issued_on: dt.date | None
) -> dict[str, str]:
    """{field: why} for an invoice's settlement history as a source gives it (a paid date,
    an amount paid), checked the same way for the API and the spreadsheet intake: the
    amount paid neither negative nor above the invoice's amount, the paid date neither in
    the future nor before the issue date. Empty when it can be booked."""
    problems = {}
    if amount_paid is not None and amount_paid < 0:
        problems["amount_paid"] = _("The amount paid cannot be negative.")
    elif amount_paid is not None and amount is not None and amount_paid > amount:
        problems["amount_paid"] = _(
            "The amount paid %(paid)s is more than the invoice amount %(amount)s."
        ) % {"paid": amount_paid, "amount": amount}
    if paid_on is not None:
        today = timezone.localdate()
        if paid_on > today:
            problems["paid_on"] = _(
                "The paid date %(paid)s is in the future (today is %(today)s)."
            ) % {"paid": paid_on, "today": today}
        elif issued_on is not None and paid_on < issued_on:
            problems["paid_on"] = _(
                "The paid date %(paid)s is before the issue date %(issued)s."
            ) % {"paid": paid_on, "issued": issued_on}
    return problems


def paid_history_key(*, source: str, number: str, paid_on: dt.date, amount) -> str:
    """The external id of the payment an invoice's paid date and amount book (source,
    number, date, amount), so loading the same history again finds it and books nothing,
    through the API or a spreadsheet alike."""
    return short_key(f"paid:{source}:{number}:{paid_on.isoformat()}:{amount}", 100)


def short_key(key: str, limit: int) -> str:
    """`key`, or a digest of it when it is longer than the column holds (still unique)."""
    if len(key) <= limit:
        return key
    return key[:8] + hashlib.sha256(key.encode()).hexdigest()[: limit - 8]


@transaction.atomic
def book_paid_history(*, invoice: Invoice, paid_on: dt.date, amount, by=None) -> Payment:
    """A new invoice that was already paid (history loaded through the API): a payment
    received on `paid_on` and its allocation that day, keyed by `paid_history_key` (the
    spreadsheet intake books the same, in bulk)."""
    amount = to_amount(amount)
    payment = record_payment(
        amount=amount,
        currency=invoice.currency,
        received_on=paid_on,
        customer=invoice.customer,
        method=Payment.Method.OTHER,
        remittance_reference=_("Paid in %(source)s") % {"source": invoice.source},
        source=invoice.source,
        external_id=paid_history_key(
            source=invoice.source, number=invoice.number, paid_on=paid_on, amount=amount
        ),
        by=by,
    )
    allocate(payment=payment, invoice=invoice, amount=amount, by=by, on=paid_on, rule="import-paid")
    return payment


def next_allocation_seqs(invoice_ids) -> dict[int, int]:
    """{invoice id: the number its next allocation row takes} (1 for an invoice with none).

    Call it with the invoices locked (select_for_update), so no one else numbers a row of
    theirs before this transaction ends; the allocation_invoice_seq constraint stands
    behind that. One query, from the (invoice_id, seq) index.
    """
    ids = list(invoice_ids)
    last = dict(
        Allocation.objects.filter(one_of("invoice_id", ids))
        .order_by()
        .values_list("invoice_id")
        .annotate(last=Max("seq"))
    )
    return {pk: last.get(pk, 0) + 1 for pk in ids}


@transaction.atomic
def record_payments(rows: list[dict], *, by=None) -> list[Payment | ValidationError]:
    """`record_payment` for many rows at once: one INSERT for the payments, one for the timeline.

    Each row holds record_payment's keyword arguments (or `customer_id` for `customer`,
    when the caller has only the id, as the bank importer does). Returns, row by row, the
    new Payment or the ValidationError that refused it (the other rows are still recorded):
    the same checks as record_payment, made in Python, with the database constraints
    behind them.
    The payments and their timeline entries are written with `insert_rows` (COPY on
    PostgreSQL), each entry saying what `timeline.payment_received` would.
    """
    results: list[Payment | ValidationError] = []
    keys = {(row.get("source", "manual"), row.get("external_id", "")) for row in rows}
    taken = set(
        Payment.objects.filter(
            one_of("source", {source for source, _ in keys}),
            one_of("external_id", {ext for _, ext in keys if ext}),
        )
        .exclude(external_id="")  # the unique index's own condition, so the planner uses it
        .values_list("source", "external_id")
    )
    by_id = by.pk if by is not None else None
    fresh: list[tuple] = []
    customers: list[Customer | None] = []
    for row in rows:
        try:
            amount = to_amount(row["amount"])
            if amount <= 0:
                raise ValidationError({"amount": _("A payment must be more than zero.")})
            validate_currency(row["currency"])
            check_received_on(row["received_on"])
            kind = row.get("kind", Payment.Kind.PAYMENT)
            key = (row.get("source", "manual"), row.get("external_id", ""))
            if key[1] and key in taken:
                raise ValidationError(
                    {
                        "external_id": _("%(id)s is already recorded from %(source)s.")
                        % {"id": key[1], "source": key[0]}
                    }
                )
            taken.add(key)
        except ValidationError as exc:
            results.append(exc)
            continue
        customer = row.get("customer")
        customers.append(customer)
        fresh.append(
            (
                customer.pk if customer is not None else row.get("customer_id"),
                kind,
                amount,
                row["currency"],
                amount,
                row["received_on"],
                Payment.Method.CREDIT_NOTE
                if kind == Payment.Kind.CREDIT_NOTE
                else row.get("method", Payment.Method.BANK_TRANSFER),
                row.get("remittance_reference", "")[:255],
                row.get("payer_name", "")[:200],
                row.get("payer_account", "")[:64],
                key[0],
                key[1],
                by_id,
            )
        )
        results.append(None)  # the Payment, once its id is known
    written = insert_rows(Payment, PAYMENT_COLUMNS, fresh)
    attnames = [f.attname for f in Payment._meta.concrete_fields]
    payments = []
    for values, customer in zip(written, customers, strict=True):
        payment = Payment.from_db(connection.alias, attnames, values)
        if customer is not None:
            payment.customer = customer
        payments.append(payment)
    made = iter(payments)
    results = [next(made) if result is None else result for result in results]
    timeline.payments_received(payments, by=by)
    return results


class _LockedPayment:
    """The columns of a payment that `allocate_many` locks, checks and writes back.

    A plain object instead of a Payment: building a model instance per locked row cost
    more than the lock itself. It offers what `check_allocation` and `write_rows` read.
    """

    __slots__ = ("currency", "customer_id", "kind", "pk", "unallocated_amount")
    COLUMNS = ("id", "customer_id", "kind", "currency", "unallocated_amount")

    def __init__(self, pk, customer_id, kind, currency, unallocated_amount):
        self.pk, self.customer_id, self.kind = pk, customer_id, kind
        self.currency, self.unallocated_amount = currency, unallocated_amount


class _LockedInvoice:
    """The columns of an invoice that `allocate_many` locks, checks and writes back, with
    the Invoice behaviour `check_allocation` uses (see _LockedPayment for why)."""

    __slots__ = (
        "amount",
        "currency",
        "customer_id",
        "number",
        "open_balance",
        "pk",
        "status",
        "updated_at",
    )
    COLUMNS = ("id", "customer_id", "number", "currency", "amount", "open_balance", "status")
    Status = Invoice.Status
    is_outstanding = Invoice.is_outstanding
    status_for_balance = Invoice.status_for_balance

    def __init__(self, pk, customer_id, number, currency, amount, open_balance, status):
        self.pk, self.customer_id, self.number, self.currency = pk, customer_id, number, currency
        self.amount, self.open_balance, self.status = amount, open_balance, status

    def get_status_display(self) -> str:
        return str(Invoice.Status(self.status).label)


@transaction.atomic
def allocate_many(
    plans: list[tuple[int, list[tuple[int, Decimal]]]],
    *,
    by=None,
    rule: str = "manual",
    on: dt.date | None = None,
) -> list[str]:
    """Book many payments' allocations at once; each payment's lines all or none.

    `plans` is [(payment_id, [(invoice_id, amount), ...]), ...]; a plan may name its own
    rule as a third item, (payment_id, lines, rule), instead of `rule`, and its own date
    as a fourth, (payment_id, lines, rule, on), instead of `on` (an import of history
    books each allocation on the day it was paid). Returns, plan by
    plan, "" when booked or the reason it was refused.

    1. Lock every payment, then every invoice, each in id order: the order `allocate`
       uses, so a concurrent single allocation and this never deadlock. Only the columns
       the checks read are loaded.
    2. Check each plan with `check_allocation`'s rules against balances kept in memory, so
       two plans never take the same money twice; a refused plan books none of its lines.
    3. Write all balances with one UPDATE per table, then the allocations and their
       timeline entries with one INSERT each (COPY on PostgreSQL), in this transaction.
       The CHECK constraints stand behind step 2.
    """
    on = on or timezone.localdate()
    payment_ids = sorted({plan[0] for plan in plans})
    invoice_ids = sorted({invoice_id for plan in plans for invoice_id, _ in plan[1]})
    payments = {
        row[0]: _LockedPayment(*row)
        for row in Payment.objects.select_for_update()
        .filter(one_of("id", payment_ids))
        .order_by("pk")
        .values_list(*_LockedPayment.COLUMNS)
    }
    invoices = {
        row[0]: _LockedInvoice(*row)
        for row in Invoice.objects.select_for_update()
        .filter(one_of("id", invoice_ids))
        .order_by("pk")
        .values_list(*_LockedInvoice.COLUMNS)
    }
    outcomes, allocations, touched_payments, touched_invoices = [], [], set(), set()
    for payment_id, lines, *own in plans:
        plan_rule = own[0] if own else rule
        plan_on = own[1] if len(own) > 1 else on
        payment = payments.get(payment_id)
        saved = (payment.unallocated_amount, payment.customer_id) if payment else None
        saved_invoices = {
            invoice_id: (invoices[invoice_id].open_balance, invoices[invoice_id].status)
            for invoice_id, _ in lines
            if invoice_id in invoices
        }
        planned = []
        try:
            if payment is None:
                raise ValidationError(_("The payment no longer exists."))
            for invoice_id, amount in lines:
                invoice = invoices.get(invoice_id)
                if invoice is None:
                    raise ValidationError(_("The invoice no longer exists."))
                amount = check_allocation(payment=payment, invoice=invoice, amount=amount)
                payment.unallocated_amount -= amount
                payment.customer_id = invoice.customer_id
                new_balance = invoice.open_balance - amount
                invoice.status = invoice.status_for_balance(new_balance)
                invoice.open_balance = new_balance
                planned.append((invoice, amount, new_balance, invoice.status))
        except ValidationError as exc:
            if payment is not None:
                payment.unallocated_amount, payment.customer_id = saved
            for invoice_id, (balance, status) in saved_invoices.items():
                invoices[invoice_id].open_balance, invoices[invoice_id].status = balance, status
            outcomes.append(" ".join(exc.messages))
            continue
        outcomes.append("")
        touched_payments.add(payment.pk)
        for invoice, amount, new_balance, status in planned:
            touched_invoices.add(invoice.pk)
            allocations.append((payment, invoice, amount, new_balance, status, plan_rule, plan_on))
    now = timezone.now()
    for pk in touched_invoices:
        invoices[pk].updated_at = now
    write_rows(
        Payment, [payments[pk] for pk in touched_payments], ["unallocated_amount", "customer"]
    )
    write_rows(
        Invoice, [invoices[pk] for pk in touched_invoices], ["open_balance", "status", "updated_at"]
    )
    by_id = by.pk if by is not None else None
    seqs = next_allocation_seqs(touched_invoices)
    rows = []
    for payment, invoice, amount, _balance, _status, plan_rule, plan_on in allocations:
        rows.append((payment.pk, invoice.pk, amount, plan_on, seqs[invoice.pk], plan_rule, by_id))
        seqs[invoice.pk] += 1
    written = insert_rows(Allocation, ALLOCATION_COLUMNS, rows)
    timeline.allocations_applied(
        (
            (payment, invoice, row[0], amount, new_balance, status, plan_rule)
            for (payment, invoice, amount, new_balance, status, plan_rule, _on), row in zip(
                allocations, written, strict=True
            )
        ),
        by=by,
        at=now,
    )
    refresh_past_due_later(customer_ids={invoices[pk].customer_id for pk in touched_invoices})
    signals.allocations_applied.send(sender=Allocation, invoice_ids=sorted(touched_invoices))
    return outcomes
