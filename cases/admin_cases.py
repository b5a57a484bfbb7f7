"""The console's case work: promises to pay, disputes and payment plans, all through services.

Nothing here saves a model: recording, opening, proposing, approving, resolving and
cancelling each call the service in accounts.promises, accounts.disputes or accounts.plans,
which check permissions, validate, and write the timeline. The forms start from a customer
(URL names for the customer page's buttons):

- ``admin:cases_promisetopay_record``  (customer id)  record a promise to pay
- ``admin:cases_dispute_open``         (customer id)  open a dispute
- ``admin:cases_paymentplan_propose``  (customer id)  propose a payment plan
- ``admin:cases_paymentplan_suggested`` (customer id, POST)  propose the suggested plan
  (admin_predictions)
- ``admin:cases_dispute_review`` / ``_resolve``        (dispute id)
- ``admin:cases_paymentplan_approve`` / ``_reject``    (plan id)
"""

import functools

from django import forms as djforms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Min, Q
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from accounts import forms, permissions, services
from accounts.admin import agent_filter
from accounts.admin_decisions import ConfirmForm, Decision, DecisionAdmin
from accounts.models import Activity, Customer, Invoice
from accounts.money import format_amount, format_money

from . import admin_predictions, disputes, plans, promises
from .models import Dispute, Installment, PaymentPlan, PromiseToPay

CASE_FORM = "admin/cases/promisetopay/case_form.html"
DATE_INPUT = djforms.DateInput(attrs={"type": "date"})


class InvoiceChoices(djforms.ModelMultipleChoiceField):
    """A customer's invoices, in the admin's two-box filter widget, labelled for collectors."""

    def __init__(self, **kwargs):
        super().__init__(
            queryset=Invoice.objects.none(),
            widget=FilteredSelectMultiple(_("invoices"), is_stacked=False),
            **kwargs,
        )

    def label_from_instance(self, invoice):
        return _("%(n)s · due %(due)s · %(open)s open of %(amount)s (%(status)s)") % {
            "n": invoice.number,
            "due": invoice.due_on.isoformat(),
            "open": format_money(invoice.open_balance, invoice.currency),
            "amount": format_amount(invoice.amount, invoice.currency),
            "status": invoice.get_status_display().lower(),
        }


def customer_invoices(customer: Customer, statuses):
    return Invoice.objects.filter(customer=customer, status__in=statuses).order_by("due_on", "id")


class OwnerFilter(agent_filter("owner")):
    title = _("owner")


class PromiseForm(djforms.Form):
    invoices = InvoiceChoices(label=_("Invoices"))
    amount = djforms.DecimalField(label=_("Amount promised"), max_digits=14, decimal_places=2)
    promised_on = djforms.DateField(label=_("Promised for"), widget=DATE_INPUT)
    channel = djforms.ChoiceField(
        label=_("Promised by"),
        choices=[c for c in Activity.Channel.choices if c[0]],
        initial=Activity.Channel.PHONE,
    )
    grace_days = djforms.IntegerField(label=_("Grace days"), min_value=0, required=False)
    note = djforms.CharField(
        label=_("Note"), required=False, widget=djforms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = customer_invoices(customer, promises.OUTSTANDING)
        self.fields["grace_days"].help_text = _(
            "Dunning holds until the promised date plus these days (empty: %(days)s)."
        ) % {"days": settings.PROMISE_GRACE_DAYS}


class DisputeForm(djforms.Form):
    invoices = InvoiceChoices(
        label=_("Invoices"),
        help_text=_("Open invoices, and invoices paid in the last year."),
    )
    reason = djforms.ChoiceField(label=_("Reason"), choices=Dispute.Reason.choices)
    description = djforms.CharField(
        label=_("Description"), required=False, widget=djforms.Textarea(attrs={"rows": 4})
    )
    owner = djforms.ModelChoiceField(
        label=_("Owner"),
        queryset=None,
        required=False,
        empty_label=_("— me —"),
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        # Open invoices only: the console's disputes are about money still owed (the
        # service still accepts a paid invoice, e.g. a duplicate charge, through the API).
        self.fields["invoices"].queryset = customer_invoices(
            customer,
            (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID, Invoice.Status.DISPUTED),
        )
        self.fields["owner"].queryset = forms.agents()


class PlanForm(djforms.Form):
    invoices = InvoiceChoices(label=_("Invoices"))
    split_count = djforms.IntegerField(
        label=_("Or split into"),
        min_value=1,
        max_value=60,
        required=False,
        help_text=_("monthly installments (leave the rows below empty)"),
    )
    first_due_on = djforms.DateField(
        label=_("First installment due"), required=False, widget=DATE_INPUT
    )
    grace_days = djforms.IntegerField(label=_("Grace days"), min_value=0, required=False)
    note = djforms.CharField(
        label=_("Note"), required=False, widget=djforms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args, customer: Customer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["invoices"].queryset = customer_invoices(customer, plans.PLANNABLE)
        self.fields["grace_days"].help_text = _(
            "An installment is missed this many days after its due date (empty: %(days)s)."
        ) % {"days": PaymentPlan._meta.get_field("grace_days").default}


class InstallmentRow(djforms.Form):
    due_on = djforms.DateField(label=_("Due"), required=False, widget=DATE_INPUT)
    amount = djforms.DecimalField(
        label=_("Amount"), max_digits=14, decimal_places=2, required=False
    )


InstallmentRows = djforms.formset_factory(InstallmentRow, extra=12, max_num=60)


class ResolveForm(djforms.Form):
    outcome = djforms.ChoiceField(
        label=_("Resolved"),
        choices=[("customer", _("for the customer")), ("us", _("for us"))],
        widget=djforms.RadioSelect,
    )
    note = djforms.CharField(label=_("Resolution"), widget=djforms.Textarea(attrs={"rows": 4}))
    credit_amount = djforms.DecimalField(
        label=_("Credit note"),
        max_digits=14,
        decimal_places=2,
        required=False,
        help_text=_("Only for the customer: credited and applied to the disputed invoices."),
    )


class NoteForm(djforms.Form):
    note = djforms.CharField(
        label=_("Note"), required=False, widget=djforms.Textarea(attrs={"rows": 3})
    )


def add_service_errors(form, exc: ValidationError) -> None:
    """Put a service's refusals on the form's fields (the others above the form)."""
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


class CaseAdmin(DecisionAdmin):
    """Read-only lists and pages; every change goes through a form calling a service."""

    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    actions_selection_counter = True
    decision_template = CASE_FORM

    def decision_context(self, request, rows):
        """One case's page shows its customer's balances and the case itself."""
        if len(rows) != 1:
            return {}
        row = rows[0]
        context = {"balances": services.open_balances(row.customer)}
        if isinstance(row, Dispute):
            context.update(dispute=row, invoices=row.invoices.order_by("due_on", "pk"))
        elif isinstance(row, PaymentPlan):
            context.update(plan=row, installments=row.installments.all())
        return context

    def has_add_permission(self, request):
        return False  # started from the customer's page, where the invoices are chosen

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_link(self, obj):
        url = reverse("admin:accounts_customer_change", args=[obj.customer_id])
        return format_html('<a href="{}">{}</a>', url, obj.customer.name)

    @admin.display(description=_("invoices"))
    def invoice_numbers(self, obj):
        return ", ".join(invoice.number for invoice in obj.invoices.all())

    def case_form(
        self,
        request,
        *,
        title: str,
        form,
        perform,
        customer: Customer | None = None,
        context: dict | None = None,
        selected=(),
        action: str = "",
        template: str = CASE_FORM,
        formset=None,
    ):
        """Show `form`; when it (and `formset`) is valid, call `perform(data)`, a service.

        The service's ValidationErrors go onto the form's fields; PermissionDenied is a
        message. Returns to the customer's page, or to this list for a bulk action.
        """
        submitted = "apply" in request.POST
        is_valid = submitted and form.is_valid() and (formset is None or formset.is_valid())
        if is_valid:
            try:
                message = perform(form.cleaned_data)
            except ValidationError as exc:
                add_service_errors(form, exc)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(request, message, messages.SUCCESS)
                if customer is not None:
                    url = reverse("admin:accounts_customer_change", args=[customer.pk])
                else:
                    url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
                return HttpResponseRedirect(url)
        return TemplateResponse(
            request,
            template,
            {
                **self.admin_site.each_context(request),
                "title": title,
                "form": form,
                "formset": formset,
                "media": self.media + form.media,
                "opts": self.opts,
                "customer": customer,
                "balances": services.open_balances(customer) if customer else {},
                "selected": list(selected),
                "action": action,
                **(context or {}),
            },
        )

    def customer_view(self, request, customer_id: int, perm: str):
        """The customer a form starts from, if the user may do this for them."""
        customer = get_object_or_404(Customer, pk=customer_id)
        if not request.user.has_perm(perm) or not permissions.can_work(request.user, customer):
            raise PermissionDenied
        return customer


@admin.register(PromiseToPay)
class PromiseToPayAdmin(CaseAdmin):
    list_display = [
        "created_at",
        "customer_link",
        "currency",
        "amount",
        "promised_on",
        "holds_until",
        "status",
        "paid_amount",
        "channel",
        "recorded_by",
    ]
    list_filter = ["status", "channel", agent_filter("customer__assigned_agent")]
    list_select_related = ["customer", "recorded_by"]
    search_fields = ["customer__name", "invoices__number"]
    date_hierarchy = "promised_on"
    fields = [
        "customer_link",
        "invoice_numbers",
        "currency",
        "amount",
        "promised_on",
        "holds_until",
        "channel",
        "status",
        "paid_amount",
        "note",
        "recorded_by",
        "created_at",
        "resolved_at",
    ]
    readonly_fields = fields
    decisions = (
        Decision(
            "cancel",
            _("Cancel the promise"),
            "cases.change_promisetopay",
            lambda promise, by, reason: promises.cancel_promise(
                promise=promise, by=by, reason=reason
            ),
            action="cancel_promises",
            applies=lambda promise: promise.status == PromiseToPay.Status.OPEN,
        ),
    )

    def get_urls(self):
        return [
            path(
                "record/<int:customer_id>/",
                self.admin_site.admin_view(self.record_view),
                name="cases_promisetopay_record",
            ),
            *super().get_urls(),
        ]

    def record_view(self, request, customer_id):
        customer = self.customer_view(request, customer_id, "cases.add_promisetopay")
        form = PromiseForm(request.POST or None, customer=customer)

        def perform(data):
            promise = promises.record_promise(
                customer=customer,
                invoices=data["invoices"],
                amount=data["amount"],
                promised_on=data["promised_on"],
                channel=data["channel"],
                grace_days=data["grace_days"],
                note=data["note"],
                by=request.user,
            )
            return _("Promise recorded: %(amount)s by %(date)s.") % {
                "amount": format_money(promise.amount, promise.currency),
                "date": promise.promised_on,
            }

        return self.case_form(
            request,
            title=_("Record a promise to pay"),
            form=form,
            perform=perform,
            customer=customer,
        )


def _one_credit_note_at_a_time(disputes_chosen, data):
    if data.get("credit_amount") is not None and len(disputes_chosen) != 1:
        raise ValidationError(
            {"credit_amount": _("Issue a credit note for one dispute at a time.")}
        )


@admin.register(Dispute)
class DisputeAdmin(CaseAdmin):
    list_display = [
        "opened_at",
        "customer_link",
        "reason",
        "status",
        "invoice_numbers",
        "owner",
        "resolved_at",
        "credit_note",
    ]
    list_filter = ["status", "reason", OwnerFilter]
    list_select_related = ["customer", "owner", "credit_note"]
    search_fields = ["customer__name", "invoices__number", "source"]
    fields = [
        "customer_link",
        "invoice_numbers",
        "reason",
        "description",
        "status",
        "owner",
        "opened_by",
        "opened_at",
        "source",
        "resolution_note",
        "credit_note",
        "resolved_by",
        "resolved_at",
        "debtor_files",
    ]
    readonly_fields = fields
    decisions = (
        Decision(
            "review",
            _("Start review"),
            "cases.change_dispute",
            lambda dispute, by, note="": disputes.start_review(dispute=dispute, by=by, note=note),
            form=NoteForm,
            bulk_form=ConfirmForm,
            action="start_review",
            applies=lambda dispute: dispute.status == Dispute.Status.OPEN,
        ),
        Decision(
            "resolve",
            _("Resolve"),
            "cases.resolve_dispute",
            lambda dispute, by, **data: disputes.resolve_dispute(dispute=dispute, by=by, **data),
            form=ResolveForm,
            applies=lambda dispute: dispute.is_active,
            check_many=_one_credit_note_at_a_time,
        ),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("invoices")

    @admin.display(description=_("files the debtor attached"))
    def debtor_files(self, dispute):
        """The files attached in the debtor portal (their timeline entry lists them; the
        portal serves them to staff only)."""
        links = []
        entries = Activity.objects.filter(
            customer_id=dispute.customer_id,
            kind=Activity.Kind.PORTAL,
            details__action="dispute",
            details__dispute=dispute.pk,
        )
        for entry in entries:
            for index, row in enumerate(entry.details.get("attachments") or []):
                url = reverse("portal:attachment", args=[entry.pk, index])
                links.append(
                    format_html(
                        '<a href="{}">{}</a> ({} bytes, SHA-256 {}…)',
                        url,
                        row.get("name", ""),
                        row.get("size", ""),
                        str(row.get("sha256", ""))[:12],
                    )
                )
        return format_html_join(mark_safe("<br>"), "{}", ((link,) for link in links)) or "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("open/<int:customer_id>/", view(self.open_view), name="cases_dispute_open"),
            *super().get_urls(),
        ]

    def open_view(self, request, customer_id):
        customer = self.customer_view(request, customer_id, "cases.add_dispute")
        form = DisputeForm(request.POST or None, customer=customer)

        def perform(data):
            dispute = disputes.open_dispute(
                customer=customer,
                invoices=data["invoices"],
                reason=data["reason"],
                description=data["description"],
                owner=data["owner"],
                by=request.user,
            )
            return _("Dispute #%(pk)s opened; dunning holds for its invoices.") % {"pk": dispute.pk}

        return self.case_form(
            request, title=_("Open a dispute"), form=form, perform=perform, customer=customer
        )


class InstallmentInline(admin.TabularInline):
    model = Installment
    extra = 0
    fields = ["sequence", "due_on", "amount", "paid_amount", "status", "paid_on", "reminded_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PaymentPlan)
class PaymentPlanAdmin(CaseAdmin):
    list_display = [
        "created_at",
        "customer_link",
        "currency",
        "total_amount",
        "status",
        "installments_paid",
        "next_due_on",
        "proposed_by",
        "approved_by",
    ]
    list_filter = ["status", agent_filter("customer__assigned_agent")]
    list_select_related = ["customer", "proposed_by", "approved_by"]
    search_fields = ["customer__name", "invoices__number"]
    fields = [
        "customer_link",
        "invoice_numbers",
        "currency",
        "total_amount",
        "status",
        "grace_days",
        "note",
        "proposed_by",
        "created_at",
        "approved_by",
        "approved_at",
        "closed_at",
    ]
    readonly_fields = fields
    inlines = [InstallmentInline]
    decisions = (
        Decision(
            "approve",
            _("Approve"),
            "cases.approve_paymentplan",
            lambda plan, by, note="": plans.approve_plan(plan=plan, by=by, note=note),
            form=NoteForm,
            bulk_form=ConfirmForm,
            applies=lambda plan: plan.status == PaymentPlan.Status.PROPOSED,
        ),
        Decision(
            "reject",
            _("Reject"),
            "cases.approve_paymentplan",
            lambda plan, by, reason: plans.reject_plan(plan=plan, by=by, reason=reason),
            applies=lambda plan: plan.status == PaymentPlan.Status.PROPOSED,
        ),
        Decision(
            "cancel",
            _("Cancel the plan"),
            "cases.add_paymentplan",
            lambda plan, by, reason: plans.cancel_plan(plan=plan, by=by, reason=reason),
            action="cancel_plans",
            applies=lambda plan: plan.status in PaymentPlan.HOLDING_STATUSES,
        ),
    )

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                installment_count=Count("installments"),
                paid_count=Count(
                    "installments", filter=Q(installments__status=Installment.Status.PAID)
                ),
                next_due=Min(
                    "installments__due_on",
                    filter=Q(installments__status=Installment.Status.PENDING),
                ),
            )
        )

    @admin.display(description=_("installments paid"))
    def installments_paid(self, plan):
        return f"{plan.paid_count} / {plan.installment_count}"

    @admin.display(description=_("next due"), ordering="next_due")
    def next_due_on(self, plan):
        return plan.next_due or "—"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "propose/<int:customer_id>/",
                view(self.propose_view),
                name="cases_paymentplan_propose",
            ),
            path(
                "suggested/<int:customer_id>/",
                view(functools.partial(admin_predictions.accept_suggestion, self)),
                name="cases_paymentplan_suggested",
            ),
            *super().get_urls(),
        ]

    def propose_view(self, request, customer_id):
        customer = self.customer_view(request, customer_id, "cases.add_paymentplan")
        data = request.POST if "apply" in request.POST else None
        form = PlanForm(data, customer=customer)
        rows = InstallmentRows(data, prefix="installments")

        def perform(cleaned):
            installments = [
                (row["due_on"], row["amount"])
                for row in rows.cleaned_data
                if row.get("due_on") or row.get("amount") is not None
            ]
            if not installments and cleaned["split_count"] and cleaned["first_due_on"]:
                total = sum(i.open_balance for i in cleaned["invoices"])
                installments = plans.monthly_installments(
                    total=total, count=cleaned["split_count"], first_due_on=cleaned["first_due_on"]
                )
            for n, (due_on, amount) in enumerate(installments, start=1):
                if due_on is None or amount is None:
                    raise ValidationError(
                        _("Installment row %(n)d needs both a date and an amount.") % {"n": n}
                    )
            plan = plans.propose_plan(
                customer=customer,
                invoices=cleaned["invoices"],
                installments=installments,
                grace_days=cleaned["grace_days"],
                note=cleaned["note"],
                by=request.user,
            )
            if plan.status == PaymentPlan.Status.PROPOSED:
                return _("Payment plan #%(pk)s proposed; it waits for a manager's approval.") % {
                    "pk": plan.pk
                }
            return _("Payment plan #%(pk)s is active.") % {"pk": plan.pk}

        return self.case_form(
            request,
            title=_("Propose a payment plan"),
            form=form,
            formset=rows,
            perform=perform,
            customer=customer,
            template="admin/cases/paymentplan/propose.html",
            context={
                "threshold": plans.approval_threshold(),
            },
        )
