"""Import profiles are edited as a form with one row per ledger field, not as raw JSON."""

import pytest
from django.urls import reverse

from integrations.models import ImportProfile

pytestmark = pytest.mark.django_db


@pytest.fixture
def profile():
    return ImportProfile.objects.get(name="generic-csv")


def url(profile):
    return reverse("admin:integrations_importprofile_change", args=[profile.pk])


def form_data(client, profile, **changes):
    form = client.get(url(profile)).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if value is None:
            continue
        data[name] = value
    data.update(changes)
    return data


def test_the_page_has_one_row_per_field_and_no_json(client, finance, profile):
    client.force_login(finance)
    page = client.get(url(profile)).content.decode()
    assert 'name="headers_number"' in page and 'name="headers_due_on"' in page
    assert "Invoice number" in page and "Due date" in page
    assert 'name="columns"' not in page and "{&quot;number&quot;" not in page
    assert 'value="invoice number, invoice no, invoice, number, invoice_number"' in page
    assert 'type="checkbox" name="required_fields"' in page


def test_finance_adds_a_header_name_and_the_rest_stays(client, finance, profile):
    before = dict(profile.columns)
    client.force_login(finance)
    data = form_data(
        client,
        profile,
        headers_number="invoice number, invoice no, invoice, number, invoice_number, "
        "Rechnungsnummer",
    )
    response = client.post(url(profile), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    profile.refresh_from_db()
    assert profile.columns["number"][-1] == "Rechnungsnummer"
    assert {k: v for k, v in profile.columns.items() if k != "number"} == {
        k: v for k, v in before.items() if k != "number"
    }


def test_a_header_given_to_two_fields_is_refused_naming_both(client, finance, profile):
    client.force_login(finance)
    response = client.post(url(profile), form_data(client, profile, headers_reference="Due"))
    errors = response.context["adminform"].form.errors
    assert "“Due” is already a header of Due date." in str(errors["headers_reference"])


def test_a_required_field_needs_a_header(client, finance, profile):
    client.force_login(finance)
    data = form_data(client, profile, headers_number="")
    data["required_fields"] = ["number"]
    response = client.post(url(profile), data)
    errors = response.context["adminform"].form.errors
    assert "Invoice number is required" in str(errors["headers_number"])


def test_finance_adds_a_profile_through_the_form(client, finance):
    client.force_login(finance)
    add = reverse("admin:integrations_importprofile_add")
    assert client.get(add).status_code == 200
    response = client.post(
        add,
        {
            "name": "sage",
            "label": "Sage export",
            "source": "sage",
            "decimal_separator": ",",
            "thousands_separator": ".",
            "default_terms_days": "30",
            "headers_number": "Belegnummer",
            "headers_customer_name": "Kunde",
            "headers_amount": "Betrag",
            "required_fields": ["number", "amount"],
            "date_format_list": "%d.%m.%Y\n%Y-%m-%d",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    sage = ImportProfile.objects.get(name="sage")
    assert sage.columns == {
        "number": ["Belegnummer"],
        "customer_name": ["Kunde"],
        "amount": ["Betrag"],
    }
    assert sage.required == ["number", "amount"]
    assert sage.date_formats == ["%d.%m.%Y", "%Y-%m-%d"]


def test_a_manager_still_views_a_profile(client, manager, profile):
    client.force_login(manager)
    page = client.get(url(profile))
    assert page.status_code == 200
    assert "<th>Invoice number</th><td>invoice number, invoice no" in page.content.decode()
