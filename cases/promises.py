"""Promises to pay: recorded by an agent, kept when the money arrives, broken when it does not."""

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import bulk, permissions, timeline
from accounts.models import MONEY, Activity, Allocation, Invoice, Payment
from accounts.money import to_amount

from . import case_tasks
from .models import PromiseToPay, Task

ZERO_MONEY = Value(Decimal("0.00"), output_field=DecimalField(**MONEY))
OUTSTANDING = (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID, Invoice.Status.DISPUTED)


class FieldErrors:
    """Collects every refusal of a form-like call, so the caller hears all of them at once."""

    def __init__(self):
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def __contains__(self, field: str) -> bool:
        return field in self.errors

    def raise_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def money(value, field: str, errors: FieldErrors) -> Decimal | None:
    """A positive two-place amount, or None with the refusal added under `field`."""
    try:
        amount = to_amount(value)
    except (ValidationError, TypeError):
        errors.add(field, _("%(value)s is not an amount.") % {"value": value})
        return None
    if amount <= 0:
        errors.add(field, _("The amount must be more than zero."))
        return None
    return amount


def lock_customer_invoices(
    *, customer, invoices: Iterable, statuses: Iterable[str], errors: FieldErrors
) -> list[Invoice]:
    """Lock and re-read the chosen invoices (in id order, as `allocate` does).

    Adds a refusal under "invoices" when none is chosen, one belongs to another customer,
    one is in a status not in `statuses`, or they are in more than one currency.
    """
    ids = sorted({getattr(invoice, "pk", invoice) for invoice in invoices})
    if not ids:
        errors.add("invoices", _("Choose at least one invoice."))
        return []
    rows = list(Invoice.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    if len(rows) != len(ids):
        errors.add("invoices", _("Some of the chosen invoices no longer exist."))
    foreign = [i.number for i in rows if i.customer_id != customer.pk]
    if foreign:
        errors.add(
            "invoices",
            _("%(numbers)s belong(s) to another customer.") % {"numbers": ", ".join(foreign)},
        )
    statuses = tuple(statuses)
    for invoice in rows:
        if invoice.status not in statuses and invoice.customer_id == customer.pk:
            errors.add(
                "invoices",
                _("Invoice %(n)s is %(status)s.")
                % {"n": invoice.number, "status": invoice.get_status_display().lower()},
            )
    currencies = sorted({invoice.currency for invoice in rows})
    if len(currencies) > 1:
        errors.add(
            "invoices",
            _("The invoices are in %(currencies)s; choose invoices in one currency.")
            % {"currencies": ", ".join(currencies)},
        )
    return rows


def numbers(invoices: Iterable[Invoice]) -> str:
    return ", ".join(invoice.number for invoice in invoices)


def paid_since_made(related: str) -> Subquery:
    """Net money applied to the row's invoices since the row was made.

    For an UPDATE or annotation over promises (`related="promises"`) or payment plans
    (`related="payment_plans"`). Payments and credit notes count; write-off adjustments do
    not (a written-off balance was not paid); refund reversals booked since then subtract.
    """
    return Subquery(
        Allocation.objects.filter(
            **{f"invoice__{related}": OuterRef("pk")}, created_at__gte=OuterRef("created_at")
        )
        .exclude(payment__kind=Payment.Kind.WRITE_OFF)
        .order_by()
        .annotate(group=Value(1))
        .values("group")
        .annotate(total=Sum("amount"))
        .values("total")
    )


def last_paid_on(related: str) -> Subquery:
    """The latest allocation date among those `paid_since_made` counts."""
    return Subquery(
        Allocation.objects.filter(
            **{f"invoice__{related}": OuterRef("pk")},
            created_at__gte=OuterRef("created_at"),
            amount__gt=0,
        )
        .exclude(payment__kind=Payment.Kind.WRITE_OFF)
        .order_by()
        .annotate(group=Value(1))
        .values("group")
        .annotate(last=Max("allocated_on"))
        .values("last")
    )


def touching(model, invoice_ids: list[int]) -> Exists:
    """Rows of `model` (promise or plan) that cover at least one of these invoices."""
    through = model.invoices.through
    owner = f"{model._meta.model_name}_id"
    return Exists(
        through.objects.filter(bulk.one_of("invoice_id", invoice_ids), **{owner: OuterRef("pk")})
    )


@transaction.atomic
def record_promise(
    *,
    customer,
    invoices,
    amount,
    promised_on: dt.date,
    channel: str,
    by,
    note: str = "",
    grace_days: int | None = None,
    today: dt.date | None = None,
) -> PromiseToPay:
    """Record a customer's promise to pay `amount` by `promised_on` for these invoices.

    Dunning for the invoices holds until promised_on + grace_days (PROMISE_GRACE_DAYS by
    default), inclusive. Refused, field by field: invoices of another customer, not
    outstanding, in several currencies or already under an open promise; an amount not
    above zero or above their open balance; a date in the past; an unknown channel.
    The customer's open call tasks due by the end of today are closed as done by the
    promise (case_tasks.close_fulfilled), on the timeline.
    """
    permissions.require(by, "cases.add_promisetopay", [customer])
    today = today or timezone.localdate()
    errors = FieldErrors()
    amount = money(amount, "amount", errors)
    if channel not in Activity.Channel.values or not channel:
        errors.add("channel", _("Unknown channel %(value)s.") % {"value": channel})
    if grace_days is None:
        grace_days = settings.PROMISE_GRACE_DAYS
    elif grace_days < 0:
        errors.add("grace_days", _("The grace period cannot be negative."))
    if promised_on is None:
        errors.add("promised_on", _("Say by when the customer will pay."))
    elif promised_on < today:
        errors.add(
            "promised_on",
            _("%(date)s is in the past; a promise is for today or later.")
            % {"date": promised_on.isoformat()},
        )
    rows = lock_customer_invoices(
        customer=customer, invoices=invoices, statuses=OUTSTANDING, errors=errors
    )
    if rows and "invoices" not in errors:
        covered = (
            PromiseToPay.invoices.through.objects.filter(
                invoice_id__in=[invoice.pk for invoice in rows],
                promisetopay__status=PromiseToPay.Status.OPEN,
            )
            .values_list("promisetopay_id", "invoice__number")
            .order_by("promisetopay_id", "invoice__number")
        )
        for pk, number in covered:
            errors.add(
                "invoices",
                _("%(n)s already has an open promise (#%(pk)s); cancel it first.")
                % {"n": number, "pk": pk},
            )
        open_total = sum((invoice.open_balance for invoice in rows), Decimal("0.00"))
        if amount is not None and amount > open_total:
            errors.add(
                "amount",
                _("%(amount)s is more than the %(currency)s %(open)s open on these invoices.")
                % {"amount": amount, "currency": rows[0].currency, "open": open_total},
            )
    errors.raise_any()
    holds_until = promised_on + dt.timedelta(days=grace_days)
    note = note.strip()
    promise = PromiseToPay.objects.create(
        customer=customer,
        amount=amount,
        currency=rows[0].currency,
        promised_on=promised_on,
        holds_until=holds_until,
        channel=channel,
        note=note,
        recorded_by=by,
    )
    promise.invoices.set(rows)
    text = _(
        "Promise to pay %(currency)s %(amount)s by %(date)s for %(invoices)s; "
        "dunning for them held until %(until)s"
    ) % {
        "currency": promise.currency,
        "amount": amount,
        "date": promised_on.isoformat(),
        "invoices": numbers(rows),
        "until": holds_until.isoformat(),
    }
    timeline.add(
        customer=customer,
        invoice=rows[0] if len(rows) == 1 else None,
        kind=Activity.Kind.PROMISE,
        channel=channel,
        by=by,
        text=text + (f". {note}" if note else ""),
        details={
            "promise": promise.pk,
            "status": promise.status,
            "amount": str(amount),
            "currency": promise.currency,
            "promised_on": promised_on.isoformat(),
            "holds_until": holds_until.isoformat(),
            "invoices": [invoice.pk for invoice in rows],
        },
    )
    # The call or follow-up the customer was due today is what produced this promise.
    case_tasks.close_fulfilled(
        customer=customer,
        kinds=[Task.Kind.CALL],
        by=by,
        outcome=Activity.CallOutcome.PROMISE_TO_PAY,
        cause=_("the promise to pay #%(pk)s") % {"pk": promise.pk},
        details={"promise": promise.pk},
    )
    return promise


@transaction.atomic
def cancel_promise(*, promise: PromiseToPay, by, reason: str) -> PromiseToPay:
    """Withdraw an open promise (recorded in error, or replaced); its dunning hold ends."""
    promise = (
        PromiseToPay.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=promise.pk)
    )
    permissions.require(by, "cases.change_promisetopay", [promise.customer])
    reason = reason.strip()
    errors = FieldErrors()
    if not reason:
        errors.add("reason", _("Say why the promise is cancelled."))
    if promise.status != PromiseToPay.Status.OPEN:
        errors.add(
            "status",
            _("The promise is already %(status)s.")
            % {"status": promise.get_status_display().lower()},
        )
    errors.raise_any()
    promise.status = PromiseToPay.Status.CANCELLED
    promise.resolved_at = timezone.now()
    promise.save(update_fields=["status", "resolved_at"])
    timeline.add(
        customer=promise.customer,
        kind=Activity.Kind.PROMISE,
        by=by,
        text=_("Promise #%(pk)s (%(currency)s %(amount)s by %(date)s) cancelled: %(reason)s")
        % {
            "pk": promise.pk,
            "currency": promise.currency,
            "amount": promise.amount,
            "date": promise.promised_on.isoformat(),
            "reason": reason,
        },
        details={"promise": promise.pk, "status": promise.status, "reason": reason},
    )
    return promise


def _settle(promise_ids: list[int]) -> list[dict]:
    """Recount what was paid on these (locked, open) promises; mark those reached kept.

    One UPDATE recounts paid_amount from the ledger (never incremented, so running it
    twice changes nothing), one marks the kept ones, one INSERT writes their timeline.
    Returns the kept promises as plain rows.
    """
    if not promise_ids:
        return []
    rows = PromiseToPay.objects.filter(bulk.one_of("id", promise_ids))
    rows.update(paid_amount=Greatest(Coalesce(paid_since_made("promises"), ZERO_MONEY), ZERO_MONEY))
    kept = list(
        rows.filter(status=PromiseToPay.Status.OPEN, paid_amount__gte=F("amount")).values(
            "pk", "customer_id", "amount", "currency", "paid_amount", "promised_on"
        )
    )
    if not kept:
        return []
    now = timezone.now()
    PromiseToPay.objects.filter(bulk.one_of("id", [p["pk"] for p in kept])).update(
        status=PromiseToPay.Status.KEPT, resolved_at=now
    )
    text = _("Promise kept: %(currency)s %(paid)s paid of %(amount)s promised for %(date)s")
    timeline.copy_rows(
        [
            (
                p["customer_id"],
                None,
                Activity.Kind.PROMISE,
                None,
                text
                % {
                    "currency": p["currency"],
                    "paid": p["paid_amount"],
                    "amount": p["amount"],
                    "date": p["promised_on"].isoformat(),
                },
                {
                    "promise": p["pk"],
                    "status": PromiseToPay.Status.KEPT,
                    "paid_amount": str(p["paid_amount"]),
                },
                now,
            )
            for p in kept
        ],
    )
    return kept


def apply_payments(*, invoice_ids: Iterable[int]) -> int:
    """After allocations to these invoices: recount the open promises on them; some are kept.

    A promise is kept when the money applied to its invoices since it was made (payments
    and credit notes, not write-offs) reaches the promised amount. Set-based: a few
    statements whatever the number of invoices. Returns how many promises were kept.

    1. Lock the open promises that cover any of the invoices (FOR UPDATE, id order). A
       concurrent allocation on the same promise waits here until the other commits...
    2. ...so the recount, a new statement, sees both allocations (READ COMMITTED takes a
       fresh snapshot per statement); an increment-free recount cannot double count.
    """
    invoice_ids = list(invoice_ids)
    if not invoice_ids:
        return 0
    locked = list(
        PromiseToPay.objects.select_for_update()
        .filter(touching(PromiseToPay, invoice_ids), status=PromiseToPay.Status.OPEN)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return len(_settle(locked))


@transaction.atomic
@transaction.atomic
def detect_broken_promises(*, today: dt.date) -> list[int]:
    """Mark broken the open promises whose hold ended before `today` without the money.

    1. Lock the open promises with holds_until < today (a promise held "until the 4th"
       still holds on the 4th and breaks on the 5th).
    2. Recount their payments first, so money that arrived by any path keeps them.
    3. Mark the rest broken, give each customer's agent a call task due today (source
       "promise:<id>", so a re-run adds none) and write the timeline. Their dunning hold
       ends with the open status: the planner chases the invoices again from tonight.
    Returns the ids of the promises broken.
    """
    due = list(
        PromiseToPay.objects.select_for_update()
        .filter(status=PromiseToPay.Status.OPEN, holds_until__lt=today)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    kept = {p["pk"] for p in _settle(due)}
    broken = list(
        PromiseToPay.objects.filter(bulk.one_of("id", [pk for pk in due if pk not in kept]))
        .filter(status=PromiseToPay.Status.OPEN)
        .select_related("customer", "customer__assigned_agent")
        .order_by("pk")
    )
    if not broken:
        return []
    now = timezone.now()
    PromiseToPay.objects.filter(bulk.one_of("id", [p.pk for p in broken])).update(
        status=PromiseToPay.Status.BROKEN, resolved_at=now
    )
    case_tasks.create_tasks(
        Task(
            customer=p.customer,
            kind=Task.Kind.CALL,
            title=_("Call %(customer)s: promise of %(currency)s %(amount)s for %(date)s broken")
            % {
                "customer": p.customer.name,
                "currency": p.currency,
                "amount": p.amount,
                "date": p.promised_on.isoformat(),
            },
            due_at=case_tasks.due_at_end_of(today),
            source=f"promise:{p.pk}",
            details={"promise": p.pk},
        )
        for p in broken
    )
    timeline.add_all(
        timeline.entry(
            Activity.Kind.PROMISE,
            customer=p.customer_id,
            at=now,
            text=_(
                "Promise broken: %(currency)s %(amount)s was promised for %(date)s, "
                "%(paid)s paid; dunning resumes and a call task goes to %(agent)s"
            )
            % {
                "currency": p.currency,
                "amount": p.amount,
                "date": p.promised_on.isoformat(),
                "paid": p.paid_amount,
                "agent": p.customer.assigned_agent.get_username()
                if p.customer.assigned_agent
                else _("the unassigned queue"),
            },
            details={
                "promise": p.pk,
                "status": PromiseToPay.Status.BROKEN,
                "paid_amount": str(p.paid_amount),
                "task_source": f"promise:{p.pk}",
            },
        )
        for p in broken
    )
    return [p.pk for p in broken]


class PromiseRecord(NamedTuple):
    kept: int
    broken: int

    @property
    def broken_share(self) -> float | None:
        """Broken as a share of resolved promises (None without any), for the risk score."""
        resolved = self.kept + self.broken
        return self.broken / resolved if resolved else None


def promise_record(
    customer_ids: Iterable[int], *, since: dt.datetime | None = None
) -> dict[int, PromiseRecord]:
    """Kept and broken promises per customer (resolved since `since`, if given).

    One aggregate query; every requested customer is in the answer, with zeros if need be.
    """
    customer_ids = list(customer_ids)
    record = dict.fromkeys(customer_ids, PromiseRecord(0, 0))
    if not customer_ids:
        return record
    rows = PromiseToPay.objects.filter(
        bulk.one_of("customer_id", customer_ids),
        status__in=(PromiseToPay.Status.KEPT, PromiseToPay.Status.BROKEN),
    )
    if since is not None:
        rows = rows.filter(resolved_at__gte=since)
    for customer_id, kept, broken in (
        rows.order_by()
        .values("customer_id")
        .annotate(
            kept=Count("pk", filter=Q(status=PromiseToPay.Status.KEPT)),
            broken=Count("pk", filter=Q(status=PromiseToPay.Status.BROKEN)),
        )
        .values_list("customer_id", "kept", "broken")
    ):
        record[customer_id] = PromiseRecord(kept, broken)
    return record
