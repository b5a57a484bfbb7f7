"""Hostile uploads are refused with a message naming the limit, and leave nothing behind.

Each hostile file goes through the real paths (the import_invoices command, the import
page's preview and confirmation); the limits are settings, shrunk here so the files stay
small. A refused file leaves no running batch and no rejected or ledger row; a preview
writes nothing at all (issue #16 item 3: previews left rejected rows and batches behind).
"""

import datetime as dt
import io
import json
import zipfile

import openpyxl
import pytest
from django.core.management import get_commands, load_command_class
from django.db import connections
from django.test import override_settings
from django.utils import timezone

from accounts.models import Invoice
from integrations.intake import kinds, spreadsheets
from integrations.models import ImportProfile, IntakeBatch, Rejection

pytestmark = pytest.mark.django_db

GENERIC = "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n"
GOOD = "INV-{n},Acme,2026-10-01,2026-10-31,USD,{n}.00\n"
BAD = "BAD-{n},Acme,2026-10-01,2026-10-31,USD,oops\n"
URL = "/admin/integrations/intakebatch/import/"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADER_ROW = "".join(
    f'<c r="{col}1" t="inlineStr"><is><t>{name}</t></is></c>'
    for col, name in zip("ABCDEF", GENERIC.strip().split(","), strict=True)
)


def workbook(path, rows: str = "", shared: str = "", prolog: str = "") -> object:
    """A minimal .xlsx written by hand, so the tests control every byte of its XML."""
    rels = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "_rels/.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rels}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>",
        )
        archive.writestr(
            "xl/workbook.xml",
            f'<workbook xmlns="{MAIN}" xmlns:r="{rels}"><sheets>'
            '<sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        archive.writestr(
            "xl/_rels/workbook.xml.rels",
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rels}/worksheet" Target="worksheets/s.xml"/>'
            f'<Relationship Id="rId2" Type="{rels}/sharedStrings" Target="strings.xml"/>'
            "</Relationships>",
        )
        archive.writestr("xl/strings.xml", f'{prolog}<sst xmlns="{MAIN}">{shared}</sst>')
        archive.writestr(
            "xl/worksheets/s.xml",
            f'{prolog}<worksheet xmlns="{MAIN}"><sheetData><row r="1">{HEADER_ROW}</row>'
            f"{rows}</sheetData></worksheet>",
        )
    return path


def bomb(tmp_path):
    """A shared string of 4 MiB of one letter: ~4 KB zipped."""
    row = '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>0</v></c></row>'
    return workbook(tmp_path / "bomb.xlsx", row, "<si><t>" + "A" * (4 << 20) + "</t></si>")


def many_rows(tmp_path, count=2_000):
    return workbook(tmp_path / "rows.xlsx", "<row><c><v>1</v></c></row>" * count)


def lying(tmp_path):
    """A sheet whose zip headers say 100 bytes; it inflates to 2 MiB."""
    path = workbook(tmp_path / "lying.xlsx", '<row r="2"><c r="A2"><v>' + "7" * (2 << 20))
    data = bytearray(path.read_bytes())
    name = b"xl/worksheets/s.xml"
    at = data.rindex(b"PK\x01\x02" + data[data.rindex(name) - 46 + 4 : data.rindex(name) - 46 + 28])
    data[at + 24 : at + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


def laughs(tmp_path):
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 9)
    )
    return workbook(
        tmp_path / "laughs.xlsx",
        '<row r="2"><c r="A2" t="inlineStr"><is><t>&a8;</t></is></c></row>',
        prolog=f"<!DOCTYPE x [{entities}]>",
    )


def big_csv(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(GENERIC + "".join(GOOD.format(n=n) for n in range(1, 401)))
    return path


def long_line(tmp_path):
    path = tmp_path / "line.csv"
    path.write_text(GENERIC + "INV-1,Acme,2026-10-01,2026-10-31,USD,1.00," + "x" * (2 << 20) + "\n")
    return path


# (file maker, settings for the test, a phrase of the message)
HOSTILE = {
    "shared-string bomb (ratio)": (bomb, {}, "UPLOAD_MAX_COMPRESSION_RATIO"),
    "shared-string bomb (inflated size)": (
        bomb,
        {"UPLOAD_MAX_COMPRESSION_RATIO": 10**6, "UPLOAD_MAX_DECOMPRESSED_BYTES": 1 << 20},
        "UPLOAD_MAX_DECOMPRESSED_BYTES",
    ),
    "shared-string table (characters)": (
        bomb,
        {"UPLOAD_MAX_COMPRESSION_RATIO": 10**6, "UPLOAD_MAX_SHARED_STRING_CHARS": 1000},
        "more than 32,767 characters",
    ),
    "rows": (many_rows, {"UPLOAD_MAX_ROWS": 1000}, "UPLOAD_MAX_ROWS"),
    "cells": (many_rows, {"UPLOAD_MAX_CELLS": 500}, "UPLOAD_MAX_CELLS"),
    "lying zip headers": (lying, {}, "not an XLSX workbook that can be read"),
    "billion laughs": (laughs, {}, "declares a DTD or entities"),
    "csv over the byte limit": (big_csv, {"UPLOAD_MAX_BYTES": 5_000}, "UPLOAD_MAX_BYTES"),
    "csv rows": (big_csv, {"UPLOAD_MAX_ROWS": 100}, "UPLOAD_MAX_ROWS"),
    "csv line": (long_line, {}, "longer than 1.0"),
}


@pytest.fixture
def run(capsys, monkeypatch):
    """import_invoices as the shell runs it: (exit code, stdout lines, stderr)."""
    monkeypatch.setattr(connections, "close_all", lambda: None)

    def _run(*args):
        command = load_command_class(get_commands()["import_invoices"], "import_invoices")
        try:
            command.run_from_argv(["manage.py", "import_invoices", *map(str, args)])
            code = 0
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out.strip().splitlines(), err

    return _run


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def nothing_left_but_failed_batches():
    assert not IntakeBatch.objects.filter(status=IntakeBatch.Status.RUNNING).exists()
    assert not Rejection.objects.exists()
    assert not Invoice.objects.exists()


def stored_uploads(settings) -> list:
    folder = settings.MEDIA_ROOT / "intake" / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def post_file(client, path, profile="generic-csv"):
    with open(path, "rb") as file:
        return client.post(
            URL,
            {"file": file, "profile": ImportProfile.objects.get(name=profile).pk, "encoding": ""},
        )


@pytest.mark.parametrize("name", HOSTILE)
def test_the_command_refuses_each_hostile_file_with_its_message(name, tmp_path, run):
    make, limits, phrase = HOSTILE[name]
    path = make(tmp_path)
    with override_settings(**limits):
        code, lines, err = run(path)
    assert code == 2 and phrase in err
    batch = IntakeBatch.objects.get(pk=json.loads(lines[-1])["batch"])
    assert batch.status == IntakeBatch.Status.FAILED and phrase in batch.error
    nothing_left_but_failed_batches()


@pytest.mark.parametrize("name", HOSTILE)
def test_the_console_refuses_each_hostile_file_on_the_form(
    name, tmp_path, client, finance, settings
):
    make, limits, phrase = HOSTILE[name]
    path = make(tmp_path)
    client.force_login(finance)
    with override_settings(**limits):
        response = post_file(client, path)
    assert response.status_code == 200
    assert phrase in response.context["form"].errors["file"][0]
    assert "confirm" not in response.context
    assert not IntakeBatch.objects.exists()  # a refused preview writes nothing at all
    nothing_left_but_failed_batches()
    assert stored_uploads(settings) == []


def test_the_same_files_load_when_the_limits_allow_them(tmp_path, run):
    """The limits are settings, not constants: raised, the same CSV loads."""
    path = big_csv(tmp_path)
    with override_settings(UPLOAD_MAX_BYTES=5_000):
        assert run(path)[0] == 2
    with override_settings(UPLOAD_MAX_BYTES=50_000, UPLOAD_MAX_ROWS=401):
        code, lines, _ = run(path)
    assert code == 0 and json.loads(lines[-1])["created"] == 400


@override_settings(UPLOAD_MAX_BYTES=20_000)
def test_an_upload_over_the_limit_is_refused_while_it_is_received(tmp_path, client, finance):
    """The handler stops the upload: the file is never stored, the page names the limit."""
    path = tmp_path / "big.csv"
    path.write_text(GENERIC + "".join(GOOD.format(n=n) for n in range(2_000)))
    client.force_login(finance)

    response = post_file(client, path)

    assert response.status_code == 200
    assert "UPLOAD_MAX_BYTES" in response.context["form"].errors["file"][0]
    assert not IntakeBatch.objects.exists()
    assert not (tmp_path / "media").exists()


@override_settings(DATA_UPLOAD_MAX_NUMBER_FIELDS=5)
def test_too_many_form_fields_is_a_form_error_not_an_error_page(client, finance):
    client.force_login(finance)
    response = client.post(URL, {f"field{n}": "x" for n in range(20)})
    assert response.status_code == 200
    assert "request limits" in response.context["form"].errors["file"][0]


def test_previews_write_nothing_and_one_confirmation_loads_once(tmp_path, client, finance):
    """Issue #16 item 3: two previews and one confirmation of a file with 3 bad rows left
    9 open rejections and three batches; now one batch and its 3 rejected rows."""
    path = tmp_path / "book.csv"
    path.write_text(
        GENERIC + GOOD.format(n=1) + BAD.format(n=2) + BAD.format(n=3) + BAD.format(n=4)
    )
    client.force_login(finance)

    first, second = post_file(client, path), post_file(client, path)

    assert first.context["preview"].rejected == second.context["preview"].rejected == 3
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()
    token = second.context["confirm"].initial["token"]
    client.post(URL, {"token": token})
    batch = IntakeBatch.objects.get()
    assert (batch.status, batch.rejected, batch.created) == ("completed", 3, 1)
    assert Rejection.objects.filter(status="open").count() == 3


@pytest.mark.parametrize("kind", ["customers", "invoices"])
def test_a_preview_of_a_file_with_bad_rows_writes_no_row(kind):
    content = {
        "invoices": GENERIC + GOOD.format(n=1) + BAD.format(n=2),
        "customers": "external_ref,name,currency\nC-1,Acme,USD\nC-2,Globex,XXX\n",
    }[kind]
    preview = spreadsheets.preview_spreadsheet(
        io.BytesIO(content.encode()),
        kind=kind,
        profile=ImportProfile.objects.get(name="generic-csv") if kind == "invoices" else None,
    )
    assert (preview.rows_read, preview.rejected) == (2, 1)
    assert [o.outcome for o in preview.outcomes] == ["created", "rejected"]
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()
    assert not Invoice.objects.exists()


@override_settings(UPLOAD_PREVIEW_ROWS=5)
def test_a_preview_reads_the_first_rows_and_says_more_follow(tmp_path, client, finance):
    path = tmp_path / "book.csv"
    path.write_text(GENERIC + "".join(GOOD.format(n=n) for n in range(1, 21)))
    client.force_login(finance)

    response = post_file(client, path)

    assert len(response.context["rows"]) == 5 and response.context["preview"].total_rows == 20
    assert "More rows follow: showing the first 5 of 20." in response.content.decode()
    assert not IntakeBatch.objects.exists()


def test_a_preview_reads_only_the_rows_it_shows(monkeypatch):
    """The load sees the first rows only: the rest of the file is never parsed into records."""
    parsed = []
    real = kinds.load_rows

    def counting(rows, headers, **kwargs):
        def seen():
            for row in rows:
                parsed.append(row[0])
                yield row

        return real(seen(), headers, **kwargs)

    monkeypatch.setattr(kinds, "load_rows", counting)
    content = GENERIC + "".join(GOOD.format(n=n) for n in range(1, 1001))
    preview = spreadsheets.preview_spreadsheet(
        io.BytesIO(content.encode()),
        kind="invoices",
        profile=ImportProfile.objects.get(name="generic-csv"),
        rows=10,
    )
    assert len(parsed) == 10 and preview.total_rows == 1000 and preview.has_more


def test_a_load_that_stops_at_any_error_fails_its_batch(tmp_path, monkeypatch, run):
    path = tmp_path / "book.csv"
    path.write_text(GENERIC + GOOD.format(n=1))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(kinds, "load_rows", interrupted)
    with pytest.raises(KeyboardInterrupt), open(path, "rb") as stream:
        spreadsheets.import_invoices(
            stream, filename="book.csv", profile=ImportProfile.objects.get(name="generic-csv")
        )
    batch = IntakeBatch.objects.get()
    assert batch.status == "failed" and "Interrupted" in batch.error

    monkeypatch.setattr(kinds, "load_rows", lambda *a, **k: 1 / 0)
    code, lines, err = run(path)
    assert code == 1 and "ZeroDivisionError" in err
    assert IntakeBatch.objects.get(pk=json.loads(lines[-1])["batch"]).status == "failed"


@override_settings(INTAKE_BATCH_TIMEOUT_MINUTES=30)
def test_a_batch_orphaned_by_a_killed_process_is_failed_by_the_next_load(tmp_path, clock, run):
    orphan = IntakeBatch.objects.create(source="spreadsheet", kind="invoices")
    clock.move_to(timezone.now() + dt.timedelta(minutes=10))
    recent = IntakeBatch.objects.create(source="spreadsheet", kind="invoices")
    other_source = IntakeBatch.objects.create(source="api", kind="invoices")
    IntakeBatch.objects.filter(pk=other_source.pk).update(started_at=orphan.started_at)
    clock.move_to(timezone.now() + dt.timedelta(minutes=25))  # orphan: 35 min; recent: 25 min
    path = tmp_path / "book.csv"
    path.write_text(GENERIC + GOOD.format(n=1))

    assert run(path)[0] == 0

    orphan.refresh_from_db()
    assert orphan.status == "failed" and "INTAKE_BATCH_TIMEOUT_MINUTES" in orphan.error
    assert IntakeBatch.objects.get(pk=recent.pk).status == "running"
    assert IntakeBatch.objects.get(pk=other_source.pk).status == "running"


def test_workbook_values_read_as_openpyxl_wrote_them(tmp_path):
    """The bounded reader gives what openpyxl's read-only mode gave: text, numbers, dates,
    booleans, empty cells, columns by their reference."""
    path = tmp_path / "values.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Invoice Number", "Customer", "Invoice Date", "Due Date", "Currency", "Amount"])
    sheet.append(["INV-1", "Acme", dt.datetime(2026, 10, 1), "2026-10-31", "USD", 12.5])
    sheet.append(["INV-2", "Acme", dt.datetime(2026, 10, 2), None, "USD", 7])
    sheet["H3"] = True
    book.save(path)

    with open(path, "rb") as stream:
        sheet = spreadsheets.open_sheet(stream)
        rows = list(sheet.rows)
    assert sheet.headers[0] == "Invoice Number" and sheet.total_rows == 2
    assert rows[0] == (2, ["INV-1", "Acme", dt.date(2026, 10, 1), "2026-10-31", "USD", 12.5])
    assert rows[1] == (3, ["INV-2", "Acme", dt.date(2026, 10, 2), "", "USD", 7, "", True])


def test_a_dry_run_of_a_refused_file_writes_nothing_either(tmp_path, run):
    path = big_csv(tmp_path)
    with override_settings(UPLOAD_MAX_ROWS=100):
        code, lines, err = run(path, "--dry-run")
    assert code == 2 and "UPLOAD_MAX_ROWS" in err
    assert json.loads(lines[-1])["batch"] is None
    assert not IntakeBatch.objects.exists()
