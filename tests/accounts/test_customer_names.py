"""Normalised customer names: what counts as the same name, and the column kept in step."""

import pytest
from django.db import connection

from accounts import bulk
from accounts.customer_names import normalized_name
from accounts.models import Customer
from tests.factories import CustomerFactory


@pytest.mark.parametrize(
    "written",
    [
        "Transports Summit SA",
        "TRANSPORTS SUMMIT S.A.",
        "Transports  Sümmit, sa",
        "transports-summit",
        " Transports Summit SAS ",
        "Transports Summit S.A.R.L.",
    ],
)
def test_case_accents_punctuation_spacing_and_legal_forms_are_set_aside(written):
    assert normalized_name(written) == "transports summit"


@pytest.mark.parametrize(
    ("written", "normal"),
    [
        ("Müller GmbH & Co. KG", "muller"),
        ("Muller AG", "muller"),
        ("Acme, Inc.", "acme"),
        ("ACME Corp", "acme"),
        ("Acme Corporation", "acme"),
        ("Acme Ltd", "acme"),
        ("Acme Limited", "acme"),
        ("Acme LLC", "acme"),
        ("Acme plc", "acme"),
        ("Acme B.V.", "acme"),
        ("Acme N.V.", "acme"),
        ("Acme S.p.A.", "acme"),
        ("Acme SL", "acme"),
        ("Acme Oy", "acme"),
        ("Acme AB", "acme"),
        ("Foo Co., Ltd.", "foo"),
        ("Großhandel Weiß GmbH", "grosshandel weiss"),
        ("Smith & Sons", "smith and sons"),
        ("Smith and Sons Ltd", "smith and sons"),
    ],
)
def test_legal_forms_of_many_countries(written, normal):
    assert normalized_name(written) == normal


def test_a_legal_form_inside_the_name_or_alone_stays():
    assert normalized_name("SA Breweries") == "sa breweries"
    assert normalized_name("AG") == "ag"
    assert normalized_name("Inc Ltd") == "inc"
    assert normalized_name("") == normalized_name("...") == ""


def test_different_companies_stay_different():
    assert normalized_name("Transports Summit") != normalized_name("Transports Summits")
    assert normalized_name("Summit Transports SA") != normalized_name("Transports Summit SA")


@pytest.mark.django_db
def test_the_column_follows_the_name_on_every_write():
    customer = CustomerFactory(name="Transports Summit SA")
    assert Customer.objects.get(pk=customer.pk).normalized_name == "transports summit"

    customer.name = "Alpine Freight GmbH"
    customer.save(update_fields=["name"])  # a save of the name alone
    assert Customer.objects.get(pk=customer.pk).normalized_name == "alpine freight"

    made = Customer.objects.bulk_create([Customer(name="Bulk Co Ltd")])
    assert Customer.objects.get(pk=made[0].pk).normalized_name == "bulk"

    bulk.insert_rows(Customer, ("name", "source", "external_ref"), [("Copy S.A.", "t", "X1")])
    copied = Customer.objects.get(source="t", external_ref="X1")
    assert copied.normalized_name == "copy"

    copied.name = "Copied Again Inc."
    bulk.write_rows(Customer, [copied], ["name"])
    assert Customer.objects.get(pk=copied.pk).normalized_name == "copied again"


@pytest.mark.django_db
def test_a_lookup_by_normalised_name_uses_its_index():
    CustomerFactory(name="Transports Summit SA")
    if connection.vendor != "postgresql":
        pytest.skip("the plan is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            "EXPLAIN SELECT id FROM accounts_customer WHERE normalized_name = ANY(%s)",
            [["transports summit"]],
        )
        plan = " ".join(row[0] for row in cursor.fetchall())
    assert "customer_normalized_name" in plan
