"""Contact rows through the intake pipeline: the customer's key, E.164 phones, the checks."""

import io

import pytest

from accounts.models import Contact
from integrations.intake import batches, spreadsheets
from integrations.intake.contacts import ContactParser, upsert_contacts
from integrations.models import IntakeBatch, Rejection
from tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def load(content: str, **kwargs) -> IntakeBatch:
    return spreadsheets.import_spreadsheet(
        io.BytesIO(content.encode()), kind="contacts", filename="contacts.csv", **kwargs
    )


def counts(batch: IntakeBatch) -> tuple:
    return (batch.rows_read, batch.created, batch.updated, batch.unchanged, batch.rejected)


def errors_by_row(batch: IntakeBatch) -> dict[int, dict]:
    return {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}


def test_a_contact_is_created_with_its_phone_in_e164_for_the_customer_country():
    customer = CustomerFactory(external_ref="C-GB", country="GB")

    batch = load(
        "customer_ref,email,name,role,phone,is_primary\n"
        "C-GB,ap@example.co.uk,Accounts payable,AP,020 7946 0000,yes\n"
    )

    assert counts(batch) == (1, 1, 0, 0, 0)
    contact = Contact.objects.get(customer=customer)
    assert (contact.email, contact.name, contact.role) == (
        "ap@example.co.uk",
        "Accounts payable",
        "AP",
    )
    assert (contact.phone, contact.is_primary) == ("+442079460000", True)


def test_the_email_finds_the_contact_whatever_its_case_and_changes_update_it():
    customer = CustomerFactory(external_ref="C-1", country="US")
    contact = ContactFactory(customer=customer, email="AP@acme.example", name="AP", phone="")

    batch = load(
        "customer_ref,email,name,phone\n"
        "C-1,ap@ACME.example,AP,\n"  # the same contact, as it is
        "C-1,ap@acme.example,Accounts payable,(415) 555-0199\n"  # renamed, a phone
    )

    assert counts(batch) == (2, 0, 1, 1, 0)
    contact.refresh_from_db()
    assert (contact.email, contact.name, contact.phone) == (
        "AP@acme.example",  # a change of case is no change
        "Accounts payable",
        "+14155550199",
    )
    assert Contact.objects.count() == 1


def test_loading_the_same_file_again_changes_nothing():
    CustomerFactory(external_ref="C-1", country="US")
    content = "customer_ref,email,name,phone\nC-1,ap@acme.example,AP,415 555 0123\n"
    load(content)

    again = load(content)

    assert counts(again) == (1, 0, 0, 1, 0)
    assert Contact.objects.get().phone == "+14155550123"


def test_rows_name_what_is_wrong_by_column():
    CustomerFactory(external_ref="C-1", country="US")
    CustomerFactory(external_ref="C-TWICE", source="xero")
    CustomerFactory(external_ref="C-TWICE", source="spreadsheet")

    batch = load(
        "customer_ref,email,name,phone,is_primary\n"
        "C-1,cfo@acme.example,CFO,12,\n"  # bad phone
        "C-404,x@example.com,Nobody,,\n"  # unknown customer
        "C-TWICE,y@example.com,Twice,,\n"  # two customers have that reference
        ",z@example.com,No ref,,maybe\n"  # no customer, not yes or no
        "C-1,not-an-address,Bad,,\n"
        "C-1,nameless@acme.example,,,\n"
    )

    assert counts(batch) == (6, 0, 0, 0, 6)
    errors = errors_by_row(batch)
    assert errors[2].keys() == {"phone"}
    assert "12" in errors[2]["phone"][0] and "phone number" in errors[2]["phone"][0]
    assert errors[3] == {"customer_ref": ["No customer has the reference 'C-404'."]}
    assert "add a customer_source column" in errors[4]["customer_ref"][0]
    assert errors[5] == {
        "customer_ref": ["Required: the customer's reference."],
        "is_primary": ["'maybe' is not yes or no."],
    }
    assert errors[6] == {"email": ["not-an-address is not an e-mail address."]}
    assert errors[7] == {"name": ["This field cannot be blank."]}
    assert not Contact.objects.exists()


def test_customer_source_picks_one_of_two_customers_sharing_a_reference():
    CustomerFactory(external_ref="C-TWICE", source="xero")
    ours = CustomerFactory(external_ref="C-TWICE", source="spreadsheet")

    batch = load("customer_ref,customer_source,email,name\nC-TWICE,spreadsheet,a@x.example,A\n")

    assert counts(batch) == (1, 1, 0, 0, 0)
    assert Contact.objects.get().customer == ours


def test_a_second_primary_contact_is_refused_by_the_ledger():
    customer = CustomerFactory(external_ref="C-1")
    ContactFactory(customer=customer, email="ap@acme.example", is_primary=True)

    batch = load("customer_ref,email,name,is_primary\nC-1,cfo@acme.example,CFO,yes\n")

    assert counts(batch) == (1, 0, 0, 0, 1)
    assert list(errors_by_row(batch)[2]) == ["row"]
    assert Contact.objects.count() == 1


def test_a_preview_writes_nothing_at_all():
    CustomerFactory(external_ref="C-1")

    preview = load(
        "customer_ref,email,name\nC-1,a@example.com,A\nC-2,b@example.com,B\n", is_dry_run=True
    )

    assert counts(preview) == (2, 1, 0, 0, 1)
    assert not Contact.objects.exists()
    assert not IntakeBatch.objects.exists() and not Rejection.objects.exists()


def test_records_from_the_parser_go_through_upsert_contacts():
    customer = CustomerFactory(external_ref="C-1", country="DE")
    record = ContactParser().parse(
        {
            "customer_ref": "C-1",
            "email": "buchhaltung@example.de",
            "name": "Buchhaltung",
            "phone": "030 901820",
        },
        row_number=2,
    )
    batch = batches.open_batch(source="spreadsheet", kind="contacts")

    tally = upsert_contacts([record], batch=batch)

    assert (tally.created, tally.read) == (1, 1)
    assert Contact.objects.get(customer=customer).phone == "+4930901820"
