"""Bank files: BAI2, format detection, MT940 variants, and imports that stay bounded in
memory, refuse files over the upload limits and never leave an import half-done."""

import datetime as dt
import io
import json
import tracemalloc
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import services
from accounts.models import Payment
from integrations.bank import occurrences
from integrations.bank.formats import parse_statements
from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementUnreadable, sniff
from integrations.models import BankLine, BankStatement, IntakeBatch, Rejection
from integrations.uploads import UploadRefused

pytestmark = pytest.mark.django_db

BAI2 = (
    "01,BANKID,CUSTID,261120,0800,FILE1,,,2/\n"
    "02,CUSTID,BANKID,1,261120,2400,USD,2/\n"
    "03,1234567890,,010,100000,,,015,+250050,,/\n"
    "16,195,150050,0,BR001,INV-2026-17,INCOMING WIRE ACME, INC. REF INV-2026-18\n"
    "88,AND INV-2026-19\n"
    "16,475,2500,V,261121,,BR002,CHK 1042/\n"
    "16,301,10000,S,5000,3000,2000,BR003,,LOCKBOX DEPOSIT\n"
    "16,890,0,,BR004,,NOTE ONLY\n"
    "16,999,123,,BR005,,UNKNOWN CODE\n"
    "49,1000000,7/\n"
    "03,998877,JPY,010,5000,,/\n"
    "16,142,12345,D,2,1,10000,2,2345,BR006,,ACH CREDIT\n"
    "49,17345,3/\n"
    "98,1017345,2,12/\n"
    "99,1017345,1,14/\n"
)


def _import(content: bytes, **options):
    return import_statement(content=content, reconcile=False, **options)


def test_bai2_amounts_in_minor_units_type_codes_continuations_and_funds_types():
    result = _import(BAI2.encode())

    usd, jpy = BankStatement.objects.order_by("account").values_list(
        "account", "currency", "opening_balance", "closing_balance", "format", "from_on"
    )
    assert usd[:5] == ("1234567890", "USD", Decimal("1000.00"), Decimal("2500.50"), "bai2")
    assert jpy[:3] == ("998877", "JPY", Decimal("5000.00"))  # yen have no minor unit
    assert str(usd[5]) == "2026-11-20"  # the group's as-of date
    wire, cheque, lockbox, yen = BankLine.objects.order_by("line_number")
    assert (wire.amount, wire.bank_reference) == (Decimal("1500.50"), "BR001")
    # The text runs to the end of the record, commas included, and on through its 88.
    assert wire.remittance == "INCOMING WIRE ACME, INC. REF INV-2026-18 AND INV-2026-19 INV-2026-17"
    assert (cheque.amount, str(cheque.value_on)) == (Decimal("-25.00"), "2026-11-21")
    assert cheque.remittance == "CHK 1042"
    assert (lockbox.amount, lockbox.bank_reference) == (Decimal("100.00"), "BR003")
    assert (yen.amount, yen.currency, yen.bank_reference) == (Decimal("12345.00"), "JPY", "BR006")
    # 890 carries no money and is no line; an unknown type code is rejected with the reason.
    assert (result.lines, result.payments, result.rejected) == (5, 3, 1)
    assert (
        "'999' is not a BAI2 credit (100-399) or debit (400-699)" in Rejection.objects.get().reason
    )


def test_truncated_bai2_is_refused_and_loads_nothing():
    truncated = BAI2.split("98,")[0].encode()
    with pytest.raises(StatementUnreadable, match=r"without its file trailer \(99\)"):
        _import(truncated)
    assert not BankLine.objects.exists() and not Payment.objects.exists()
    assert IntakeBatch.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("content", "format"),
    [
        (
            b"{1:F01BANKDEFFAXXX0000000000}{2:O9401200261120BANKDEFFAXXX00000000002611201200N}"
            b"{4:\r\n:20:REF\r\n:25:DE89370400440532013000\r\n:28C:1/1\r\n:60F:C261119EUR0,00\r\n"
            b":61:2611201120C10,00NTRFNONREF//B1\r\n:86:/REMI/INV-1\r\n:62F:C261120EUR10,00\r\n-}",
            "mt940",
        ),
        (
            b'<?xml version="1.0"?>'
            b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.052.001.08"><BkToCstmrAcctRpt>'
            b"<GrpHdr><MsgId>M</MsgId></GrpHdr><Rpt><Id>R1</Id>"
            b"<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
            b'<Ntry><Amt Ccy="EUR">10.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
            b"<BookgDt><Dt>2026-11-20</Dt></BookgDt><AcctSvcrRef>X1</AcctSvcrRef></Ntry>"
            b"</Rpt></BkToCstmrAcctRpt></Document>",
            "camt052",
        ),
        (b"date,amount,currency\n2026-11-20,10.00,EUR\n", "csv"),
    ],
)
def test_format_is_detected_from_the_content(content, format):
    result = _import(content)
    assert result.statement.format == format
    assert result.payments == 1 and BankLine.objects.get().amount == Decimal("10.00")


def test_mt940_statement_number_wrapped_over_two_lines_keeps_the_statement():
    content = (
        b":20:STMT\n:25:NL91ABNA0417164300\n:28C:00123/\n0001\n:60F:C261119EUR0,00\n"
        b":61:2611201120C10,00NTRFNONREF//B1\n:86:/REMI/INV-1\n:62F:C261120EUR10,00\n"
    )
    _import(content)
    assert BankStatement.objects.get().statement_ref == "STMT/00123"


def test_mt940_with_crlf_or_lf_gives_the_same_lines():
    lf = (
        b":20:STMT\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C261119EUR0,00\n"
        b":61:2611201120C10,00NTRFNONREF\n:86:/REMI/INV-1/NAME/Jane\n"
        b":61:2611201120C10,00NTRFNONREF\n:86:/REMI/INV-1/NAME/Jane\n:62F:C261120EUR20,00\n"
    )
    first = _import(lf)
    again = _import(lf.replace(b"\n", b"\r\n"))
    assert (first.payments, again.payments, again.duplicates) == (2, 0, 2)


def test_file_over_upload_max_bytes_is_refused_before_anything_is_read(tmp_path, settings):
    settings.UPLOAD_MAX_BYTES = 100
    path = tmp_path / "big.csv"
    path.write_text("date,amount,currency\n" + "2026-11-20,1.00,EUR\n" * 10)
    with pytest.raises(CommandError) as refused:
        call_command("import_bank_statement", str(path))
    assert refused.value.returncode == 2 and "(UPLOAD_MAX_BYTES)" in str(refused.value)
    assert not IntakeBatch.objects.exists()


def test_console_upload_over_the_limit_names_the_limit(client, finance, settings):
    settings.UPLOAD_MAX_BYTES = 100
    client.force_login(finance)
    upload = SimpleUploadedFile("s.csv", b"date,amount,currency\n" + b"2026-11-20,1,EUR\n" * 10)
    response = client.post("/admin/integrations/bankstatement/upload/", {"file": upload})
    assert response.status_code == 200
    assert "files of up to 100" in response.content.decode()
    assert not IntakeBatch.objects.exists()


def test_console_upload_is_read_from_the_spooled_file(client, finance, settings):
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 10  # on disk, as a large upload would be
    client.force_login(finance)
    upload = SimpleUploadedFile("s.bai", BAI2.encode())
    response = client.post("/admin/integrations/bankstatement/upload/", {"file": upload})
    assert response.status_code == 302
    assert BankStatement.objects.filter(format="bai2").count() == 2


def test_more_lines_than_upload_max_rows_loads_nothing(settings):
    settings.UPLOAD_MAX_ROWS = 5
    rows = "".join(f"2026-11-20,{n}.00,EUR,Payer {n}\n" for n in range(1, 9))
    with pytest.raises(UploadRefused, match=r"more than 5 lines.*\(UPLOAD_MAX_ROWS\)"):
        _import(f"date,amount,currency,name\n{rows}".encode(), chunk_size=2)
    assert not BankLine.objects.exists() and not Payment.objects.exists()
    batch = IntakeBatch.objects.get()
    assert batch.status == "failed" and "UPLOAD_MAX_ROWS" in batch.error


def test_xml_broken_after_many_entries_loads_nothing():
    entry = (
        '<Ntry><Amt Ccy="EUR">{n}.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<BookgDt><Dt>2026-11-20</Dt></BookgDt><AcctSvcrRef>R{n}</AcctSvcrRef></Ntry>"
    )
    content = (
        '<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id>"
        "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
        + "".join(entry.format(n=n) for n in range(1, 21))
        + "</Stmt><Broken"
    ).encode()
    with pytest.raises(StatementUnreadable, match="XML cannot be read"):
        _import(content, chunk_size=3)
    assert not BankLine.objects.exists() and not Payment.objects.exists()
    assert IntakeBatch.objects.get().status == "failed"


def test_database_error_half_way_rolls_back_and_fails_the_batch(monkeypatch):
    calls = []
    record_payments = services.record_payments

    def fail_on_the_second_chunk(rows, **kwargs):
        calls.append(len(rows))
        if len(calls) == 2:
            raise RuntimeError("connection lost")
        return record_payments(rows, **kwargs)

    monkeypatch.setattr(services, "record_payments", fail_on_the_second_chunk)
    rows = "".join(f"2026-11-20,{n}.00,EUR,Payer {n}\n" for n in range(1, 9))
    with pytest.raises(RuntimeError):
        _import(f"date,amount,currency,name\n{rows}".encode(), chunk_size=3)
    assert not BankLine.objects.exists() and not Payment.objects.exists()
    batch = IntakeBatch.objects.get()
    assert batch.status == "failed" and "connection lost" in batch.error


def test_xml_entity_expansion_is_refused():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&b;</Document>'
    )
    with pytest.raises(StatementUnreadable, match="forbidden constructs"):
        _import(bomb)


def test_repeated_lines_are_counted_the_same_past_the_memory_limit(monkeypatch):
    rows = "2026-11-20,50.00,USD,Bob,Thanks\n" * 6 + "2026-11-21,7.00,USD,Ann,x\n"
    content = f"date,amount,currency,name,reference\n{rows}".encode()
    monkeypatch.setattr(occurrences, "IN_MEMORY_KEYS", 2)  # spill to SQLite at once
    first = _import(content, chunk_size=2)
    monkeypatch.setattr(occurrences, "IN_MEMORY_KEYS", 200_000)
    again = _import(content)
    assert (first.payments, again.payments, again.duplicates) == (7, 0, 7)
    assert len(set(BankLine.objects.values_list("fingerprint", flat=True))) == 7


def _peak_while_parsing(content: bytes) -> int:
    stream = io.BytesIO(content)
    sniffed = sniff(stream)
    tracemalloc.start()
    try:
        for statement in parse_statements(stream, sniffed):
            for _line in statement.lines:
                pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("format", ["csv", "camt053", "mt940", "bai2"])
def test_parsing_holds_a_line_at_a_time_not_the_file(format):
    count = 12_000
    if format == "csv":
        body = "".join(
            f"2026-11-{n % 28 + 1:02d},{n}.25,EUR,Payer {n},Invoice INV-{n:07d} {'x' * 200}\n"
            for n in range(count)
        )
        content = ("date,amount,currency,name,reference\n" + body).encode()
    elif format == "camt053":
        content = (
            '<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
            "<BkToCstmrStmt><GrpHdr><MsgId>M</MsgId></GrpHdr><Stmt><Id>S1</Id>"
            "<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>"
            + "".join(
                f'<Ntry><Amt Ccy="EUR">{n}.25</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
                f"<BookgDt><Dt>2026-11-20</Dt></BookgDt><AcctSvcrRef>R{n}</AcctSvcrRef>"
                f"<NtryDtls><TxDtls><RmtInf><Ustrd>INV-{n:07d} {'x' * 100}</Ustrd></RmtInf>"
                "</TxDtls></NtryDtls></Ntry>"
                for n in range(count)
            )
            + "</Stmt></BkToCstmrStmt></Document>"
        ).encode()
    elif format == "mt940":
        content = (
            ":20:S\n:25:NL91ABNA0417164300\n:28C:1/1\n:60F:C261119EUR0,00\n"
            + "".join(
                f":61:2611201120C{n},25NTRFNONREF//B{n}\n:86:/REMI/INV-{n:07d} {'x' * 200}\n"
                for n in range(1, count)
            )
            + ":62F:C261120EUR0,00\n"
        ).encode()
    else:
        content = (
            "01,B,C,261120,0800,1,,,2/\n02,C,B,1,261120,2400,USD,2/\n03,1,,010,0,,/\n"
            + "".join(f"16,195,{n}25,0,BR{n},,INV-{n:07d} {'x' * 200}\n" for n in range(count))
            + "49,0,2/\n98,0,1,2/\n99,0,1,2/\n"
        ).encode()
    peak = _peak_while_parsing(content)
    # Reading the whole file, or keeping its lines, would cost more than the file's size.
    assert len(content) > 1_000_000 and peak < len(content) / 4, (len(content), peak)


def test_command_reads_the_file_as_a_stream_and_prints_the_summary(tmp_path):
    path = tmp_path / "statement.bai"
    path.write_text(BAI2)
    out = StringIO()
    call_command("import_bank_statement", str(path), "--no-reconcile", stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert (summary["lines"], summary["payments"]) == (5, 3)


def test_a_bank_import_killed_with_its_process_is_failed_by_the_next_one(clock, settings):
    """A batch left running by a dead process (its rows rolled back) would stay running
    for ever; the next bank import fails it, naming the timeout."""
    settings.INTAKE_BATCH_TIMEOUT_MINUTES = 60
    dead = IntakeBatch.objects.create(
        source=IntakeBatch.Source.BANK_STATEMENT,
        kind=IntakeBatch.Kind.PAYMENTS,
        status=IntakeBatch.Status.RUNNING,
    )
    clock.shift(dt.timedelta(minutes=61))
    _import(b"date,amount,currency,payer\n2026-11-20,5.00,EUR,Jane\n")
    dead.refresh_from_db()
    assert dead.status == IntakeBatch.Status.FAILED
    assert "INTAKE_BATCH_TIMEOUT_MINUTES" in dead.error
