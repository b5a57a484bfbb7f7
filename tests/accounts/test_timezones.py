"""Debtors' time zones: inferred from the country, region or postal code when none is given."""

import importlib
import io

import pytest
from django.apps import apps
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import timezones
from accounts.models import Customer
from integrations.intake import spreadsheets
from integrations.models import ImportProfile
from tests.factories import CustomerFactory

Source = Customer.TimezoneSource


@pytest.mark.parametrize(
    ("country", "hints", "zone", "source", "region"),
    [
        ("US", {"region": "NY"}, "America/New_York", Source.REGION, "US-NY"),
        ("US", {"region": "New York"}, "America/New_York", Source.REGION, "US-NY"),
        ("US", {"region": "US-CA"}, "America/Los_Angeles", Source.REGION, "US-CA"),
        ("US", {"postal_code": "79901"}, "America/Denver", Source.REGION, "US-TX"),  # El Paso
        ("US", {"region": "TX", "postal_code": "75001"}, "America/Chicago", Source.REGION, "US-TX"),
        ("US", {"postal_code": "32501"}, "America/Chicago", Source.REGION, "US-FL"),  # Pensacola
        ("US", {"postal_code": "33101"}, "America/New_York", Source.REGION, "US-FL"),  # Miami
        ("US", {"postal_code": "96813"}, "Pacific/Honolulu", Source.REGION, "US-HI"),
        (
            "US",
            {"postal_address": "1 Main St\nSpringfield, IL 62704"},
            "America/Chicago",
            Source.REGION,
            "US-IL",
        ),
        ("CA", {"postal_code": "V6B 1A1"}, "America/Vancouver", Source.REGION, "CA-BC"),
        ("CA", {"region": "Quebec"}, "America/Toronto", Source.REGION, "CA-QC"),
        ("AU", {"postal_code": "2880"}, "Australia/Broken_Hill", Source.REGION, "AU-NSW"),
        ("AU", {"region": "WA"}, "Australia/Perth", Source.REGION, "AU-WA"),
        ("BR", {"region": "AM"}, "America/Manaus", Source.REGION, "BR-AM"),
        ("MX", {"region": "BCN"}, "America/Tijuana", Source.REGION, "MX-BCN"),
        ("RU", {"region": "SVE"}, "Asia/Yekaterinburg", Source.REGION, "RU-SVE"),
        ("DE", {}, "Europe/Berlin", Source.COUNTRY, ""),
        ("GB", {}, "Europe/London", Source.COUNTRY, ""),
        ("JP", {"region": "13"}, "Asia/Tokyo", Source.COUNTRY, ""),
        ("", {}, "UTC", Source.DEFAULT, ""),
    ],
)
def test_zone_is_inferred(country, hints, zone, source, region):
    found = timezones.infer(country, **hints)
    assert (found.zone, found.source, found.region) == (zone, source, region)


def test_a_us_row_without_state_is_ambiguous_over_every_us_clock():
    found = timezones.infer("US")
    assert (found.zone, found.source) == ("America/New_York", Source.AMBIGUOUS)
    assert {"America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"} <= set(
        found.candidates
    )
    assert {"America/Anchorage", "Pacific/Honolulu", "America/Phoenix"} <= set(found.candidates)
    assert "America/Indiana/Indianapolis" not in found.candidates  # New York's clock, counted once


def test_a_split_state_without_zip_is_ambiguous_within_the_state():
    found = timezones.infer("US", region="TX")
    assert (found.source, found.region, found.candidates) == (
        Source.AMBIGUOUS,
        "US-TX",
        ("America/Chicago", "America/Denver"),
    )
    customer = Customer(country="US", timezone=found.zone, timezone_source=found.source)
    customer.timezone_region = found.region
    assert timezones.contact_zones(customer) == ("America/Chicago", "America/Denver")


def test_only_ambiguous_customers_get_several_zones():
    given = Customer(country="US", timezone="America/Chicago", timezone_source=Source.GIVEN)
    assert timezones.contact_zones(given) == ("America/Chicago",)
    unknown = Customer(country="US", timezone="America/New_York", timezone_source=Source.AMBIGUOUS)
    assert len(timezones.contact_zones(unknown)) >= 6


# --- Intake -----------------------------------------------------------------------------


def load_customers(content: str):
    return spreadsheets.import_spreadsheet(
        io.BytesIO(content.encode()), kind="customers", filename="customers.csv"
    )


@pytest.mark.django_db
def test_spreadsheet_rows_without_a_zone_get_one_inferred():
    load_customers(
        "external_ref,name,country,state,zip,timezone\n"
        "NY-1,Empire Deli,US,NY,,\n"
        "US-1,Somewhere Inc,US,,,\n"
        "DE-1,Berliner GmbH,DE,,,\n"
        "EP-1,El Paso Tools,US,,79901,\n"
        "GV-1,Given Co,US,NY,,America/Chicago\n"
    )
    by_ref = {c.external_ref: c for c in Customer.objects.all()}
    assert (by_ref["NY-1"].timezone, by_ref["NY-1"].timezone_source) == (
        "America/New_York",
        "region",
    )
    assert (by_ref["US-1"].timezone, by_ref["US-1"].timezone_source) == (
        "America/New_York",
        "ambiguous",
    )
    assert (by_ref["DE-1"].timezone, by_ref["DE-1"].timezone_source) == ("Europe/Berlin", "country")
    assert (by_ref["EP-1"].timezone, by_ref["EP-1"].timezone_region) == ("America/Denver", "US-TX")
    assert (by_ref["GV-1"].timezone, by_ref["GV-1"].timezone_source) == ("America/Chicago", "given")


@pytest.mark.django_db
def test_a_later_file_refines_an_inferred_zone_but_never_a_given_one():
    load_customers("external_ref,name,country\nUS-1,Somewhere Inc,US\nGV-1,Given Co,US\n")
    Customer.objects.filter(external_ref="GV-1").update(
        timezone="America/Denver", timezone_source="given"
    )
    load_customers("external_ref,country,state\nUS-1,US,CA\nGV-1,US,NY\n")
    refined = Customer.objects.get(external_ref="US-1")
    assert (refined.timezone, refined.timezone_source) == ("America/Los_Angeles", "region")
    kept = Customer.objects.get(external_ref="GV-1")
    assert (kept.timezone, kept.timezone_source) == ("America/Denver", "given")


@pytest.mark.django_db
def test_customers_made_by_the_invoice_import_get_their_countrys_zone():
    header = "Invoice Number,Customer ID,Customer,Country,Invoice Date,Due Date,Currency,Amount"
    spreadsheets.import_invoices(
        io.BytesIO(
            f"{header}\nINV-1,C-1,Acme GmbH,DE,2026-10-01,2026-10-31,EUR,10\n"
            "INV-2,C-2,Bolt Inc,US,2026-10-01,2026-10-31,USD,10\n".encode()
        ),
        filename="invoices.csv",
        profile=ImportProfile.objects.get(name="generic-csv"),
    )
    acme = Customer.objects.get(external_ref="C-1")
    bolt = Customer.objects.get(external_ref="C-2")
    assert (acme.timezone, acme.timezone_source) == ("Europe/Berlin", "country")
    assert (bolt.timezone, bolt.timezone_source) == ("America/New_York", "ambiguous")


# --- API and console ----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_infers_a_zone_not_given_and_keeps_one_given(finance):
    api = APIClient()
    api.force_authenticate(finance)
    inferred = api.post("/api/v1/customers/", {"name": "Berliner", "country": "DE"})
    assert inferred.status_code == 201, inferred.content
    assert (inferred.data["timezone"], inferred.data["timezone_source"]) == (
        "Europe/Berlin",
        "country",
    )
    given = api.post(
        "/api/v1/customers/", {"name": "Paris", "country": "DE", "timezone": "Europe/Paris"}
    )
    assert (given.data["timezone"], given.data["timezone_source"]) == ("Europe/Paris", "given")


@pytest.mark.django_db
def test_the_customer_page_shows_the_zone_in_use_and_that_it_was_assumed(client, manager):
    customer = CustomerFactory(
        country="US", timezone="America/New_York", timezone_source=Source.AMBIGUOUS
    )
    client.force_login(manager)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    html = page.content.decode()
    assert "time zone in use" in html.lower()
    assert "America/New_York, assumed" in html and "Pacific/Honolulu" in html
    given = CustomerFactory(timezone="America/Chicago")
    page = client.get(reverse("admin:accounts_customer_change", args=[given.pk]))
    assert "America/Chicago, as given" in page.content.decode()


@pytest.mark.django_db
def test_a_customer_added_in_the_console_without_a_zone_gets_one(client, superuser):
    client.force_login(superuser)
    response = client.post(
        reverse("admin:accounts_customer_add"),
        {
            "name": "Console Co",
            "kind": "business",
            "segment": "standard",
            "country": "DE",
            "timezone": "UTC",
            "language": "en",
            "currency": "EUR",
            "status": "active",
            "source": "manual",
            "contacts-TOTAL_FORMS": "0",
            "contacts-INITIAL_FORMS": "0",
            "invoices-TOTAL_FORMS": "0",
            "invoices-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    customer = Customer.objects.get(name="Console Co")
    assert (customer.timezone, customer.timezone_source) == ("Europe/Berlin", "country")


# --- The data migration -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_migration_infers_zones_for_customers_left_on_utc():
    migration = importlib.import_module("accounts.migrations.0026_timezone_source")
    austin = CustomerFactory(country="US", timezone="UTC", postal_address="Austin, TX 78701")
    unknown = CustomerFactory(country="US", timezone="UTC")
    german = CustomerFactory(country="DE", timezone="UTC")
    paris = CustomerFactory(country="US", timezone="Europe/Paris")
    nowhere = CustomerFactory(country="", timezone="UTC")
    migration.fill(apps, None)
    for customer in (austin, unknown, german, paris, nowhere):
        customer.refresh_from_db()
    assert (austin.timezone, austin.timezone_source) == ("America/Chicago", "region")
    assert (unknown.timezone, unknown.timezone_source) == ("America/New_York", "ambiguous")
    assert (german.timezone, german.timezone_source) == ("Europe/Berlin", "country")
    assert (paris.timezone, paris.timezone_source) == ("Europe/Paris", "given")
    assert (nowhere.timezone, nowhere.timezone_source) == ("UTC", "default")
