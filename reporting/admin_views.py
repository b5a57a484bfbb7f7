"""The admin's reporting pages: the aging report (screen and downloads) and customer statements."""

import csv
import datetime as dt

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import access_log
from accounts.models import Customer

from . import charts, effectiveness, services
from .aging import GROUP_BY_CHOICES, AgingReport, Filters, customer_rows, parse_edges, summary
from .base_currency import convert_summary
from .models import Aging, Effectiveness, ReportExport, ReportFormat

ON_SCREEN_CUSTOMERS = 25


class AgingReportForm(forms.Form):
    as_of = forms.DateField(
        label=gettext_lazy("As of"), widget=forms.DateInput(attrs={"type": "date"})
    )
    group_by = forms.ChoiceField(
        label=gettext_lazy("Group by"), choices=GROUP_BY_CHOICES, required=False
    )
    segment = forms.ChoiceField(
        label=gettext_lazy("Segment"),
        choices=[("", gettext_lazy("All")), *Customer.Segment.choices],
        required=False,
    )
    agent = forms.ModelChoiceField(
        label=gettext_lazy("Agent"),
        queryset=get_user_model()
        .objects.filter(is_active=True, is_staff=True)
        .order_by("username"),
        required=False,
        empty_label=gettext_lazy("All"),
    )
    currency = forms.RegexField(
        label=gettext_lazy("Currency"),
        regex=r"^[A-Za-z]{3}$",
        required=False,
        widget=forms.TextInput(attrs={"size": 4, "placeholder": "EUR"}),
    )
    min_balance = forms.DecimalField(
        label=gettext_lazy("Minimum balance"), max_digits=14, decimal_places=2, min_value=0,
        required=False,
    )  # fmt: skip
    edges = forms.CharField(
        label=gettext_lazy("Bucket edges (days)"),
        required=False,
        help_text=gettext_lazy("Empty: the default (AGING_BUCKET_EDGES)."),
        widget=forms.TextInput(attrs={"size": 14, "placeholder": "30,60,90,120"}),
    )
    detail = forms.BooleanField(label=gettext_lazy("Invoice-level detail"), required=False)
    in_base_currency = forms.BooleanField(
        label=gettext_lazy("Also in the base currency"),
        required=False,
        help_text=gettext_lazy(
            "Every total converted at the ECB rates of the date (BASE_CURRENCY)."
        ),
    )

    def clean_edges(self):
        value = self.cleaned_data["edges"].strip()
        return parse_edges(value) if value else None

    def report(self) -> AgingReport:
        data = self.cleaned_data
        agent = data.get("agent")
        return AgingReport(
            as_of=data["as_of"],
            group_by=data.get("group_by") or "",
            filters=Filters(
                segment=data.get("segment") or "",
                agent_id=agent.pk if agent else None,
                currency=(data.get("currency") or "").upper(),
                min_balance=data.get("min_balance"),
            ),
            edges=data.get("edges"),
            detail=bool(data.get("detail")),
            in_base_currency=bool(data.get("in_base_currency")),
        )


def _bound_form(request) -> AgingReportForm:
    data = request.GET.copy()
    data.setdefault("as_of", timezone.localdate().isoformat())
    return AgingReportForm(data)


def aging_report(request, model_admin):
    """The report on screen: the form, the bucket charts, the summary, the largest accounts."""
    services.require(request.user, services.VIEW_PERMISSION)
    form = _bound_form(request)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Aging report"),
        "opts": Aging._meta,
        "form": form,
        "can_export": request.user.has_perm(services.EXPORT_PERMISSION),
    }
    if form.is_valid():
        try:
            report = form.report()
        except ValidationError as exc:
            form.add_error(None, exc)
            return TemplateResponse(request, "admin/reporting/aging.html", context)
        report_summary = summary(report)
        query = request.GET.copy()
        query.pop("format", None)
        export_url = reverse("admin:reporting_aging_export")
        largest = list(customer_rows(report, limit=ON_SCREEN_CUSTOMERS))
        context.update(
            {
                "report": report,
                "buckets": [str(bucket.label) for bucket in report.buckets],
                "summary": report_summary,
                "group_label": dict(GROUP_BY_CHOICES).get(report.group_by, ""),
                "charts": [
                    mark_safe(_screen_chart(report, amounts))  # noqa: S308 - charts escape labels
                    for amounts in report_summary.totals.values()
                ],
                "largest": largest,
                "converted": convert_summary(report_summary) if report.in_base_currency else None,
                "downloads": [
                    (label, f"{export_url}?{urlencode({**query.dict(), 'format': fmt})}")
                    for fmt, label in ReportFormat.choices
                ],
            }
        )
        access_log.record(
            request,
            surface=access_log.Surface.REPORT,
            customer_ids=[row.customer_id for row in largest],
        )
    return TemplateResponse(request, "admin/reporting/aging.html", context)


def _screen_chart(report: AgingReport, amounts) -> str:
    return charts.stacked_bar_chart(
        [str(bucket.label) for bucket in report.buckets],
        [(_("Open"), amounts.buckets)],
        title=_("Open balance by age, %(currency)s") % {"currency": amounts.currency},
        width=640,
        height=240,
        y_label=amounts.currency,
    )


def aging_export(request):
    """A download of the report: CSV streamed, XLSX or PDF; recorded as a ReportExport."""
    services.require(request.user, services.EXPORT_PERMISSION)
    fmt = request.GET.get("format", "")
    if fmt not in ReportFormat.values:
        return HttpResponseBadRequest(_("Choose a format: pdf, csv or xlsx."))
    form = _bound_form(request)
    if not form.is_valid():
        return HttpResponseBadRequest(form.errors.as_text())
    try:
        report = form.report()
    except ValidationError as exc:
        return HttpResponseBadRequest(" ".join(exc.messages))
    file = services.export_aging(
        report=report, fmt=fmt, by=request.user, via=ReportExport.Via.ADMIN
    )
    access_log.record(
        request,
        surface=access_log.Surface.EXPORT,
        customer_ids=[None],
        details={"report_export": file.record.pk, "format": fmt, "filters": file.record.filters},
    )
    return _file_response(file)


def _file_response(file: services.ExportFile):
    if file.chunks is not None:
        response = StreamingHttpResponse(file.chunks, content_type=file.content_type)
    else:
        response = HttpResponse(file.content, content_type=file.content_type)
    response["Content-Disposition"] = f'attachment; filename="{file.filename}"'
    response["Cache-Control"] = "no-store"  # personal data
    return response


def customer_statement(request, customer_id: int):
    """The customer's statement PDF, as of ?as_of=YYYY-MM-DD (default today)."""
    services.require(request.user, services.STATEMENT_PERMISSION)
    customer = get_object_or_404(Customer, pk=customer_id)
    try:
        as_of = dt.date.fromisoformat(request.GET.get("as_of") or timezone.localdate().isoformat())
    except ValueError:
        return HttpResponseBadRequest(_("as_of must be a date, YYYY-MM-DD."))
    file = services.customer_statement(customer=customer, as_of=as_of, by=request.user)
    access_log.record(
        request,
        surface=access_log.Surface.STATEMENT,
        customer_ids=[customer.pk],
        details={"report_export": file.record.pk},
    )
    return _file_response(file)


# --- which messages get paid (reporting.effectiveness) ---------------------------------------


class EffectivenessForm(forms.Form):
    sent_from = forms.DateField(
        label=gettext_lazy("Sent from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    sent_until = forms.DateField(
        label=gettext_lazy("Sent until"), widget=forms.DateInput(attrs={"type": "date"})
    )
    group_by = forms.MultipleChoiceField(
        label=gettext_lazy("Group by"),
        choices=effectiveness.DIMENSIONS,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def clean(self):
        data = super().clean()
        if (
            data.get("sent_from")
            and data.get("sent_until")
            and data["sent_from"] > data["sent_until"]
        ):
            raise ValidationError(_("The first day comes after the last."))
        return data

    def report(self, as_of: dt.date) -> effectiveness.Report:
        data = self.cleaned_data
        chosen = set(data.get("group_by") or [])
        return effectiveness.Report(
            sent_from=data["sent_from"],
            sent_until=data["sent_until"],
            as_of=as_of,
            # In the order the page lists them, whatever order the query string had.
            group_by=tuple(name for name in effectiveness.DIMENSION_NAMES if name in chosen),
        )


def _effectiveness_form(request, today: dt.date) -> EffectivenessForm:
    data = request.GET.copy()
    data.setdefault("sent_until", today.isoformat())
    data.setdefault("sent_from", (today - dt.timedelta(days=90)).isoformat())
    if "group_by" not in data:
        data.setlist("group_by", ["step"])
    return EffectivenessForm(data)


def effectiveness_report(request, model_admin):
    """Which messages get paid: rates with intervals per group, and the experiments.

    Outcomes are judged as of today; ?format=csv downloads the rows (counts and rates per
    group, no customer data)."""
    services.require(request.user, effectiveness.PERMISSION)
    today = timezone.localdate()
    form = _effectiveness_form(request, today)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Which messages get paid"),
        "opts": Effectiveness._meta,
        "form": form,
        "reply_days": effectiveness.REPLY_WINDOW_DAYS,
    }
    if not form.is_valid():
        return TemplateResponse(request, "admin/reporting/effectiveness.html", context)
    report = form.report(today)
    rows = effectiveness.rows(report)
    if request.GET.get("format") == "csv":
        return _effectiveness_csv(report, rows)
    query = request.GET.copy()
    query["format"] = "csv"
    context.update(
        {
            "report": report,
            "rows": rows,
            "experiments": effectiveness.compare_variants(report),
            "csv_url": f"?{query.urlencode()}",
        }
    )
    return TemplateResponse(request, "admin/reporting/effectiveness.html", context)


def _effectiveness_csv(report: effectiveness.Report, rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="effectiveness-{report.sent_from}-{report.sent_until}.csv"'
    )
    writer = csv.writer(response)
    groups = list(rows[0].group) if rows else []
    measures = ("delivered", "bounced", "replied", "paid_7", "paid_14")
    header = [*groups, "sent"]
    for name in measures:
        header += [name, f"{name}_of", f"{name}_rate", f"{name}_low", f"{name}_high"]
    writer.writerow([*header, "currency", "collected_14"])
    for row in rows:
        values = [*row.group.values(), row.sent]
        for name in measures:
            rate = getattr(row, name)
            shown = [rate.value, *(rate.interval or (None, None))]
            values += [rate.hits, rate.total, *("" if x is None else f"{x:.4f}" for x in shown)]
        # One line per currency collected (amounts in two currencies are never added).
        for currency, amount in sorted(row.collected_14.items()) or [("", "")]:
            writer.writerow([*values, currency, amount])
    return response
