"""The console's erasure: a manager's decision on the customer page and list."""

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.admin import CustomerAction, add_customer_action
from accounts.admin_decisions import ReasonForm

from . import erasure


class ErasureForm(ReasonForm):
    confirm = forms.BooleanField(
        label=_(
            "Replace this customer's name, address, contacts' names, e-mails and phones "
            "everywhere (timeline, notices, outbox). This cannot be undone."
        )
    )


def erase_customers(modeladmin, request, customers):
    def perform(customers, data):
        for customer in customers:
            erasure.erase_customer(customer=customer, reason=data["reason"], by=request.user)
        return len(customers)

    return modeladmin.run_customer_form(
        request, customers, ErasureForm, perform, _("Erase personal data"), erasure.PERMISSION
    )


add_customer_action(
    CustomerAction(
        "erase",
        _("Erase personal data"),
        "erase_personal_data",
        _("Erase personal data of selected customers"),
        erasure.PERMISSION,
        erase_customers,
        shown=lambda customer: customer.erased_at is None,
    )
)
