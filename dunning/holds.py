"""Every hold on dunning, decided here and only here, for the planner and the sender alike.

- Customer holds (`customers_on_hold`): not active, excluded from automation, paused (by
  a person, or for a few days after the debtor's own reply: `reply_paused_until`), in
  dispute, bankrupt, in a payment plan (but not for the reminders of its installments),
  and, for messages and calls, do-not-contact and cease-communication.
- Invoice holds (`held_invoices`, `invoice_holds`): an invoice pause, an open promise to
  pay until its grace ends, a proposed or active payment plan, an active dispute. The
  customer's other invoices are still chased.

The planner uses both as SQL conditions over all customers at once; the sender asks at
send time, per notice, for the reasons (`hold_reason`, `invoice_holds`) and the day a
hold ends.
"""

import datetime as dt

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from accounts.models import Customer, Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay

from .models import MESSAGE_CHANNELS, Channel


def _promises(on: dt.date):
    return PromiseToPay.invoices.through.objects.filter(
        promisetopay__status=PromiseToPay.Status.OPEN, promisetopay__holds_until__gte=on
    )


def _plans():
    return PaymentPlan.invoices.through.objects.filter(
        paymentplan__status__in=PaymentPlan.HOLDING_STATUSES
    )


def _disputes():
    return Dispute.invoices.through.objects.filter(dispute__status__in=Dispute.ACTIVE_STATUSES)


def held_invoices(on: dt.date, prefix: str = "") -> Q:
    """The condition (on Invoice, or through `prefix`) for invoices whose dunning holds."""
    invoice = OuterRef(f"{prefix}pk")
    return (
        Q(**{f"{prefix}dunning_paused_until__gte": on})
        | Q(Exists(_promises(on).filter(invoice_id=invoice)))
        | Q(Exists(_plans().filter(invoice_id=invoice)))
        | Q(Exists(_disputes().filter(invoice_id=invoice)))
    )


def invoice_holds(invoices: list[Invoice], on: dt.date) -> dict[int, tuple[dt.date | None, str]]:
    """For each held invoice: the last day of the hold (None: until someone lifts it), why."""
    ids = [invoice.pk for invoice in invoices]
    holds: dict[int, tuple[dt.date | None, str]] = {}

    def hold(invoice_id: int, until: dt.date | None, reason: str) -> None:
        current = holds.get(invoice_id)
        if current is None or (current[0] is not None and (until is None or until > current[0])):
            holds[invoice_id] = (until, reason)

    for invoice in invoices:
        if invoice.dunning_paused_until and invoice.dunning_paused_until >= on:
            reason = _("paused until %(day)s: %(reason)s") % {
                "day": invoice.dunning_paused_until,
                "reason": invoice.dunning_pause_reason,
            }
            hold(invoice.pk, invoice.dunning_paused_until, reason)
    for invoice_id, promise_id, until, promised_on in (
        _promises(on)
        .filter(invoice_id__in=ids)
        .values_list(
            "invoice_id",
            "promisetopay_id",
            "promisetopay__holds_until",
            "promisetopay__promised_on",
        )
    ):
        reason = _("promise to pay #%(id)s by %(day)s") % {"id": promise_id, "day": promised_on}
        hold(invoice_id, until, reason)
    for invoice_id, plan_id in (
        _plans().filter(invoice_id__in=ids).values_list("invoice_id", "paymentplan_id")
    ):
        hold(invoice_id, None, _("in payment plan #%(id)s") % {"id": plan_id})
    for invoice_id, dispute_id in (
        _disputes().filter(invoice_id__in=ids).values_list("invoice_id", "dispute_id")
    ):
        hold(invoice_id, None, _("disputed (#%(id)s)") % {"id": dispute_id})
    return holds


def customers_on_hold(
    on: dt.date, channel: str, prefix: str = "", *, is_installment_reminder: bool = False
) -> Q:
    """Customers the automation must leave alone on this day, for this channel.

    A payment plan holds dunning, not the reminders of its own installments.
    """

    def q(**lookups) -> Q:
        return Q(**{f"{prefix}{name}": value for name, value in lookups.items()})

    held = (
        ~q(status=Customer.Status.ACTIVE)
        | q(is_excluded_from_automation=True)
        | q(dunning_paused_until__gte=on)
        | q(reply_paused_until__gte=on)
        | q(is_in_dispute=True)
        | q(is_bankrupt=True)
    )
    if not is_installment_reminder:
        held |= q(is_in_payment_plan=True)
    if channel in (*MESSAGE_CHANNELS, Channel.CALL):
        held |= q(do_not_contact=True) | q(cease_communication=True)
    return held


def hold_reason(customer, on: dt.date) -> str:
    """Why this customer is held on this day, in words for the notice's reason."""
    if customer.dunning_paused_until and customer.dunning_paused_until >= on:
        return (
            f"dunning paused until {customer.dunning_paused_until}: {customer.dunning_pause_reason}"
        )
    if (
        customer.reply_paused_until
        and customer.reply_paused_until >= on
        and not customer.hold_flags
    ):
        return f"chasing paused until {customer.reply_paused_until}: {customer.reply_pause_reason}"
    return "on hold: " + ", ".join(customer.holds)


def paused_until(customer, on: dt.date) -> dt.date | None:
    """The last day of the customer's pauses (a person's, a reply's) still running on `on`."""
    days = [
        day
        for day in (customer.dunning_paused_until, customer.reply_paused_until)
        if day is not None and day >= on
    ]
    return max(days) if days else None
