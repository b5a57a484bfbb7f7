"""Case work's answers to the ledger's `allocations_applied` and `call_logged`
(see accounts/signals.py)."""

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Activity

from . import case_tasks, plans, promises
from .models import Task


def on_allocations_applied(sender, *, invoice_ids, **kwargs) -> None:
    """Money reached these invoices: open promises may be kept, plan installments paid."""
    invoice_ids = list(invoice_ids)
    if not invoice_ids:
        return
    promises.apply_payments(invoice_ids=invoice_ids)
    plans.apply_payments(invoice_ids=invoice_ids)


def on_call_logged(sender, *, activity: Activity, by, **kwargs) -> None:
    """A call was logged on the customer's page (or the API): the open call tasks for that
    customer due by the end of today are done, with the call's outcome."""
    case_tasks.close_fulfilled(
        customer=activity.customer,
        kinds=[Task.Kind.CALL],
        by=by,
        outcome=activity.outcome,
        cause=_("the call logged at %(at)s (%(outcome)s)")
        % {
            "at": timezone.localtime(activity.occurred_at).strftime("%H:%M"),
            "outcome": Activity.CallOutcome(activity.outcome).label,
        },
        details={"call": activity.pk},
    )
