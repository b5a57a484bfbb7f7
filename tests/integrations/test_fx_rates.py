"""The ECB's reference rate files: every format read, loaded once, the command, the task."""

import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django_celery_beat.models import PeriodicTask

from accounts.models import FxRate
from collections_mgmt import schedule
from demo.management.commands.seed_demo import DEMO_FX_RATES
from integrations import tasks
from integrations.fx import ecb, loading

pytestmark = pytest.mark.django_db
D = Decimal

# The shapes of the ECB's files (values cut down to a few currencies).
DAILY_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
\t<gesmes:subject>Reference rates</gesmes:subject>
\t<gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
\t<Cube>
\t\t<Cube time='2026-11-20'>
\t\t\t<Cube currency='USD' rate='1.1634'/>
\t\t\t<Cube currency='JPY' rate='181.42'/>
\t\t\t<Cube currency='GBP' rate='0.87915'/>
\t\t</Cube>
\t</Cube>
</gesmes:Envelope>
"""
HIST_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><gesmes:Envelope '
    b'xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" '
    b'xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">'
    b"<gesmes:subject>Reference rates</gesmes:subject><Cube>"
    b'<Cube time="2026-11-20"><Cube currency="USD" rate="1.1634"/>'
    b'<Cube currency="GBP" rate="0.87915"/></Cube>\n'
    b'<Cube time="2026-11-19"><Cube currency="USD" rate="1.1601"/>'
    b'<Cube currency="GBP" rate="0.8802"/></Cube></Cube></gesmes:Envelope>'
)
# eurofxref.csv (inside eurofxref.zip): comma and space, a trailing comma, a long date.
DAILY_CSV = b"Date, USD, JPY, GBP, \n20 November 2026, 1.1634, 181.42, 0.87915, \n"
# eurofxref-hist.csv (inside eurofxref-hist.zip): newest first, N/A, retired currencies.
HIST_CSV = (
    b"Date,USD,JPY,CYP,GBP,HRK,\n"
    b"2026-11-20,1.1634,181.42,N/A,0.87915,N/A,\n"
    b"2026-11-19,1.1601,180.9,N/A,0.8802,N/A,\n"
    b"2022-12-30,1.0666,140.66,N/A,0.88693,7.5365,\n"
    b"1999-01-04,1.1789,133.73,0.58231,0.7111,N/A,\n"
)


def zipped(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def rates() -> dict[tuple[str, str], Decimal]:
    return {(row.rate_on.isoformat(), row.currency): row.rate for row in FxRate.objects.all()}


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (DAILY_XML, "eurofxref-daily.xml"),
        (DAILY_CSV, "eurofxref.csv"),
        (zipped("eurofxref.csv", DAILY_CSV), "eurofxref.zip"),
    ],
)
def test_each_daily_format_gives_the_same_rates(content, name):
    result = loading.load_rates(content=content, source=name)
    assert result.days == 1 and result.created == 3
    assert rates() == {
        ("2026-11-20", "USD"): D("1.1634"),
        ("2026-11-20", "JPY"): D("181.42"),
        ("2026-11-20", "GBP"): D("0.87915"),
    }


def test_history_xml_has_one_cube_per_day():
    parsed = ecb.parse(HIST_XML, name="eurofxref-hist.xml")
    assert parsed.days == [dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
    assert len(parsed.rates) == 4


def test_history_csv_skips_not_available_and_retired_currencies():
    result = loading.load_rates(
        content=zipped("eurofxref-hist.csv", HIST_CSV), source="eurofxref-hist.zip"
    )
    assert result.days == 4 and result.created == 12  # USD, JPY, GBP a day
    assert result.skipped_currencies == ("CYP", "HRK")  # no longer ISO 4217 codes
    assert result.not_available == 0
    loaded = rates()
    assert loaded[("1999-01-04", "USD")] == D("1.1789")
    assert loaded[("2022-12-30", "JPY")] == D("140.66")
    assert not any(currency in ("CYP", "HRK") for _, currency in loaded)


def test_a_day_without_a_rate_for_a_currency_is_skipped_not_invented():
    parsed = ecb.parse(b"Date,USD,ISK,\n2008-12-10,1.2816,N/A,\n2008-12-09,1.2857,,\n")
    assert [(line.rate_on.isoformat(), line.currency) for line in parsed.rates] == [
        ("2008-12-10", "USD"),
        ("2008-12-09", "USD"),
    ]
    assert parsed.skipped_not_available == 2


def test_loading_the_same_file_again_changes_nothing_and_a_corrected_rate_is_updated():
    first = loading.load_rates(content=HIST_XML, source="eurofxref-hist.xml")
    assert (first.created, first.updated, first.unchanged) == (4, 0, 0)
    again = loading.load_rates(content=HIST_XML, source="eurofxref-hist.xml")
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    corrected = HIST_XML.replace(b'rate="1.1601"', b'rate="1.1602"')
    fixed = loading.load_rates(content=corrected, source="eurofxref-hist.xml")
    assert (fixed.created, fixed.updated, fixed.unchanged) == (0, 1, 3)
    assert rates()[("2026-11-19", "USD")] == D("1.1602")
    assert FxRate.objects.count() == 4


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"Date,USD,\n2026-11-20,abc,\n", "line 2, USD: 'abc' is not a rate"),
        (b"Date,USD,\n2026-11-20,-1.2,\n", "line 2, USD: '-1.2' is not a rate"),
        (b"Date,USD,\n20/11/2026,1.2,\n", "line 2: '20/11/2026' is not a date"),
        (b"Date,USD,\n2026-11-20,1.2,\n2026-11-20,1.3,\n", "line 3: 2026-11-20 appears twice"),
        (b"Day,USD\n", "the first column must be Date"),
        (b"<html><body>Maintenance</body></html>", "no <Cube time=...> element"),
        (b"<gesmes:Envelope", "not well-formed XML"),
        (DAILY_XML.replace(b"rate='181.42'", b"rate='1,81'"), "2026-11-20 JPY: '1,81'"),
    ],
)
def test_a_malformed_file_is_refused_whole_naming_where(content, message):
    with pytest.raises(ValidationError) as caught:
        loading.load_rates(content=content, source="rates.csv")
    assert message in " ".join(caught.value.messages)
    assert not FxRate.objects.exists()


def test_a_zip_must_hold_one_rate_file():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", DAILY_CSV)
        archive.writestr("b.csv", DAILY_CSV)
    with pytest.raises(ValidationError, match="exactly one"):
        ecb.parse(buffer.getvalue(), name="two.zip")


def test_the_database_refuses_a_second_rate_for_a_day_a_euro_rate_and_a_zero_rate():
    FxRate.objects.create(rate_on=dt.date(2026, 11, 20), currency="USD", rate=D("1.1634"))
    for values in (
        {"currency": "USD", "rate": D("1.2")},
        {"currency": "EUR", "rate": D("1")},
        {"currency": "GBP", "rate": D("0")},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            FxRate.objects.create(rate_on=dt.date(2026, 11, 20), **values)


def test_command_loads_a_file_and_says_what_it_did(tmp_path, capsys):
    path = tmp_path / "eurofxref-hist.zip"
    path.write_bytes(zipped("eurofxref-hist.csv", HIST_CSV))
    call_command("load_fx_rates", "--file", str(path))
    out = capsys.readouterr().out
    assert "4 day(s) of rates, 1999-01-04 to 2026-11-20: 12 new" in out
    assert "Skipped (not ISO 4217 codes any more): CYP, HRK." in out
    call_command("load_fx_rates", "--url", f"file://{path}")
    assert "0 new, 0 corrected, 12 already there" in capsys.readouterr().out


def test_command_refuses_a_missing_or_bad_file_with_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="cannot be read"):
        call_command("load_fx_rates", "--file", str(tmp_path / "nowhere.xml"))
    bad = tmp_path / "eurofxref.csv"
    bad.write_bytes(b"Date,USD,\n2026-11-20,x,\n")
    with pytest.raises(CommandError, match=r"eurofxref.csv: line 2, USD: 'x' is not a rate"):
        call_command("load_fx_rates", "--file", str(bad))
    with pytest.raises(CommandError, match="must start with https://"):
        call_command("load_fx_rates", "--url", "ftp://example.com/rates.xml")


def test_command_fetches_the_ecb_url_by_default(monkeypatch, capsys):
    fetched = []

    class Response:
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def raise_for_status(self):
            pass

        def iter_content(self, size):
            yield DAILY_XML

    def get(url, **kwargs):
        fetched.append(url)
        return Response()

    monkeypatch.setattr(loading.requests, "get", get)
    call_command("load_fx_rates")
    assert fetched == ["https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"]
    assert FxRate.objects.count() == 3


def test_a_file_larger_than_the_limit_is_refused(tmp_path, settings):
    settings.FX_RATES_MAX_BYTES = 100
    path = tmp_path / "eurofxref-daily.xml"
    path.write_bytes(DAILY_XML)
    with pytest.raises(ValidationError, match="larger than FX_RATES_MAX_BYTES"):
        loading.load_url(f"file://{path}")


def test_the_daily_task_loads_the_configured_url(tmp_path, settings):
    path = tmp_path / "eurofxref-daily.xml"
    path.write_bytes(DAILY_XML)
    settings.FX_RATES_URL = f"file://{path}"
    assert "3 new" in tasks.load_fx_rates.apply().get()
    assert FxRate.objects.filter(rate_on=dt.date(2026, 11, 20)).count() == 3


def test_the_daily_load_is_on_the_schedule():
    row = PeriodicTask.objects.get(name=schedule.FX_RATES)
    assert row.task == "integrations.tasks.load_fx_rates"
    assert (row.crontab.minute, row.crontab.hour) == ("30", "17")


def test_the_demo_ships_a_rate_file_the_loader_reads():
    result = loading.load_file(DEMO_FX_RATES)
    assert result.days == 1 and result.created >= 9
    demo_currencies = {"USD", "GBP", "MXN", "BRL", "AUD", "JPY", "ZAR", "CAD"}
    assert demo_currencies <= set(FxRate.objects.values_list("currency", flat=True))


@pytest.mark.parametrize("role", ["agent", "manager", "finance"])
def test_every_role_reads_the_rates_in_the_console_and_nobody_edits_them(client, request, role):
    FxRate.objects.create(rate_on=dt.date(2026, 11, 20), currency="USD", rate=D("1.1634"))
    client.force_login(request.getfixturevalue(role))
    page = client.get("/admin/accounts/fxrate/")
    assert page.status_code == 200 and "1.163400" in page.content.decode()
    assert client.get("/admin/accounts/fxrate/add/").status_code == 403
