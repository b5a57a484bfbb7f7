"""Any console list as a file: CSV (streamed) or XLSX, with the list's filters, search and order.

`export_list` serves /admin/export/<app>/<model>/?format=csv|xlsx&<the list's query>:
the ModelAdmin registered for that model builds its own ChangeList from the query, so
the file holds exactly the rows the list shows over all its pages (the same filters,
search, ordering and per-user restrictions), one column per list column, with the
column titles the list shows.

Rules:
1. Permission-checked: the user must see the list (view or change permission on the
   model) and hold `staff.export_lists` (granted to managers and finance).
2. Bounded: a list of more than LIST_EXPORT_MAX_ROWS rows is refused with a message
   asking for a narrower filter; nothing is truncated silently.
3. Logged: one access-log entry per customer in the file (surface "list export"), or one
   without a customer for a list that names none, written before the first byte is sent.
4. Safe text: control characters are removed (XML, and so XLSX, cannot carry most of
   them) and a text cell that a spreadsheet would run as a formula starts with a quote.
"""

import copy
import csv
import datetime as dt
import html
import io
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import display_for_field, label_for_field, lookup_field
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist, PermissionDenied
from django.db import models
from django.http import Http404, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext as _

from . import access_log
from .api_policy import CONTROL_CHARACTERS
from .models import Customer

EXPORT_PERMISSION = "staff.export_lists"
FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK_ROWS = 2000
# A cell starting with one of these is a formula to a spreadsheet program (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_OWN_PARAMETERS = ("format",)


def spreadsheet_text(value: str) -> str:
    """Text without control characters that no spreadsheet program runs as a formula
    (a number such as -12.50 or an E.164 phone is left as it is)."""
    text = CONTROL_CHARACTERS.sub("", value)
    if text.startswith(_FORMULA_START) and not _is_number(text):
        return f"'{text}"
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text.replace(" ", ""))
    except ArithmeticError:
        return False
    return True


def _plain(value) -> str:
    """The text of a value as the list shows it, without its HTML (links, escaping)."""
    return html.unescape(strip_tags(str(value)))


def _model_admin(app_label: str, model_name: str):
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == app_label and model._meta.model_name == model_name:
            return model_admin
    raise Http404(_("There is no such list."))


def _columns(changelist) -> list[str]:
    return [name for name in changelist.list_display if name != "action_checkbox"]


def _cell(name: str, obj, model_admin):
    """The column's value for one row: numbers and dates as such, everything else text."""
    try:
        field, _attr, value = lookup_field(name, obj, model_admin)
    except (AttributeError, FieldDoesNotExist, ObjectDoesNotExist):
        return ""
    if value is None:
        return ""
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, Decimal | int | float | dt.date):
        return value
    if field is not None and getattr(field, "flatchoices", None):
        value = display_for_field(value, field, "")
    elif isinstance(field, models.ForeignKey) or isinstance(value, models.Model):
        value = str(value)
    return spreadsheet_text(_plain(value))


def _customer_ids(changelist, limit: int) -> list[int | None]:
    """The customers in the file, for the access log; [None] for a list that names none."""
    model = changelist.model
    if model is Customer:
        column = "pk"
    else:
        try:
            field = model._meta.get_field("customer")
        except FieldDoesNotExist:
            return [None]
        if not (field.is_relation and field.related_model is Customer):
            return [None]
        column = "customer_id"
    ids = changelist.queryset.order_by().values_list(column, flat=True)[:limit]
    return [pk for pk in dict.fromkeys(ids) if pk is not None] or [None]


class _Echo:
    """csv.writer's file: each row comes back as the text to stream."""

    def write(self, value: str) -> str:
        return value


def _csv_chunks(header: list[str], rows):
    writer = csv.writer(_Echo())
    yield "\ufeff"  # a BOM, so spreadsheet programs read UTF-8
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(["" if value is None else value for value in row])


def _xlsx_content(title: str, header: list[str], rows) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(spreadsheet_text(title)[:31] or "List")
    sheet.freeze_panes = "A2"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export_list(request, app_label: str, model_name: str):
    """The list at this query as a CSV or XLSX file (see the module's rules)."""
    model_admin = _model_admin(app_label, model_name)
    if not model_admin.has_view_or_change_permission(request):
        raise PermissionDenied
    if not request.user.has_perm(EXPORT_PERMISSION):
        raise PermissionDenied(_("You do not have permission to export lists."))
    fmt = request.GET.get("format", "")
    if fmt not in FORMATS:
        return HttpResponseBadRequest(_("format: choose csv or xlsx."))
    # The ChangeList reads request.GET and refuses parameters it does not know.
    list_request = copy.copy(request)
    list_request.GET = request.GET.copy()
    for name in _OWN_PARAMETERS:
        list_request.GET.pop(name, None)
    try:
        changelist = model_admin.get_changelist_instance(list_request)
    except IncorrectLookupParameters:
        return HttpResponseBadRequest(_("The list's filters are not valid."))
    limit = settings.LIST_EXPORT_MAX_ROWS
    count = changelist.queryset.order_by()[: limit + 1].count()
    if count > limit:
        messages.error(
            request,
            _(
                "This list has more than %(limit)s rows; narrow it with a filter or a search "
                "before exporting."
            )
            % {"limit": f"{limit:,}"},
        )
        query = list_request.GET.urlencode()
        url = reverse(f"admin:{app_label}_{model_name}_changelist")
        return redirect(f"{url}?{query}" if query else url)

    columns = _columns(changelist)
    header = [
        spreadsheet_text(
            capfirst(_plain(label_for_field(name, changelist.model, model_admin=model_admin)))
        )
        for name in columns
    ]
    access_log.record(
        request,
        surface=access_log.Surface.LIST_EXPORT,
        customer_ids=_customer_ids(changelist, limit),
        details={
            "list": f"{app_label}.{model_name}",
            "format": fmt,
            "rows": count,
            # Filter names only: a search term or a filter value can be personal data.
            "filters": sorted(key for key in list_request.GET if key != "q"),
            "searched": bool(list_request.GET.get("q", "").strip()),
        },
    )
    rows = (
        [_cell(name, obj, model_admin) for name in columns]
        for obj in changelist.queryset.iterator(chunk_size=CHUNK_ROWS)
    )
    title = str(changelist.model._meta.verbose_name_plural)
    filename = f"{slugify(title) or model_name}-{timezone.localdate().isoformat()}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(_csv_chunks(header, rows), content_type=FORMATS[fmt])
    else:
        response = HttpResponse(_xlsx_content(title, header, rows), content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"  # personal data
    return response
