"""The intake console: batches, the dead-letter list, import profiles and source health."""

from django import forms
from django.contrib import admin
from django.db.models import Count, Q
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_decisions import Decision, DecisionAdmin, ReasonForm

from .. import uploads
from ..models import ImportProfile, IntakeBatch, Rejection, SourceHealth
from . import admin_views, batches, spreadsheets


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened: viewed, never edited or deleted here."""

    show_facets = admin.ShowFacets.NEVER

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RejectionInline(admin.TabularInline):
    model = Rejection
    fields = ["row_number", "reason_text", "raw", "status"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    show_change_link = True

    @admin.display(description=_("reason"))
    def reason_text(self, rejection):
        return rejection.reason

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(IntakeBatch)
class IntakeBatchAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "started_at",
        "source",
        "kind",
        "filename",
        "profile",
        "status",
        "rows_read",
        "created",
        "updated",
        "unchanged",
        "rejected",
        "created_by",
    ]
    list_filter = ["source", "kind", "status", "is_dry_run"]
    list_select_related = ["profile", "created_by"]
    search_fields = ["filename", "file_sha256"]
    inlines = [RejectionInline]
    date_hierarchy = None
    change_list_template = "admin/integrations/spreadsheet/intakebatch_change_list.html"

    def get_urls(self):
        view = self.admin_site.admin_view(
            uploads.limit_uploads(
                lambda request, kind=IntakeBatch.Kind.INVOICES: admin_views.import_view(
                    request, self, kind
                )
            )
        )
        return [
            path("import/", view, name="integrations_intakebatch_import"),
            path("import/<slug:kind>/", view, name="integrations_intakebatch_import_kind"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_import": admin_views.can_import(request.user),
        }
        return super().changelist_view(request, extra_context)


class DismissForm(ReasonForm):
    reason = forms.CharField(label=_("Why dismiss these rows?"), max_length=200)


@admin.register(Rejection)
class RejectionAdmin(DecisionAdmin):
    list_display = ["batch", "row_number", "reason_text", "status", "resolution", "resolved_by"]
    list_filter = ["status", "batch__source", "batch__kind"]
    list_select_related = ["batch", "resolved_by"]
    search_fields = ["=batch__id", "resolution"]
    readonly_fields = [
        "batch",
        "row_number",
        "errors",
        "status",
        "resolution",
        "resolved_by",
        "resolved_at",
        "created_at",
    ]
    decisions = (
        Decision(
            "dismiss",
            _("Dismiss with a reason"),
            "integrations.resolve_rejection",
            lambda rejection, by, reason: batches.dismiss_rejection(
                rejection, by=by, reason=reason
            ),
            form=DismissForm,
            applies=lambda rejection: rejection.status == Rejection.Status.OPEN,
            done=_("%(n)d row(s) dismissed."),
        ),
    )
    show_facets = admin.ShowFacets.NEVER
    change_form_template = "admin/integrations/spreadsheet/rejection_change_form.html"

    @admin.display(description=_("reason"))
    def reason_text(self, rejection):
        return rejection.reason

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        view = self.admin_site.admin_view(
            lambda request, object_id: admin_views.retry_view(request, self, object_id)
        )
        return [
            path("<path:object_id>/retry/", view, name="integrations_rejection_retry"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        rejection = self.get_object(request, object_id)  # None for an unknown or bad id
        extra_context = {
            **(extra_context or {}),
            "can_retry": request.user.has_perm("integrations.resolve_rejection")
            and rejection is not None
            and spreadsheets.is_retryable(rejection),
        }
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(ImportProfile)
class ImportProfileAdmin(admin.ModelAdmin):
    list_display = ["label", "name", "source", "default_currency", "is_builtin", "updated_at"]
    readonly_fields = ["is_builtin", "updated_at"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None and (obj.is_builtin or obj.batches.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(SourceHealth)
class SourceHealthAdmin(ReadOnlyAdmin):
    list_display = [
        "source",
        "state",
        "last_success_at",
        "last_failure_at",
        "consecutive_failures",
        "last_error",
    ]
    ordering = ["-consecutive_failures", "source"]

    @admin.display(description=_("state"))
    def state(self, health):
        if health.is_failing:
            return format_html('<strong style="color:#ba2121">{}</strong>', _("failing"))
        return _("ok")

    def changelist_view(self, request, extra_context=None):
        open_rejections = Rejection.objects.filter(status=Rejection.Status.OPEN).aggregate(
            rows=Count("pk"), batches=Count("batch", distinct=True)
        )
        failed = IntakeBatch.objects.filter(Q(status=IntakeBatch.Status.FAILED)).count()
        extra_context = {
            **(extra_context or {}),
            "open_rejections": open_rejections,
            "failed_batches": failed,
        }
        return super().changelist_view(request, extra_context)
