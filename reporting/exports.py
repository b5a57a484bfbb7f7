"""Aging report files: CSV streamed in constant memory, XLSX (openpyxl), PDF through WeasyPrint.

Every file is laid out from the same rows: one per customer and currency (or per open
invoice with `detail`), a subtotal per group and currency after each group, and a total
per currency at the end. A row's first column says which it is, so a spreadsheet can
filter on it. Amounts are Decimal with two places; currencies are never added together.
Each file reads one snapshot of the ledger (REPEATABLE READ on PostgreSQL), so its rows,
subtotals and totals always agree.
"""

import contextlib
import csv
import datetime as dt
import io
import logging
import re
from collections.abc import Iterator
from decimal import Decimal

from django.db import connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

from accounts.api_policy import CONTROL_CHARACTERS
from accounts.money import format_amount, format_money

from . import charts
from .aging import (
    GROUP_BY_CHOICES,
    AgingReport,
    CustomerRow,
    GroupRow,
    InvoiceRow,
    Summary,
    customer_rows,
    invoice_rows,
    summary,
)
from .base_currency import BaseCurrencyTotals, convert_summary

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
# The PDF lists this many customers (the largest balances) after the summary by default;
# the CSV and XLSX files hold every customer.
PDF_CUSTOMER_LIMIT = 1000
CSV_CHUNK_ROWS = 500
CHART_SERIES = 7  # groups drawn one by one in a chart; the rest are added up as "Other"
# A cell starting with one of these is a formula to a spreadsheet program (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")
_ONE_LINE = str.maketrans("\t\r\n", "   ")


def filename(report: AgingReport, fmt: str) -> str:
    suffix = "-detail" if report.detail else ""
    return f"aging-{report.as_of.isoformat()}{suffix}.{fmt}"


@contextlib.contextmanager
def snapshot():
    """One consistent, read-only view of the ledger for a whole export.

    On PostgreSQL, outside any transaction, a REPEATABLE READ READ ONLY transaction: the
    summary and the rows streamed after it see the same data even while payments are
    booked. Inside a transaction already (tests, callers' own atomic blocks) that
    transaction's view is used as it is.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with transaction.atomic():
            yield
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


# --- Rows ----------------------------------------------------------------------------------


def _text(value) -> str:
    """A text cell that no spreadsheet program will run as a formula (E.164 phones stay)."""
    value = "" if value is None else str(value)
    if value.startswith(_FORMULA_START) and not _PHONE.match(value):
        return f"'{value}"
    return value


def _printable(text: str) -> str:
    """The text without control characters (accounts.api_policy.CONTROL_CHARACTERS): XML,
    and so XLSX, cannot carry most of them, and a PDF draws them as empty boxes."""
    return CONTROL_CHARACTERS.sub("", text)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, dt.date | Decimal | int):
        return value
    return _text(value)


def header(report: AgingReport) -> list[str]:
    common = [
        _("row"),
        _("group"),
        _("customer id"),
        _("customer"),
        _("customer reference"),
        _("currency"),
        *[str(bucket.label) for bucket in report.buckets],
        _("total"),
        _("disputed"),
        _("invoices"),
        _("customers"),
    ]
    if report.detail:
        return [
            *common,
            _("invoice"),
            _("issued on"),
            _("due on"),
            _("days past due"),
            _("invoice amount"),
            _("status"),
        ]
    return [
        *common,
        _("oldest invoice"),
        _("oldest due on"),
        _("oldest days past due"),
        _("credit limit"),
        _("credit limit currency"),
        _("segment"),
        _("industry"),
        _("country"),
        _("agent"),
        _("contact"),
        _("contact e-mail"),
        _("contact phone"),
        _("last contact on"),
        _("last contact"),
        _("next action on"),
        _("next action"),
    ]


def _customer_values(row: CustomerRow) -> list:
    return [
        "customer",
        row.group_label,
        row.customer_id,
        row.name,
        row.external_ref,
        row.currency,
        *row.buckets,
        row.total,
        row.disputed,
        row.invoices,
        1,
        row.oldest_invoice_number,
        row.oldest_due_on,
        row.oldest_days_past_due,
        row.credit_limit,
        row.credit_limit_currency,
        row.segment,
        row.industry,
        row.country,
        row.agent,
        row.contact_name,
        row.contact_email,
        row.contact_phone,
        row.last_contact_on,
        row.last_contact,
        row.next_action_on,
        row.next_action,
    ]


def _invoice_values(report: AgingReport, row: InvoiceRow) -> list:
    buckets = [
        row.balance if bucket == row.bucket else Decimal("0.00") for bucket in report.buckets
    ]
    return [
        "invoice",
        row.group_label,
        row.customer_id,
        row.customer_name,
        row.external_ref,
        row.currency,
        *buckets,
        row.balance,
        row.balance if row.status == "disputed" else Decimal("0.00"),
        1,
        "",
        row.number,
        row.issued_on,
        row.due_on,
        row.days_past_due,
        row.amount,
        row.status,
    ]


def _total_values(kind: str, label: str, amounts, width: int) -> list:
    values = [
        kind,
        label,
        "",
        "",
        "",
        amounts.currency,
        *amounts.buckets,
        amounts.total,
        amounts.disputed,
        amounts.invoices,
        amounts.customers,
    ]
    return values + [""] * (width - len(values))


def rows(report: AgingReport, report_summary: Summary) -> Iterator[list]:
    """The file's rows after the header: data, a subtotal per group, totals per currency."""
    width = len(header(report))
    data = (
        ((row.group_key, _invoice_values(report, row)) for row in invoice_rows(report))
        if report.detail
        else ((row.group_key, _customer_values(row)) for row in customer_rows(report))
    )
    current_group = None
    for group, values in data:
        if report.group_by and current_group is not None and group != current_group:
            yield from _subtotals(report_summary, current_group, width)
        current_group = group
        yield [_cell(value) for value in values]
    if report.group_by and current_group is not None:
        yield from _subtotals(report_summary, current_group, width)
    for amounts in report_summary.totals.values():
        yield [_cell(v) for v in _total_values("total", _("Total"), amounts, width)]
    if report.in_base_currency:
        for kind, label, currency, buckets, total, disputed in converted_lines(
            convert_summary(report_summary)
        ):
            values = [kind, label, "", "", "", currency, *buckets, total, disputed]
            yield [_cell(v) for v in values + [""] * (width - len(values))]


def converted_lines(converted: BaseCurrencyTotals) -> Iterator[tuple]:
    """The base-currency rows of a file: (kind, label, currency, buckets, total, disputed).

    One per currency (its cross rate in the label; "no rate" when missing), the total,
    then the caption and any warning as label-only lines, so a file says what it used."""
    width = len(converted.buckets)
    base = converted.base_currency
    for row in converted.rows:
        if row.is_missing:
            label = _("%(currency)s: no rate, not converted") % {"currency": row.currency}
            yield ("converted", label, base, [""] * width, "", "")
            continue
        label = _("%(currency)s at %(rate)s %(base)s") % {
            "currency": row.currency,
            "rate": row.rate_text,
            "base": base,
        }
        yield ("converted", label, base, row.buckets, row.total, row.disputed)
    label = _("Total in %(base)s") % {"base": base}
    if not converted.is_complete:
        label += " " + _("(incomplete)")
    yield ("converted total", label, base, converted.buckets, converted.total, converted.disputed)
    for note in [converted.caption, *converted.warnings]:
        yield ("note", note, "", [""] * width, "", "")


def _subtotals(report_summary: Summary, group_key: str, width: int) -> Iterator[list]:
    for group in report_summary.subtotals(group_key):
        label = _("Subtotal %(group)s") % {"group": group.group_label}
        yield [_cell(v) for v in _total_values("subtotal", label, group, width)]


def is_data_row(values: list) -> bool:
    return values[0] in ("customer", "invoice")


# --- CSV -----------------------------------------------------------------------------------


class _Echo:
    """A file-like whose write returns what it is given, for csv.writer into a stream."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(report: AgingReport, *, on_finish=None) -> Iterator[bytes]:
    """The CSV file as a stream of byte chunks, in constant memory.

    Rows come from a server-side cursor a few thousand at a time and leave as soon as
    CSV_CHUNK_ROWS are written; nothing holds the whole report. `on_finish(row_count)`
    is called after the last row (not when the download is interrupted).
    """
    writer = csv.writer(_Echo())
    with snapshot():
        report_summary = summary(report, count_customers=True)
        yield ("\ufeff" + writer.writerow(header(report))).encode()  # BOM: Excel reads UTF-8
        buffer, count = [], 0
        for values in rows(report, report_summary):
            count += is_data_row(values)
            buffer.append(writer.writerow(values))
            if len(buffer) >= CSV_CHUNK_ROWS:
                yield "".join(buffer).encode()
                buffer.clear()
        if buffer:
            yield "".join(buffer).encode()
    if on_finish is not None:
        on_finish(count)


# --- XLSX ----------------------------------------------------------------------------------


def xlsx_content(report: AgingReport) -> tuple[bytes, int]:
    """A workbook with a Summary sheet and a Customers (or Invoices) sheet; (bytes, rows).

    Written with openpyxl's write-only mode (the engine tablib uses for XLSX), which
    streams rows into the file. For 122,000 customers tablib's Dataset (every cell an
    object in memory) peaked at 1.6 GB and took 104 s; this peaks at 114 MB in 67 s.
    """
    from openpyxl import Workbook

    def xml_safe(values: list) -> list:
        # openpyxl refuses a cell holding a character XML cannot carry: one control
        # character in one contact's name would fail the whole file. Every text cell is
        # written without them (the CSV keeps the text as stored).
        return [_printable(v) if isinstance(v, str) else v for v in values]

    book = Workbook(write_only=True)
    with snapshot():
        report_summary = summary(report, count_customers=True)
        overview = book.create_sheet(_("Summary"))
        overview.freeze_panes = "A2"
        overview.append(xml_safe(_summary_header(report)))
        for values in _summary_values(report_summary):
            overview.append(xml_safe(values))
        detail = book.create_sheet(_("Invoices") if report.detail else _("Customers"))
        detail.freeze_panes = "A2"
        detail.append(xml_safe(header(report)))
        count = 0
        for values in rows(report, report_summary):
            count += is_data_row(values)
            detail.append(xml_safe(values))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue(), count


def _summary_header(report: AgingReport) -> list[str]:
    return [
        _("row"),
        _("group"),
        _("currency"),
        *[str(bucket.label) for bucket in report.buckets],
        _("total"),
        _("disputed"),
        _("invoices"),
        _("customers"),
    ]


def _summary_values(report_summary: Summary) -> Iterator[list]:
    def line(kind, label, amounts):
        return [
            kind,
            _text(label),
            amounts.currency,
            *amounts.buckets,
            amounts.total,
            amounts.disputed,
            amounts.invoices,
            amounts.customers,
        ]

    if report_summary.report.group_by:
        for group in report_summary.groups:
            yield line("subtotal", group.group_label, group)
    for amounts in report_summary.totals.values():
        yield line("total", _("Total"), amounts)
    if report_summary.report.in_base_currency:
        for kind, label, currency, buckets, total, disputed in converted_lines(
            convert_summary(report_summary)
        ):
            yield [kind, _text(label), currency, *buckets, total, disputed, "", ""]


# --- PDF -----------------------------------------------------------------------------------


def _fmt(value: Decimal | None, currency: str) -> str:
    """The one money format (accounts.money): the currency's minor units, grouped."""
    return "" if value is None else format_amount(value, currency)


def _fmt_exact(value: Decimal | None) -> str:
    """With the places the amount has (converted amounts: the currency's minor units)."""
    return "" if value is None else f"{value:,f}"


def _chart(report: AgingReport, report_summary: Summary, currency: str) -> str:
    """The bucket chart for one currency: one stacked series per group (or one series)."""
    labels = [str(bucket.label) for bucket in report.buckets]
    if report.group_by:
        groups: list[GroupRow] = [g for g in report_summary.groups if g.currency == currency]
        groups.sort(key=lambda g: g.total, reverse=True)
        series = [(g.group_label, g.buckets) for g in groups[:CHART_SERIES]]
        rest = groups[CHART_SERIES:]
        if rest:
            other = [
                sum(values, Decimal("0.00"))
                for values in zip(*(g.buckets for g in rest), strict=True)
            ]
            series.append((_("Other"), other))
    else:
        series = [(_("Open"), report_summary.totals[currency].buckets)]
    return charts.stacked_bar_chart(
        labels,
        series,
        title=_("Open balance by age, %(currency)s") % {"currency": currency},
        width=900,
        height=300,
        y_label=currency,
    )


def pdf_context(
    report: AgingReport,
    report_summary: Summary,
    *,
    generated_by: str,
    limit: int | None = PDF_CUSTOMER_LIMIT,
) -> tuple[dict, int]:
    """What the PDF template shows, amounts formatted; (context, customer rows listed)."""
    customers = list(customer_rows(report, limit=limit))
    report_rows = customers[0].report_rows if limit is not None and customers else len(customers)
    lines_by_customer: dict[tuple[int, str], list[InvoiceRow]] = {}
    if report.detail and customers:
        for line in invoice_rows(report, customer_ids={row.customer_id for row in customers}):
            lines_by_customer.setdefault((line.customer_id, line.currency), []).append(line)
    groups = []
    for row in report_summary.groups if report.group_by else []:
        groups.append(
            {
                "label": _printable(row.group_label),
                "currency": row.currency,
                "buckets": [_fmt(v, row.currency) for v in row.buckets],
                "total": _fmt(row.total, row.currency),
                "disputed": _fmt(row.disputed, row.currency),
                "customers": row.customers,
                "invoices": row.invoices,
            }
        )
    totals = [
        {
            "currency": amounts.currency,
            "buckets": [_fmt(v, amounts.currency) for v in amounts.buckets],
            "total": _fmt(amounts.total, amounts.currency),
            "disputed": _fmt(amounts.disputed, amounts.currency),
            "customers": amounts.customers,
            "invoices": amounts.invoices,
        }
        for amounts in report_summary.totals.values()
    ]
    converted = convert_summary(report_summary) if report.in_base_currency else None
    listing = Listing(report)
    for row in customers:
        listing.customer(row, lines_by_customer.get((row.customer_id, row.currency), []))
    context = {
        "title": _("Aging report"),
        "as_of": report.as_of,
        "filters": report.filters.describe(),
        "group_by": dict(_group_names()).get(report.group_by, ""),
        "edges": ", ".join(str(edge) for edge in report.edges),
        "generated_at": timezone.localtime(),
        "generated_by": generated_by,
        "buckets": [str(bucket.label) for bucket in report.buckets],
        "listing": listing,
        "charts": [mark_safe(_chart(report, report_summary, c)) for c in report_summary.totals],  # noqa: S308 - charts escape every label
        "groups": groups,
        "totals": totals,
        "converted": (
            {
                "base_currency": converted.base_currency,
                "caption": converted.caption,
                "warnings": converted.warnings,
                "rows": [
                    {
                        "currency": row.currency,
                        "is_missing": row.is_missing,
                        "rate": row.rate_text,
                        "buckets": [_fmt_exact(v) for v in row.buckets or []],
                        "total": _fmt_exact(row.total),
                        "disputed": _fmt_exact(row.disputed),
                    }
                    for row in converted.rows
                ],
                "buckets": [_fmt_exact(v) for v in converted.buckets],
                "total": _fmt_exact(converted.total),
                "disputed": _fmt_exact(converted.disputed),
                "is_complete": converted.is_complete,
            }
            if converted
            else None
        ),
        "customer_count": report_rows,
        "show_customers": report_summary.customer_count is not None,
        "listed": len(customers),
        "is_limited": len(customers) < report_rows,
    }
    return context, len(customers)


def _clip(text, width: int) -> str:
    # One line of a fixed-width listing: no control characters, no line breaks.
    text = _printable("" if text is None else str(text)).translate(_ONE_LINE)
    return text if len(text) <= width else text[: width - 1] + "…"


class Listing:
    """The PDF's customer detail as fixed-width lines in a monospace font.

    An aging listing in columns, as accountants print it: one line of amounts per
    customer and currency, a second line with the account's details, and (with
    `detail`) one line per open invoice with its balance under its bucket. Each line is
    one text run, which WeasyPrint lays out about three times faster than a table cell
    per value: what keeps a 1,000-customer PDF within seconds.
    """

    NAME, AMOUNT, TOTAL, OLDEST, AGENT = 32, 13, 14, 28, 14

    def __init__(self, report: AgingReport):
        self.report = report
        self.rows: list[dict] = []
        self._group = None
        buckets = "".join(
            f"{_clip(b.label, self.AMOUNT - 1):>{self.AMOUNT}}" for b in report.buckets
        )
        self.header = (
            f"{_('Customer'):<{self.NAME}} {_('Cur'):<3}{buckets}"
            f"{_('Total'):>{self.TOTAL}}{_('Disputed'):>{self.AMOUNT}}  "
            f"{_('Oldest invoice, due'):<{self.OLDEST}} {_('Agent'):<{self.AGENT}}"
        )
        self.subheader = "  " + _(
            "reference · credit limit · primary contact · last contact · next action"
        )
        # Long lines (many buckets) get a smaller font so they still fit the page width.
        self.font_size = f"{min(6.2, 6.2 * 205 / len(self.header)):.2f}"

    def customer(self, row: CustomerRow, lines: list[InvoiceRow]) -> None:
        if self.report.group_by and row.group_label != self._group:
            self._group = row.group_label
            self.rows.append({"kind": "group", "text": _clip(row.group_label, len(self.header))})
        amounts = "".join(f"{_fmt(value, row.currency):>{self.AMOUNT}}" for value in row.buckets)
        oldest = f"{row.oldest_invoice_number} {row.oldest_due_on or ''}"
        main = (
            f"{_clip(row.name, self.NAME):<{self.NAME}} {row.currency:<3}{amounts}"
            f"{_fmt(row.total, row.currency):>{self.TOTAL}}"
            f"{(_fmt(row.disputed, row.currency) if row.disputed else ''):>{self.AMOUNT}}  "
            f"{_clip(oldest, self.OLDEST):<{self.OLDEST}} {_clip(row.agent, self.AGENT)}"
        )
        details = [row.external_ref]
        if row.credit_limit is not None:
            details.append(
                _("limit %(amount)s")
                % {"amount": format_money(row.credit_limit, row.credit_limit_currency)}
            )
        contact = " ".join(
            part for part in (row.contact_name, row.contact_phone, row.contact_email) if part
        )
        details.append(contact or _("no primary contact"))
        if row.last_contact_on:
            details.append(
                _("last %(date)s %(what)s")
                % {"date": row.last_contact_on, "what": row.last_contact}
            )
        if row.next_action_on:
            details.append(
                _("next %(date)s %(what)s") % {"date": row.next_action_on, "what": row.next_action}
            )
        sub = "  " + _clip(" · ".join(part for part in details if part), len(self.header) - 2)
        self.rows.append({"kind": "customer", "text": main, "sub": sub})
        indent = self.NAME + 4  # the bucket columns start after name, space and currency
        for line in lines:
            label = f"  {line.number} {line.due_on} {line.days_past_due:>4}d"
            balance = _fmt(line.balance, line.currency)
            cells = "".join(
                f"{(balance if bucket == line.bucket else ''):>{self.AMOUNT}}"
                for bucket in self.report.buckets
            )
            status = f"  {_('disputed')}" if line.status == "disputed" else ""
            total = f"{_fmt(line.balance, line.currency):>{self.TOTAL}}"
            text = f"{_clip(label, indent - 1):<{indent}}{cells}{total}{status}"
            self.rows.append({"kind": "line", "text": text})


def _group_names():
    return [(key, str(label)) for key, label in GROUP_BY_CHOICES]


def pdf_content(
    report: AgingReport, *, generated_by: str, limit: int | None = PDF_CUSTOMER_LIMIT
) -> tuple[bytes, int]:
    """The PDF: header, bucket charts, summary, then the largest customers; (bytes, rows)."""
    with snapshot():
        report_summary = summary(report)
        context, count = pdf_context(report, report_summary, generated_by=generated_by, limit=limit)
    html = render_to_string("reporting/aging_report.html", context)
    with quiet_pdf_logs():
        from weasyprint import HTML  # heavy; only PDFs need it

        return HTML(string=html).write_pdf(), count


@contextlib.contextmanager
def quiet_pdf_logs():
    """WeasyPrint and fontTools log every page and glyph at INFO; keep warnings only."""
    loggers = [logging.getLogger(n) for n in ("weasyprint", "weasyprint.progress", "fontTools")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
