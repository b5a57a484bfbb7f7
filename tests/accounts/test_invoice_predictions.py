"""Predictions on the invoice list and page: the late-risk column, its filter and sort, the
prediction on the invoice's page, and who sees them."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.clock import ON
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
INVOICES = reverse("admin:accounts_invoice_changelist")


def numbers(response) -> list[str]:
    return [invoice.number for invoice in response.context["cl"].result_list]


@pytest.fixture
def scored(settings):
    """Three invoices predicted 91%, 50% and 12% late, and one not scored."""
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    customer = CustomerFactory()
    rows = {}
    for number, probability in [("P-91", "0.9100"), ("P-50", "0.5000"), ("P-12", "0.1200")]:
        invoice = InvoiceFactory(customer=customer, number=number)
        rows[number] = InvoicePredictionFactory(
            invoice=invoice,
            probability_late=Decimal(probability),
            expected_pay_on=ON + dt.timedelta(days=9),
            reasons=[f"reason one of {number}", "twice the usual amount"],
        )
    InvoiceFactory(customer=customer, number="NEW-1")
    return rows


def test_the_list_shows_the_late_risk_as_a_percentage(client, agent, scored):
    client.force_login(agent)
    html = client.get(INVOICES).content.decode()
    assert "late risk" in html.lower()
    assert ">91%<" in html and ">12%<" in html
    assert 'title="reason one of P-91; twice the usual amount"' in html


@pytest.mark.parametrize(
    ("value", "expected"),
    [("yes", {"P-91", "P-50"}), ("no", {"P-12"}), ("unscored", {"NEW-1"})],
)
def test_the_predicted_late_filter_uses_the_threshold(client, agent, scored, value, expected):
    client.force_login(agent)
    assert set(numbers(client.get(INVOICES, {"predicted_late": value}))) == expected


def test_the_filter_follows_the_threshold_setting(client, agent, scored, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.9
    client.force_login(agent)
    assert set(numbers(client.get(INVOICES, {"predicted_late": "yes"}))) == {"P-91"}


def test_the_list_sorts_by_probability_unscored_last(client, agent, scored):
    client.force_login(agent)
    column = client.get(INVOICES).context["cl"].list_display.index("late_risk")
    down = numbers(client.get(INVOICES, {"o": f"-{column}"}))
    assert down == ["P-91", "P-50", "P-12", "NEW-1"]
    up = numbers(client.get(INVOICES, {"o": f"{column}"}))
    assert up == ["NEW-1", "P-12", "P-50", "P-91"]


def test_the_list_costs_the_same_queries_for_1_or_20_invoices(client, agent):
    client.force_login(agent)
    customer = CustomerFactory()
    InvoicePredictionFactory(invoice=InvoiceFactory(customer=customer))
    client.get(INVOICES)  # warm caches (content types, sessions)
    with CaptureQueriesContext(connection) as one:
        assert client.get(INVOICES).status_code == 200
    for _n in range(19):
        InvoicePredictionFactory(invoice=InvoiceFactory(customer=CustomerFactory()))
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(INVOICES)
    assert len(numbers(response)) == 20
    assert len(twenty) == len(one)


def test_the_invoice_page_shows_the_prediction(client, agent, scored):
    prediction = scored["P-91"]
    client.force_login(agent)
    html = client.get(
        reverse("admin:accounts_invoice_change", args=[prediction.invoice_id])
    ).content.decode()
    assert "91% (predicted late)" in html
    assert "<li>reason one of P-91</li><li>twice the usual amount</li>" in html
    assert "test-1, scored" in html and "Expected pay date" in html


def test_an_unscored_invoice_says_so(client, agent, scored):
    invoice = InvoiceFactory(number="NEW-2")
    client.force_login(agent)
    html = client.get(reverse("admin:accounts_invoice_change", args=[invoice.pk])).content.decode()
    assert "Not scored" in html


def test_every_role_sees_predictions(agent, manager, finance):
    for user in (agent, manager, finance):
        assert user.has_perm("cases.view_invoiceprediction"), user


def test_without_the_right_no_column_no_filter_no_panel(client, scored):
    clerk = UserFactory(username="clerk")
    clerk.user_permissions.add(
        Permission.objects.get(content_type__app_label="accounts", codename="view_invoice")
    )
    client.force_login(clerk)
    response = client.get(INVOICES)
    assert response.status_code == 200
    assert "late_risk" not in response.context["cl"].list_display
    assert "91%" not in response.content.decode()
    page = client.get(
        reverse("admin:accounts_invoice_change", args=[scored["P-91"].invoice_id])
    ).content.decode()
    assert "reason one of P-91" not in page
