"""Bank statement import: camt.053, MT940 and CSV into lines, payments and a batch."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Allocation, Payment
from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementUnreadable
from integrations.models import BankLine, BankStatement, IntakeBatch, Rejection
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"


def camt(entries: str, version: str = "02", stmt_id: str = "STMT-2026-11-20") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{CAMT_NS.format(version=version)}"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>MSG-20261120-001</MsgId><CreDtTm>2026-11-20T18:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{stmt_id}</Id>
      <ElctrncSeqNb>214</ElctrncSeqNb>
      <CreDtTm>2026-11-20T18:00:00</CreDtTm>
      <FrToDt><FrDtTm>2026-11-20T00:00:00</FrDtTm><ToDtTm>2026-11-20T23:59:59</ToDtTm></FrToDt>
      <Acct>
        <Id><IBAN>DE89370400440532013000</IBAN></Id>
        <Ccy>EUR</Ccy>
        <Svcr><FinInstnId><BIC>COBADEFFXXX</BIC></FinInstnId></Svcr>
      </Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">10000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="EUR">11210.25</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-20</Dt></Dt>
      </Bal>
      {entries}
    </Stmt>
  </BkToCstmrStmt>
</Document>""".encode()


def entry(
    amount: str,
    *,
    ref: str,
    direction: str = "CRDT",
    name: str = "ACME GMBH",
    iban: str = "DE02120300000000202051",
    ustrd: str = "",
    strd_ref: str = "",
    e2e: str = "NOTPROVIDED",
    currency: str = "EUR",
    party: str = "<Dbtr><Nm>{name}</Nm></Dbtr><DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct>",
) -> str:
    rmt = f"<Ustrd>{ustrd}</Ustrd>" if ustrd else ""
    if strd_ref:
        rmt += f"<Strd><CdtrRefInf><Ref>{strd_ref}</Ref></CdtrRefInf></Strd>"
    return f"""
      <Ntry>
        <Amt Ccy="{currency}">{amount}</Amt>
        <CdtDbtInd>{direction}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>2026-11-20</Dt></BookgDt>
        <ValDt><Dt>2026-11-20</Dt></ValDt>
        <AcctSvcrRef>{ref}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>{e2e}</EndToEndId></Refs>
          <RltdPties>{party.format(name=name, iban=iban)}</RltdPties>
          <RmtInf>{rmt}</RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>"""


def run_command(path, *args) -> tuple[dict, str]:
    out = StringIO()
    call_command("import_bank_statement", str(path), *args, stdout=out)
    lines = out.getvalue().strip().splitlines()
    return json.loads(lines[-1]), out.getvalue()


def test_camt053_statement_is_stored_and_credits_become_bank_payments(tmp_path):
    customer = CustomerFactory(name="Acme GmbH", currency="EUR")
    invoice = InvoiceFactory(
        customer=customer, number="RE-2026-0042", currency="EUR", amount=Decimal("1250.00")
    )
    path = tmp_path / "camt.xml"
    path.write_bytes(
        camt(
            entry(
                "1250.00", ref="2026112000001", ustrd="Rechnung RE-2026-0042 danke", e2e="E2E-4711"
            )
            + entry(
                "39.75",
                ref="2026112000002",
                direction="DBIT",
                name="Telekom",
                party="<Cdtr><Nm>{name}</Nm></Cdtr>",
            )
        )
    )

    summary, _out = run_command(path)

    assert summary == {
        "lines": 2,
        "payments": 1,
        "matched": 1,
        "partially_matched": 0,
        "unmatched": 0,
        "duplicates": 0,
    }
    statement = BankStatement.objects.get()
    assert (statement.format, statement.account, statement.statement_ref, statement.currency) == (
        "camt053",
        "DE89370400440532013000",
        "STMT-2026-11-20",
        "EUR",
    )
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("10000.00"),
        Decimal("11210.25"),
    )
    credit, debit = BankLine.objects.order_by("line_number")
    assert credit.fingerprint == "2026112000001"
    assert (credit.counterparty_name, credit.counterparty_account) == (
        "ACME GMBH",
        "DE02120300000000202051",
    )
    assert credit.amount == Decimal("1250.00") and debit.amount == Decimal("-39.75")
    assert debit.payment is None and debit.counterparty_name == "Telekom"
    payment = credit.payment
    assert (payment.source, payment.external_id, payment.method) == (
        "bank",
        "2026112000001",
        Payment.Method.BANK_TRANSFER,
    )
    assert "RE-2026-0042" in payment.remittance_reference
    assert "E2E-4711" in payment.remittance_reference
    assert payment.customer == customer
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    batch = IntakeBatch.objects.get()
    assert (batch.source, batch.kind, batch.status) == ("bank_statement", "payments", "completed")
    assert (batch.rows_read, batch.created, batch.unchanged, batch.rejected) == (2, 2, 0, 0)


@pytest.mark.parametrize("version", ["02", "04", "06", "08"])
def test_camt053_versions_02_to_08_and_structured_reference(version):
    # v.08 nests the debtor one level deeper: Dbtr/Pty/Nm.
    party = (
        "<Dbtr><Pty><Nm>{name}</Nm></Pty></Dbtr><DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct>"
        if version == "08"
        else "<Dbtr><Nm>{name}</Nm></Dbtr><DbtrAcct><Id><IBAN>{iban}</IBAN></Id></DbtrAcct>"
    )
    content = camt(
        entry("10.00", ref="R1", strd_ref="RF18539007547034", party=party), version=version
    )
    result = import_statement(content=content, reconcile=False)
    line = BankLine.objects.get()
    assert result.payments == 1
    assert line.remittance == "RF18539007547034"
    assert line.counterparty_name == "ACME GMBH"


def test_mt940_statement_with_structured_details():
    content = (
        ":20:STARTUMSE\r\n"
        ":25:DE89370400440532013000\r\n"
        ":28C:00042/001\r\n"
        ":60F:C261119EUR1000,00\r\n"
        ":61:2611201120CR500,00NTRFNONREF//B20261120001\r\n"
        ":86:166?00SEPA-GUTSCHRIFT?20EREF+E2E-99?21SVWZ+INV-000123 und INV-?22000124"
        "?30COBADEFFXXX?31DE02120300000000202051?32MUELLER HANDEL GMBH\r\n"
        ":61:2611211121D50,25NMSCNONREF\r\n"
        ":86:/REMI/Kontofuehrung November/NAME/BANK\r\n"
        ":62F:C261121EUR1449,75\r\n"
    ).encode("cp1252")

    result = import_statement(content=content, reconcile=False)

    statement = result.statement
    assert (statement.format, statement.account, statement.currency) == (
        "mt940",
        "DE89370400440532013000",
        "EUR",
    )
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("1000.00"),
        Decimal("1449.75"),
    )
    assert statement.from_on == dt.date(2026, 11, 19)
    credit, debit = statement.lines.order_by("line_number")
    assert (credit.amount, credit.fingerprint, credit.counterparty_name) == (
        Decimal("500.00"),
        "B20261120001",
        "MUELLER HANDEL GMBH",
    )
    assert credit.counterparty_account == "DE02120300000000202051"
    assert credit.remittance == "INV-000123 und INV-000124"
    assert debit.amount == Decimal("-50.25") and debit.payment is None
    assert debit.remittance == "Kontofuehrung November"
    assert result.payments == 1 and credit.payment.amount == Decimal("500.00")


def test_csv_with_decimal_comma_and_negative_debits(tmp_path):
    path = tmp_path / "statement.csv"
    path.write_text(
        "Date;Amount;Currency;Counterparty;Reference\n"
        "20.11.2026;1.234,56;EUR;Dupont SARL;Facture F-2026-17\n"
        "21.11.2026;-89,90;EUR;Stadtwerke;Strom November\n"
        "2026-11-22;15;EUR;Anon;\n",
        encoding="utf-8",
    )
    summary, _out = run_command(path, "--format", "csv", "--account", "FR7630006000011234567890189")
    assert summary["lines"] == 3 and summary["payments"] == 2
    amounts = list(BankLine.objects.order_by("line_number").values_list("amount", flat=True))
    assert amounts == [Decimal("1234.56"), Decimal("-89.90"), Decimal("15.00")]
    assert set(BankLine.objects.values_list("account", flat=True)) == {
        "FR7630006000011234567890189"
    }
    assert Payment.objects.filter(source="bank").count() == 2


def test_reimporting_the_same_statement_creates_nothing(tmp_path):
    path = tmp_path / "camt.xml"
    path.write_bytes(camt(entry("10.00", ref="R1") + entry("20.00", ref="R2")))
    run_command(path)
    summary, _out = run_command(path)
    assert summary["duplicates"] == 2 and summary["payments"] == 0
    assert BankLine.objects.count() == 2 and Payment.objects.count() == 2
    assert BankStatement.objects.count() == 1
    second = IntakeBatch.objects.order_by("-pk").first()
    assert (second.rows_read, second.created, second.unchanged) == (2, 0, 2)


def test_lines_without_bank_reference_are_fingerprinted_by_content_and_occurrence(tmp_path):
    path = tmp_path / "s.csv"
    # Two identical transfers on one day are two payments, and stay two on re-import.
    path.write_text(
        "date,amount,currency,name,reference\n"
        "2026-11-20,50.00,USD,Bob,Thanks\n2026-11-20,50.00,USD,Bob,Thanks\n"
    )
    first, _ = run_command(path)
    again, _ = run_command(path)
    assert first["payments"] == 2 and again["duplicates"] == 2 and again["payments"] == 0
    assert len(set(BankLine.objects.values_list("fingerprint", flat=True))) == 2
    assert all(len(fp) == 64 for fp in BankLine.objects.values_list("fingerprint", flat=True))


def test_truncated_xml_exits_2_and_fails_the_batch(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_bytes(camt(entry("10.00", ref="R1"))[:-200])
    with pytest.raises(CommandError) as raised:
        call_command("import_bank_statement", str(path))
    assert raised.value.returncode == 2
    assert "XML cannot be read" in str(raised.value)
    batch = IntakeBatch.objects.get()
    assert batch.status == "failed" and "XML cannot be read" in batch.error
    assert not BankLine.objects.exists() and not Payment.objects.exists()


def test_xml_that_is_not_a_statement_is_refused(tmp_path):
    path = tmp_path / "pain.xml"
    path.write_bytes(
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
        b'pain.001.001.03"><CstmrCdtTrfInitn/></Document>'
    )
    with pytest.raises(CommandError) as raised:
        call_command("import_bank_statement", str(path))
    assert raised.value.returncode == 2
    assert "not a camt.053, camt.052 or camt.054 document" in str(raised.value)


def test_wrong_encoding_is_refused_with_the_reason(tmp_path):
    # Declared UTF-8, written in Windows-1252: the XML parser cannot read the name.
    content = camt(entry("10.00", ref="R1", name="Müller")).decode().encode("cp1252")
    with pytest.raises(StatementUnreadable, match="XML cannot be read"):
        import_statement(content=content)
    # A UTF-16 CSV is not guessed at.
    utf16 = "date,amount,currency\n2026-11-20,1.00,EUR\n".encode("utf-16-le")
    with pytest.raises(StatementUnreadable, match="not text in UTF-8 or Windows-1252"):
        import_statement(content=utf16, format="csv")
    assert IntakeBatch.objects.filter(status="failed").count() == 2


def test_windows_1252_csv_is_read(tmp_path):
    content = "date;amount;currency;name;reference\n20.11.2026;12,50;EUR;Müller;x\n".encode(
        "cp1252"
    )
    import_statement(content=content, reconcile=False)
    assert BankLine.objects.get().counterparty_name == "Müller"


def test_malformed_lines_are_rejected_with_a_reason_while_the_rest_loads():
    content = camt(
        entry("10.00", ref="R1")
        + entry("ten", ref="R2")
        + entry("30.00", ref="R3", direction="SIDEWAYS")
        + entry("40.00", ref="R4", currency="XXY")
    )
    result = import_statement(content=content, reconcile=False)
    assert (result.lines, result.payments, result.rejected) == (4, 1, 3)
    batch = result.batch
    batch.refresh_from_db()
    assert (batch.rows_read, batch.created, batch.rejected, batch.status) == (4, 1, 3, "completed")
    reasons = {r.row_number: r.reason for r in Rejection.objects.filter(batch=batch)}
    assert "'ten' is not an amount" in reasons[2]
    assert "SIDEWAYS" in reasons[3]
    assert "ISO 4217" in reasons[4]


def test_malformed_mt940_line_is_rejected_and_the_rest_loads():
    content = (
        b":20:REF\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C261119EUR0,00\n"
        b":61:2611201120C100,00NTRFNONREF//B1\n:86:/REMI/first\n"
        b":61:26XX20C5X0,00NTRFNONREF\n:86:broken\n"
        b":61:2611201120C200,00NTRFNONREF//B3\n:86:/REMI/third\n"
        b":62F:C261120EUR300,00\n"
    )
    result = import_statement(content=content, reconcile=False)
    assert (result.lines, result.payments, result.rejected) == (3, 2, 1)
    rejection = Rejection.objects.get()
    assert rejection.row_number == 2 and "Unable to parse" in rejection.reason


def test_malformed_csv_line_is_rejected():
    content = b"date,amount,currency,name\n2026-11-20,10.00,EUR,A\n31.02.2026,5,EUR,B\n"
    result = import_statement(content=content, reconcile=False)
    assert (result.payments, result.rejected) == (1, 1)
    assert "is not a date" in Rejection.objects.get().reason


def test_payer_identified_by_name_only_when_unambiguous():
    unique = CustomerFactory(name="Zephyr Trading Ltd")
    CustomerFactory(name="Twin Co")
    CustomerFactory(name="Twin Co")
    content = (
        b"date,amount,currency,name,reference\n"
        b"2026-11-20,10.00,USD,ZEPHYR  TRADING LTD,x\n"
        b"2026-11-20,11.00,USD,Twin Co,y\n"
    )
    import_statement(content=content, reconcile=False)
    first, second = Payment.objects.order_by("amount")
    assert first.customer == unique and second.customer is None


def test_payer_identified_by_contact_name_and_by_known_iban():
    contact = ContactFactory(name="Jane Payer")
    import_statement(
        content=b"date,amount,currency,name,iban,reference\n"
        b"2026-11-20,10.00,USD,Jane Payer,GB33BUKB20201555555555,a\n",
        reconcile=False,
    )
    assert Payment.objects.get().customer == contact.customer
    # The same IBAN later, under another name: the account's history names the payer.
    import_statement(
        content=b"date,amount,currency,name,iban,reference\n"
        b"2026-11-21,20.00,USD,J P,GB33BUKB20201555555555,b\n",
        reconcile=False,
    )
    assert Payment.objects.get(amount=Decimal("20.00")).customer == contact.customer


def test_command_prints_the_json_summary_last(tmp_path):
    customer = CustomerFactory(name="Beta Ltd")
    InvoiceFactory(customer=customer, number="INV-7", amount=Decimal("70.00"))
    path = tmp_path / "s.csv"
    path.write_text(
        "date,amount,currency,name,reference\n"
        "2026-11-20,100.00,USD,x,INV-7\n2026-11-20,5.00,USD,nobody,?\n"
    )
    out = StringIO()
    call_command("import_bank_statement", str(path), stdout=out)
    last = out.getvalue().strip().splitlines()[-1]
    assert json.loads(last) == {
        "lines": 2,
        "payments": 2,
        "matched": 0,
        "partially_matched": 1,
        "unmatched": 1,
        "duplicates": 0,
    }
    assert Allocation.objects.get().amount == Decimal("70.00")


def test_unknown_file_is_not_a_statement(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some notes\nwithout columns\n")
    with pytest.raises(CommandError) as raised:
        call_command("import_bank_statement", str(path))
    assert raised.value.returncode == 2 and "not a CSV statement" in str(raised.value)


def test_lines_keep_every_character_and_point_at_their_payments(tmp_path):
    path = tmp_path / "s.csv"
    awkward = 'back\\slash \\N "quoted" ünïcödé € INV\\42'
    in_csv = awkward.replace('"', '""')
    path.write_text(
        "date,amount,currency,name,reference,bank reference\n"
        f'2026-11-20,12.30,EUR,"Tab\tName","{in_csv}",R-1\n'
        "2026-11-20,-1.00,EUR,Bank,fee,R-2\n",
        encoding="utf-8",
    )
    summary, _out = run_command(path)
    assert summary["lines"] == 2 and summary["payments"] == 1
    credit, fee = BankLine.objects.order_by("line_number")
    assert (credit.remittance, credit.counterparty_name) == (awkward, "Tab\tName")
    assert credit.payment.external_id == credit.fingerprint and credit.payment.amount == Decimal(
        "12.30"
    )
    assert credit.payment.remittance_reference.startswith(awkward)
    assert fee.payment_id is None and fee.amount == Decimal("-1.00")
