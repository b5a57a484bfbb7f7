"""Validation tuned by source: a malformed phone or e-mail on an invoice row warns and the
invoice loads; each import profile says which fields are required and which only warn;
warnings are kept per row, shown in the preview and the batch, and counted per source."""

import datetime as dt
import io

import pytest

from accounts.models import Contact, Invoice
from integrations.intake import health, spreadsheets
from integrations.models import ImportProfile, IntakeBatch, Rejection, RowWarning

pytestmark = pytest.mark.django_db

HEADER = (
    "Invoice Number,Customer ID,Customer,Email,Phone,Country,Invoice Date,Due Date,"
    "Currency,Amount\n"
)
ROWS = (
    "INV-1,C-1,Acme,ap@acme.example,12,US,2026-10-01,2026-10-31,USD,100.00\n"
    "INV-2,C-2,Bolt,not-an-address,(415) 555-0123,US,2026-10-01,2026-10-31,USD,250.00\n"
    "INV-3,C-3,Core,ar@core.example,(415) 555-0199,US,2026-10-01,2026-10-31,USD,75.00\n"
)
IMPORT = "/admin/integrations/intakebatch/import/"


def generic() -> ImportProfile:
    return ImportProfile.objects.get(name="generic-csv")


def load(text: str = HEADER + ROWS, **kwargs) -> IntakeBatch:
    return spreadsheets.import_invoices(
        io.BytesIO(text.encode()), filename="invoices.csv", profile=generic(), **kwargs
    )


@pytest.fixture(autouse=True)
def _uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, text: str = HEADER + ROWS):
    file = io.BytesIO(text.encode())
    file.name = "invoices.csv"
    return client.post(IMPORT, {"file": file, "profile": generic().pk, "encoding": ""})


def test_shipped_profiles_let_a_bad_phone_or_email_only_warn():
    assert set(ImportProfile.objects.values_list("name", flat=True)) >= {"generic-csv", "xero"}
    for profile in ImportProfile.objects.all():
        assert profile.warn_only == ["email", "phone"], profile.name


def test_a_malformed_phone_or_email_warns_and_the_invoice_loads_without_it():
    batch = load()

    batch.refresh_from_db()
    assert (batch.rows_read, batch.created, batch.rejected, batch.warned) == (3, 3, 0, 2)
    assert set(Invoice.objects.values_list("number", flat=True)) == {"INV-1", "INV-2", "INV-3"}
    assert not Rejection.objects.exists()
    warnings = {w.row_number: w for w in RowWarning.objects.filter(batch=batch)}
    assert sorted(warnings) == [2, 3]
    assert (warnings[2].number, list(warnings[2].warnings)) == ("INV-1", ["phone"])
    assert (warnings[3].number, list(warnings[3].warnings)) == ("INV-2", ["email"])
    assert "not-an-address" in warnings[3].reason
    # The bad values were left out; the good half of each contact was kept.
    acme = Contact.objects.get(customer__external_ref="C-1")
    assert (acme.email, acme.phone) == ("ap@acme.example", "")
    bolt = Contact.objects.get(customer__external_ref="C-2")
    assert (bolt.email, bolt.phone) == ("", "+14155550123")


def test_a_profile_that_makes_them_strict_rejects_the_rows_instead():
    ImportProfile.objects.filter(pk=generic().pk).update(warn_only=[])

    batch = load()

    batch.refresh_from_db()
    assert (batch.created, batch.rejected, batch.warned) == (1, 2, 0)
    assert not RowWarning.objects.exists()
    errors = {r.row_number: list(r.errors) for r in Rejection.objects.filter(batch=batch)}
    assert errors == {2: ["phone"], 3: ["email"]}


def test_a_contact_name_too_long_can_warn_too():
    ImportProfile.objects.filter(pk=generic().pk).update(warn_only=["contact_name"])
    text = (
        "Invoice Number,Customer,Contact,Invoice Date,Currency,Amount\n"
        f"INV-9,Acme,{'x' * 201},2026-10-01,USD,10.00\n"
    )

    batch = load(text)

    batch.refresh_from_db()
    assert (batch.created, batch.warned) == (1, 1)
    assert list(RowWarning.objects.get().warnings) == ["contact_name"]


def test_a_dry_run_counts_warnings_and_writes_none():
    batch = load(is_dry_run=True)

    assert batch.warned == 2 and batch.pk is None
    assert not RowWarning.objects.exists() and not Invoice.objects.exists()


def test_preview_shows_each_warning_writes_nothing_and_the_batch_keeps_them(client, finance):
    client.force_login(finance)

    preview = upload(client)

    page = preview.content.decode()
    assert preview.status_code == 200
    assert "0 with errors" in page and 'id="preview-warned"' in page
    assert page.count('class="row-warning"') == 2
    assert "phone:" in page and "email:" in page
    assert not RowWarning.objects.exists() and not IntakeBatch.objects.exists()

    token = preview.context["confirm"].initial["token"]
    confirmed = client.post(IMPORT, {"token": token}, follow=True)
    batch = IntakeBatch.objects.get()
    assert batch.warned == 2 and RowWarning.objects.filter(batch=batch).count() == 2
    assert "2 loaded with a warning" in confirmed.content.decode()
    detail = client.get(f"/admin/integrations/intakebatch/{batch.pk}/change/").content.decode()
    assert "Rows loaded with warnings" in detail and "not-an-address" in detail
    listing = client.get("/admin/integrations/intakebatch/").content.decode()
    assert "loaded with warnings" in listing.lower()


def test_finance_edits_required_and_warn_only_fields_on_the_profile(client, finance):
    client.force_login(finance)
    profile = generic()
    url = f"/admin/integrations/importprofile/{profile.pk}/change/"
    form = client.get(url)
    assert form.status_code == 200
    page = form.content.decode()
    assert 'name="warn_only_fields"' in page and 'value="phone"' in page and "checked" in page
    data = {
        name: form.context["adminform"].form.initial.get(name, field.initial)
        for name, field in form.context["adminform"].form.fields.items()
    }
    data = {name: value for name, value in data.items() if value is not None}
    data["required_fields"] = ["number", "customer_name", "issued_on", "amount", "currency"]
    data["warn_only_fields"] = ["email"]

    saved = client.post(url, data)

    assert saved.status_code == 302, saved.content.decode()[:2000]
    profile.refresh_from_db()
    assert profile.warn_only == ["email"]
    both = client.post(url, {**data, "required_fields": [*data["required_fields"], "email"]})
    assert both.status_code == 200
    assert "Contact e-mail cannot be both required and only warn." in both.content.decode()
    profile.refresh_from_db()
    assert "email" not in profile.required


def test_source_health_shows_the_share_of_rows_rejected_and_warned_per_source(
    client, finance, clock
):
    load()  # 3 rows: 2 warned
    load(HEADER + "INV-4,C-4,Dyn,,,US,2026-10-01,2026-10-31,USD,five\n")  # 1 row: rejected
    old = load(HEADER + "INV-5,C-5,Old,,,US,2026-10-01,2026-10-31,USD,nine\n")
    IntakeBatch.objects.filter(pk=old.pk).update(started_at=old.started_at - dt.timedelta(days=31))

    shares = {share.source: share for share in health.row_shares()}

    spreadsheet = shares["spreadsheet"]
    assert (spreadsheet.batches, spreadsheet.rows_read) == (2, 4)
    assert (spreadsheet.rejected, spreadsheet.warned) == (1, 2)
    assert (spreadsheet.rejected_percent, spreadsheet.warned_percent) == (25.0, 50.0)
    client.force_login(finance)
    page = client.get("/admin/integrations/sourcehealth/").content.decode()
    assert 'id="row-shares"' in page
    assert "1 (25.0&nbsp;%)" in page and "2 (50.0&nbsp;%)" in page
