"""Reports in one base currency beside the per-currency totals: the aging report (screen,
CSV, XLSX, PDF, command) and the dashboard, with the ECB rate date printed."""

import csv
import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import call_command
from pypdf import PdfReader

from accounts.models import FxRate
from reporting import services
from reporting.aging import AgingReport
from reporting.base_currency import convert_totals, rate_text
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 11, 23)  # a Monday: the latest rates are Friday's
FRIDAY = dt.date(2026, 11, 20)
PAGE = "/admin/reporting/aging/"
DASHBOARD = "/admin/reporting/dashboard/"


def invoice(currency: str, amount: str, days_past_due: int):
    customer = CustomerFactory(name=f"{currency} customer", currency=currency)
    due_on = AS_OF - dt.timedelta(days=days_past_due)
    return InvoiceFactory(
        customer=customer,
        due_on=due_on,
        issued_on=due_on - dt.timedelta(days=30),
        currency=currency,
        amount=D(amount),
    )


@pytest.fixture
def ledger():
    # 116.34 USD = 100.00 EUR; 87.92 GBP = 100.0057 -> 100.01 EUR; MXN has no rate.
    for currency, rate in {"USD": "1.1634", "GBP": "0.87915", "JPY": "181.42"}.items():
        FxRate.objects.create(rate_on=FRIDAY, currency=currency, rate=D(rate))
    FxRate.objects.create(rate_on=AS_OF + dt.timedelta(days=1), currency="USD", rate=D("2"))
    invoice("USD", "116.34", 40)  # 31-60 days
    invoice("GBP", "87.92", 0)  # current
    invoice("EUR", "100.00", 0)
    invoice("MXN", "500.00", 10)


def test_totals_convert_bucket_by_bucket_and_a_missing_rate_is_left_out_and_said():
    FxRate.objects.create(rate_on=FRIDAY, currency="USD", rate=D("1.1634"))
    converted = convert_totals(
        [
            ("USD", [D("116.34"), D("0.01")], D("0.00")),
            ("EUR", [D("1.00"), D("2.00")], None),
            ("MXN", [D("9.00"), D("0.00")], None),
        ],
        as_of=AS_OF,
    )
    assert converted.base_currency == "EUR"
    usd, eur, mxn = converted.rows
    assert usd.buckets == [D("100.00"), D("0.01")] and usd.total == D("100.01")
    assert eur.buckets == [D("1.00"), D("2.00")]
    assert mxn.is_missing and mxn.buckets is None
    assert converted.buckets == [D("101.00"), D("2.01")]
    assert converted.missing == ["MXN"] and not converted.is_complete
    assert converted.caption == "Converted into EUR at ECB rates of 2026-11-20"
    assert "No ECB rate on or before 2026-11-23 for MXN" in converted.warnings[0]


def test_the_base_currency_is_a_setting(settings):
    settings.BASE_CURRENCY = "USD"
    FxRate.objects.create(rate_on=FRIDAY, currency="USD", rate=D("1.1634"))
    FxRate.objects.create(rate_on=FRIDAY, currency="JPY", rate=D("181.42"))
    converted = convert_totals(
        [("EUR", [D("100.00")], None), ("JPY", [D("18142")], None), ("USD", [D("1")], None)],
        as_of=AS_OF,
    )
    assert converted.base_currency == "USD"
    assert [row.total for row in converted.rows] == [D("116.34"), D("116.34"), D("1.00")]
    assert converted.total == D("233.68")


def test_old_rates_are_used_with_a_warning_naming_their_date(settings):
    FxRate.objects.create(rate_on=dt.date(2024, 6, 28), currency="USD", rate=D("1.0705"))
    converted = convert_totals([("USD", [D("10.705")], None)], as_of=AS_OF)
    assert converted.total == D("10.00")
    assert converted.is_stale
    assert "The rates are from 2024-06-28, 878 days before 2026-11-23" in converted.warnings[0]
    settings.FX_RATES_STALE_AFTER_DAYS = 1000
    assert convert_totals([("USD", [D("1")], None)], as_of=AS_OF).warnings == []


def test_aging_page_shows_totals_in_the_base_currency_when_asked(client, manager, ledger):
    client.force_login(manager)
    plain = client.get(PAGE, {"as_of": AS_OF.isoformat()}).content.decode()
    assert 'id="aging-base-currency"' not in plain
    body = client.get(PAGE, {"as_of": AS_OF.isoformat(), "in_base_currency": "on"}).content.decode()
    assert 'id="aging-base-currency"' in body
    assert "Converted into EUR at ECB rates of 2026-11-20." in body
    assert "no rate: not converted" in body  # MXN
    assert "Total in EUR (incomplete)" in body
    assert "No ECB rate on or before 2026-11-23 for MXN" in body
    # EUR 100.00 + GBP 100.01 current, USD 100.00 at 31-60 days: 300.01 EUR in all.
    assert "300.01" in body and "200.01" in body
    # The per-currency totals are still there, in their own currencies.
    assert "116.34" in body and "87.92" in body and "500.00" in body


def test_agent_sees_the_converted_totals_too(client, agent, ledger):
    client.force_login(agent)
    response = client.get(PAGE, {"as_of": AS_OF.isoformat(), "in_base_currency": "on"})
    assert response.status_code == 200
    assert "Converted into EUR at ECB rates of 2026-11-20" in response.content.decode()


def test_xlsx_summary_and_csv_end_with_the_converted_totals(ledger, finance):
    report = AgingReport(as_of=AS_OF, in_base_currency=True)
    book = openpyxl.load_workbook(
        io.BytesIO(services.export_aging(report=report, fmt="xlsx", by=finance).content)
    )
    summary = [list(row) for row in book["Summary"].iter_rows(values_only=True)]
    total_column = summary[0].index("total")
    converted = {row[1]: row for row in summary if row[0] == "converted"}
    assert D(str(converted["USD at 0.859550 EUR"][total_column])) == D("100.00")
    assert "MXN: no rate, not converted" in converted
    total = next(row for row in summary if row[0] == "converted total")
    assert total[1] == "Total in EUR (incomplete)" and D(str(total[total_column])) == D("300.01")
    notes = [row[1] for row in summary if row[0] == "note"]
    assert notes[0] == "Converted into EUR at ECB rates of 2026-11-20"

    file = services.export_aging(report=report, fmt="csv", by=finance)
    rows = list(csv.reader(io.StringIO(b"".join(file.chunks).decode("utf-8-sig"))))
    kinds = [row[0] for row in rows]
    assert kinds[-1] == "note" and "converted total" in kinds
    total_row = rows[kinds.index("converted total")]
    assert total_row[5] == "EUR" and "300.01" in total_row


def test_files_without_the_option_are_unchanged(ledger, finance):
    report = AgingReport(as_of=AS_OF)
    file = services.export_aging(report=report, fmt="csv", by=finance)
    rows = list(csv.reader(io.StringIO(b"".join(file.chunks).decode("utf-8-sig"))))
    assert {row[0] for row in rows[1:]} == {"customer", "total"}


def test_pdf_prints_the_converted_totals_and_the_rate_date(ledger, manager):
    report = AgingReport(as_of=AS_OF, in_base_currency=True)
    file = services.export_aging(report=report, fmt="pdf", by=manager)
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(file.content)).pages)
    assert "Totals in EUR" in text
    assert "Converted into EUR at ECB rates of 2026-11-20" in text
    assert "300.01" in text and "no rate: not converted" in text


def test_command_and_scheduled_options_keep_the_choice(ledger, tmp_path):
    report = AgingReport(as_of=AS_OF, in_base_currency=True)
    assert AgingReport.from_options(report.options()).in_base_currency is True
    assert AgingReport.from_options({"as_of": "2026-11-23"}).in_base_currency is False
    path = tmp_path / "aging.csv"
    call_command(
        "aging_report", "--as-of", "2026-11-23", "--format", "csv", "--output", str(path),
        "--in-base-currency",
    )  # fmt: skip
    assert "Converted into EUR at ECB rates of 2026-11-20" in path.read_text("utf-8-sig")


def test_dashboard_shows_every_currency_converted_with_the_rate_date(client, manager, ledger):
    client.force_login(manager)
    body = client.get(DASHBOARD).content.decode()
    assert 'id="aging-base-currency"' in body
    assert "Totals in EUR" in body
    assert "Converted into EUR at ECB rates of 2026-11-20." in body
    assert "300.01" in body and "Total in EUR (incomplete)" in body


def test_cross_rates_are_printed_with_six_significant_digits_never_in_exponent_form():
    assert rate_text(D(1) / D("1.1634")) == "0.859550"
    assert rate_text(D(1) / D("17487.21")) == "0.0000571847"  # IDR in EUR
    assert rate_text(D("181.42")) == "181.42"
    assert rate_text(D(1)) == "1" and rate_text(None) == ""
