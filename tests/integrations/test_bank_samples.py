"""Real bank files from public test suites (tests/integrations/bank_samples/, sources in
its README): each imports, and imports nothing the second time, or is refused with a
reason that names what is wrong with it."""

from decimal import Decimal
from pathlib import Path

import pytest

from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementUnreadable
from integrations.models import BankLine, BankStatement, IntakeBatch

pytestmark = pytest.mark.django_db

SAMPLES = Path(__file__).parent / "bank_samples"

# file: (format, statements, lines, rejected lines, credits)
IMPORTED = {
    "bai2/account_trailer_amount_blank_example.bai2": ("bai2", 2, 0, 0, 0),
    "bai2/citi_example.bai2": ("bai2", 1, 1, 0, 1),
    "bai2/nwb_example.bai2": ("bai2", 1, 5, 0, 1),
    "bai2/svb_us_example.bai2": ("bai2", 2, 2, 0, 2),
    "camt/oca-test-camt053-no-ntry.xml": ("camt053", 1, 0, 0, 0),
    "camt/oca-test-camt053-txdtls.xml": ("camt053", 1, 2, 0, 2),
    "camt/oca-test-camt053.xml": ("camt053", 1, 4, 0, 1),
    "camt/oca-test-camt054.xml": ("camt054", 1, 1, 0, 1),
    "mt940/ASNB__0708271685_09022020_164516.sta": ("mt940", 31, 8, 0, 3),
    "mt940/betterplace__sepa_mt9401.sta": ("mt940", 26, 97, 0, 43),
    "mt940/betterplace__sepa_snippet.sta": ("mt940", 2, 11, 0, 8),
    "mt940/betterplace__with_binary_character.sta": ("mt940", 2, 4, 0, 3),
    "mt940/jejik__abnamro.sta": ("mt940", 2, 10, 0, 0),
    "mt940/jejik__generic.sta": ("mt940", 2, 2, 0, 0),
    "mt940/jejik__ing.sta": ("mt940", 1, 7, 0, 2),
    "mt940/jejik__knab.sta": ("mt940", 2, 3, 0, 2),
    "mt940/jejik__postfinance.sta": ("mt940", 2, 4, 0, 3),
    "mt940/jejik__rabobank-iban.sta": ("mt940", 2, 4, 0, 0),
    "mt940/jejik__rabobank.sta": ("mt940", 4, 5, 0, 0),
    "mt940/jejik__sns.sta": ("mt940", 2, 2, 0, 0),
    "mt940/jejik__triodos.sta": ("mt940", 1, 2, 0, 0),
    "mt940/mBank__mt940.sta": ("mt940", 1, 3, 0, 3),
    "mt940/mBank__mt942.sta": ("mt942", 1, 3, 0, 3),
    "mt940/mBank__with_newline_in_tnr.sta": ("mt940", 1, 2, 0, 2),
    "mt940/sberbank__171011_01234945.sta": ("mt940", 1, 3, 0, 0),
    "mt940/self-provided__details_60-63.sta": ("mt940", 1, 1, 0, 0),
    "mt940/self-provided__february_30.sta": ("mt940", 1, 1, 0, 0),
    "mt940/self-provided__gv_codes.sta": ("mt940", 1, 2, 0, 0),
    "mt940/self-provided__long_statement_number.sta": ("mt940", 1, 0, 0, 0),
    "mt940/self-provided__mt942.sta": ("mt942", 1, 1, 0, 0),
    "mt940/self-provided__transaction_details_wrapped.sta": ("mt940", 1, 1, 0, 0),
    "mt940/self-provided__wrapped_timestamp.sta": ("mt940", 1, 1, 0, 0),
}
# Files that truly cannot be booked, and the reason they are refused with.
REFUSED = {
    # Central European text in code page 852 (not UTF-8 nor Windows-1252): not guessed at.
    "mt940/self-provided__raiffeisen-cmi.sta": "not text in UTF-8 or Windows-1252: byte 312",
    # Deutsche Mark, withdrawn in 2002: no ISO 4217 currency to book it in.
    "mt940/self-provided__raphaelm.sta": "currency 'DEM' is not ISO 4217",
    # A fragment: a :61: and a broken :86:, no statement around them.
    "mt940/self-provided__sparkassen.sta": "not an MT940 statement: no :20: and :25: tags",
}


def test_every_sample_is_listed():
    on_disk = {
        str(path.relative_to(SAMPLES))
        for path in SAMPLES.rglob("*")
        if path.is_file() and path.name != "README.md"
    }
    assert on_disk == set(IMPORTED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(IMPORTED))
def test_public_sample_imports_and_imports_nothing_again(name):
    format, statements, lines, rejected, credits = IMPORTED[name]
    with (SAMPLES / name).open("rb") as stream:
        result = import_statement(file=stream, filename=name, reconcile=False)
    assert (result.lines, result.rejected, result.payments) == (lines, rejected, credits)
    assert BankStatement.objects.count() == statements
    assert set(BankStatement.objects.values_list("format", flat=True)) == {format}
    assert BankLine.objects.count() == lines - rejected
    batch = IntakeBatch.objects.get()
    assert (batch.status, batch.rows_read, batch.created) == ("completed", lines, lines - rejected)

    with (SAMPLES / name).open("rb") as stream:
        again = import_statement(file=stream, filename=name, reconcile=False)
    assert (again.payments, again.duplicates) == (0, lines - rejected)
    assert BankStatement.objects.count() == statements  # empty statements are kept once too


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_public_sample_that_cannot_be_booked_is_refused_with_its_reason(name):
    with (SAMPLES / name).open("rb") as stream, pytest.raises(StatementUnreadable) as refused:
        import_statement(file=stream, filename=name, reconcile=False)
    assert REFUSED[name] in str(refused.value)
    batch = IntakeBatch.objects.get()
    assert batch.status == "failed" and REFUSED[name] in batch.error
    assert not BankLine.objects.exists() and not BankStatement.objects.exists()


def test_mt940_file_with_several_accounts_is_split_into_their_statements():
    with (SAMPLES / "mt940/jejik__rabobank.sta").open("rb") as stream:
        import_statement(file=stream, reconcile=False)
    by_account = {
        account: list(
            BankStatement.objects.filter(account=account)
            .order_by("statement_ref")
            .values_list("statement_ref", "opening_balance", "closing_balance")
        )
        for account in BankStatement.objects.values_list("account", flat=True).distinct()
    }
    assert sorted(by_account) == ["1291.99.348EUR", "1526.89.184EUR"]
    first = by_account["1291.99.348EUR"][0]
    assert first == ("940A110615/00000", Decimal("473.17"), Decimal("395.82"))
    # Each line sits in the statement of its own account.
    for line in BankLine.objects.select_related("statement"):
        assert line.account == line.statement.account


def test_mt942_interim_report_without_opening_balance_adds_up_to_its_trailer():
    with (SAMPLES / "mt940/mBank__mt942.sta").open("rb") as stream:
        import_statement(file=stream, reconcile=False)
    statement = BankStatement.objects.get()
    assert (statement.format, statement.currency, statement.opening_balance) == (
        "mt942",
        "PLN",
        None,
    )
    # The report's own trailer, :90C:3PLN0,03, counts three credits summing to 0.03.
    amounts = list(statement.lines.values_list("amount", flat=True))
    assert len(amounts) == 3 and sum(amounts) == Decimal("0.03")


def test_bai2_details_add_up_to_the_account_summary():
    with (SAMPLES / "bai2/nwb_example.bai2").open("rb") as stream:
        import_statement(file=stream, reconcile=False)
    statement = BankStatement.objects.get()
    assert (statement.account, statement.currency) == ("88888888600004", "GBP")
    assert (statement.opening_balance, statement.closing_balance) == (
        Decimal("365.21"),
        Decimal("338.45"),
    )
    lines = statement.lines.all()
    debits = [line.amount for line in lines if line.amount < 0]
    credits = [line.amount for line in lines if line.amount > 0]
    # The 03 record's summary: 400 (total debits) 2765 in 4 items, 100 (credits) 89 in 1.
    assert (len(debits), sum(debits)) == (4, Decimal("-27.65"))
    assert (len(credits), sum(credits)) == (1, Decimal("0.89"))
    # The text of a 16 record continues over its 88 records.
    credit = statement.lines.get(amount=Decimal("0.89"))
    assert credit.remittance.endswith("INTERNATIONAL-5373 CLIE NT SECCY AC TFR")


def test_empty_camt053_statement_is_imported_as_an_empty_statement():
    with (SAMPLES / "camt/oca-test-camt053-no-ntry.xml").open("rb") as stream:
        result = import_statement(file=stream, reconcile=False)
    statement = BankStatement.objects.get()
    assert result.lines == 0 and result.batch.status == "completed"
    assert (statement.account, statement.currency) == ("NL77ABNA0574908765", "CHF")
    assert statement.opening_balance == statement.closing_balance == Decimal("1520.76")


def test_structured_german_details_name_the_payer_and_the_purpose():
    with (SAMPLES / "mt940/betterplace__sepa_snippet.sta").open("rb") as stream:
        import_statement(file=stream, reconcile=False)
    line = BankLine.objects.get(amount=Decimal("50990.05"))
    # ?31 the payer's IBAN, ?32/?33 its name, ?20-?29 the purpose: the payer is known by
    # its account on the next import, and the text is what the matcher reads.
    assert line.counterparty_account == "DE14508800500194785000"
    assert " ".join(line.counterparty_name.split()) == "KARL KAUFMANN"
    assert line.remittance.startswith("Verw CTSc-01 BC-PPP TFNr 22 004")
    assert line.payment.remittance_reference.startswith("Verw CTSc-01")


def test_asn_lines_past_the_swift_limits_are_read_with_the_payers_iban():
    # ASN Bank writes the payer's IBAN (18 characters) where SWIFT allows 16, and the
    # payer's name on the next line: the mt940 package refuses those lines.
    with (SAMPLES / "mt940/ASNB__0708271685_09022020_164516.sta").open("rb") as stream:
        result = import_statement(file=stream, reconcile=False)
    assert result.rejected == 0
    line = BankLine.objects.get(amount=Decimal("1000.00"), booked_on="2020-01-05")
    assert line.counterparty_account == "NL56ASNB9999999999"
    assert "paulissen g j l m" in line.remittance
