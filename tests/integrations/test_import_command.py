"""`manage.py import_invoices`: exit codes, the final JSON line, dry runs, the importer."""

import json

import openpyxl
import pytest
from django.core.management import CommandError, call_command, get_commands, load_command_class
from django.db import connections

from accounts.models import Activity, Invoice
from integrations.models import IntakeBatch, Rejection

pytestmark = pytest.mark.django_db

GENERIC = "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n"


@pytest.fixture
def run(capsys, monkeypatch):
    """Run the command as the shell would; returns (exit code, stdout lines, stderr)."""
    # run_from_argv closes the connections when done; the test's transaction needs its own.
    monkeypatch.setattr(connections, "close_all", lambda: None)
    return lambda *args: _run(capsys, *args)


def _run(capsys, *args) -> tuple[int, list[str], str]:
    command = load_command_class(get_commands()["import_invoices"], "import_invoices")
    try:
        command.run_from_argv(["manage.py", "import_invoices", *map(str, args)])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out.strip().splitlines(), err


def test_a_readable_file_exits_0_and_ends_with_the_counts_as_json(tmp_path, run, finance):
    path = tmp_path / "invoices.csv"
    path.write_text(
        GENERIC
        + "INV-1,Acme,2026-10-01,2026-10-31,USD,100.00\n"
        + "INV-2,Acme,2026-10-01,2026-10-31,USD,1O0.00\n"
    )
    code, lines, _ = run(path, "--user", "finance")
    batch = IntakeBatch.objects.get()
    assert code == 0
    assert json.loads(lines[-1]) == {
        "read": 2,
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "rejected": 1,
        "warned": 0,
        "batch": batch.pk,
    }
    assert batch.created_by == finance
    assert Activity.objects.get(kind="import").actor == finance


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("missing.csv", None, "No such file"),
        ("latin1.csv", (GENERIC + "1,Jürgen,2026-10-01,,EUR,1\n").encode("cp1252"), "UTF-8"),
        ("short.csv", b"Number,Customer\n1,Acme\n", "Missing required columns"),
        ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "not a CSV or XLSX"),
        ("empty.csv", b"", "empty"),
    ],
)
def test_a_file_that_cannot_be_read_exits_2_saying_why(tmp_path, run, name, content, reason):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, lines, err = run(path)
    assert code == 2
    assert reason in err
    last = json.loads(lines[-1])
    assert last["read"] == 0
    if content is not None:
        assert IntakeBatch.objects.get(pk=last["batch"]).status == "failed"


def test_a_dry_run_writes_nothing_and_prints_the_rejected_rows(tmp_path, run):
    path = tmp_path / "invoices.csv"
    path.write_text(
        GENERIC
        + "INV-1,Acme,2026-10-01,2026-10-31,USD,100.00\n"
        + "INV-2,Acme,2026-10-01,2026-10-31,USD,oops\n"
    )
    code, lines, _ = run(path, "--dry-run")
    last = json.loads(lines[-1])
    assert code == 0 and (last["created"], last["rejected"], last["batch"]) == (1, 1, None)
    assert any(line.startswith("Row 3: ") and "amount" in line.lower() for line in lines)
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()
    assert not Invoice.objects.exists()


def test_a_second_run_of_the_same_xlsx_file_is_all_unchanged(tmp_path, run):
    path = tmp_path / "xero.xlsx"
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["InvoiceNumber", "ContactName", "InvoiceDate", "DueDate", "Total", "Currency"])
    sheet.append(["INV-1", "Acme", "01/10/2026", "31/10/2026", "10.00", "NZD"])
    sheet.append(["INV-1", "Acme", "01/10/2026", "31/10/2026", "10.00", "NZD"])
    sheet.append(["INV-2", "Acme", "01/10/2026", "31/10/2026", "20.00", ""])
    workbook.save(path)
    first = json.loads(run(path, "--profile", "xero")[1][-1])
    second = json.loads(run(path, "--profile", "xero")[1][-1])
    # The Xero profile has no default currency: a row without one is rejected.
    assert [first[k] for k in ("read", "created", "unchanged", "rejected")] == [3, 1, 1, 1]
    assert [second[k] for k in ("read", "created", "unchanged", "rejected")] == [3, 0, 2, 1]
    assert Activity.objects.filter(kind="import").count() == 1


def test_an_unknown_profile_is_a_usage_error(tmp_path):
    with pytest.raises(CommandError, match="Unknown profile 'sage'"):
        call_command("import_invoices", str(tmp_path / "x.csv"), "--profile", "sage")
