"""The console's imports of customers, contacts and payments: preview, confirm, retry."""

import io
from decimal import Decimal

import openpyxl
import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import services
from accounts.models import Activity, Contact, Customer, Payment
from integrations.bank.importer import import_statement
from integrations.models import IntakeBatch, Rejection
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

KINDS = {"customer": "customers", "contact": "contacts", "payment": "payments"}


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def xlsx(rows: list[list]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def import_url(model: str) -> str:
    return reverse("admin:integrations_intakebatch_import_kind", args=[KINDS[model]])


def preview(client, model: str, content: bytes | str, *, name="load.csv"):
    if isinstance(content, str):
        content = content.encode()
    return client.post(
        import_url(model), {"file": SimpleUploadedFile(name, content), "encoding": ""}
    )


def confirm(client, model: str, page) -> IntakeBatch:
    token = page.context["confirm"].initial["token"]
    response = client.post(import_url(model), {"token": token})
    assert response.status_code == 302
    batch = IntakeBatch.objects.get()
    assert response["Location"] == reverse("admin:integrations_intakebatch_change", args=[batch.pk])
    return batch


def outcomes(page) -> dict[int, str]:
    return {row.row_number: row.outcome for row, _label in page.context["rows"]}


def load(client, model, content, **kwargs) -> IntakeBatch:
    IntakeBatch.objects.all().delete()
    page = preview(client, model, content, **kwargs)
    assert page.status_code == 200, page.content
    return confirm(client, model, page)


@pytest.fixture
def customers():
    return [
        CustomerFactory(source="spreadsheet", external_ref="C-1", name="Acme", country="US"),
        CustomerFactory(
            source="spreadsheet", external_ref="C-2", name="Globex", currency="EUR", country="DE"
        ),
    ]


CUSTOMERS_CSV = (
    "external_ref,name,country,currency,credit_limit\n"
    "C-1,Acme Rockets,US,USD,\n"  # changed name
    "C-2,Globex,DE,EUR,\n"  # unchanged
    "C-3,Initech,GB,GBP,5000\n"  # new
    "C-4,Umbrella,FR,XXX,\n"  # error: currency
)


def test_customer_csv_preview_shows_each_row_and_writes_nothing(client, finance, customers):
    client.force_login(finance)

    page = preview(client, "customer", CUSTOMERS_CSV)

    assert page.status_code == 200
    assert outcomes(page) == {2: "updated", 3: "unchanged", 4: "created", 5: "rejected"}
    counts = page.context["preview"].counts()
    assert [counts[k] for k in ("read", "created", "updated", "unchanged", "rejected")] == [
        4,
        1,
        1,
        1,
        1,
    ]
    [bad] = [row for row, _label in page.context["rows"] if row.row_number == 5]
    assert list(bad.changes) == ["currency"]
    content = page.content.decode()
    assert "Confirm and load" in content and "XXX is not an ISO 4217" in content
    assert "name: Acme &rarr; Acme Rockets" in content
    assert Customer.objects.count() == 2
    assert Customer.objects.get(external_ref="C-1").name == "Acme"
    assert not IntakeBatch.objects.exists()


def test_customer_csv_confirm_loads_rows_and_keeps_the_rejected_one(client, finance, customers):
    client.force_login(finance)

    batch = load(client, "customer", CUSTOMERS_CSV, name="customers.csv")

    assert (batch.source, batch.kind, batch.created_by, batch.filename) == (
        "spreadsheet",
        "customers",
        finance,
        "customers.csv",
    )
    assert batch.counts() == {
        "read": 4,
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "rejected": 1,
        "warned": 0,
        "batch": batch.pk,
    }
    assert Customer.objects.get(external_ref="C-1").name == "Acme Rockets"
    initech = Customer.objects.get(external_ref="C-3")
    assert (initech.source, initech.credit_limit) == ("spreadsheet", Decimal("5000.00"))
    assert Activity.objects.filter(customer=initech, text="Customer created").exists()
    assert not Customer.objects.filter(external_ref="C-4").exists()
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.row_number == 5
    assert rejection.raw["external_ref"] == "C-4" and rejection.raw["currency"] == "XXX"
    assert list(rejection.errors) == ["currency"]


def test_customer_xlsx_preview_and_confirm(client, finance, customers):
    client.force_login(finance)
    content = xlsx(
        [
            ["source", "external_ref", "name", "country", "timezone", "credit_limit"],
            ["spreadsheet", "C-2", "Globex", "DE", "America/Chicago", None],  # unchanged
            ["spreadsheet", "C-9", "Hooli", "US", "America/Los_Angeles", 1250.5],  # new
            ["spreadsheet", "C-10", "Soylent", "US", "Mars/Olympus", None],  # bad timezone
            ["spreadsheet", "C-1", "Acme", "CA", "America/Chicago", None],  # changed country
        ]
    )

    page = preview(client, "customer", content, name="customers.xlsx")

    assert outcomes(page) == {2: "unchanged", 3: "created", 4: "rejected", 5: "updated"}
    batch = confirm(client, "customer", page)
    assert (batch.created, batch.updated, batch.unchanged, batch.rejected) == (1, 1, 1, 1)
    hooli = Customer.objects.get(external_ref="C-9")
    assert hooli.credit_limit == Decimal("1250.50")
    assert Customer.objects.get(external_ref="C-1").country == "CA"
    assert Rejection.objects.get(batch=batch).errors.keys() == {"timezone"}


def test_customer_key_without_reference_is_a_row_error(client, finance):
    client.force_login(finance)

    batch = load(client, "customer", "external_ref,name\n,Nameless\nC-5,Named\n")

    assert (batch.created, batch.rejected) == (1, 1)
    assert Rejection.objects.get().errors.keys() == {"external_ref"}


def test_contact_phone_is_normalised_with_the_customer_country(client, finance):
    CustomerFactory(external_ref="C-GB", country="GB")
    client.force_login(finance)

    load(
        client,
        "contact",
        "customer_ref,email,name,phone,is_primary\n"
        "C-GB,ap@example.co.uk,Accounts payable,020 7946 0000,yes\n",
    )

    contact = Contact.objects.get()
    assert (contact.phone, contact.is_primary) == ("+442079460000", True)


def test_contact_with_bad_phone_is_rejected_naming_the_field(client, finance):
    customer = CustomerFactory(external_ref="C-1", country="US")
    ContactFactory(customer=customer, email="ap@acme.example", name="AP", phone="+14155550123")
    client.force_login(finance)
    content = (
        "customer_ref,email,name,phone\n"
        "C-1,AP@acme.example,AP,+1 415 555 0123\n"  # the same contact, same number
        "C-1,cfo@acme.example,CFO,12\n"  # bad phone
        "C-404,x@example.com,Nobody,\n"  # unknown customer
    )

    page = preview(client, "contact", content)

    assert outcomes(page) == {2: "unchanged", 3: "rejected", 4: "rejected"}
    assert b"phone" in page.content and b"not a valid phone number" in page.content
    batch = confirm(client, "contact", page)
    assert (batch.rows_read, batch.unchanged, batch.rejected) == (3, 1, 2)
    errors = {r.row_number: r.errors for r in Rejection.objects.filter(batch=batch)}
    assert errors.keys() == {3, 4}
    assert errors[3].keys() == {"phone"} and "12" in errors[3]["phone"][0]
    assert errors[4].keys() == {"customer_ref"} and "C-404" in errors[4]["customer_ref"][0]
    assert Contact.objects.count() == 1


PAYMENTS_CSV = (
    "source,external_id,customer_ref,amount,currency,received_on,remittance_reference\n"
    "lockbox,P-1,C-1,120.50,USD,2026-11-20,INV-1\n"
)


def test_payment_import_records_payment_with_timeline_entry(client, finance):
    customer = CustomerFactory(external_ref="C-1")
    client.force_login(finance)

    batch = load(client, "payment", PAYMENTS_CSV)

    assert (batch.kind, batch.created) == ("payments", 1)
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.customer) == ("lockbox", "P-1", customer)
    assert payment.amount == payment.unallocated_amount == Decimal("120.50")
    assert payment.created_by == finance
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PAYMENT)
    assert entry.actor == finance


def test_payment_reimport_is_unchanged_and_books_nothing_twice(client, finance):
    CustomerFactory(external_ref="C-1")
    client.force_login(finance)
    load(client, "payment", PAYMENTS_CSV)

    again = load(client, "payment", PAYMENTS_CSV)

    assert (again.rows_read, again.unchanged, again.created) == (1, 1, 0)
    assert Payment.objects.count() == 1
    assert Activity.objects.filter(kind=Activity.Kind.PAYMENT).count() == 1


def test_payment_amount_change_is_refused(client, finance):
    CustomerFactory(external_ref="C-1")
    client.force_login(finance)
    load(client, "payment", PAYMENTS_CSV)

    batch = load(client, "payment", PAYMENTS_CSV.replace("120.50", "130.00"))

    assert (batch.rejected, batch.updated) == (1, 0)
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.errors.keys() == {"amount"}
    assert "never changes" in rejection.errors["amount"][0]
    assert Payment.objects.get().amount == Decimal("120.50")


def test_payment_rows_with_bad_amount_or_currency_name_the_field(client, finance):
    client.force_login(finance)
    content = (
        "external_id,amount,currency,received_on\n"
        "P-2,12.345,USD,2026-11-20\n"
        "P-3,abc,USD,2026-11-20\n"
        "P-4,10.00,US,2026-11-20\n"
        "P-5,-5,USD,2026-11-20\n"
        "P-6,10.00,usd,20/11/2026\n"
    )

    batch = load(client, "payment", content)

    errors = {r.row_number: set(r.errors) for r in Rejection.objects.filter(batch=batch)}
    assert errors == {2: {"amount"}, 3: {"amount"}, 4: {"currency"}, 5: {"amount"}}
    unknown_payer = Payment.objects.get(external_id="P-6")
    assert (unknown_payer.source, unknown_payer.currency) == ("spreadsheet", "USD")
    assert unknown_payer.customer is None and unknown_payer.amount == Decimal("10.00")


def test_payment_xlsx_amounts_are_exact(client, finance):
    client.force_login(finance)
    content = xlsx(
        [["external_id", "amount", "currency", "received_on"], ["P-7", 0.1, "EUR", "2026-11-20"]]
    )

    load(client, "payment", content, name="p.xlsx")

    assert Payment.objects.get().amount == Decimal("0.10")


@pytest.mark.parametrize("model", ["customer", "contact", "payment"])
def test_batch_counts_add_up(client, finance, model):
    CustomerFactory(external_ref="C-1")
    client.force_login(finance)
    content = {
        "customer": "external_ref,name\nC-1,Renamed\nC-7,New\n,Missing\n",
        "contact": "customer_ref,email,name\nC-1,a@example.com,A\nC-1,,B\n",
        "payment": "external_id,amount,currency,received_on\nP-1,1.00,USD,2026-11-20\nP-2,0,USD,\n",
    }[model]

    batch = load(client, model, content)

    assert batch.status == IntakeBatch.Status.COMPLETED
    assert batch.rows_read == content.count("\n") - 1
    assert batch.rows_read == batch.created + batch.updated + batch.unchanged + batch.rejected
    assert batch.rejected == Rejection.objects.filter(batch=batch).count() >= 1


@pytest.mark.parametrize("role", ["agent", "manager"])
@pytest.mark.parametrize("model", ["customer", "contact", "payment"])
def test_agents_and_managers_cannot_import(client, finance, request, role, model):
    content = {
        "customer": "external_ref,name\nC-1,X\n",
        "contact": "customer_ref,email,name\nC-1,x@example.com,X\n",
        "payment": f"external_id,amount,currency,received_on\nP-1,1.00,USD,{ON}\n",
    }[model]
    client.force_login(finance)
    token = preview(client, model, content).context["confirm"].initial
    client.force_login(request.getfixturevalue(role))

    assert client.get(import_url(model)).status_code == 403
    assert preview(client, model, content).status_code == 403
    assert client.post(import_url(model), token).status_code == 403
    assert not IntakeBatch.objects.exists()
    assert not Customer.objects.exists() and not Payment.objects.exists()


def test_import_needs_the_intake_permission_too(client):
    user = UserFactory(username="creator")
    user.user_permissions.add(
        Permission.objects.get(codename="add_customer"),
        Permission.objects.get(codename="view_customer"),
    )
    client.force_login(user)

    assert client.get(import_url("customer")).status_code == 403


def test_importing_a_kind_needs_the_right_to_add_it(client):
    user = UserFactory(username="intake-only")
    user.user_permissions.add(Permission.objects.get(codename="add_intakebatch"))
    client.force_login(user)

    assert client.get(import_url("payment")).status_code == 403
    assert client.get(reverse("admin:integrations_intakebatch_import")).status_code == 200


def test_finance_sees_the_import_button_and_form(client, finance, manager):
    client.force_login(finance)
    for model in KINDS:
        changelist = client.get(reverse(f"admin:accounts_{model}_changelist"))
        assert changelist.status_code == 200
        assert import_url(model).encode() in changelist.content
    page = client.get(import_url("payment"))
    assert page.status_code == 200 and b"xlsx" in page.content.lower()
    assert b"external_id" in page.content and b'name="profile"' not in page.content

    client.force_login(manager)
    changelist = client.get(reverse("admin:accounts_customer_changelist"))
    assert changelist.status_code == 200
    assert import_url("customer").encode() not in changelist.content


@pytest.mark.parametrize("model", ["customer", "contact", "payment"])
def test_the_old_import_addresses_lead_to_the_intake_pages(client, finance, model):
    client.force_login(finance)

    response = client.get(f"/admin/accounts/{model}/import/")

    assert response.status_code == 302 and response["Location"] == import_url(model)


def test_contact_list_finds_contacts_by_email_and_phone(client, manager):
    ContactFactory(email="ap@acme.example", phone="+14155550123", name="Acme AP")
    ContactFactory(email="other@example.com", phone="+442079460000", name="Other")
    client.force_login(manager)
    url = reverse("admin:accounts_contact_changelist")

    by_email = client.get(url, {"q": "AP@acme.example"})
    by_phone = client.get(url, {"q": "415 555 0123"})
    by_part = client.get(url, {"q": "ap@acme"})  # encrypted: exact values only

    assert [c.name for c in by_email.context["cl"].result_list] == ["Acme AP"]
    assert [c.name for c in by_phone.context["cl"].result_list] == ["Acme AP"]
    assert list(by_part.context["cl"].result_list) == []


def test_an_unexpected_failure_loads_nothing_and_records_a_failed_batch(
    client, finance, monkeypatch
):
    def explode(*, customer, by):
        raise RuntimeError("disk on fire")

    client.force_login(finance)
    page = preview(client, "customer", "external_ref,name\nC-1,Acme\nC-2,Bolt\n")
    token = page.context["confirm"].initial
    monkeypatch.setattr(services, "save_customer", explode)

    failed_preview = preview(client, "customer", "external_ref,name\nC-1,Acme\n")
    assert b"disk on fire" in failed_preview.content and "confirm" not in failed_preview.context
    assert not IntakeBatch.objects.exists()  # a preview leaves nothing, even when it fails

    response = client.post(import_url("customer"), token)

    batch = IntakeBatch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:integrations_intakebatch_change", args=[batch.pk])
    assert batch.status == IntakeBatch.Status.FAILED and "disk on fire" in batch.error
    assert not Customer.objects.exists() and not Activity.objects.exists()


# --- correct and retry a rejected row -------------------------------------------------------


def retry_form(client, rejection) -> tuple[str, dict, dict]:
    """The retry URL, the form's values as shown, and field name per column."""
    url = reverse("admin:integrations_rejection_retry", args=[rejection.pk])
    form = client.get(url).context["form"]
    values = {name: field.initial for name, field in form.fields.items()}
    names = {field.label: name for name, field in form.fields.items()}
    return url, values, names


def rows_add_up(batch) -> bool:
    return batch.rows_read == batch.created + batch.updated + batch.unchanged + batch.rejected


def test_finance_corrects_a_rejected_customer_row_and_retries_it(client, finance, customers):
    client.force_login(finance)
    batch = load(client, "customer", CUSTOMERS_CSV)
    rejection = Rejection.objects.get(batch=batch)
    change_page = client.get(reverse("admin:integrations_rejection_change", args=[rejection.pk]))
    assert "Correct and retry" in change_page.content.decode()
    url, values, names = retry_form(client, rejection)
    assert values[names["currency"]] == "XXX" and values[names["external_ref"]] == "C-4"

    still_bad = client.post(url, {**values, names["currency"]: "EURO"})

    assert still_bad.status_code == 200
    assert "currency" in dict(still_bad.context["errors"])  # the new reason, per field
    assert "EURO" in still_bad.content.decode()
    rejection.refresh_from_db()
    assert rejection.status == "open" and not Customer.objects.filter(external_ref="C-4").exists()
    assert IntakeBatch.objects.count() == 1  # a failed retry leaves no batch behind

    fixed = client.post(url, {**values, names["currency"]: "EUR"})

    assert fixed.status_code == 302
    rejection.refresh_from_db()
    assert (rejection.status, rejection.resolved_by) == ("retried", finance)
    umbrella = Customer.objects.get(external_ref="C-4")
    assert (umbrella.name, umbrella.currency, umbrella.source) == ("Umbrella", "EUR", "spreadsheet")
    assert Activity.objects.filter(customer=umbrella, text="Customer created").exists()
    retry_batch = IntakeBatch.objects.exclude(pk=batch.pk).get()
    assert (retry_batch.kind, retry_batch.source, retry_batch.created_by) == (
        "customers",
        "spreadsheet",
        finance,
    )
    assert (retry_batch.rows_read, retry_batch.created, retry_batch.rejected) == (1, 1, 0)
    assert f"batch {retry_batch.pk}" in rejection.resolution and "created" in rejection.resolution
    batch.refresh_from_db()
    assert rows_add_up(batch) and rows_add_up(retry_batch)
    # Resolved: no second load from a stale form.
    assert client.post(url, {**values, names["currency"]: "EUR"}).status_code == 200
    assert (
        IntakeBatch.objects.count() == 2
        and Customer.objects.filter(external_ref="C-4").count() == 1
    )


def test_finance_corrects_a_contact_phone_and_retries_it(client, finance):
    customer = CustomerFactory(external_ref="C-1", country="US")
    client.force_login(finance)
    batch = load(client, "contact", "customer_ref,email,name,phone\nC-1,cfo@acme.example,CFO,12\n")
    rejection = Rejection.objects.get(batch=batch)
    url, values, names = retry_form(client, rejection)

    response = client.post(url, {**values, names["phone"]: "(415) 555-0199"})

    assert response.status_code == 302
    contact = Contact.objects.matching(email="cfo@acme.example").get(customer=customer)
    assert contact.phone == "+14155550199"
    rejection.refresh_from_db()
    assert rejection.status == "retried"


def test_finance_corrects_a_payment_amount_and_retries_it(client, finance):
    customer = CustomerFactory(external_ref="C-1")
    client.force_login(finance)
    batch = load(client, "payment", PAYMENTS_CSV.replace("120.50", "12O.50"))
    rejection = Rejection.objects.get(batch=batch)
    assert rejection.errors.keys() == {"amount"}
    url, values, names = retry_form(client, rejection)

    bad_date = client.post(
        url, {**values, names["amount"]: "120.50", names["received_on"]: "31/02/2026"}
    )
    assert bad_date.status_code == 200 and list(dict(bad_date.context["errors"])) == ["received_on"]
    assert not Payment.objects.exists()

    fixed = client.post(url, {**values, names["amount"]: "120.50"})

    assert fixed.status_code == 302
    payment = Payment.objects.get()
    assert (payment.source, payment.external_id, payment.customer) == ("lockbox", "P-1", customer)
    assert payment.amount == payment.unallocated_amount == Decimal("120.50")
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.PAYMENT).count() == 1
    retry_batch = IntakeBatch.objects.exclude(pk=batch.pk).get()
    assert (retry_batch.kind, retry_batch.rows_read, retry_batch.created) == ("payments", 1, 1)


def test_rows_of_a_bank_statement_cannot_be_retried_only_dismissed(client, finance):
    statement = b"date,amount,currency,name,reference\n2026-11-20,abc,EUR,Acme,INV-1\n"
    import_statement(content=statement, filename="bank.csv", reconcile=False)
    rejection = Rejection.objects.get()
    client.force_login(finance)

    change_page = client.get(reverse("admin:integrations_rejection_change", args=[rejection.pk]))
    retry = client.get(reverse("admin:integrations_rejection_retry", args=[rejection.pk]))
    dismissed = client.post(
        reverse("admin:integrations_rejection_changelist"),
        {"action": "dismiss", "_selected_action": [rejection.pk], "apply": "1", "reason": "typo"},
    )

    assert "Correct and retry" not in change_page.content.decode()
    assert retry.status_code == 404
    assert dismissed.status_code == 302
    rejection.refresh_from_db()
    assert (rejection.status, rejection.resolution) == ("dismissed", "typo")


def test_agents_cannot_retry_rejected_customer_rows(client, finance, agent, customers):
    client.force_login(finance)
    rejection = Rejection.objects.get(batch=load(client, "customer", CUSTOMERS_CSV))
    client.force_login(agent)

    url = reverse("admin:integrations_rejection_retry", args=[rejection.pk])
    assert client.get(url).status_code == 403
    assert client.post(url, {"col0": "x"}).status_code == 403
