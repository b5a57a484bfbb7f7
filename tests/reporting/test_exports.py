"""Aging report files: CSV, XLSX and PDF contents against hand-computed figures, and the command."""

import csv
import datetime as dt
import io
import json
import re
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from pypdf import PdfReader

from accounts.models import Customer
from reporting import exports, services
from reporting.aging import AgingReport, Filters
from reporting.models import ReportExport
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 11, 23)


def invoice_due(customer, days_past_due, amount, currency=None, **kwargs):
    due_on = AS_OF - dt.timedelta(days=days_past_due)
    return InvoiceFactory(
        customer=customer,
        due_on=due_on,
        issued_on=due_on - dt.timedelta(days=30),
        amount=D(amount),
        currency=currency or customer.currency,
        **kwargs,
    )


@pytest.fixture
def ledger():
    """Two segments, two currencies; every figure below is computed by hand from these."""
    strategic = CustomerFactory(name="Alpha Corp", segment=Customer.Segment.STRATEGIC)
    standard = CustomerFactory(name="Beta LLC", segment=Customer.Segment.STANDARD)
    euro = CustomerFactory(name="Gamma GmbH", segment=Customer.Segment.STANDARD, currency="EUR")
    invoice_due(strategic, 0, "1000.00")  # current
    invoice_due(strategic, 45, "250.50")  # 31-60
    invoice_due(standard, 5, "99.99")  # 1-30
    invoice_due(standard, 130, "10.01", status="disputed")  # over 120
    invoice_due(euro, 95, "700.00")  # 91-120
    return {"strategic": strategic, "standard": standard, "euro": euro}


def read_csv(file) -> list[list[str]]:
    return list(csv.reader(io.StringIO(file.read().decode("utf-8-sig"))))


def test_csv_has_customer_rows_subtotals_per_group_and_totals_per_currency(ledger, manager):
    report = AgingReport(as_of=AS_OF, group_by="segment")
    file = services.export_aging(report=report, fmt="csv", by=manager)
    rows = read_csv(file)
    header = rows[0]
    assert header[:16] == [
        "row", "group", "customer id", "customer", "customer reference", "currency",
        "Current", "1-30", "31-60", "61-90", "91-120", "Over 120",
        "total", "disputed", "invoices", "customers",
    ]  # fmt: skip
    body = [row[:16] for row in rows[1:]]
    z = "0.00"
    assert [[r[0], r[1], r[3], r[5], *r[6:16]] for r in body] == [
        [
            "customer",
            "Standard",
            "Gamma GmbH",
            "EUR",
            z,
            z,
            z,
            z,
            "700.00",
            z,
            "700.00",
            z,
            "1",
            "1",
        ],
        [
            "customer",
            "Standard",
            "Beta LLC",
            "USD",
            z,
            "99.99",
            z,
            z,
            z,
            "10.01",
            "110.00",
            "10.01",
            "2",
            "1",
        ],
        [
            "subtotal",
            "Subtotal Standard",
            "",
            "EUR",
            z,
            z,
            z,
            z,
            "700.00",
            z,
            "700.00",
            z,
            "1",
            "1",
        ],
        [
            "subtotal",
            "Subtotal Standard",
            "",
            "USD",
            z,
            "99.99",
            z,
            z,
            z,
            "10.01",
            "110.00",
            "10.01",
            "2",
            "1",
        ],
        [
            "customer",
            "Strategic",
            "Alpha Corp",
            "USD",
            "1000.00",
            z,
            "250.50",
            z,
            z,
            z,
            "1250.50",
            z,
            "2",
            "1",
        ],
        [
            "subtotal",
            "Subtotal Strategic",
            "",
            "USD",
            "1000.00",
            z,
            "250.50",
            z,
            z,
            z,
            "1250.50",
            z,
            "2",
            "1",
        ],
        ["total", "Total", "", "EUR", z, z, z, z, "700.00", z, "700.00", z, "1", "1"],
        [
            "total",
            "Total",
            "",
            "USD",
            "1000.00",
            "99.99",
            "250.50",
            z,
            z,
            "10.01",
            "1360.50",
            "10.01",
            "4",
            "2",
        ],
    ]
    alpha = rows[5]
    columns = dict(zip(header, alpha, strict=True))
    assert (columns["oldest days past due"], columns["oldest due on"]) == ("45", "2026-10-09")
    record = ReportExport.objects.get()
    assert (record.user, record.format, record.kind, record.row_count) == (
        manager,
        "csv",
        "aging",
        3,
    )
    assert record.filters["group_by"] == "segment" and record.as_of == AS_OF


def test_csv_detail_lists_each_open_invoice_in_its_bucket(ledger, manager):
    report = AgingReport(as_of=AS_OF, detail=True, filters=Filters(currency="USD"))
    rows = read_csv(services.export_aging(report=report, fmt="csv", by=manager))
    header = rows[0]
    invoices = [dict(zip(header, row, strict=True)) for row in rows[1:] if row[0] == "invoice"]
    assert [(r["customer"], r["days past due"], r["31-60"], r["Over 120"]) for r in invoices] == [
        ("Alpha Corp", "45", "250.50", "0.00"),
        ("Alpha Corp", "0", "0.00", "0.00"),
        ("Beta LLC", "130", "0.00", "10.01"),
        ("Beta LLC", "5", "0.00", "0.00"),
    ]
    assert invoices[2]["disputed"] == "10.01" and invoices[2]["status"] == "disputed"
    [total] = [row for row in rows if row[0] == "total"]
    assert total[5] == "USD" and total[header.index("total")] == "1360.50"
    assert ReportExport.objects.get().row_count == 4


def test_csv_streams_in_chunks_and_neutralises_formulas(manager, monkeypatch):
    monkeypatch.setattr(exports, "CSV_CHUNK_ROWS", 2)
    for n in range(5):
        invoice_due(CustomerFactory(name=f"Customer {n}"), 1, "1.00")
    invoice_due(CustomerFactory(name='=HYPERLINK("http://x","y")'), 1, "1.00")
    file = services.export_aging(report=AgingReport(as_of=AS_OF), fmt="csv", by=manager)
    chunks = list(file.chunks)
    assert len(chunks) >= 4  # header, then rows two at a time
    rows = read_csv(services.ExportFile("", "", file.record, content=b"".join(chunks)))
    names = [row[3] for row in rows[1:] if row[0] == "customer"]
    assert '\'=HYPERLINK("http://x","y")' in names
    phones = {row[rows[0].index("contact phone")] for row in rows[1:]}
    assert phones <= {"", "+14155550123"}  # E.164 numbers are left as they are


def test_xlsx_has_a_summary_sheet_and_a_customer_sheet(ledger, finance):
    report = AgingReport(as_of=AS_OF, group_by="segment")
    file = services.export_aging(report=report, fmt="xlsx", by=finance)
    book = openpyxl.load_workbook(io.BytesIO(file.content))
    assert book.sheetnames == ["Summary", "Customers"]
    summary = [list(row) for row in book["Summary"].iter_rows(values_only=True)]
    assert summary[0][:3] == ["row", "group", "currency"]
    totals = {row[2]: D(str(row[9])) for row in summary if row[0] == "total"}
    assert totals == {"EUR": D("700.00"), "USD": D("1360.50")}
    subtotals = {(row[1], row[2]): D(str(row[9])) for row in summary if row[0] == "subtotal"}
    assert subtotals == {
        ("Standard", "EUR"): D("700.00"),
        ("Standard", "USD"): D("110.00"),
        ("Strategic", "USD"): D("1250.50"),
    }
    customers = [list(row) for row in book["Customers"].iter_rows(values_only=True)]
    alpha = next(row for row in customers if row[3] == "Alpha Corp")
    assert [D(str(value)) for value in alpha[6:12]] == [D(1000), 0, D("250.50"), 0, 0, 0]
    assert ReportExport.objects.get().row_count == 3


def pdf_pages(content: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(content)).pages]


def test_pdf_has_header_totals_repeated_headers_and_page_x_of_y(manager):
    segments = [Customer.Segment.STRATEGIC, Customer.Segment.STANDARD]
    for n in range(70):  # enough customers for several pages of detail
        customer = CustomerFactory(name=f"Customer {n:03d}", segment=segments[n % 2])
        invoice_due(customer, n, f"{100 + n}.25")
    invoice_due(CustomerFactory(name="Euro Kunde", currency="EUR"), 200, "1234567.89")
    report = AgingReport(as_of=AS_OF, group_by="segment", filters=Filters(min_balance=D("100")))
    file = services.export_aging(report=report, fmt="pdf", by=manager)
    pages = pdf_pages(file.content)
    count = len(pages)
    assert count >= 3
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {count}" in text
    first = pages[0]
    assert "Aging report" in first and "As of" in first and "2026-11-23" in first
    assert "Minimum balance: 100.00" in first and "by manager" in first
    text = "\n".join(pages)
    # Hand-computed: USD invoices 100.25 .. 169.25 (70 of them) = 70 * 100.25 + (0+...+69).
    usd_total = D("100.25") * 70 + sum(range(70))
    assert f"{usd_total:,.2f}" in text  # 9,432.50
    assert "1,234,567.89" in text
    # The detail table's header row repeats on every page it runs over.
    detail_pages = [page for page in pages if "Customer 0" in page]
    assert len(detail_pages) >= 2
    assert all("Oldest invoice" in page for page in detail_pages)
    assert ReportExport.objects.get().row_count == 71


def test_pdf_lists_only_the_largest_customers_when_limited(manager):
    for n in range(5):
        invoice_due(CustomerFactory(name=f"Small {n}"), 1, f"{n + 1}.00")
    file = services.export_aging(report=AgingReport(as_of=AS_OF), fmt="pdf", by=manager, limit=2)
    text = "\n".join(pdf_pages(file.content))
    assert "Small 4" in text and "Small 3" in text and "Small 0" not in text
    assert "The 2 largest balances of 5 customer rows" in text
    assert "15.00" in text  # the summary still covers everyone: 1+2+3+4+5


def test_command_writes_each_format_and_records_a_system_export(ledger, tmp_path):
    out = io.StringIO()
    path = tmp_path / "aging.csv"
    call_command(
        "aging_report", "--as-of", "2026-11-23", "--format", "csv", "--output", str(path),
        "--group-by", "segment", stdout=out,
    )  # fmt: skip
    result = json.loads(out.getvalue())
    assert result["rows"] == 3 and result["output"] == str(path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert [row[3] for row in rows if row[0] == "customer"] == [
        "Gamma GmbH",
        "Beta LLC",
        "Alpha Corp",
    ]
    record = ReportExport.objects.get(pk=result["export"])
    assert (record.user, record.via) == (None, ReportExport.Via.COMMAND)

    path = tmp_path / "aging.pdf"
    out = io.StringIO()
    call_command(
        "aging_report", "--as-of", "2026-10-01", "--format", "pdf", "--output", str(path),
        "--detail", stdout=out,
    )  # fmt: skip
    pages = pdf_pages(path.read_bytes())
    # On 1 Oct only the invoices issued by then: Alpha's 250.50 (due 9 Oct, issued 9 Sep)
    # and Beta's 10.01 and Gamma's 700 are open; the others were issued later.
    text = "\n".join(pages)
    assert "2026-10-01" in text and "250.50" in text and "700.00" in text
    assert "1,000.00" not in text
    assert re.search(r"page 1 of \d+", pages[0])

    path = tmp_path / "aging.xlsx"
    call_command(
        "aging_report", "--as-of", "2026-11-23", "--format", "xlsx", "--output", str(path),
        "--currency", "eur", stdout=io.StringIO(),
    )  # fmt: skip
    sheet = openpyxl.load_workbook(path)["Customers"]
    assert [row[3] for row in sheet.iter_rows(values_only=True)][1:2] == ["Gamma GmbH"]


def test_command_refuses_bad_input(tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        call_command(
            "aging_report", "--as-of", "2026-13-01", "--format", "csv",
            "--output", str(tmp_path / "x"),
        )  # fmt: skip
    with pytest.raises(CommandError):
        call_command(
            "aging_report", "--as-of", "2026-11-01", "--format", "csv",
            "--output", str(tmp_path / "x"), "--edges", "60,30",
        )  # fmt: skip


@pytest.mark.parametrize("fmt", ["xlsx", "pdf", "csv"])
def test_control_characters_in_any_text_do_not_break_an_export(manager, fmt):
    """A contact name or a customer's text holding a control character (accepted by the
    API before it refused them, or by any import) once failed the whole XLSX file."""
    customer = CustomerFactory(name="Bell\x07 & Sons", industry="Tools\x1b[31m")
    ContactFactory(customer=customer, name="Ann\x01e\x0bSmith", is_primary=True)
    invoice_due(customer, 40, "123.45")
    file = services.export_aging(report=AgingReport(as_of=AS_OF), fmt=fmt, by=manager)
    if fmt == "xlsx":
        book = openpyxl.load_workbook(io.BytesIO(file.content))
        cells = [c for row in book["Customers"].iter_rows(values_only=True) for c in row]
        assert "Bell & Sons" in cells and "AnneSmith" in cells and "Tools[31m" in cells
    elif fmt == "pdf":
        assert "Bell" in "".join(pdf_pages(file.content))
    else:
        assert "Bell\x07 & Sons" in file.read().decode("utf-8-sig")
    assert ReportExport.objects.get().row_count == 1
