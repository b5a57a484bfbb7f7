"""Customer rows through the intake pipeline: keys, defaults, checks, the timeline, counts."""

import io
from decimal import Decimal

import openpyxl
import pytest

from accounts import services
from accounts.models import Activity, Customer
from integrations.intake import batches, spreadsheets
from integrations.intake.customers import CustomerParser, upsert_customers
from integrations.models import IntakeBatch, Rejection
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def load(content: str | bytes, *, by=None, **kwargs) -> IntakeBatch:
    if isinstance(content, str):
        content = content.encode()
    return spreadsheets.import_spreadsheet(
        io.BytesIO(content), kind="customers", filename="customers.csv", by=by, **kwargs
    )


def counts(batch: IntakeBatch) -> tuple:
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


def errors_by_row(batch: IntakeBatch) -> dict[int, dict]:
    return {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}


def test_a_new_customer_gets_the_defaults_and_a_timeline_entry(finance):
    batch = load("external_ref,name,country\nC-1,Initech,gb\n", by=finance)

    assert counts(batch) == (1, 1, 0, 0, 0) and batch.status == "completed"
    initech = Customer.objects.get(external_ref="C-1")
    assert (initech.source, initech.name, initech.country) == ("spreadsheet", "Initech", "GB")
    assert (initech.kind, initech.segment, initech.currency) == ("business", "standard", "USD")
    assert (initech.language, initech.credit_limit) == ("en", None)
    assert initech.timezone == "Europe/London"
    assert initech.timezone_source == "country"  # no zone given: inferred (accounts/timezones.py)
    entry = Activity.objects.get(customer=initech)
    assert (entry.text, entry.actor) == ("Customer created", finance)


def test_a_changed_row_updates_the_customer_and_writes_tracked_changes(finance):
    acme = CustomerFactory(source="spreadsheet", external_ref="C-1", name="Acme")

    batch = load(
        "source,external_ref,name,segment,credit_limit\n"
        "spreadsheet,C-1,Acme Rockets,strategic,2500.00\n",
        by=finance,
    )

    assert counts(batch) == (1, 0, 1, 0, 0)
    acme.refresh_from_db()
    assert (acme.name, acme.segment, acme.credit_limit) == (
        "Acme Rockets",
        "strategic",
        Decimal("2500.00"),
    )
    changed = set(Activity.objects.filter(customer=acme).values_list("details__field", flat=True))
    assert changed == {"segment", "credit_limit"}  # the fields save_customer tracks


def test_loading_the_same_file_again_changes_nothing():
    content = "external_ref,name,currency,timezone\nC-1,Acme,EUR,Europe/Berlin\nC-2,Bolt,,\n"
    load(content)
    entries = Activity.objects.count()
    stamps = dict(Customer.objects.values_list("external_ref", "updated_at"))

    again = load(content)

    assert counts(again) == (2, 0, 0, 2, 0)
    assert Activity.objects.count() == entries
    assert dict(Customer.objects.values_list("external_ref", "updated_at")) == stamps


def test_a_missing_column_keeps_the_stored_value_and_an_empty_cell_sets_the_default():
    acme = CustomerFactory(
        source="spreadsheet", external_ref="C-1", name="Acme", currency="EUR", segment="strategic"
    )

    batch = load("external_ref,name,segment\nC-1,Acme,\n")

    assert counts(batch) == (1, 0, 1, 0, 0)
    acme.refresh_from_db()
    assert (acme.currency, acme.segment) == ("EUR", "standard")


def test_every_bad_cell_of_a_row_is_named_by_its_column():
    batch = load(
        "external_ref,name,currency,timezone,credit_limit,kind\n"
        "C-1,Acme,XXX,Mars/Olympus,12.345,robot\n"
        ",Nameless,USD,UTC,,\n"
        "C-3,,USD,UTC,,\n"
        "C-4,Debtor,USD,UTC,-5,\n"
    )

    assert counts(batch) == (4, 0, 0, 0, 4)
    errors = errors_by_row(batch)
    assert errors[2].keys() == {"currency", "timezone", "credit_limit", "kind"}
    assert errors[2]["currency"] == ["XXX is not an ISO 4217 currency code."]
    assert "Mars/Olympus is not an IANA time zone" in errors[2]["timezone"][0]
    assert errors[2]["credit_limit"] == ["12.345 has more decimals than the ledger keeps (two)."]
    assert errors[3] == {"external_ref": ["Required: part of the key that finds the row."]}
    assert errors[4] == {"name": ["This field cannot be blank."]}
    # The ledger's rule (a credit limit is never negative) names its column too.
    assert errors[5] == {"credit_limit": ["Ensure this value is greater than or equal to 0."]}
    rejection = Rejection.objects.get(batch=batch, row_number=2)
    assert rejection.raw["timezone"] == "Mars/Olympus" and rejection.status == "open"
    assert not Customer.objects.exists()


def test_a_key_repeated_in_the_file_creates_once_then_updates():
    batch = load("external_ref,name\nC-1,Acme\nC-1,Acme Inc\nC-1,Acme Inc\n", chunk_size=2)

    assert counts(batch) == (3, 1, 1, 1, 0)
    assert Customer.objects.get(external_ref="C-1").name == "Acme Inc"


def test_the_same_reference_in_another_source_is_another_customer():
    CustomerFactory(source="xero", external_ref="C-1", name="Acme (Xero)")

    batch = load("source,external_ref,name\nspreadsheet,C-1,Acme\nxero,C-1,Acme (Xero)\n")

    assert counts(batch) == (2, 1, 0, 1, 0)
    assert Customer.objects.filter(external_ref="C-1").count() == 2


def test_workbook_cells_read_as_typed():
    book = openpyxl.Workbook()
    book.active.append(["external_ref", "name", "credit_limit"])
    book.active.append([1001, "Hooli", 1250.5])
    out = io.BytesIO()
    book.save(out)

    batch = load(out.getvalue())

    assert counts(batch) == (1, 1, 0, 0, 0)
    hooli = Customer.objects.get(external_ref="1001")
    assert hooli.credit_limit == Decimal("1250.50")


def test_a_preview_writes_nothing_at_all():
    CustomerFactory(source="spreadsheet", external_ref="C-1", name="Acme")
    seen = []

    preview = load(
        "external_ref,name,currency\nC-1,Acme Rockets,USD\nC-2,Bolt,USD\nC-3,Bad,XXX\n",
        is_dry_run=True,
        on_row=seen.append,
    )

    assert counts(preview) == (3, 1, 1, 0, 1)
    assert sorted((o.row_number, o.number, o.outcome) for o in seen) == [
        (2, "C-1", "updated"),
        (3, "C-2", "created"),
        (4, "C-3", "rejected"),
    ]
    assert next(o for o in seen if o.row_number == 2).changes == {"name": ["Acme", "Acme Rockets"]}
    assert Customer.objects.get().name == "Acme"
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()
    assert not Activity.objects.exists()


def test_a_failure_part_way_loads_nothing_and_fails_the_batch(monkeypatch):
    real_save = services.save_customer

    def save_then_fail(*, customer, by):
        if customer.external_ref == "C-2":
            raise RuntimeError("disk on fire")
        return real_save(customer=customer, by=by)

    monkeypatch.setattr(services, "save_customer", save_then_fail)

    with pytest.raises(spreadsheets.LoadFailed, match="disk on fire") as failure:
        load("external_ref,name\nC-1,Acme\nC-2,Bolt\n")

    batch = IntakeBatch.objects.get()
    assert failure.value.batch == batch
    assert batch.status == "failed" and "disk on fire" in batch.error
    assert not Customer.objects.exists() and not Activity.objects.exists()


def test_a_file_without_the_key_column_cannot_be_read():
    with pytest.raises(spreadsheets.UnreadableFile, match="Missing required columns: external_ref"):
        load("name,country\nAcme,US\n")

    assert IntakeBatch.objects.get().status == "failed"


def test_records_from_the_parser_go_through_upsert_customers(finance):
    parser = CustomerParser()
    records = [
        parser.parse({"external_ref": "C-1", "name": "Acme"}, row_number=2),
        parser.parse({"external_ref": "C-1", "name": "Acme"}, row_number=3),
    ]
    batch = batches.open_batch(source="spreadsheet", kind="customers", by=finance)

    tally = upsert_customers(records, batch=batch, by=finance)

    assert (tally.created, tally.unchanged, tally.read) == (1, 1, 2)
    assert Customer.objects.get().source == "spreadsheet"
