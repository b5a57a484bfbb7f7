"""The console's daily work: the worklist, tasks, routing rules, write-offs and placements.

Nothing here writes a model directly: every action calls accounts.case_tasks,
accounts.routing or accounts.recoveries, which check permissions, validate and write the
timeline. URL names:

- ``admin:cases_task_worklist``          the worklist (?agent=<id> or none, ?page=,
                                          ?tasks_page=)
- ``admin:cases_task_complete``          (task id) POST outcome and note; a call done with
                                          "promise to pay" (or "dispute") goes on to that form
- ``admin:cases_task_next_account``      (?after=<customer id>) the next customer to work
- ``admin:cases_routingrule_route``      POST: route the unassigned queue now
"""

from django import forms as djforms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from accounts import access_log, forms
from accounts.admin import agent_filter, follow_up_form
from accounts.admin_decisions import ConfirmForm, Decision, DecisionAdmin
from accounts.models import Activity, outcome_label
from accounts.money import format_money

from . import case_tasks, recoveries, routing, worklist
from .models import Recovery, RoutingRule, Task

ACTION_FORM = "admin/integrations/action_form.html"


def _messages(exc: Exception) -> str:
    return " ".join(getattr(exc, "messages", None) or [str(exc)])


def _options(choices) -> str:
    return format_html_join("", '<option value="{}">{}</option>', choices)


def customer_link(customer) -> str:
    url = reverse("admin:accounts_customer_change", args=[customer.pk])
    return format_html('<a href="{}">{}</a>', url, customer.name)


# --- Forms -------------------------------------------------------------------------


class CompleteTaskForm(djforms.Form):
    outcome = djforms.ChoiceField(
        label=_("Outcome"),
        choices=[
            (_("Call tasks"), Activity.CallOutcome.choices),
            (_("Other tasks"), case_tasks.TaskOutcome.choices),
        ],
    )
    note = djforms.CharField(
        label=_("Note"), required=False, widget=djforms.Textarea(attrs={"rows": 3})
    )


class ReassignTaskForm(djforms.Form):
    assignee = djforms.ModelChoiceField(
        label=_("Assignee"),
        queryset=get_user_model().objects.none(),
        required=False,
        empty_label=_("— nobody (unassigned queue) —"),
    )
    reason = djforms.CharField(label=_("Reason"), required=False, max_length=200)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = forms.agents()


class NewTaskForm(djforms.ModelForm):
    class Meta:
        model = Task
        fields = ["customer", "kind", "title", "description", "due_at", "assignee"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "assignee" in self.fields:
            self.fields["assignee"].queryset = forms.agents()
            self.fields["assignee"].help_text = _(
                "Empty: the customer's agent (approval tasks: the unassigned queue)."
            )


# --- Tasks and the worklist ------------------------------------------------------------


class OverdueFilter(admin.SimpleListFilter):
    title = _("overdue")
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", _("Overdue")), ("today", _("Due today or overdue"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "yes":
            return queryset.overdue(now)
        if self.value() == "today":
            tomorrow = case_tasks.due_at_end_of(timezone.localdate(now))
            return queryset.open().filter(due_at__lte=tomorrow)
        return queryset


def _is_open(task) -> bool:
    return task.status == Task.Status.OPEN


@admin.register(Task)
class TaskAdmin(DecisionAdmin):
    list_display = [
        "due_at",
        "overdue_flag",
        "title",
        "customer_name",
        "kind",
        "assignee",
        "status",
        "outcome_text",
    ]
    list_filter = [agent_filter("assignee"), OverdueFilter, "kind", "status"]
    list_select_related = ["customer", "assignee"]
    search_fields = ["title", "customer__name"]
    ordering = ["due_at", "id"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    autocomplete_fields = ["customer"]
    decisions = (
        Decision(
            "complete",
            _("Complete"),
            "cases.change_task",
            lambda task, by, outcome, note: case_tasks.complete_task(
                task=task, outcome=outcome, note=note, by=by
            ),
            form=CompleteTaskForm,
            applies=_is_open,
            page=False,  # one task is completed from the worklist's own quick form
        ),
        Decision(
            "cancel",
            _("Cancel"),
            "cases.change_task",
            lambda task, by, reason: case_tasks.cancel_task(task=task, reason=reason, by=by),
            applies=_is_open,
        ),
        Decision(
            "reassign",
            _("Reassign"),
            "cases.change_task",
            lambda task, by, assignee, reason: case_tasks.reassign_task(
                task=task, assignee=assignee, reason=reason, by=by
            ),
            form=ReassignTaskForm,
            applies=_is_open,
        ),
    )
    change_list_template = "admin/cases/task/change_list.html"
    readonly_fields = [
        "customer",
        "kind",
        "title",
        "description",
        "assignee",
        "due_at",
        "status",
        "outcome",
        "outcome_note",
        "source",
        "details",
        "created_by",
        "created_at",
        "completed_at",
        "completed_by",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = NewTaskForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return NewTaskForm.Meta.fields
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # An existing task changes only through complete / cancel / reassign.
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False  # tasks are closed (done or cancelled), never deleted

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            task = case_tasks.create_task(
                customer=data["customer"],
                kind=data["kind"],
                title=data["title"],
                due_at=data["due_at"],
                assignee=data.get("assignee"),
                by=request.user,
            )
        except ValidationError as exc:
            raise PermissionDenied(_messages(exc)) from exc
        if data.get("description"):
            Task.objects.filter(pk=task.pk).update(description=data["description"])
        obj.pk = task.pk

    @admin.display(description=_("overdue"), boolean=True)
    def overdue_flag(self, task):
        return task.is_overdue()

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_name(self, task):
        return customer_link(task.customer)

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_text(self, task):
        if task.outcome in case_tasks.TaskOutcome.values:
            return case_tasks.TaskOutcome(task.outcome).label
        return outcome_label(task.outcome) if task.outcome else "—"

    def get_urls(self):
        return [
            path(
                "worklist/",
                self.admin_site.admin_view(self.worklist_view),
                name="cases_task_worklist",
            ),
            path(
                "next-account/",
                self.admin_site.admin_view(self.next_account_view),
                name="cases_task_next_account",
            ),
            path(
                "<int:task_id>/complete/",
                self.admin_site.admin_view(self.complete_view),
                name="cases_task_complete",
            ),
            *super().get_urls(),
        ]

    def worklist_view(self, request):
        """My worklist; managers pick an agent (?agent=<id>) or the queue (?agent=none)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        user = request.user
        is_manager = user.has_perm("accounts.work_all_customers")
        choice = request.GET.get("agent", "")
        agent, unassigned = None, False
        if choice == "none":
            unassigned = True
        elif choice.isdigit() and int(choice) != user.pk:
            agent = get_object_or_404(get_user_model(), pk=int(choice))
        page = request.GET.get("page", "1")
        tasks_page = request.GET.get("tasks_page", "1")
        result = worklist.worklist(
            viewer=user,
            agent=agent,
            unassigned=unassigned,
            page=int(page) if page.isdigit() else 1,
            tasks_page=int(tasks_page) if tasks_page.isdigit() else 1,
        )
        access_log.record(
            request,
            surface=access_log.Surface.WORKLIST,
            customer_ids=[row.customer_id for row in result.rows],
        )
        return TemplateResponse(
            request,
            "admin/cases/worklist.html",
            {
                **self.admin_site.each_context(request),
                "opts": Task._meta,
                "title": _("Unassigned queue")
                if unassigned
                else _("Worklist of %(agent)s") % {"agent": result.agent.get_username()},
                "worklist": result,
                "is_manager": is_manager,
                "agents": forms.agents() if is_manager else [],
                "choice": choice,
                # Rendered once, not once per task row.
                "call_options": _options(Activity.CallOutcome.choices),
                "task_options": _options(case_tasks.TaskOutcome.choices),
                "rules": [
                    (key, _(label), points) for key, label, points in worklist.PRIORITY_RULES
                ],
                "next_page": request.get_full_path(),
                "can_work_tasks": user.has_perm("cases.change_task"),
                "is_own_list": result.agent is not None and result.agent.pk == user.pk,
            },
        )

    def next_account_view(self, request):
        """Open the next customer of the user's own worklist they have not worked today
        (worklist.next_account), after the one given by ?after=<customer id>."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        after = request.GET.get("after", "")
        row = worklist.next_account(
            viewer=request.user, after=int(after) if after.isdigit() else None
        )
        if row is None:
            self.message_user(
                request,
                _("Nobody else on your worklist needs you today: every account is worked."),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(reverse("admin:cases_task_worklist"))
        self.message_user(
            request,
            _("Next account: %(name)s (priority %(priority)d). Next action: %(action)s")
            % {"name": row.name, "priority": row.priority, "action": row.next_action},
        )
        return HttpResponseRedirect(
            reverse("admin:accounts_customer_change", args=[row.customer_id])
        )

    def complete_view(self, request, task_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        task = get_object_or_404(Task.objects.select_related("customer"), pk=task_id)
        form = CompleteTaskForm(request.POST)
        if not form.is_valid():
            self.message_user(request, _("Choose an outcome."), messages.ERROR)
        else:
            try:
                case_tasks.complete_task(
                    task=task,
                    outcome=form.cleaned_data["outcome"],
                    note=form.cleaned_data["note"],
                    by=request.user,
                )
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(request, _messages(exc), messages.ERROR)
            else:
                self.message_user(request, _("Done: %(title)s") % {"title": task.title})
                follow_up = follow_up_form(
                    request.user, [task.customer], form.cleaned_data["outcome"]
                )
                if task.kind == Task.Kind.CALL and follow_up:
                    return HttpResponseRedirect(follow_up)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            target = reverse("admin:cases_task_worklist")
        return HttpResponseRedirect(target)


# --- Routing rules ------------------------------------------------------------------


class RoutingRuleForm(djforms.ModelForm):
    class Meta:
        model = RoutingRule
        fields = [
            "name",
            "priority",
            "is_active",
            "segment",
            "risk_band",
            "min_balance",
            "language",
            "countries",
            "agents",
            "max_accounts_per_agent",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # A read-only viewer (agent, finance) gets the form without its read-only fields.
        if "agents" in self.fields:
            self.fields["agents"].queryset = forms.agents()


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    form = RoutingRuleForm
    list_display = [
        "priority",
        "name",
        "segment",
        "risk_band",
        "min_balance",
        "language",
        "countries",
        "agent_names",
        "max_accounts_per_agent",
        "is_active",
    ]
    list_display_links = ["name"]
    list_filter = ["is_active", "segment", "risk_band"]
    filter_horizontal = ["agents"]
    ordering = ["priority", "id"]
    actions = ["route_now"]
    change_list_template = "admin/cases/routingrule/change_list.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("agents")

    @admin.display(description=_("agents"))
    def agent_names(self, rule):
        return ", ".join(agent.get_username() for agent in rule.agents.all()) or "—"

    def has_route_permission(self, request):
        user = request.user
        return user.has_perm("accounts.assign_customer") and user.has_perm(
            "accounts.work_all_customers"
        )

    def _route(self, request):
        try:
            result = routing.route_customers(by=request.user)
        except (PermissionDenied, ValidationError) as exc:
            self.message_user(request, _messages(exc), messages.ERROR)
            return
        rules = ", ".join(f"{name}: {n}" for name, n in result.by_rule.items()) or "—"
        self.message_user(
            request,
            _(
                "Routed %(routed)d customers (%(rules)s); %(full)d wait because their rule's "
                "agents are full; %(none)d match no rule."
            )
            % {
                "routed": result.routed,
                "rules": rules,
                "full": result.full,
                "none": result.no_rule,
            },
        )

    @admin.action(
        description=_("Route the unassigned customers now (all active rules)"),
        permissions=["route"],
    )
    def route_now(self, request, queryset):
        self._route(request)

    def route_view(self, request):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_route_permission(request):
            raise PermissionDenied
        self._route(request)
        return HttpResponseRedirect(reverse("admin:cases_routingrule_changelist"))

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_route": self.has_route_permission(request)}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        return [
            path(
                "route/",
                self.admin_site.admin_view(self.route_view),
                name="cases_routingrule_route",
            ),
            *super().get_urls(),
        ]


# --- Write-offs and placements ---------------------------------------------------------


class ProposeRecoveryForm(djforms.ModelForm):
    class Meta:
        model = Recovery
        fields = ["customer", "kind", "invoices", "agency_name", "agency_reference", "reason"]

    def clean(self):
        data = super().clean()
        if data.get("customer") and data.get("invoices") is not None and data.get("kind"):
            recoveries.check_proposal(
                customer=data["customer"],
                invoices=list(data["invoices"]),
                kind=data["kind"],
                reason=data.get("reason", ""),
                agency_name=data.get("agency_name", ""),
            )
        return data


def _recovery_state(*statuses):
    return lambda recovery: recovery.status in statuses


@admin.register(Recovery)
class RecoveryAdmin(DecisionAdmin):
    list_display = [
        "pk",
        "customer_name",
        "kind",
        "status",
        "agency_name",
        "proposed_by",
        "decided_by",
        "created_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["customer", "proposed_by", "decided_by"]
    search_fields = ["customer__name", "agency_name"]
    autocomplete_fields = ["customer", "invoices"]
    ordering = ["-created_at", "-id"]
    decisions = (
        Decision(
            "approve",
            _("Approve"),
            "cases.approve_recovery",
            lambda recovery, by: recoveries.approve_recovery(recovery=recovery, by=by),
            form=ConfirmForm,
            applies=_recovery_state(Recovery.Status.PROPOSED),
        ),
        Decision(
            "reject",
            _("Reject"),
            "cases.approve_recovery",
            lambda recovery, by, reason: recoveries.reject_recovery(
                recovery=recovery, by=by, reason=reason
            ),
            applies=_recovery_state(Recovery.Status.PROPOSED),
        ),
        Decision(
            "reverse",
            _("Reverse"),
            "cases.approve_recovery",
            lambda recovery, by, reason: recoveries.reverse_recovery(
                recovery=recovery, by=by, reason=reason
            ),
            applies=_recovery_state(Recovery.Status.APPROVED),
        ),
    )
    readonly_fields = [
        "customer",
        "kind",
        "status",
        "invoice_list",
        "agency_name",
        "agency_reference",
        "reason",
        "adjustment",
        "proposed_by",
        "created_at",
        "decided_by",
        "decided_at",
        "reversed_by",
        "reversed_at",
        "reversal_reason",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ProposeRecoveryForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ProposeRecoveryForm.Meta.fields
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Decided only through the actions (approve, reject, reverse).
        return obj is None and super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("customer"), ordering="customer__name")
    def customer_name(self, recovery):
        return customer_link(recovery.customer)

    @admin.display(description=_("invoices"))
    def invoice_list(self, recovery):
        return ", ".join(
            f"{i.number} ({format_money(i.amount, i.currency)}, {i.get_status_display().lower()})"
            for i in recovery.invoices.order_by("due_on", "id")
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            recovery = recoveries.propose_recovery(
                customer=data["customer"],
                invoices=data["invoices"],
                kind=data["kind"],
                reason=data["reason"],
                agency_name=data.get("agency_name", ""),
                by=request.user,
            )
        except ValidationError as exc:
            raise PermissionDenied(_messages(exc)) from exc
        if data.get("agency_reference"):
            Recovery.objects.filter(pk=recovery.pk).update(
                agency_reference=data["agency_reference"]
            )
        obj.pk = recovery.pk

    def save_related(self, request, form, formsets, change):
        pass  # propose_recovery sets the invoices
