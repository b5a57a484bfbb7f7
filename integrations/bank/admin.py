"""The bank statement pages: statements and their lines (records), and the upload.

Finance uploads a statement from the statement list; it is measured against the upload
limits, then imported as a stream and matched at once (`integrations.bank.importer`).
Statements and their lines are records, read-only, with links to the payments they made.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from ..intake.admin import ReadOnlyAdmin
from ..models import BankLine, BankStatement
from ..reconciliation.admin import TEMPLATES, payment_link
from ..uploads import UploadRefused, check_size, limit_uploads
from .formats import FORMATS
from .importer import import_statement
from .statement import StatementUnreadable


class UploadForm(forms.Form):
    file = forms.FileField(label=_("Statement file"))
    format = forms.ChoiceField(
        label=_("Format"),
        required=False,
        choices=[("", _("Detect"))] + [(f, f) for f in FORMATS],
    )
    account = forms.CharField(label=_("Own account (CSV only)"), required=False, max_length=64)


@admin.register(BankStatement)
class BankStatementAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "account",
        "statement_ref",
        "format",
        "currency",
        "from_on",
        "to_on",
        "opening_balance",
        "closing_balance",
        "lines_link",
        "batch",
    ]
    list_filter = ["format", "currency"]
    list_select_related = ["batch"]
    search_fields = ["=account", "statement_ref"]
    readonly_fields = [
        "batch",
        "format",
        "account",
        "statement_ref",
        "currency",
        "opening_balance",
        "closing_balance",
        "from_on",
        "to_on",
        "lines_link",
    ]
    change_list_template = f"{TEMPLATES}/statement_change_list.html"

    @admin.display(description=_("lines"))
    def lines_link(self, statement):
        url = reverse("admin:integrations_bankline_changelist")
        return format_html(
            '<a href="{}?statement__id__exact={}">{}</a>', url, statement.pk, _("lines")
        )

    def get_urls(self):
        return [
            path(
                "upload/",
                # Refused while it is received past UPLOAD_MAX_BYTES, as spreadsheets are.
                self.admin_site.admin_view(limit_uploads(self.upload_view)),
                name="integrations_bankstatement_upload",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_upload": request.user.has_perm("integrations.add_intakebatch"),
            "can_allocate": request.user.has_perm("accounts.add_allocation"),
        }
        return super().changelist_view(request, extra_context)

    def upload_view(self, request):
        """Finance uploads a statement; it is imported and matched at once."""
        if not request.user.has_perm("integrations.add_intakebatch"):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        refusal = getattr(request, "upload_refusal", None)
        if request.method == "POST" and refusal:
            form = UploadForm(request.POST, {})
            form.is_valid()
            form.errors["file"] = form.error_class([refusal])
        elif request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                check_size(upload.size)  # before a byte is read
                upload.seek(0)
                result = import_statement(
                    file=upload.file,  # read as a stream (spooled to disk when large)
                    filename=upload.name,
                    format=form.cleaned_data["format"] or None,
                    account=form.cleaned_data["account"],
                    by=request.user,
                )
            except UploadRefused as exc:
                form.add_error("file", str(exc))
            except StatementUnreadable as exc:
                form.add_error("file", _("The file cannot be read: %(e)s") % {"e": exc})
            else:
                summary = result.summary()
                self.message_user(
                    request,
                    _(
                        "%(lines)d lines read: %(payments)d payments, %(matched)d matched, "
                        "%(partial)d partially matched, %(review)d sent to review, "
                        "%(duplicates)d already imported, %(rejected)d rejected."
                    )
                    % {
                        "lines": summary["lines"],
                        "payments": summary["payments"],
                        "matched": summary["matched"],
                        "partial": summary["partially_matched"],
                        "review": result.outcome.review,
                        "duplicates": summary["duplicates"],
                        "rejected": result.rejected,
                    },
                    messages.SUCCESS if not result.rejected else messages.WARNING,
                )
                return HttpResponseRedirect(
                    reverse("admin:integrations_intakebatch_change", args=[result.batch.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import a bank statement"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, f"{TEMPLATES}/upload.html", context)


@admin.register(BankLine)
class BankLineAdmin(ReadOnlyAdmin):
    list_display = [
        "booked_on",
        "amount",
        "currency",
        "counterparty_name",
        "remittance_short",
        "bank_reference",
        "payment_link",
        "statement",
    ]
    list_filter = ["currency", "statement__format"]
    list_select_related = ["statement", "payment"]
    search_fields = ["=bank_reference", "=fingerprint", "counterparty_name"]
    readonly_fields = [
        "statement",
        "line_number",
        "fingerprint",
        "account",
        "booked_on",
        "value_on",
        "amount",
        "currency",
        "counterparty_name",
        "counterparty_account",
        "remittance",
        "bank_reference",
        "payment_link",
    ]
    fields = readonly_fields

    @admin.display(description=_("remittance"))
    def remittance_short(self, line):
        return line.remittance[:60] + ("…" if len(line.remittance) > 60 else "")

    @admin.display(description=_("payment"))
    def payment_link(self, line):
        return payment_link(line.payment)
