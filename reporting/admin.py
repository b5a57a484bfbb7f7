"""Reporting in the admin: aging and effectiveness reports, statements, exports, schedules."""

from django import forms
from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _

from . import admin_views, dashboard, effectiveness, services
from .aging import AgingReport
from .models import Aging, Dashboard, Effectiveness, ReportExport, ScheduledReport, Statement


class _PageAdmin(admin.ModelAdmin):
    """A page with no table behind it: only viewing, guarded by one permission."""

    permission = ""

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.has_perm(self.permission)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dashboard)
class DashboardAdmin(_PageAdmin):
    """/admin/reporting/dashboard/: the managers' dashboard (reporting.dashboard)."""

    def has_view_permission(self, request, obj=None):
        return dashboard.can_view_dashboard(request.user)

    def get_urls(self):
        return dashboard.get_urls(self.admin_site, route="", name="reporting_dashboard_changelist")


@admin.register(Aging)
class AgingAdmin(_PageAdmin):
    """/admin/reporting/aging/: the report on screen; export/ downloads it."""

    permission = services.VIEW_PERMISSION

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(admin_views.aging_export),
                name="reporting_aging_export",
            ),
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="reporting_aging_changelist",
            ),
        ]

    def changelist_view(self, request, extra_context=None):
        return admin_views.aging_report(request, self)


@admin.register(Effectiveness)
class EffectivenessAdmin(_PageAdmin):
    """/admin/reporting/effectiveness/: which messages get paid, and the experiments."""

    permission = effectiveness.PERMISSION

    def get_urls(self):
        return [
            path(
                "",
                self.admin_site.admin_view(self.changelist_view),
                name="reporting_effectiveness_changelist",
            ),
        ]

    def changelist_view(self, request, extra_context=None):
        return admin_views.effectiveness_report(request, self)


@admin.register(Statement)
class StatementAdmin(_PageAdmin):
    """/admin/reporting/statement/<customer id>/: a customer's statement PDF (not in the index)."""

    permission = services.STATEMENT_PERMISSION

    def get_model_perms(self, request):
        return {}  # reached from the customer page, not listed on the index

    def get_urls(self):
        return [
            path(
                "<int:customer_id>/",
                self.admin_site.admin_view(admin_views.customer_statement),
                name="reporting_statement",
            ),
        ]


@admin.register(ReportExport)
class ReportExportAdmin(admin.ModelAdmin):
    """Who exported which report, when, with which filters: read-only."""

    list_display = ("created_at", "user", "kind", "format", "via", "as_of", "row_count")
    list_filter = ("kind", "format", "via")
    date_hierarchy = "created_at"
    search_fields = ("user__username",)
    list_select_related = ("user",)
    readonly_fields = (
        "created_at",
        "user",
        "kind",
        "format",
        "via",
        "as_of",
        "filters",
        "row_count",
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScheduledReportForm(forms.ModelForm):
    class Meta:
        model = ScheduledReport
        fields = [
            "name",
            "recipients",
            "frequency",
            "weekday",
            "day_of_month",
            "format",
            "filters",
            "is_active",
        ]

    def clean_filters(self):
        filters = self.cleaned_data.get("filters") or {}
        if not isinstance(filters, dict):
            raise forms.ValidationError(_("Filters are a JSON object."))
        AgingReport.from_options({**filters, "as_of": "2000-01-01"})  # raises if invalid
        return filters

    def clean_recipients(self):
        recipients = self.cleaned_data["recipients"]
        refused = [
            user.get_username()
            for user in recipients
            if not user.email or not user.has_perm(services.VIEW_PERMISSION)
        ]
        if refused:
            raise forms.ValidationError(
                _("These users have no e-mail address or may not view the aging report: %(names)s")
                % {"names": ", ".join(refused)}
            )
        return recipients


@admin.register(ScheduledReport)
class ScheduledReportAdmin(admin.ModelAdmin):
    form = ScheduledReportForm
    list_display = (
        "name",
        "frequency",
        "weekday",
        "day_of_month",
        "format",
        "is_active",
        "last_sent_on",
        "uncertain_on",
    )
    list_filter = ("frequency", "format", "is_active", ("uncertain_on", admin.EmptyFieldListFilter))
    filter_horizontal = ("recipients",)
    readonly_fields = ("last_sent_on", "uncertain_on", "created_by", "created_at")
    actions = ["mark_uncertain_sent", "send_uncertain_again"]

    @admin.action(description=_("Uncertain: mark as sent (it did go out)"))
    def mark_uncertain_sent(self, request, queryset):
        self._resolve(request, queryset, went_out=True)

    @admin.action(description=_("Uncertain: send again (it did not go out)"))
    def send_uncertain_again(self, request, queryset):
        self._resolve(request, queryset, went_out=False)

    def _resolve(self, request, queryset, *, went_out: bool) -> None:
        done = sum(
            services.resolve_uncertain_report(row, by=request.user, went_out=went_out)
            for row in queryset.filter(uncertain_on__isnull=False)
        )
        self.message_user(request, _("Resolved %(n)d uncertain report(s).") % {"n": done})

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
