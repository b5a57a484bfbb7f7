"""The intake console: batches, the dead-letter list, import profiles and source health."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, F, Q
from django.urls import path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts.admin_decisions import Decision, DecisionAdmin, ReasonForm

from .. import uploads
from ..models import (
    WARNABLE_FIELDS,
    ImportProfile,
    IntakeBatch,
    Rejection,
    RowWarning,
    SourceHealth,
)
from . import admin_views, batches, health, spreadsheets


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


class RowWarningInline(admin.TabularInline):
    """Rows that loaded with a value left out: seen by whoever may see the batch."""

    model = RowWarning
    fields = ["row_number", "number", "reason_text"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    verbose_name_plural = _("rows loaded with warnings (the value named was left out)")

    @admin.display(description=_("warning"))
    def reason_text(self, warning):
        return warning.reason

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("integrations.view_intakebatch")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

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
        "warned",
        "created_by",
    ]
    list_filter = ["source", "kind", "status", "is_dry_run"]
    list_select_related = ["profile", "created_by"]
    search_fields = ["filename", "file_sha256"]
    inlines = [RejectionInline, RowWarningInline]
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


def money(amount, currency) -> str:
    return f"{currency} {amount:,.2f}" if amount is not None else "—"


@admin.register(Rejection)
class RejectionAdmin(DecisionAdmin):
    """The dead-letter list, ranked by impact: the most money at stake first (amounts
    are compared as written: filter by currency to compare like with like), then the most
    invoices blocked, then the oldest."""

    list_display = [
        "batch",
        "row_number",
        "at_stake",
        "invoices_blocked",
        "reason_text",
        "status",
        "created_at",
        "resolution",
        "resolved_by",
    ]
    list_filter = ["status", "batch__source", "batch__kind", "currency"]
    list_select_related = ["batch", "resolved_by"]
    search_fields = ["=batch__id", "resolution"]
    ordering = [
        F("amount").desc(nulls_last=True),
        "-invoices_blocked",
        "created_at",
        "pk",
    ]
    change_list_template = "admin/integrations/spreadsheet/rejection_change_list.html"
    readonly_fields = [
        "batch",
        "row_number",
        "at_stake",
        "invoices_blocked",
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

    @admin.display(description=_("amount at stake"), ordering="amount")
    def at_stake(self, rejection):
        return money(rejection.amount, rejection.currency)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "waiting": health.waiting_by_source()}
        return super().changelist_view(request, extra_context)

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


# The invoice fields a profile can map, as finance names them.
INVOICE_FIELDS = (
    ("number", _("Invoice number")),
    ("customer_ref", _("Customer reference")),
    ("customer_name", _("Customer name")),
    ("issued_on", _("Issue date")),
    ("due_on", _("Due date")),
    ("currency", _("Currency")),
    ("amount", _("Amount")),
    ("amount_due", _("Amount due")),
    ("reference", _("Reference")),
    ("email", _("Contact e-mail")),
    ("phone", _("Contact phone")),
    ("contact_name", _("Contact name")),
    ("country", _("Country")),
)


class ImportProfileForm(forms.ModelForm):
    """Which fields a row must have, and which only warn when their value is bad."""

    required = forms.MultipleChoiceField(
        label=_("Required fields"),
        choices=INVOICE_FIELDS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("A row without one of these is rejected."),
    )
    warn_only = forms.MultipleChoiceField(
        label=_("Fields that only warn"),
        choices=[(name, label) for name, label in INVOICE_FIELDS if name in WARNABLE_FIELDS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "A malformed value in one of these is left out and noted as a warning on the "
            "row; the invoice still loads. Unticked, the row is rejected instead."
        ),
    )

    class Meta:
        model = ImportProfile
        fields = [
            "name",
            "label",
            "description",
            "source",
            "columns",
            "date_formats",
            "decimal_separator",
            "thousands_separator",
            "default_currency",
            "required",
            "warn_only",
            "default_terms_days",
        ]

    def clean(self):
        data = super().clean()
        both = set(data.get("required") or ()) & set(data.get("warn_only") or ())
        if both:
            labels = dict(INVOICE_FIELDS)
            self.add_error(
                "warn_only",
                _("%(fields)s cannot be both required and only warn.")
                % {"fields": ", ".join(str(labels[name]) for name in sorted(both))},
            )
        return data


@admin.register(ImportProfile)
class ImportProfileAdmin(admin.ModelAdmin):
    form = ImportProfileForm
    list_display = [
        "label",
        "name",
        "source",
        "default_currency",
        "required_list",
        "warn_only_list",
        "is_builtin",
        "updated_at",
    ]
    readonly_fields = ["is_builtin", "updated_at"]

    @admin.display(description=_("required"))
    def required_list(self, profile):
        labels = dict(INVOICE_FIELDS)
        return ", ".join(str(labels.get(name, name)) for name in profile.required) or "—"

    @admin.display(description=_("only warn"))
    def warn_only_list(self, profile):
        labels = dict(INVOICE_FIELDS)
        return ", ".join(str(labels.get(name, name)) for name in profile.warn_only) or "—"

    def has_delete_permission(self, request, obj=None):
        if obj is not None and (obj.is_builtin or obj.batches.exists()):
            return False
        return super().has_delete_permission(request, obj)


@admin.register(SourceHealth)
class SourceHealthAdmin(ReadOnlyAdmin):
    list_display = [
        "source",
        "state",
        "failing_since",
        "waiting",
        "last_success_at",
        "last_failure_at",
        "consecutive_failures",
        "last_error",
    ]
    ordering = ["-consecutive_failures", "failing_since", "source"]

    @admin.display(description=_("state"))
    def state(self, health):
        if health.is_failing:
            return format_html('<strong style="color:#ba2121">{}</strong>', _("failing"))
        return _("ok")

    @admin.display(description=_("waiting"))
    def waiting(self, source_health):
        """How much this source's open rejections hold up (one small query per source)."""
        waiting = health.waiting_for(source_health)
        if not waiting.rows:
            return "—"
        amounts = ", ".join(money(total, currency) for currency, total in waiting.amounts_shown())
        return _("%(rows)d rows, %(invoices)d invoices blocked%(amounts)s") % {
            "rows": waiting.rows,
            "invoices": waiting.invoices_blocked,
            "amounts": f"; {amounts}" if amounts else "",
        }

    def changelist_view(self, request, extra_context=None):
        open_rejections = Rejection.objects.filter(status=Rejection.Status.OPEN).aggregate(
            rows=Count("pk"), batches=Count("batch", distinct=True)
        )
        failed = IntakeBatch.objects.filter(Q(status=IntakeBatch.Status.FAILED)).count()
        extra_context = {
            **(extra_context or {}),
            "open_rejections": open_rejections,
            "failed_batches": failed,
            "waiting": health.waiting_by_source(),
            "shares": health.row_shares(),
            "window_days": settings.INTAKE_HEALTH_WINDOW_DAYS,
        }
        return super().changelist_view(request, extra_context)
