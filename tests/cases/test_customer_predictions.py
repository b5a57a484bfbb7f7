"""The customer page's "Predictions" panel: each open invoice's probability of paying
late, expected pay date and strongest reasons, most likely late first, and the share of
the open balance predicted late per currency."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from cases import predicted
from tests.clock import ON
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def customer(agent, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    customer = CustomerFactory(assigned_agent=agent)
    for number, amount, currency, probability, reasons in [
        ("U-30", "1000.00", "USD", "0.3000", ["pays on time lately"]),
        ("U-90", "300.00", "USD", "0.9000", ["r1", "r2", "r3", "r4 (fourth, not shown)"]),
        ("E-60", "200.00", "EUR", "0.6000", ["disputed twice this year"]),
        ("E-10", "600.00", "EUR", "0.1000", []),
    ]:
        InvoicePredictionFactory(
            invoice=InvoiceFactory(
                customer=customer, number=number, amount=D(amount), currency=currency
            ),
            probability_late=D(probability),
            expected_pay_on=ON + dt.timedelta(days=12),
            reasons=reasons,
        )
    InvoiceFactory(customer=customer, number="NEW-1", amount=D("100.00"))  # not scored yet
    paid = InvoiceFactory(customer=customer, number="PAID-1", status="paid", open_balance=0)
    InvoicePredictionFactory(invoice=paid, probability_late=D("0.9900"))  # scored before paid
    return customer


def page(client, customer) -> str:
    response = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_open_invoices_most_likely_late_first(customer):
    rows = predicted.open_invoice_predictions(customer)
    assert [row.invoice.number for row in rows] == ["U-90", "E-60", "U-30", "E-10"]


def test_the_share_predicted_late_per_currency(customer):
    shares = {share.currency: share for share in predicted.late_shares(customer)}
    # USD: 300 of 1,400 (the unscored 100 counts as not late); EUR: 200 of 800.
    assert (shares["USD"].open_amount, shares["USD"].late_amount) == (D("1400.00"), D("300.00"))
    assert (shares["EUR"].open_amount, shares["EUR"].late_amount) == (D("800.00"), D("200.00"))
    assert shares["EUR"].late_share == D("0.25")
    assert shares["USD"].scored_amount == D("1300.00")


def test_an_agent_sees_the_panel_on_the_customer_page(client, agent, customer):
    client.force_login(agent)
    html = page(client, customer)
    assert 'id="predictions"' in html
    assert html.index(">U-90<") < html.index(">E-60<") < html.index(">U-30<")
    assert "<strong>90%</strong>" in html and "<strong>60%</strong>" in html and ">30%<" in html
    assert "r1; r2; r3" in html and "fourth" not in html  # the three strongest reasons
    assert "PAID-1" not in html
    assert "USD 300.00 of USD 1,400.00 (21%)" in html
    assert "EUR 200.00 of EUR 800.00 (25%)" in html


def test_the_panel_follows_the_threshold(client, agent, customer, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.95
    client.force_login(agent)
    html = page(client, customer)
    assert "<strong>90%</strong>" not in html and ">90%<" in html
    assert "USD 0.00 of USD 1,400.00 (0%)" in html


def test_no_panel_when_nothing_is_scored(client, agent):
    quiet = CustomerFactory(assigned_agent=agent)
    InvoiceFactory(customer=quiet)
    client.force_login(agent)
    assert 'id="predictions"' not in page(client, quiet)


def test_no_panel_without_the_right_to_see_predictions(client, customer):
    clerk = UserFactory(username="clerk")
    clerk.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="accounts",
            codename__in=["view_customer", "view_invoice", "work_all_customers"],
        )
    )
    client.force_login(clerk)
    assert 'id="predictions"' not in page(client, customer)
