"""Unapplied cash keeps who paid: the payer's name, account and remittance text from every
bank format and webhook, shown and searchable in the console (issue 16, defect 6)."""

import io
from decimal import Decimal

import pytest

from accounts.models import Payment
from integrations.bank.importer import import_statement
from integrations.intake import spreadsheets
from privacy import erasure
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

IBAN = "DE02120300000000202051"
UNAPPLIED = "/admin/integrations/matchproposal/unapplied/"


def _camt(kind: str, version: str, entry: str) -> bytes:
    root, report = {
        "053": ("BkToCstmrStmt", "Stmt"),
        "052": ("BkToCstmrAcctRpt", "Rpt"),
        "054": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
    }[kind]
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>'
        f'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.{kind}.001.{version}">'
        f"<{root}><GrpHdr><MsgId>M-{kind}</MsgId></GrpHdr><{report}><Id>R-{kind}</Id>"
        f"<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>{entry}"
        f"</{report}></{root}></Document>"
    ).encode()


CAMT_ENTRY = (
    '<Ntry><Amt Ccy="EUR">250.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>'
    "<BookgDt><Dt>2026-11-20</Dt></BookgDt><AcctSvcrRef>X-{kind}</AcctSvcrRef>"
    "<NtryDtls><TxDtls><RltdPties><Dbtr><Nm>Mystery Corp</Nm></Dbtr>"
    f"<DbtrAcct><Id><IBAN>{IBAN}</IBAN></Id></DbtrAcct></RltdPties>"
    "<RmtInf><Ustrd>Order 4471 thank you</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
)
MT940 = (
    ":20:STARTUMSE\r\n:25:DE89370400440532013000\r\n:28C:00042/001\r\n"
    ":{opening}:C261119EUR1000,00\r\n"
    ":61:2611201120CR250,00NTRFNONREF//B-{tag}\r\n"
    ":86:166?00SEPA-GUTSCHRIFT?20SVWZ+Order 4471 thank you"
    f"?30COBADEFFXXX?31{IBAN}?32Mystery Corp\r\n"
    "{closing}"
)
BAI2 = (
    "01,BANKID,CUSTID,261120,0800,FILE1,,,2/\n"
    "02,CUSTID,BANKID,1,261120,2400,EUR,2/\n"
    "03,1234567890,,010,100000,,,015,+125000,,/\n"
    "16,195,25000,0,BR001,,INCOMING WIRE B/O: Mystery Corp ORIG ACCT: "
    f"{IBAN} Order 4471 thank you\n"
    "49,125000,3/\n98,125000,1,5/\n99,125000,1,7/\n"
)
CSV = (
    "date,amount,currency,name,counterparty account,reference\n"
    f"2026-11-20,250.00,EUR,Mystery Corp,{IBAN},Order 4471 thank you\n"
)

STATEMENTS = {
    "camt053": _camt("053", "02", CAMT_ENTRY.format(kind="053")),
    "camt052": _camt("052", "08", CAMT_ENTRY.format(kind="052")),
    "camt054": _camt("054", "02", CAMT_ENTRY.format(kind="054")),
    "mt940": MT940.format(opening="60F", tag="940", closing=":62F:C261120EUR1250,00\r\n"),
    "mt942": MT940.format(opening="34F", tag="942", closing="").replace(
        ":34F:C261119EUR1000,00", ":34F:EUR0,00\r\n:13D:2611201200+0100"
    ),
    "bai2": BAI2,
    "csv": CSV,
}


@pytest.mark.parametrize("format", list(STATEMENTS))
def test_every_bank_format_keeps_the_payer_name_account_and_remittance(format):
    content = STATEMENTS[format]
    content = content if isinstance(content, bytes) else content.encode()

    result = import_statement(content=content, format=format)

    assert result.statement.format == format
    payment = Payment.objects.get()
    assert payment.customer is None and payment.unallocated_amount == Decimal("250.00")
    assert payment.payer_name == "Mystery Corp"
    assert payment.payer_account == IBAN
    assert "Order 4471 thank you" in payment.remittance_reference
    assert payment.sender == f"Mystery Corp ({IBAN})"


@pytest.fixture
def mystery_payment():
    import_statement(content=STATEMENTS["camt053"])
    return Payment.objects.get()


def test_unapplied_cash_shows_the_payer_and_finds_it_by_name_account_and_text(
    client, finance, mystery_payment
):
    CustomerFactory(name="Known Customer")
    client.force_login(finance)

    queue = client.get(UNAPPLIED).content.decode()
    assert "Mystery Corp" in queue and IBAN in queue
    for term in ("Mystery", "mystery corp", "DE02 1203 0000", "4471"):
        found = client.get(UNAPPLIED, {"q": term}).content.decode()
        assert f"{UNAPPLIED}{mystery_payment.pk}/" in found, term
    nothing = client.get(UNAPPLIED, {"q": "Nobody Ltd"}).content.decode()
    assert f"{UNAPPLIED}{mystery_payment.pk}/" not in nothing


def test_allocate_page_names_the_payer_instead_of_an_unknown_one(client, finance, mystery_payment):
    client.force_login(finance)

    page = client.get(f"{UNAPPLIED}{mystery_payment.pk}/").content.decode()

    assert "unknown payer" not in page
    assert "Mystery Corp" in page and IBAN in page and "Order 4471 thank you" in page


def test_payment_list_search_finds_the_payer(client, finance, mystery_payment):
    client.force_login(finance)

    page = client.get("/admin/accounts/payment/", {"q": "Mystery"}).content.decode()

    assert f"/admin/accounts/payment/{mystery_payment.pk}/change/" in page
    assert "Mystery Corp" in page
    detail = client.get(f"/admin/accounts/payment/{mystery_payment.pk}/change/")
    assert IBAN in detail.content.decode()


def test_payment_spreadsheet_rows_carry_the_payer(finance):
    batch = spreadsheets.import_spreadsheet(
        io.BytesIO(
            b"external_id,amount,currency,received_on,payer_name,payer_account\n"
            b"P-1,40.00,EUR,2026-11-20,Mystery Corp,DE02120300000000202051\n"
        ),
        kind="payments",
        filename="payments.csv",
        by=finance,
    )

    assert (batch.created, batch.rejected) == (1, 0)
    payment = Payment.objects.get(external_id="P-1")
    assert (payment.payer_name, payment.payer_account) == ("Mystery Corp", IBAN)


def test_erasing_the_customer_erases_the_payer_on_its_payments(manager, mystery_payment):
    customer = CustomerFactory(name="Mystery Corp")
    Payment.objects.filter(pk=mystery_payment.pk).update(customer=customer)

    erasure.erase_customer(customer=customer, by=manager, reason="Art. 17 request")

    mystery_payment.refresh_from_db()
    assert (mystery_payment.payer_name, mystery_payment.payer_account) == ("[erased]",) * 2
