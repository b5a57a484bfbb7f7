"""The intake console: batches, the dead-letter list, import profiles and source health."""

from django import forms
from django.conf import settings
from django.contrib import admin
from django.db.models import Count, F, Q
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.admin_decisions import Decision, DecisionAdmin, ReasonForm
from accounts.money import format_money

from .. import uploads
from ..models import (
    WARNABLE_FIELDS,
    ImportProfile,
    IntakeBatch,
    Rejection,
    RowWarning,
    SourceHealth,
)
from . import admin_views, batches, health, invoices, spreadsheets


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
    return format_money(amount, currency) if amount is not None else "—"


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


def _column_field(name: str) -> str:
    return f"headers_{name}"


class ImportProfileForm(forms.ModelForm):
    """An import profile as a form with one row per ledger field (the header names that
    fill it) and check boxes for the required fields, instead of raw JSON."""

    class Meta:
        model = ImportProfile
        fields = [
            "name",
            "label",
            "description",
            "source",
            "decimal_separator",
            "thousands_separator",
            "default_currency",
            "default_terms_days",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        columns = self.instance.columns or {}
        for name, label in invoices.PROFILE_FIELDS.items():
            self.fields[_column_field(name)] = forms.CharField(
                label=label,
                required=False,
                initial=", ".join(columns.get(name, [])),
                widget=forms.TextInput(attrs={"size": 60}),
                help_text=_(
                    "Header names in the file, separated by commas (case and spaces "
                    "do not matter); the first one found is used."
                ),
            )
        self.fields["required_fields"] = forms.MultipleChoiceField(
            label=_("Required columns"),
            choices=list(invoices.PROFILE_FIELDS.items()),
            required=False,
            initial=list(self.instance.required or []),
            widget=forms.CheckboxSelectMultiple,
            help_text=_(
                "A file without one of these columns is refused as a whole, and a row "
                "with one of them empty is rejected."
            ),
        )
        self.fields["warn_only_fields"] = forms.MultipleChoiceField(
            label=_("Fields that only warn"),
            choices=[(n, invoices.PROFILE_FIELDS[n]) for n in WARNABLE_FIELDS],
            required=False,
            initial=list(self.instance.warn_only or []),
            widget=forms.CheckboxSelectMultiple,
            help_text=_(
                "A malformed value in one of these is left out and noted as a warning on "
                "the row; the invoice still loads. Unticked, the row is rejected instead."
            ),
        )
        self.fields["date_format_list"] = forms.CharField(
            label=_("Date formats"),
            required=False,
            initial="\n".join(self.instance.date_formats or []),
            widget=forms.Textarea(attrs={"rows": 3, "cols": 30}),
            help_text=_("One strftime pattern a line, tried in order, e.g. %d/%m/%Y."),
        )

    def clean(self):
        data = super().clean()
        columns, seen = {}, {}
        for name in invoices.PROFILE_FIELDS:
            aliases = [a.strip() for a in data.get(_column_field(name), "").split(",")]
            aliases = [a for a in aliases if a]
            for alias in aliases:
                key = " ".join(alias.lower().split())
                if key in seen and seen[key] != name:
                    self.add_error(
                        _column_field(name),
                        _("“%(alias)s” is already a header of %(other)s.")
                        % {"alias": alias, "other": invoices.PROFILE_FIELDS[seen[key]]},
                    )
                seen[key] = name
            if aliases:
                columns[name] = aliases
        both = set(data.get("required_fields") or ()) & set(data.get("warn_only_fields") or ())
        if both:
            self.add_error(
                "warn_only_fields",
                _("%(fields)s cannot be both required and only warn.")
                % {
                    "fields": ", ".join(str(invoices.PROFILE_FIELDS[name]) for name in sorted(both))
                },
            )
        for name in data.get("required_fields", []):
            if name not in columns:
                self.add_error(
                    _column_field(name),
                    _("%(field)s is required: give at least one header name.")
                    % {"field": invoices.PROFILE_FIELDS[name]},
                )
        # Fields this form does not know (added by hand) are kept as they were.
        unknown = self.instance.columns or {}
        unknown = {k: v for k, v in unknown.items() if k not in invoices.PROFILE_FIELDS}
        self.instance.columns = {**unknown, **columns}
        self.instance.required = list(data.get("required_fields", []))
        self.instance.warn_only = list(data.get("warn_only_fields", []))
        self.instance.date_formats = [
            line.strip() for line in data.get("date_format_list", "").splitlines() if line.strip()
        ]
        return data


@admin.register(ImportProfile)
class ImportProfileAdmin(admin.ModelAdmin):
    form = ImportProfileForm
    list_display = [
        "label",
        "name",
        "source",
        "default_currency",
        "required_in_words",
        "warn_only_in_words",
        "is_builtin",
        "updated_at",
    ]
    readonly_fields = [
        "is_builtin",
        "updated_at",
        "columns_in_words",
        "required_in_words",
        "warn_only_in_words",
    ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The form lists its own fields: the header rows it adds are not model fields.
        if self.has_change_permission(request, obj):
            kwargs["fields"] = None
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=_("columns"))
    def columns_in_words(self, profile):
        rows = [
            (label, ", ".join(profile.columns.get(name, [])) or "—")
            for name, label in invoices.PROFILE_FIELDS.items()
        ]
        return format_html(
            "<table>{}</table>", format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", rows)
        )

    @admin.display(description=_("required columns"))
    def required_in_words(self, profile):
        return ", ".join(str(invoices.PROFILE_FIELDS.get(n, n)) for n in profile.required) or "—"

    @admin.display(description=_("only warn"))
    def warn_only_in_words(self, profile):
        return ", ".join(str(invoices.PROFILE_FIELDS.get(n, n)) for n in profile.warn_only) or "—"

    def get_fieldsets(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return [
                (None, {"fields": ["name", "label", "description", "source", "is_builtin"]}),
                (
                    None,
                    {
                        "fields": [
                            "columns_in_words",
                            "required_in_words",
                            "warn_only_in_words",
                            "date_formats",
                        ]
                    },
                ),
                (
                    None,
                    {
                        "fields": [
                            "decimal_separator",
                            "thousands_separator",
                            "default_currency",
                            "default_terms_days",
                            "updated_at",
                        ]
                    },
                ),
            ]
        columns = [_column_field(name) for name in invoices.PROFILE_FIELDS]
        return [
            (None, {"fields": ["name", "label", "description", "source", "is_builtin"]}),
            (_("Columns: the header names for each field"), {"fields": columns}),
            (
                _("Required and warn-only fields"),
                {"fields": ["required_fields", "warn_only_fields"]},
            ),
            (
                _("Formats and defaults"),
                {
                    "fields": [
                        "date_format_list",
                        "decimal_separator",
                        "thousands_separator",
                        "default_currency",
                        "default_terms_days",
                        "updated_at",
                    ]
                },
            ),
        ]

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
