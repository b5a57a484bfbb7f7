"""Intake pages of the console: upload, preview, confirm a spreadsheet; correct and retry a row."""

import uuid
from pathlib import Path

from django import forms
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import uploads
from ..models import ImportProfile, IntakeBatch, Rejection
from . import kinds, spreadsheets

UPLOAD_SALT = "integrations.spreadsheet-upload"
UPLOAD_MAX_AGE = 24 * 3600
OUTCOME_LABELS = {
    "created": gettext_lazy("new"),
    "updated": gettext_lazy("changed"),
    "unchanged": gettext_lazy("unchanged"),
    "rejected": gettext_lazy("error"),
}
# How a previewed invoice row found its customer (integrations/intake/invoices.py).
CUSTOMER_MATCH_LABELS = {
    "key": gettext_lazy("existing customer"),
    "reference": gettext_lazy("existing customer, found by its reference"),
    "name": gettext_lazy("existing customer, found by its name"),
    "new": gettext_lazy("new customer"),
}
ENCODINGS = [
    ("", gettext_lazy("UTF-8 (default)")),
    ("cp1252", "Windows-1252"),
    ("latin-1", "ISO-8859-1 (Latin-1)"),
]


# Per kind: the page's title and what it tells finance before the upload.
PAGES = {
    IntakeBatch.Kind.INVOICES: (
        gettext_lazy("Import invoices from a spreadsheet"),
        gettext_lazy(
            "Upload invoices exported from your accounting system. Customers and their "
            "primary contacts are created or updated from the invoice rows. You will see "
            "what would change before anything is written."
        ),
    ),
    IntakeBatch.Kind.CUSTOMERS: (
        gettext_lazy("Import customers from a spreadsheet"),
        gettext_lazy(
            "Columns: external_ref (required), source, name, kind, segment, industry, "
            "country, timezone, language, currency, credit_limit. A customer is found by "
            "source and external_ref. You will see what would change before anything is "
            "written."
        ),
    ),
    IntakeBatch.Kind.CONTACTS: (
        gettext_lazy("Import contacts from a spreadsheet"),
        gettext_lazy(
            "Columns: customer_ref and email (required), name, role, phone, is_primary, "
            "customer_source. A contact is found by its customer's reference and its e-mail; "
            "phones are stored in E.164 for the customer's country. You will see what would "
            "change before anything is written."
        ),
    ),
    IntakeBatch.Kind.PAYMENTS: (
        gettext_lazy("Import payments from a spreadsheet"),
        gettext_lazy(
            "Columns: external_id (required), source, customer_ref, kind, amount, currency, "
            "received_on, method, remittance_reference, payer_name, payer_account (who "
            "sent the money). A payment is found by source and "
            "external_id; its amount, currency and payer never change once recorded. You "
            "will see what would change before anything is written."
        ),
    ),
}


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV or XLSX file"))
    profile = forms.ModelChoiceField(
        ImportProfile.objects.all(), label=gettext_lazy("Import profile"), empty_label=None
    )
    encoding = forms.ChoiceField(
        choices=ENCODINGS, required=False, label=gettext_lazy("CSV encoding")
    )

    def __init__(self, *args, kind: kinds.Kind, **kwargs):
        super().__init__(*args, **kwargs)
        if not kind.needs_profile:
            del self.fields["profile"]


class ConfirmForm(forms.Form):
    token = forms.CharField(widget=forms.HiddenInput)


def can_import(user, kind: kinds.Kind = kinds.INVOICES) -> bool:
    """Finance's intake permission, and for master data and payments the right to add them."""
    return user.has_perm("integrations.add_intakebatch") and (
        not kind.permission or user.has_perm(kind.permission)
    )


def import_url(kind: kinds.Kind) -> str:
    if kind is kinds.INVOICES:
        return reverse("admin:integrations_intakebatch_import")
    return reverse("admin:integrations_intakebatch_import_kind", args=[kind.name])


def _store_upload(upload) -> str:
    suffix = Path(upload.name).suffix.lower()[:8]
    return default_storage.save(f"intake/uploads/{uuid.uuid4().hex}{suffix}", upload)


def _open_stored(stored: str):
    return default_storage.open(stored, "rb")


def _import(stored: str, **kwargs) -> IntakeBatch:
    with _open_stored(stored) as stream:
        return spreadsheets.import_spreadsheet(getattr(stream, "file", stream), **kwargs)


def _preview(stored: str, **kwargs) -> spreadsheets.Preview:
    with _open_stored(stored) as stream:
        return spreadsheets.preview_spreadsheet(getattr(stream, "file", stream), **kwargs)


def import_view(request, model_admin, kind_name: str = IntakeBatch.Kind.INVOICES):
    """Upload a file, preview its first rows, confirm to load it for real.

    One page for every kind. The upload is refused while it is received once it passes
    UPLOAD_MAX_BYTES (`uploads.limit_uploads` wraps this view), and the preview refuses a
    file over any other upload limit; it reads the first UPLOAD_PREVIEW_ROWS rows through
    the load, rolled back, and writes nothing (no batch, no rejected row). Every error is
    said on the page or in a message, never as an error page.
    """
    kind = kinds.KINDS.get(kind_name)
    if kind is None:
        raise Http404
    if not can_import(request.user, kind):
        raise PermissionDenied
    title, intro = PAGES[kind.name]
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": IntakeBatch._meta,
        "title": title,
        "intro": intro,
        "key_label": kind.key_label,
        "import_url": import_url(kind),
    }
    form = UploadForm(
        initial={"profile": ImportProfile.objects.filter(name="generic-csv").first()}, kind=kind
    )
    refusal = getattr(request, "upload_refusal", None)
    if request.method == "POST" and refusal:
        form = UploadForm(request.POST, {}, kind=kind)
        form.is_valid()
        form.errors["file"] = form.error_class([refusal])
    elif request.method == "POST" and "token" in request.POST:
        return _confirm(request, kind)
    elif request.method == "POST":
        form = UploadForm(request.POST, request.FILES, kind=kind)
        if form.is_valid():
            _preview_upload(request, form, kind, context)
    context["form"] = form
    return TemplateResponse(request, "admin/integrations/spreadsheet/import.html", context)


def _preview_upload(request, form: UploadForm, kind: kinds.Kind, context: dict) -> None:
    file = form.cleaned_data["file"]
    try:
        uploads.check_size(file.size)
    except uploads.UploadRefused as exc:
        form.add_error("file", str(exc))
        return
    profile = form.cleaned_data.get("profile")
    stored = _store_upload(file)
    upload = {
        "kind": kind.name,
        "stored": stored,
        "filename": file.name,
        "profile": profile.pk if profile else None,
        "encoding": form.cleaned_data["encoding"] or None,
    }
    try:
        preview = _preview(
            stored, kind=kind.name, profile=profile, by=request.user, encoding=upload["encoding"]
        )
    except (spreadsheets.UnreadableFile, uploads.UploadRefused) as exc:
        default_storage.delete(stored)
        form.add_error("file", str(exc))
        return
    except spreadsheets.LoadFailed as exc:
        default_storage.delete(stored)
        form.add_error(None, _("The preview stopped at an error: %(error)s") % {"error": exc})
        return
    shows_customers = kind is kinds.INVOICES
    for row in preview.outcomes:
        if row.customer is not None:
            row.customer["label"] = CUSTOMER_MATCH_LABELS[row.customer["match"]]
    context.update(
        preview=preview,
        rows=[(row, OUTCOME_LABELS[row.outcome]) for row in preview.outcomes],
        shows_customers=shows_customers,
        customer_counts=_customer_counts(preview.outcomes) if shows_customers else None,
        more_rows=preview.has_more,
        confirm=ConfirmForm(initial={"token": signing.dumps(upload, salt=UPLOAD_SALT)}),
        upload=upload,
    )


def _customer_counts(outcomes) -> dict:
    """How many existing and new customers the previewed rows go to."""
    existing, new = set(), set()
    for row in outcomes:
        if row.customer is None:
            continue
        if row.customer["match"] == "new":
            new.add(row.customer["name"])
        else:
            existing.add(row.customer["id"])
    return {"existing": len(existing), "new": len(new)}


def _confirm(request, kind: kinds.Kind):
    form = ConfirmForm(request.POST)
    try:
        if not form.is_valid():
            raise signing.BadSignature
        upload = signing.loads(form.cleaned_data["token"], salt=UPLOAD_SALT, max_age=UPLOAD_MAX_AGE)
        if upload.get("kind", IntakeBatch.Kind.INVOICES) != kind.name:
            raise signing.BadSignature  # a token of another kind's page
    except signing.BadSignature:
        messages.error(request, _("The upload expired or was tampered with; upload it again."))
        return HttpResponseRedirect(import_url(kind))
    if not default_storage.exists(upload["stored"]):
        messages.error(request, _("This file was already loaded or has expired."))
        return HttpResponseRedirect(import_url(kind))
    try:
        batch = _import(
            upload["stored"],
            kind=kind.name,
            filename=upload["filename"],
            profile=ImportProfile.objects.get(pk=upload["profile"]) if upload["profile"] else None,
            by=request.user,
            encoding=upload["encoding"],
        )
    except spreadsheets.UnreadableFile as exc:
        messages.error(request, str(exc))
        if exc.batch is None:
            return HttpResponseRedirect(import_url(kind))
        return HttpResponseRedirect(
            reverse("admin:integrations_intakebatch_change", args=[exc.batch.pk])
        )
    except spreadsheets.LoadFailed as exc:
        if kind.is_atomic:
            error = _("Nothing was imported: %(error)s") % {"error": exc.batch.error}
        else:
            error = _("The load stopped at an error; the rows before it were loaded: %(error)s") % {
                "error": exc.batch.error
            }
        messages.error(request, error)
        return HttpResponseRedirect(
            reverse("admin:integrations_intakebatch_change", args=[exc.batch.pk])
        )
    finally:
        default_storage.delete(upload["stored"])
    messages.success(
        request,
        _(
            "%(read)d rows read: %(created)d created, %(updated)d updated, "
            "%(unchanged)d unchanged, %(rejected)d rejected."
        )
        % batch.counts()
        + (
            " " + _("%(warned)d loaded with a warning (see the batch's warnings).") % batch.counts()
            if batch.warned
            else ""
        ),
    )
    return HttpResponseRedirect(reverse("admin:integrations_intakebatch_change", args=[batch.pk]))


class RetryForm(forms.Form):
    """One text field per column of the rejected row, holding its raw value."""

    def __init__(self, *args, raw: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.columns = list(raw)
        for index, column in enumerate(self.columns):
            self.fields[f"col{index}"] = forms.CharField(
                label=column, required=False, initial=raw[column], max_length=500
            )

    def raw(self) -> dict:
        return {column: self.cleaned_data[f"col{i}"] for i, column in enumerate(self.columns)}


def retry_view(request, model_admin, object_id):
    """Correct a rejected row's raw values and run it through the same load again."""
    if not request.user.has_perm("integrations.resolve_rejection"):
        raise PermissionDenied
    rejection = get_object_or_404(Rejection.objects.select_related("batch__profile"), pk=object_id)
    if not spreadsheets.is_retryable(rejection):
        raise Http404(_("Only rows of spreadsheet loads can be corrected here."))
    errors = rejection.errors
    form = RetryForm(raw=rejection.raw)
    if request.method == "POST" and rejection.status == Rejection.Status.OPEN:
        form = RetryForm(request.POST, raw=rejection.raw)
        if form.is_valid():
            batch, errors = spreadsheets.retry_rejection(rejection, raw=form.raw(), by=request.user)
            if batch is not None:
                messages.success(
                    request, _("Row corrected and loaded in batch %(id)s.") % {"id": batch.pk}
                )
                return HttpResponseRedirect(
                    reverse("admin:integrations_rejection_change", args=[rejection.pk])
                )
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": Rejection._meta,
        "original": rejection,
        "title": _("Correct and retry %(row)s") % {"row": rejection},
        "form": form,
        "errors": sorted(errors.items()),
        "is_open": rejection.status == Rejection.Status.OPEN,
    }
    return TemplateResponse(request, "admin/integrations/spreadsheet/retry.html", context)
