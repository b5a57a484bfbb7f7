"""Invoice-level holds on dunning: a pause, an open promise to pay, a payment plan, a dispute.

Customer-level holds (status, do-not-contact, a customer pause) live in
dunning.planner.customers_on_hold. These are per invoice: the customer's other invoices
are still chased. The planner uses `held_invoices` as one SQL condition; the sender asks
`invoice_holds` at send time for the reason and the day the hold ends.
"""

import datetime as dt

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _

from accounts.models import Invoice
from cases.models import Dispute, PaymentPlan, PromiseToPay


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
