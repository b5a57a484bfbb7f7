"""The predictions where agents work: the customer page's "Predictions" panel (each open
invoice's probability of paying late, expected pay date and reasons; the share of the
open balance predicted late per currency) and its payment-plan suggestion, accepted in
one click (``admin:cases_paymentplan_suggested``, customer id, POST) through
cases.plans.propose_plan, which checks the right, applies the approval threshold and
writes the timeline. The invoice list's late-risk column lives with the invoice admin
(accounts/admin.py).
"""

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions
from accounts.admin import PREDICTION_PERMISSION, CustomerPanel, add_customer_panel
from accounts.models import Invoice

from . import plans, predicted
from .models import PaymentPlan
from .plan_suggestions import suggest_plan, suggest_plans

PLAN_PERMISSION = "cases.add_paymentplan"  # the right propose_plan requires


def predictions_panel(request, customer):
    """The panel's context: None when nothing about the customer is scored or suggested."""
    rows = predicted.open_invoice_predictions(customer)
    suggestions = suggest_plans(customer, as_of=timezone.localdate())
    if not rows and not suggestions:
        return None
    threshold = predicted.late_threshold()
    user = request.user
    return {
        "rows": [
            {
                "prediction": row,
                "invoice": row.invoice,
                "is_late": row.probability_late >= threshold,
                "reasons": row.reasons[: predicted.TOP_REASONS],
            }
            for row in rows
        ],
        "shares": predicted.late_shares(customer),
        "threshold": threshold,
        "suggestions": suggestions,
        "can_propose": user.has_perm(PLAN_PERMISSION) and permissions.can_work(user, customer),
    }


add_customer_panel(
    CustomerPanel(
        "predictions",
        "admin/cases/customer_predictions.html",
        PREDICTION_PERMISSION,
        predictions_panel,
    )
)


def accept_suggestion(modeladmin, request, customer_id: int):
    """Propose the suggested plan, as shown: the form posts the suggestion's currency and
    key, and a suggestion that changed since (a payment, a new invoice, a rescoring) is not
    proposed; the agent looks again. Anything else is propose_plan's to check."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    customer = modeladmin.customer_view(request, customer_id, PLAN_PERMISSION)
    back = HttpResponseRedirect(reverse("admin:accounts_customer_change", args=[customer.pk]))
    suggestion = suggest_plan(
        customer, as_of=timezone.localdate(), currency=request.POST.get("currency", "")
    )
    if suggestion is None or suggestion.key != request.POST.get("key"):
        modeladmin.message_user(
            request,
            _(
                "The suggested plan changed since the page was shown (a payment, an invoice "
                "or a new prediction); nothing was proposed. Look at it again."
            ),
            messages.WARNING,
        )
        return back
    try:
        plan = plans.propose_plan(
            customer=customer,
            invoices=Invoice.objects.filter(pk__in=suggestion.invoice_ids),
            installments=suggestion.installments,
            note=_("Suggested from the predictions. %(why)s")
            % {"why": " ".join(suggestion.reasons)},
            by=request.user,
        )
    except ValidationError as exc:
        modeladmin.message_user(request, " ".join(exc.messages), messages.ERROR)
    except PermissionDenied as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
    else:
        if plan.status == PaymentPlan.Status.PROPOSED:
            text = _("Payment plan #%(pk)s proposed; it waits for a manager's approval.")
        else:
            text = _("Payment plan #%(pk)s is active.")
        modeladmin.message_user(request, text % {"pk": plan.pk}, messages.SUCCESS)
    return back
