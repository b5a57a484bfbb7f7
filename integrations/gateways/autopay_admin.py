"""The console's automatic payments: mandates with their charges (read-only), and the one
decision on them, cancel (permission integrations.cancel_mandate, with a reason)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from accounts.admin_decisions import Decision, DecisionAdmin
from accounts.money import format_money

from ..models import AutopayCharge, AutopayMandate
from . import autopay


class ChargeInline(admin.TabularInline):
    model = AutopayCharge
    fields = [
        "invoice",
        "attempt",
        "charged",
        "status",
        "payment_intent_id",
        "next_retry_on",
        "failure_reason",
        "created_at",
    ]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = False

    @admin.display(description=_("amount"))
    def charged(self, charge):
        return format_money(charge.amount, charge.currency)


@admin.register(AutopayMandate)
class AutopayMandateAdmin(DecisionAdmin):
    list_display = ["customer", "display", "method_type", "status", "created_at", "cancelled_at"]
    list_filter = ["status", "method_type"]
    search_fields = ["customer__name", "=customer__external_ref", "=payment_method_id"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer", "contact"]
    readonly_fields = [
        "customer",
        "contact",
        "display",
        "method_type",
        "status",
        "stripe_customer_id",
        "payment_method_id",
        "setup_intent_id",
        "created_at",
        "cancelled_at",
        "cancelled_by",
        "cancelled_by_contact",
        "cancel_reason",
    ]
    fields = readonly_fields
    inlines = [ChargeInline]
    show_facets = admin.ShowFacets.NEVER
    decisions = (
        Decision(
            "cancel",
            _("Cancel automatic payment"),
            autopay.CANCEL_PERMISSION,
            lambda mandate, by, reason: autopay.cancel(mandate, by, reason),
            applies=lambda mandate: mandate.is_active,
            done=_("%(n)d automatic payment(s) cancelled."),
        ),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
