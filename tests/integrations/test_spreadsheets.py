"""Spreadsheet files: CSV and XLSX, encodings, headers, malformed values, vendor exports."""

import datetime as dt
import io
from decimal import Decimal

import openpyxl
import pytest

from accounts.models import Activity, Contact, Customer, Invoice, Payment
from integrations.intake import spreadsheets
from integrations.models import ImportProfile, IntakeBatch, Rejection
from tests.clock import ON
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

GENERIC = "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n"


def load_file(path, profile="generic-csv", **kwargs) -> IntakeBatch:
    with open(path, "rb") as stream:
        return spreadsheets.import_invoices(
            stream,
            filename=path.name,
            profile=ImportProfile.objects.get(name=profile),
            **kwargs,
        )


def write(tmp_path, name, content) -> object:
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def counts(batch):
    batch.refresh_from_db()
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


def test_valid_rows_load_and_each_bad_row_is_kept_with_a_reason_per_field(tmp_path):
    path = write(
        tmp_path,
        "mixed.csv",
        GENERIC
        + "INV-1,Acme,2026-10-01,2026-10-31,USD,100.00\n"
        + "INV-2,Acme,31/02/2026,2026-10-31,USD,100.00\n"
        + "INV-3,Acme,2026-10-01,2026-10-31,XYZ,12.3.4\n"
        + "INV-4,Acme,2026-10-01,2026-09-01,USD,-5\n"
        + ",,2026-10-01,,,\n",
    )
    batch = load_file(path)
    assert counts(batch) == (5, 1, 0, 0, 4)
    assert batch.status == "completed"
    errors = {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}
    assert errors[3] == {
        "issued_on": [
            "'31/02/2026' is not a date in the format YYYY-MM-DD or DD/MM/YYYY or DD.MM.YYYY."
        ]
    }
    assert errors[4] == {
        "currency": ["XYZ is not an ISO 4217 currency code."],
        "amount": ["'12.3.4' is not an amount."],
    }
    assert set(errors[5]) == {"amount", "due_on"}
    assert set(errors[6]) == {"number", "customer_name", "currency", "amount"}
    rejection = Rejection.objects.get(batch=batch, row_number=4)
    assert rejection.raw["Currency"] == "XYZ" and rejection.status == "open"
    assert Invoice.objects.get().number == "INV-1"


def test_a_file_that_is_not_utf8_fails_naming_the_offset_and_line(tmp_path):
    path = write(
        tmp_path,
        "latin1.csv",
        (GENERIC + "INV-1,Müller GmbH,2026-10-01,2026-10-31,EUR,1\n").encode("latin-1"),
    )
    with pytest.raises(spreadsheets.UnreadableFile) as failure:
        load_file(path)
    message = str(failure.value)
    assert "not valid UTF-8" in message and "line 2" in message and "0xfc" in message
    assert failure.value.batch.status == "failed" and failure.value.batch.error == message
    assert not Invoice.objects.exists()

    batch = load_file(path, encoding="latin-1")
    assert counts(batch) == (1, 1, 0, 0, 0)
    assert Customer.objects.get().name == "Müller GmbH"


def test_utf8_with_a_byte_order_mark_and_semicolons_is_read(tmp_path):
    path = write(
        tmp_path,
        "bom.csv",
        "\ufeffINVOICE NUMBER;customer;Invoice  Date;Currency;Amount\n"
        "INV-1;Café Ltd;2026-10-01;EUR;10.00\n",
    )
    assert counts(load_file(path)) == (1, 1, 0, 0, 0)
    assert Customer.objects.get().name == "Café Ltd"


def test_missing_required_columns_fail_the_whole_file(tmp_path):
    path = write(tmp_path, "short.csv", "Invoice Number,Customer,Total\nINV-1,Acme,100\n")
    with pytest.raises(spreadsheets.UnreadableFile) as failure:
        load_file(path)
    message = str(failure.value)
    assert "Missing required columns: issued_on" in message and "currency" in message
    assert "Headers found: 'Invoice Number', 'Customer', 'Total'" in message
    assert IntakeBatch.objects.get().status == "failed"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
        (b"PK\x03\x04 not really a zip", "not an XLSX workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "legacy Excel"),
    ],
)
def test_files_that_are_not_spreadsheets_fail_with_a_reason(tmp_path, content, reason):
    with pytest.raises(spreadsheets.UnreadableFile, match=reason):
        load_file(write(tmp_path, "broken.csv", content))
    assert IntakeBatch.objects.get().status == "failed"


def test_a_header_only_file_is_a_completed_empty_batch(tmp_path):
    assert counts(load_file(write(tmp_path, "empty.csv", GENERIC))) == (0, 0, 0, 0, 0)


def test_xlsx_rows_load_like_csv_rows(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Invoice Number", "Customer", "Invoice Date", "Due Date", "Currency", "Amount"])
    issued, due = dt.datetime(2026, 10, 1), dt.datetime(2026, 10, 31)
    sheet.append(["INV-1", "Acme", issued, due, "USD", 1250.5])
    sheet.append([1002, "Acme", "2026-10-02", None, "usd", 99])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["INV-3", "Acme", "someday", None, "USD", "ten"])
    path = tmp_path / "invoices.xlsx"
    workbook.save(path)
    batch = load_file(path)
    assert counts(batch) == (3, 2, 0, 0, 1)
    first = Invoice.objects.get(number="INV-1")
    assert (first.amount, first.due_on) == (Decimal("1250.50"), dt.date(2026, 10, 31))
    assert Invoice.objects.get(number="1002").amount == Decimal("99.00")
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.row_number == 5 and set(rejection.errors) == {"issued_on", "amount"}


XERO_HEADER = (
    "*ContactName,EmailAddress,POAddressLine1,POCity,POCountry,*InvoiceNumber,Reference,"
    "*InvoiceDate,*DueDate,Total,TaxTotal,InvoiceAmountPaid,InvoiceAmountDue,Description,"
    "*Quantity,*UnitAmount,LineAmount,*AccountCode,*TaxType,Currency\n"
)


def test_a_xero_export_with_one_row_per_line_item(tmp_path):
    path = write(
        tmp_path,
        "xero.csv",
        XERO_HEADER + "Kiwi Dental,ap@kiwi.example,1 Queen St,Auckland,New Zealand,INV-0041,PO 7,"
        "01/10/2026,31/10/2026,1150.00,150.00,0.00,1150.00,Cleaning,1,500.00,500.00,200,"
        "OUTPUT2,NZD\n"
        + "Kiwi Dental,ap@kiwi.example,1 Queen St,Auckland,New Zealand,INV-0041,PO 7,"
        "01/10/2026,31/10/2026,1150.00,150.00,0.00,1150.00,Whitening,1,500.00,500.00,200,"
        "OUTPUT2,NZD\n" + "Kiwi Dental,ap@kiwi.example,1 Queen St,Auckland,New Zealand,INV-0042,,"
        "31/02/2026,31/03/2026,80.00,0.00,0.00,80.00,Check-up,1,80.00,80.00,200,"
        "OUTPUT2,NZD\n",
    )
    batch = load_file(path, profile="xero")
    assert counts(batch) == (3, 1, 0, 1, 1)
    invoice = Invoice.objects.get(source="xero", number="INV-0041")
    assert (invoice.amount, invoice.currency, invoice.reference) == (
        Decimal("1150.00"),
        "NZD",
        "PO 7",
    )
    assert invoice.customer.country == "NZ"
    assert Contact.objects.get(customer=invoice.customer).email == "ap@kiwi.example"
    assert Rejection.objects.get(batch=batch).errors == {
        "issued_on": ["'31/02/2026' is not a date in the format DD/MM/YYYY or YYYY-MM-DD."]
    }


def test_a_quickbooks_ar_aging_export_skips_payment_rows_as_rejected(tmp_path):
    path = write(
        tmp_path,
        "qbo.csv",
        "Date,Transaction Type,Num,Customer,Due Date,Amount,Open Balance,Memo/Description\n"
        '10/01/2026,Invoice,1001,Cool Cars,10/31/2026,"2,500.00","2,500.00",Tyres\n'
        "10/03/2026,Payment,,Cool Cars,,-500.00,-500.00,\n"
        "10/05/2026,Invoice,1002,Diego's Road Warrior Bodyshop,11/04/2026,300.00,100.00,\n",
    )
    batch = load_file(path, profile="quickbooks-online")
    assert counts(batch) == (3, 2, 0, 0, 1)
    assert Rejection.objects.get(batch=batch).errors == {
        "transaction_type": ["'Payment' rows are not invoices; load payments separately."]
    }
    first = Invoice.objects.get(source="quickbooks", number="1001")
    assert (first.currency, first.amount, first.issued_on) == (
        "USD",
        Decimal("2500.00"),
        dt.date(2026, 10, 1),
    )
    # Open Balance below the amount: the difference was paid in QuickBooks.
    settled = Invoice.objects.get(source="quickbooks", number="1002")
    assert (settled.open_balance, settled.status) == (Decimal("100.00"), "partially_paid")


def test_a_dry_run_counts_everything_and_writes_nothing_at_all(tmp_path):
    path = write(
        tmp_path,
        "dry.csv",
        GENERIC
        + "INV-1,Acme,2026-10-01,2026-10-31,USD,100.00\n"
        + "INV-2,Acme,2026-10-01,2026-10-31,USD,oops\n",
    )
    batch = load_file(path, is_dry_run=True)
    assert (batch.rows_read, batch.created, batch.updated, batch.rejected) == (2, 1, 0, 1)
    assert batch.pk is None and batch.status == "completed"
    assert [r.row_number for r in batch.dry_run_rejections] == [3]  # shown, not stored
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()
    assert not Customer.objects.exists() and not Invoice.objects.exists()


def upload(client, name: str, content: str, profile: str = "generic-csv"):
    file = io.BytesIO(content.encode())
    file.name = name
    return client.post(
        "/admin/integrations/intakebatch/import/",
        {"file": file, "profile": ImportProfile.objects.get(name=profile).pk, "encoding": ""},
    )


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_finance_previews_then_confirms_a_spreadsheet_in_the_admin(client, finance):
    existing = Invoice.objects.create(
        customer=Customer.objects.create(name="Acme", source="spreadsheet", external_ref="Acme"),
        number="INV-1",
        source="spreadsheet",
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 10, 31),
        currency="USD",
        amount=Decimal("100.00"),
        open_balance=Decimal("100.00"),
    )
    client.force_login(finance)
    listing = client.get("/admin/integrations/intakebatch/").content.decode()
    assert "Import a spreadsheet" in listing
    preview = upload(
        client,
        "book.csv",
        GENERIC
        + "INV-1,Acme,2026-10-01,2026-11-15,USD,100.00\n"
        + "INV-2,Acme,2026-10-01,2026-10-31,USD,5.00\n"
        + "INV-3,Acme,2026-10-01,2026-10-31,USD,five\n",
    )
    assert preview.status_code == 200
    page = preview.content.decode()
    assert "Of the 3 rows previewed: 1 new, 1 changed, 0 unchanged, 1 with errors." in page
    assert "due_on: 2026-10-31 &rarr; 2026-11-15" in page
    assert "amount: &#x27;five&#x27; is not an amount." in page
    assert Invoice.objects.count() == 1  # the preview wrote nothing to the ledger
    existing.refresh_from_db()
    assert existing.due_on == dt.date(2026, 10, 31)

    token = preview.context["confirm"].initial["token"]
    confirmed = client.post("/admin/integrations/intakebatch/import/", {"token": token})
    batch = IntakeBatch.objects.get(is_dry_run=False)
    assert confirmed.status_code == 302
    assert confirmed.url == f"/admin/integrations/intakebatch/{batch.pk}/change/"
    assert counts(batch) == (3, 1, 1, 0, 1) and batch.created_by == finance
    existing.refresh_from_db()
    assert existing.due_on == dt.date(2026, 11, 15)
    # The stored upload is gone: confirming twice loads nothing twice.
    client.post("/admin/integrations/intakebatch/import/", {"token": token})
    assert IntakeBatch.objects.filter(is_dry_run=False).count() == 1


def test_an_unreadable_upload_is_explained_on_the_form(client, finance):
    client.force_login(finance)
    response = upload(client, "short.csv", "Invoice Number,Customer\nINV-1,Acme\n")
    assert response.status_code == 200
    assert "Missing required columns" in response.content.decode()
    assert not IntakeBatch.objects.exists()  # a preview writes nothing, refused or not


def test_agents_cannot_import_spreadsheets(client, agent, manager):
    for user in (agent, manager):
        client.force_login(user)
        assert client.get("/admin/integrations/intakebatch/import/").status_code == 403
        response = upload(client, "book.csv", GENERIC + "INV-1,Acme,2026-10-01,,USD,1\n")
        assert response.status_code == 403
    assert not IntakeBatch.objects.exists()


def test_finance_corrects_a_rejected_row_and_retries_it(client, finance):
    batch = spreadsheets.import_invoices(
        io.BytesIO((GENERIC + "INV-9,Acme,2026-10-01,2026-10-31,XYZ,1O.00\n").encode()),
        filename="bad.csv",
        profile=ImportProfile.objects.get(name="generic-csv"),
    )
    rejection = Rejection.objects.get(batch=batch)
    client.force_login(finance)
    change_page = client.get(f"/admin/integrations/rejection/{rejection.pk}/change/")
    assert "Correct and retry" in change_page.content.decode()
    url = f"/admin/integrations/rejection/{rejection.pk}/retry/"
    form = client.get(url).context["form"]
    values = {name: field.initial for name, field in form.fields.items()}
    currency = next(n for n, f in form.fields.items() if f.label == "Currency")
    amount = next(n for n, f in form.fields.items() if f.label == "Amount")

    still_bad = client.post(url, {**values, currency: "USD"})
    assert still_bad.status_code == 200
    assert "&#x27;1O.00&#x27; is not an amount." in still_bad.content.decode()
    rejection.refresh_from_db()
    assert rejection.status == "open" and not Invoice.objects.exists()
    assert IntakeBatch.objects.count() == 1  # a failed retry leaves no batch behind

    fixed = client.post(url, {**values, currency: "USD", amount: "10.00"})
    assert fixed.status_code == 302
    rejection.refresh_from_db()
    assert rejection.status == "retried" and rejection.resolved_by == finance
    assert "created" in rejection.resolution
    assert Invoice.objects.get(number="INV-9").amount == Decimal("10.00")
    retry_batch = IntakeBatch.objects.exclude(pk=batch.pk).get()
    assert counts(retry_batch) == (1, 1, 0, 0, 0)


def test_agents_cannot_retry_rejected_rows(client, agent):
    batch = spreadsheets.import_invoices(
        io.BytesIO((GENERIC + "INV-9,Acme,2026-10-01,2026-10-31,XYZ,1\n").encode()),
        filename="bad.csv",
        profile=ImportProfile.objects.get(name="generic-csv"),
    )
    client.force_login(agent)
    url = f"/admin/integrations/rejection/{Rejection.objects.get(batch=batch).pk}/retry/"
    assert client.get(url).status_code == 403


def test_amounts_in_every_written_form_load_to_the_cent(tmp_path):
    path = write(
        tmp_path,
        "amounts.csv",
        GENERIC
        + 'INV-1,Acme,2026-10-01,2026-10-31,USD,"1,234.56"\n'
        + "INV-2,Acme,2026-10-01,2026-10-31,USD,99\n"
        + "INV-3,Acme,2026-10-01,2026-10-31,USD,12.5\n"
        + "INV-4,Acme,2026-10-01,2026-10-31,USD,10.005\n"
        + "INV-5,Acme,2026-10-01,2026-10-31,USD, $7.10 \n"
        + 'INV-6,Acme,2026-10-01,2026-10-31,USD,"1,23"\n'
        + "INV-7,Acme,2026-10-01,2026-10-31,USD,1000000000000.00\n",
    )
    batch = load_file(path)
    assert counts(batch) == (7, 5, 0, 0, 2)
    amounts = dict(Invoice.objects.values_list("number", "amount"))
    assert amounts == {
        "INV-1": Decimal("1234.56"),
        "INV-2": Decimal("99.00"),
        "INV-3": Decimal("12.50"),
        "INV-4": Decimal("10.01"),
        "INV-5": Decimal("7.10"),
    }
    assert [str(a) for a in amounts.values()] == ["1234.56", "99.00", "12.50", "10.01", "7.10"]
    errors = {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}
    assert errors[7] == {"amount": ["'1,23' is not an amount."]}
    assert errors[8] == {"amount": ["1000000000000.00 is too large for an amount."]}


PREVIEWS = {
    "invoices": GENERIC + "INV-1,Acme,2026-10-01,2026-10-31,USD,100.00\n",
    "customers": "external_ref,name\nC-1,Acme Rockets\nC-2,Bolt\n",
    "contacts": "customer_ref,email,name\nC-1,ap@acme.example,AP\n",
    "payments": f"external_id,customer_ref,amount,currency,received_on\nP-1,C-1,5.00,USD,{ON}\n",
}


@pytest.mark.parametrize("kind", PREVIEWS)
def test_a_dry_run_of_any_kind_writes_nothing_to_the_ledger(kind):
    CustomerFactory(source="spreadsheet", external_ref="C-1", name="Acme")
    tables = (Customer, Contact, Invoice, Payment, Activity)
    before = [list(model.objects.values()) for model in tables]

    batch = spreadsheets.import_spreadsheet(
        io.BytesIO(PREVIEWS[kind].encode()),
        kind=kind,
        filename=f"{kind}.csv",
        profile=ImportProfile.objects.get(name="generic-csv") if kind == "invoices" else None,
        is_dry_run=True,
    )

    assert batch.rows_read >= 1 and batch.rejected == 0
    assert batch.created + batch.updated >= 1  # there was something to write
    assert [list(model.objects.values()) for model in tables] == before
    # No dry run leaves anything behind, not even its batch (issue #16, item 3).
    assert not IntakeBatch.objects.exists()
