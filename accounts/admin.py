"""The collections console: customers, invoices, payments and the timeline in the admin."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django import forms as djforms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import models
from django.db.models import F, Q
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import (
    admin_lists,
    admin_merge,
    forms,
    permissions,
    portal_links,
    selectors,
    services,
    timezones,
)
from .access_log import LoggedChangelistMixin, Surface
from .aging import BUCKET_CHOICES, BUCKETS_BY_KEY
from .models import (
    AccessLog,
    Activity,
    Allocation,
    Contact,
    Customer,
    FxRate,
    Invoice,
    Payment,
)
from .money import format_money
from .templatetags.probability import format_percent


class CappedCountPaginator(Paginator):
    """Counts at most `limit` + 1 rows: COUNT(*) over a million rows is slow."""

    def __init__(self, *args, limit: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.limit = limit

    @cached_property
    def count(self):
        # No ORDER BY: counting needs no sort, and a sort would read every matching row.
        return self.object_list.order_by()[: self.limit + 1].count()

    @property
    def is_capped(self) -> bool:
        return self.count > self.limit


class LedgerAdmin(admin.ModelAdmin):
    """Defaults for the big ledger lists: no full counts, no facets, no deletes."""

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # A search's matches can be spread thinly over the table; counting them all would
        # read it all, so searches stop counting sooner.
        is_search = bool(request.GET.get("q", "").strip())
        limit = settings.ADMIN_SEARCH_COUNT_LIMIT if is_search else settings.ADMIN_COUNT_LIMIT
        return CappedCountPaginator(
            queryset, per_page, orphans, allow_empty_first_page, limit=limit
        )

    def has_delete_permission(self, request, obj=None):
        return False  # ledger rows are corrected by new entries, never deleted


class BucketFilter(admin.SimpleListFilter):
    title = _("aging bucket")
    parameter_name = "bucket"

    def lookups(self, request, model_admin):
        return BUCKET_CHOICES

    def queryset(self, request, queryset):
        if self.value() in BUCKETS_BY_KEY:
            return queryset.in_bucket(self.value(), timezone.localdate())
        return queryset


# The nightly predictions (cases.InvoicePrediction: one row per open invoice) are read
# through the invoice's reverse relation "prediction", named as a string: accounts imports
# nothing above it. Who may see them: this right (every role has it; see the cases
# migration that grants it).
PREDICTION_PERMISSION = "cases.view_invoiceprediction"
PREDICTION_FIELDS = [
    "late_probability",
    "expected_pay_on",
    "prediction_reasons",
    "prediction_model",
]


def predicted_late_threshold() -> Decimal:
    return Decimal(str(settings.PREDICTED_LATE_THRESHOLD))


def prediction_of(invoice):
    """The invoice's prediction, or None when it has not been scored."""
    return getattr(invoice, "prediction", None) if invoice.pk else None


class PredictedLateFilter(admin.SimpleListFilter):
    """Predicted late: the probability of paying late is at or above
    PREDICTED_LATE_THRESHOLD; not scored: no prediction (paid, or new since last night)."""

    title = _("predicted late")
    parameter_name = "predicted_late"

    def lookups(self, request, model_admin):
        threshold = format_percent(predicted_late_threshold())
        return [
            ("yes", _("Yes (%(p)s or more)") % {"p": threshold}),
            ("no", _("No (under %(p)s)") % {"p": threshold}),
            ("unscored", _("Not scored")),
        ]

    def queryset(self, request, queryset):
        threshold = predicted_late_threshold()
        if self.value() == "yes":
            return queryset.filter(prediction__probability_late__gte=threshold)
        if self.value() == "no":
            return queryset.filter(prediction__probability_late__lt=threshold)
        if self.value() == "unscored":
            return queryset.filter(prediction__isnull=True)
        return queryset


def agent_filter(field: str):
    class AgentFilter(admin.SimpleListFilter):
        title = _("assigned agent")
        parameter_name = "agent"

        def lookups(self, request, model_admin):
            return [
                ("me", _("Assigned to me")),
                ("none", _("Unassigned")),
                *[(str(user.pk), user.get_username()) for user in forms.agents()],
            ]

        def queryset(self, request, queryset):
            value = self.value()
            if value == "me":
                return queryset.filter(**{field: request.user.pk})
            if value == "none":
                return queryset.filter(**{f"{field}__isnull": True})
            if value and value.isdigit():
                return queryset.filter(**{field: int(value)})
            return queryset

    return AgentFilter


class CurrencyFilter(admin.SimpleListFilter):
    title = _("currency")
    parameter_name = "currency"

    def lookups(self, request, model_admin):
        return [(code, code) for code in selectors.invoice_currencies()]

    def queryset(self, request, queryset):
        return queryset.filter(currency=self.value()) if self.value() else queryset


class ContactInline(admin.TabularInline):
    model = Contact
    extra = 0
    fields = [
        "name",
        "role",
        "email",
        "phone",
        "is_primary",
        "preferred_channel",
        "email_opted_out_at",
        "sms_opted_out_at",
        "call_opted_out_at",
    ]
    readonly_fields = ["email_opted_out_at", "sms_opted_out_at", "call_opted_out_at"]

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("accounts.delete_contact")


class OldestOpenInvoicesFormSet(BaseInlineFormSet):
    """The oldest open invoices only; the invoice list (linked) has the rest."""

    limit = 20

    def get_queryset(self):
        if not hasattr(self, "_oldest"):
            # Cached: a fresh slice per call would cost one query per row.
            self._oldest = super().get_queryset()[: self.limit]
        return self._oldest


class OpenInvoiceInline(admin.TabularInline):
    model = Invoice
    formset = OldestOpenInvoicesFormSet
    verbose_name_plural = _("oldest open invoices")
    extra = 0
    fields = [
        "number_link",
        "issued_on",
        "due_on",
        "days_late",
        "bucket",
        "currency",
        "amount",
        "open_balance",
        "status",
    ]
    readonly_fields = fields
    show_change_link = False

    def get_queryset(self, request):
        return super().get_queryset(request).outstanding().order_by("due_on", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("number"))
    def number_link(self, invoice):
        url = reverse("admin:accounts_invoice_change", args=[invoice.pk])
        return format_html('<a href="{}">{}</a>', url, invoice.number)

    # A forged extra form (this inline adds nothing) carries an unsaved invoice: show "—".
    @admin.display(description=_("days past due"))
    def days_late(self, invoice):
        return invoice.days_past_due() if invoice.pk else "—"

    @admin.display(description=_("bucket"))
    def bucket(self, invoice):
        return BUCKETS_BY_KEY[invoice.aging_bucket()].label if invoice.pk else "—"


# A call's outcome that asks for a form next: the promise (or dispute) the customer gave.
# URL names and rights of the case-work app, named here as strings (accounts imports
# nothing above it).
FOLLOW_UP_FORMS = {
    Activity.CallOutcome.PROMISE_TO_PAY: (
        "admin:cases_promisetopay_record",
        "cases.add_promisetopay",
    ),
    Activity.CallOutcome.DISPUTE: ("admin:cases_dispute_open", "cases.add_dispute"),
}


def follow_up_form(user, customers, outcome: str) -> str | None:
    """The form a call with this outcome leads to (the promise form after "promise to
    pay"), for one customer and a user who may fill it in; else None."""
    customers = list(customers)
    if outcome not in FOLLOW_UP_FORMS or len(customers) != 1:
        return None
    url_name, perm = FOLLOW_UP_FORMS[outcome]
    if not user.has_perm(perm):
        return None
    return reverse(url_name, args=[customers[0].pk])


class CustomerActionsMixin:
    """The agent's daily actions, as changelist actions and as buttons on the customer."""

    def has_log_activity_permission(self, request):
        return request.user.has_perm("accounts.log_activity")

    def has_assign_customer_permission(self, request):
        return request.user.has_perm("accounts.assign_customer")

    def has_pause_dunning_permission(self, request):
        return request.user.has_perm("accounts.pause_dunning")

    def run_customer_form(self, request, customers, form_class, perform, title, perm, *, then=None):
        """Show `form_class` for these customers; on a valid POST, call `perform`, then go
        to `then(customers, data)` if it names a page, else back to the customer(s)."""
        if not request.user.has_perm(perm):
            raise PermissionDenied
        customers = list(customers)
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                done = perform(customers, form.cleaned_data)
            except ValidationError as exc:
                for field, errors in (
                    exc.message_dict.items()
                    if hasattr(exc, "error_dict")
                    else [(None, exc.messages)]
                ):
                    form.add_error(field if field in form.fields else None, errors)
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                self.message_user(
                    request, _("%(title)s: %(n)d customer(s).") % {"title": title, "n": done}
                )
                url = then(customers, form.cleaned_data) if then is not None else None
                if not url and len(customers) == 1:
                    url = reverse("admin:accounts_customer_change", args=[customers[0].pk])
                return HttpResponseRedirect(url or reverse("admin:accounts_customer_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "form": form,
            "customers": customers,
            "opts": Customer._meta,
            "action": request.POST.get("action", ""),
            "selected": [c.pk for c in customers],
        }
        return TemplateResponse(request, "admin/accounts/customer/action_form.html", context)

    def _note(self, request, customers):
        def perform(customers, data):
            for customer in customers:
                services.add_note(customer=customer, text=data["text"], by=request.user)
            return len(customers)

        return self.run_customer_form(
            request, customers, forms.NoteForm, perform, _("Add note"), "accounts.log_activity"
        )

    def _call(self, request, customers):
        def perform(customers, data):
            for customer in customers:
                services.log_call(
                    customer=customer,
                    outcome=data["outcome"],
                    text=data["text"],
                    phone=data["phone"],
                    by=request.user,
                )
            return len(customers)

        return self.run_customer_form(
            request,
            customers,
            forms.CallForm,
            perform,
            _("Log call"),
            "accounts.log_activity",
            then=lambda customers, data: follow_up_form(request.user, customers, data["outcome"]),
        )

    def _pause(self, request, customers):
        def perform(customers, data):
            return services.pause_dunning(
                customers=customers, until=data["until"], reason=data["reason"], by=request.user
            )

        return self.run_customer_form(
            request,
            customers,
            forms.PauseForm,
            perform,
            _("Pause dunning"),
            "accounts.pause_dunning",
        )

    def _assign(self, request, customers):
        def perform(customers, data):
            return services.assign_customers(
                customers=customers, agent=data["agent"], by=request.user
            )

        return self.run_customer_form(
            request,
            customers,
            forms.AssignForm,
            perform,
            _("Assign to agent"),
            "accounts.assign_customer",
        )

    @admin.action(description=_("Add a note"), permissions=["log_activity"])
    def add_note(self, request, queryset):
        return self._note(request, queryset)

    @admin.action(description=_("Log a call"), permissions=["log_activity"])
    def log_call(self, request, queryset):
        return self._call(request, queryset)

    @admin.action(description=_("Pause dunning until a date"), permissions=["pause_dunning"])
    def pause_dunning(self, request, queryset):
        return self._pause(request, queryset)

    @admin.action(description=_("Resume dunning"), permissions=["pause_dunning"])
    def resume_dunning(self, request, queryset):
        try:
            done = services.resume_dunning(customers=queryset, by=request.user)
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, _("Dunning resumed for %(n)d customer(s).") % {"n": done})

    @admin.action(description=_("Assign to an agent"), permissions=["assign_customer"])
    def assign(self, request, queryset):
        return self._assign(request, queryset)


@dataclass(frozen=True)
class CustomerAction:
    """A customer action another app adds to the console (dunning: switch policy...).

    The layers above the ledger bring their own actions to the customer page and list
    without the ledger importing them: each app's admin module calls
    `add_customer_action` at import (the admin's autodiscovery). The action gets a
    button on the customer page (when `shown(customer)`), an entry in the list's action
    menu, and the URL `admin:accounts_customer_<name>`; `handler(modeladmin, request,
    customers)` answers all three, typically with `modeladmin.run_customer_form`.
    """

    name: str  # the page's URL: admin:accounts_customer_<name>
    label: str  # the page's button
    list_name: str  # the list's action menu: its name and description
    list_label: str
    perm: str  # "app_label.codename" the user needs
    handler: Callable
    shown: Callable = lambda customer: True


CUSTOMER_ACTIONS: list[CustomerAction] = []


def add_customer_action(action: CustomerAction) -> None:
    CUSTOMER_ACTIONS.append(action)


add_customer_action(
    CustomerAction(
        "merge",
        _("Merge a duplicate into this customer"),
        "merge_customers",
        _("Merge two selected customers"),
        permissions.MERGE_PERMISSION,
        admin_merge.merge_page,
        shown=lambda customer: customer.merged_into_id is None and customer.erased_at is None,
    )
)


@dataclass(frozen=True)
class CustomerPanel:
    """A panel another app adds to the customer page (cases: the predictions and the
    payment-plan suggestion), without the ledger importing it: the app's admin module
    calls `add_customer_panel` at import, like `add_customer_action`. For a user with
    `perm`, `context(request, customer)` gives the template's `panel` (None: nothing to
    show) and `template` is included under the risk panel, in the order added.
    """

    name: str
    template: str
    perm: str  # "app_label.codename" the user needs to see it
    context: Callable


CUSTOMER_PANELS: list[CustomerPanel] = []


def add_customer_panel(panel: CustomerPanel) -> None:
    CUSTOMER_PANELS.append(panel)


def customer_panels(request, customer) -> list[dict]:
    shown = []
    for panel in CUSTOMER_PANELS:
        if not request.user.has_perm(panel.perm):
            continue
        context = panel.context(request, customer)
        if context is not None:
            shown.append({"name": panel.name, "template": panel.template, "context": context})
    return shown


@admin.register(Customer)
class CustomerAdmin(LoggedChangelistMixin, CustomerActionsMixin, LedgerAdmin):
    access_list_surface = Surface.CUSTOMER_LIST
    access_page_surface = Surface.CUSTOMER_PAGE
    list_display = [
        "name",
        "segment",
        "kind",
        "country",
        "currency",
        "assigned_agent",
        "status",
        "past_due",
        "days_past_due",
        "risk",
        "next_action_due",
        "hold_list",
    ]
    list_filter = [
        agent_filter("assigned_agent"),
        admin_lists.PastDueAmountFilter,
        admin_lists.DaysPastDueFilter,
        "risk_band",
        admin_lists.NextActionFilter,
        "segment",
        "kind",
        "status",
        "do_not_contact",
        "is_in_dispute",
    ]
    list_select_related = ["assigned_agent"]
    search_fields = ["name"]
    search_help_text = _("Name, reference, contact e-mail or phone")
    autocomplete_fields = ["assigned_agent"]
    inlines = [ContactInline, OpenInvoiceInline]
    actions = [
        "add_note",
        "log_call",
        "assign",
        "pause_dunning",
        "resume_dunning",
    ]
    change_form_template = "admin/accounts/customer/change_form.html"
    timeline_per_page = 25
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "name",
                    "kind",
                    "segment",
                    "industry",
                    "country",
                    "timezone",
                    "timezone_in_use",
                    "language",
                    "currency",
                    "credit_limit",
                ]
            },
        ),
        (_("Work"), {"fields": ["agent_in_charge", "status"]}),
        (
            _("Holds"),
            {
                "fields": [
                    "dunning_paused_until",
                    "dunning_pause_reason",
                    "do_not_contact",
                    "cease_communication",
                    "is_in_dispute",
                    "is_in_payment_plan",
                    "is_bankrupt",
                ]
            },
        ),
        (
            _("Dunning"),
            {"fields": ["dunning_policy", "is_excluded_from_automation"]},
        ),
        (_("Source"), {"fields": ["source", "external_ref"], "classes": ["collapse"]}),
    ]

    @admin.display(description=_("holds"))
    def hold_list(self, customer):
        holds = list(customer.holds)
        if customer.is_dunning_paused(timezone.localdate()):
            holds.append(
                str(_("dunning paused until %(day)s"))
                % {"day": date_format(customer.dunning_paused_until, "SHORT_DATE_FORMAT")}
            )
        return ", ".join(holds) or "—"

    @admin.display(description=_("past due"), ordering=admin_lists.PAST_DUE_ORDER)
    def past_due(self, customer):
        if not customer.past_due_amount:
            return "—"
        text = format_money(customer.past_due_amount, customer.past_due_currency)
        others = customer.past_due_currencies - 1
        if others > 0:
            text += " " + str(
                ngettext("(+%(n)s currency)", "(+%(n)s currencies)", others) % {"n": others}
            )
        return text

    @admin.display(description=_("days past due"), ordering=admin_lists.DAYS_PAST_DUE_ORDER)
    def days_past_due(self, customer):
        return customer.days_past_due or "—"

    @admin.display(description=_("risk"), ordering=admin_lists.RISK_ORDER)
    def risk(self, customer):
        if customer.risk_score is None:
            return "—"
        return f"{customer.risk_score} ({customer.get_risk_band_display()})"

    @admin.display(description=_("next action"), ordering=admin_lists.NEXT_ACTION_ORDER)
    def next_action_due(self, customer):
        if customer.next_action_at is None:
            return "—"
        day = timezone.localdate(customer.next_action_at)
        return f"{date_format(day, 'SHORT_DATE_FORMAT')} {customer.next_action}"

    def get_changelist(self, request, **kwargs):
        return admin_lists.SummaryChangeList

    @admin.display(description=_("assigned agent"))
    def agent_in_charge(self, customer):
        """The agent's name, linking to their customers: a page every role may see (the
        read-only field linked to the user admin, which answers 403 to all of them).
        Assigning goes through the Assign action."""
        agent = customer.assigned_agent
        if agent is None:
            return _("Unassigned")
        name = agent.get_full_name() or agent.get_username()
        url = reverse("admin:accounts_customer_changelist") + f"?agent={agent.pk}"
        return format_html('{} (<a href="{}">{}</a>)', name, url, _("their customers"))

    def access_customer_id(self, customer):
        return customer.pk

    @admin.display(description=_("time zone in use"))
    def timezone_in_use(self, customer):
        """The zone the contact hours follow, and whether it was given or assumed."""
        if customer.pk is None:
            return _("Inferred from the country when left as UTC.")
        source = customer.get_timezone_source_display()
        if customer.timezone_source == Customer.TimezoneSource.AMBIGUOUS:
            zones = ", ".join(timezones.contact_zones(customer))
            return _("%(zone)s, assumed (%(source)s: %(zones)s)") % {
                "zone": customer.timezone,
                "source": source,
                "zones": zones,
            }
        if customer.timezone_source == Customer.TimezoneSource.GIVEN:
            return _("%(zone)s, as given") % {"zone": customer.timezone}
        region = f" {customer.timezone_region}" if customer.timezone_region else ""
        return _("%(zone)s, assumed (%(source)s%(region)s)") % {
            "zone": customer.timezone,
            "source": source,
            "region": region,
        }

    def get_readonly_fields(self, request, obj=None):
        # The one rule set (accounts.permissions): fields with their own services (assign,
        # pause, policy) and, for agents, the terms managers and finance decide.
        return [
            *permissions.locked_customer_fields(request.user),
            "timezone_in_use",
            "agent_in_charge",
        ]

    def get_search_results(self, request, queryset, search_term):
        return selectors.search_customers(queryset, search_term), False

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return permissions.can_work(request.user, obj)

    def save_model(self, request, obj, form, change):
        if "timezone" in form.changed_data:
            timezones.assign(obj, is_given=True)
        elif not change or (
            "country" in form.changed_data and obj.timezone_source != Customer.TimezoneSource.GIVEN
        ):
            timezones.assign(obj, is_given=False)  # left as it was: inferred
        services.save_customer(customer=obj, by=request.user)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Contact:
            return super().save_formset(request, form, formset, change)
        changed = formset.save(commit=False)  # also lists the deleted ones
        for contact in formset.deleted_objects:
            contact.delete()
        # Whoever stops being the primary contact first, so a swap of primaries saves.
        for contact in sorted(changed, key=lambda c: c.is_primary):
            services.save_contact(contact=contact, by=request.user)
        return None

    def get_urls(self):
        def view(name, handler):
            def wrapped(request, object_id):
                customer = get_object_or_404(Customer, pk=object_id)
                return handler(request, [customer])

            return path(
                f"<int:object_id>/{name}/",
                self.admin_site.admin_view(wrapped),
                name=f"accounts_customer_{name}",
            )

        return [
            view("note", self._note),
            view("call", self._call),
            view("pause", self._pause),
            view("assign", self._assign),
            *(
                view(action.name, functools.partial(self._extra_action, action))
                for action in CUSTOMER_ACTIONS
            ),
            *super().get_urls(),
        ]

    def _extra_action(self, action: CustomerAction, request, customers):
        if not request.user.has_perm(action.perm):
            raise PermissionDenied
        return action.handler(self, request, customers)

    def get_actions(self, request):
        actions = super().get_actions(request)
        for action in CUSTOMER_ACTIONS:
            if request.user.has_perm(action.perm):

                def run(modeladmin, request, queryset, action=action):
                    return modeladmin._extra_action(action, request, queryset)

                actions[action.list_name] = (run, action.list_name, action.list_label)
        return actions

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, object_id)
        extra_context = extra_context or {}
        if customer is not None:
            page = Paginator(selectors.timeline(customer), self.timeline_per_page).get_page(
                request.GET.get("timeline_page")
            )
            user = request.user
            extra_context.update(
                timeline=page,
                can_log=user.has_perm("accounts.log_activity"),
                extra_actions=[
                    action
                    for action in CUSTOMER_ACTIONS
                    if user.has_perm(action.perm) and action.shown(customer)
                ],
                can_pause=user.has_perm("accounts.pause_dunning"),
                can_assign=user.has_perm("accounts.assign_customer"),
                balances=services.open_balances(customer),
                access_log_url=(
                    reverse("admin:accounts_accesslog_changelist") + f"?customer={customer.pk}"
                    if user.has_perm("accounts.view_accesslog")
                    else ""
                ),
                likely_duplicates=(
                    admin_merge.likely_duplicates(customer, limit=5)
                    if customer.merged_into_id is None
                    else []
                ),
                can_merge=user.has_perm(permissions.MERGE_PERMISSION),
                panels=customer_panels(request, customer),
            )
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(Contact)
class ContactAdmin(LoggedChangelistMixin, admin.ModelAdmin):
    """Find contacts by e-mail or phone, and import them; they are edited on their customer."""

    access_list_surface = Surface.CONTACT_LIST
    access_page_surface = Surface.CONTACT_PAGE

    list_display = ["name", "customer", "role", "email", "phone", "is_primary"]
    list_filter = ["is_primary"]
    list_select_related = ["customer"]
    search_fields = ["name"]
    search_help_text = _("Exact e-mail or phone (stored encrypted), or name")
    show_facets = admin.ShowFacets.NEVER
    ordering = ["customer__name", "-is_primary", "name", "id"]
    fields = ContactInline.fields
    readonly_fields = ["customer", *ContactInline.readonly_fields]

    actions = ["revoke_portal_access"]

    @admin.action(
        description=_("Revoke portal access (every link and session of these contacts)"),
        permissions=["change"],
    )
    def revoke_portal_access(self, request, queryset):
        contacts = [
            contact
            for contact in queryset.select_related("customer")
            if permissions.can_work(request.user, contact.customer)
        ]
        count = portal_links.revoke(contacts, by=request.user, reason="revoked in the console")
        self.message_user(
            request,
            ngettext(
                "Portal access revoked for %(count)d contact: their links no longer work.",
                "Portal access revoked for %(count)d contacts: their links no longer work.",
                count,
            )
            % {"count": count},
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if "@" in term:
            return queryset.matching(email=term), False
        if term.startswith("+") or term.replace(" ", "").isdigit():
            # A phone typed as people write it (national form: in the customers' countries)
            # finds the E.164 one we store.
            return queryset.matching(phone=term, regions=selectors.customer_countries()), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request):
        return False  # added on the customer's page (or imported), where the limits apply

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return permissions.can_work(request.user, obj.customer)

    def save_model(self, request, obj, form, change):
        services.save_contact(contact=obj, by=request.user)

    def has_delete_permission(self, request, obj=None):
        return request.user.has_perm("accounts.delete_contact")


@admin.register(Invoice)
class InvoiceAdmin(LedgerAdmin):
    list_display = [
        "number",
        "customer_link",
        "issued_on",
        "due_on",
        "days_late",
        "bucket",
        "currency",
        "amount",
        "open_balance",
        "status",
    ]
    list_filter = [
        BucketFilter,
        "status",
        "customer__segment",
        agent_filter("customer__assigned_agent"),
        CurrencyFilter,
    ]
    # The prediction joins (LEFT OUTER, one row per invoice): the late-risk column costs
    # no query per row.
    list_select_related = ["customer", "prediction"]
    search_fields = ["number"]
    search_help_text = _("Invoice number, customer name, contact e-mail or phone")
    autocomplete_fields = ["customer"]
    readonly_fields = ["open_balance", "status", "created_at", "updated_at"]
    ordering = ["due_on", "id"]
    fields = [
        "customer",
        "number",
        "issued_on",
        "due_on",
        "currency",
        "amount",
        "open_balance",
        "status",
        "reference",
        "pay_link",
        "original",
        "source",
        "external_id",
        "created_at",
        "updated_at",
    ]

    actions = ["pause_invoices", "resume_invoices"]

    def has_pause_dunning_permission(self, request):
        return request.user.has_perm("accounts.pause_dunning")

    @admin.action(description=_("Pause dunning for these invoices"), permissions=["pause_dunning"])
    def pause_invoices(self, request, queryset):
        form = forms.PauseForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                done = services.pause_invoices(
                    invoices=queryset.select_related("customer"),
                    until=form.cleaned_data["until"],
                    reason=form.cleaned_data["reason"],
                    by=request.user,
                )
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(
                    request, " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR
                )
            else:
                self.message_user(request, _("Dunning paused for %(n)d invoice(s).") % {"n": done})
            return None
        return TemplateResponse(
            request,
            "admin/integrations/action_form.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Pause dunning for these invoices"),
                "form": form,
                "opts": Invoice._meta,
                "action": "pause_invoices",
                "selected": list(queryset.values_list("pk", flat=True)),
                "count": queryset.count(),
            },
        )

    @admin.action(description=_("Resume dunning for these invoices"), permissions=["pause_dunning"])
    def resume_invoices(self, request, queryset):
        try:
            done = services.resume_invoices(
                invoices=queryset.select_related("customer"), by=request.user
            )
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, _("Dunning resumed for %(n)d invoice(s).") % {"n": done})

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        # Amount and currency move only through allocations and adjustments once issued.
        return [
            *self.readonly_fields,
            "customer",
            "currency",
            "amount",
            "source",
            *(PREDICTION_FIELDS if request.user.has_perm(PREDICTION_PERMISSION) else []),
        ]

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": self.fields})]
        if obj is not None and request.user.has_perm(PREDICTION_PERMISSION):
            fieldsets.append((_("Prediction"), {"fields": PREDICTION_FIELDS}))
        return fieldsets

    def get_list_display(self, request):
        if not request.user.has_perm(PREDICTION_PERMISSION):
            return self.list_display
        at = self.list_display.index("open_balance") + 1
        return [*self.list_display[:at], "late_risk", *self.list_display[at:]]

    def get_list_filter(self, request):
        if not request.user.has_perm(PREDICTION_PERMISSION):
            return self.list_filter
        return [*self.list_filter, PredictedLateFilter]

    # Sorted downwards (riskiest first), invoices not scored come last.
    @admin.display(
        description=_("late risk"),
        ordering=F("prediction__probability_late").asc(nulls_first=True),
    )
    def late_risk(self, invoice):
        prediction = prediction_of(invoice)
        if prediction is None:
            return "—"
        return format_html(
            '<span title="{}">{}</span>',
            "; ".join(prediction.reasons),
            format_percent(prediction.probability_late),
        )

    @admin.display(description=_("probability of paying late"))
    def late_probability(self, invoice):
        prediction = prediction_of(invoice)
        if prediction is None:
            return _("Not scored (the nightly scoring covers open invoices).")
        verdict = (
            _("predicted late")
            if prediction.probability_late >= predicted_late_threshold()
            else _("predicted on time")
        )
        return f"{format_percent(prediction.probability_late)} ({verdict})"

    @admin.display(description=_("expected pay date"))
    def expected_pay_on(self, invoice):
        prediction = prediction_of(invoice)
        if prediction is None:
            return "—"
        return date_format(prediction.expected_pay_on, "SHORT_DATE_FORMAT")

    @admin.display(description=_("reasons"))
    def prediction_reasons(self, invoice):
        prediction = prediction_of(invoice)
        if prediction is None or not prediction.reasons:
            return "—"
        items = format_html_join("", "<li>{}</li>", ((reason,) for reason in prediction.reasons))
        return format_html("<ul>{}</ul>", items)

    @admin.display(description=_("model"))
    def prediction_model(self, invoice):
        prediction = prediction_of(invoice)
        if prediction is None:
            return "—"
        return _("%(version)s, scored %(at)s (as of %(day)s)") % {
            "version": prediction.model_version,
            "at": date_format(timezone.localtime(prediction.scored_at), "SHORT_DATETIME_FORMAT"),
            "day": date_format(prediction.as_of, "SHORT_DATE_FORMAT"),
        }

    def get_search_results(self, request, queryset, search_term):
        if (request.GET.get("model_name"), request.GET.get("field_name")) == (
            "allocation",
            "invoice",
        ):
            queryset = queryset.outstanding()  # the allocation picker offers open invoices
        return selectors.search_invoices(queryset, search_term), False

    def save_model(self, request, obj, form, change):
        if change:
            services.save_invoice(invoice=obj, by=request.user)
        else:
            services.save_new_invoice(invoice=obj, by=request.user)

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_link(self, invoice):
        url = reverse("admin:accounts_customer_change", args=[invoice.customer_id])
        return format_html('<a href="{}">{}</a>', url, invoice.customer.name)

    @admin.display(description=_("days past due"), ordering="-due_on")
    def days_late(self, invoice):
        return invoice.days_past_due() if invoice.is_outstanding else "—"

    @admin.display(description=_("bucket"))
    def bucket(self, invoice):
        if not invoice.is_outstanding:
            return "—"
        return BUCKETS_BY_KEY[invoice.aging_bucket()].label


class AllocationInline(admin.TabularInline):
    model = Allocation
    fk_name = "payment"
    extra = 0
    fields = ["invoice", "amount", "allocated_on", "rule", "created_by"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Payment)
class PaymentAdmin(LedgerAdmin):
    list_display = [
        "received_on",
        "customer",
        "kind",
        "currency",
        "amount",
        "unallocated_amount",
        "method",
        "sender",
        "remittance_reference",
        "source",
    ]
    list_filter = ["kind", "method", "source"]
    list_select_related = ["customer"]
    search_fields = [
        "remittance_reference",
        "external_id",
        "customer__name",
        "payer_name",
        "payer_account",
    ]
    autocomplete_fields = ["customer"]
    readonly_fields = ["unallocated_amount", "created_by", "created_at"]
    inlines = [AllocationInline]

    @admin.display(description=_("paid by"))
    def sender(self, payment):
        return payment.sender or "—"

    @admin.action(description=_("Resume dunning for these invoices"), permissions=["pause_dunning"])
    def resume_invoices(self, request, queryset):
        try:
            done = services.resume_invoices(
                invoices=queryset.select_related("customer"), by=request.user
            )
        except PermissionDenied as exc:
            self.message_user(request, str(exc), messages.ERROR)
        else:
            self.message_user(request, _("Dunning resumed for %(n)d invoice(s).") % {"n": done})

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "kind", "amount", "currency", "source", "external_id"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save()
        else:
            services.save_new_payment(payment=obj, by=request.user)


class AllocationForm(djforms.ModelForm):
    class Meta:
        model = Allocation
        fields = ["payment", "invoice", "amount", "allocated_on"]

    def clean(self):
        data = super().clean()
        if data.get("payment") and data.get("invoice") and data.get("amount"):
            services.check_allocation(
                payment=data["payment"], invoice=data["invoice"], amount=data["amount"]
            )
        return data


@admin.register(Allocation)
class AllocationAdmin(LedgerAdmin):
    form = AllocationForm
    list_display = ["allocated_on", "payment", "invoice", "amount", "rule", "created_by"]
    list_select_related = ["payment", "invoice", "created_by"]
    list_filter = ["rule"]
    search_fields = ["invoice__number"]
    autocomplete_fields = ["payment", "invoice"]

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        allocation = services.allocate(
            payment=obj.payment,
            invoice=obj.invoice,
            amount=obj.amount,
            on=obj.allocated_on,
            by=request.user,
        )
        obj.pk = allocation.pk


@admin.register(Activity)
class ActivityAdmin(LoggedChangelistMixin, LedgerAdmin):
    """The timeline is read-only here: entries are added by the customer actions."""

    access_list_surface = Surface.TIMELINE
    access_page_surface = Surface.TIMELINE

    list_display = [
        "occurred_at",
        "customer",
        "invoice",
        "kind",
        "channel",
        "outcome",
        "actor_name",
        "text",
    ]
    list_filter = ["kind", "channel", "outcome"]
    list_select_related = ["customer", "invoice", "actor"]
    search_fields = ["customer__name", "text"]
    ordering = ["-occurred_at", "-id"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = selectors.customers_matching(term, field="customer_id")
        return queryset.filter(customers | Q(invoice__number=term)), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AccessLogUserFilter(admin.SimpleListFilter):
    """Staff who may have looked (a list of the staff, not a scan of the log)."""

    title = _("user")
    parameter_name = "user"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("username")
        return [(str(user.pk), user.get_username()) for user in staff]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(user=int(value)) if value and value.isdigit() else queryset


@admin.register(AccessLog)
class AccessLogAdmin(LedgerAdmin):
    """Who was shown which customer, where and when: read-only, never changed or deleted.

    The customer page links here as ?customer=<id> ("who viewed this"); search takes a
    customer's name, reference, contact e-mail or phone, or a username.
    """

    list_display = ["at", "user", "customer", "surface", "path", "details"]
    list_filter = [AccessLogUserFilter, "surface"]
    list_select_related = ["user", "customer"]
    date_hierarchy = "at"
    search_fields = ["user__username"]
    search_help_text = _("Customer name, reference, contact e-mail or phone; or a username")
    ordering = ["-at", "-id"]
    readonly_fields = ["at", "user", "customer", "surface", "path", "request_id", "details"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        customers = selectors.customers_matching(term, field="customer_id")
        return queryset.filter(customers | Q(user__username=term)), False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    """The ECB's euro reference rates the reports convert with: read-only here; they come
    from `manage.py load_fx_rates` and the daily task (integrations.fx)."""

    list_display = ["rate_on", "currency", "rate", "source", "loaded_at"]
    list_filter = ["currency"]
    date_hierarchy = "rate_on"
    search_fields = ["currency"]
    search_help_text = _("Currency code, e.g. USD")
    show_facets = admin.ShowFacets.NEVER
    readonly_fields = list_display

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
