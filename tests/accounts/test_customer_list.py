"""The customer list sorted and filtered by amount past due, days past due, risk and next
action, from the summary kept on the customer row."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import summaries
from accounts.models import Customer
from cases import next_actions
from tests.clock import NOW, ON
from tests.factories import CustomerFactory, InvoiceFactory, TaskFactory

pytestmark = pytest.mark.django_db
CUSTOMERS = reverse("admin:accounts_customer_changelist")


@pytest.fixture
def book():
    """Four customers: A 5,000 past due for 45 days, B 200 for 100 days (risk 80), C
    nothing past due but a task tomorrow, D nothing at all (never scored)."""
    a = CustomerFactory(name="A", risk_score=30, risk_band="low")
    b = CustomerFactory(name="B", risk_score=80, risk_band="high")
    c = CustomerFactory(name="C", risk_score=55, risk_band="medium")
    d = CustomerFactory(name="D")
    InvoiceFactory(customer=a, due_on=ON - dt.timedelta(days=45), amount=Decimal("5000"))
    InvoiceFactory(customer=b, due_on=ON - dt.timedelta(days=100), amount=Decimal("200"))
    InvoiceFactory(customer=c, due_on=ON + dt.timedelta(days=20), amount=Decimal("900"))
    TaskFactory(customer=c, title="Call C", due_at=NOW + dt.timedelta(days=1))
    TaskFactory(customer=b, title="Call B", due_at=NOW - dt.timedelta(days=2))
    summaries.refresh_past_due()
    next_actions.refresh_next_actions()
    return {"A": a, "B": b, "C": c, "D": d}


def names(response) -> list[str]:
    assert response.status_code == 200
    return [customer.name for customer in response.context["cl"].result_list]


def column(response, field: str) -> str:
    """The `o` parameter that sorts by this list_display column (first click)."""
    return str(response.context["cl"].list_display.index(field))


@pytest.mark.parametrize(
    ("field", "first_click", "second_click"),
    [
        ("past_due", ["A", "B", "D", "C"], ["C", "D", "B", "A"]),
        ("days_past_due", ["B", "A", "C", "D"], ["D", "C", "A", "B"]),
        ("risk", ["B", "C", "A", "D"], ["D", "A", "C", "B"]),
        ("next_action_due", ["B", "C", "A", "D"], ["D", "A", "C", "B"]),
    ],
)
def test_sort_by_each_summary_column_both_ways(
    client, manager, book, field, first_click, second_click
):
    client.force_login(manager)
    index = column(client.get(CUSTOMERS), field)
    assert names(client.get(CUSTOMERS, {"o": index})) == first_click
    assert names(client.get(CUSTOMERS, {"o": f"-{index}"})) == second_click


def test_ties_are_broken_on_the_id_in_the_sorts_direction(client, manager, book):
    client.force_login(manager)
    index = column(client.get(CUSTOMERS), "past_due")
    page = client.get(CUSTOMERS, {"o": index})
    ordering = page.context["cl"].get_ordering(page.wsgi_request, Customer.objects.all())
    assert ordering[1] == "-pk"
    page = client.get(CUSTOMERS, {"o": f"-{index}"})
    ordering = page.context["cl"].get_ordering(page.wsgi_request, Customer.objects.all())
    assert ordering[1] == "pk"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"past_due": "any"}, {"A", "B"}),
        ({"past_due": "1000"}, {"A"}),
        ({"past_due": "none"}, {"C", "D"}),
        ({"days_past_due": "31-60"}, {"A"}),
        ({"days_past_due": "91-120"}, {"B"}),
        ({"days_past_due": "0"}, {"C", "D"}),
        ({"risk_band": "high"}, {"B"}),
        ({"next_action": "overdue"}, {"B"}),
        ({"next_action": "week"}, {"C"}),
        ({"next_action": "none"}, {"A", "D"}),
    ],
)
def test_filter_by_each_summary_column(client, manager, book, params, expected):
    client.force_login(manager)
    assert set(names(client.get(CUSTOMERS, params))) == expected


def test_the_list_shows_the_figures(client, manager, book):
    client.force_login(manager)
    html = client.get(CUSTOMERS).content.decode()
    assert "USD 5,000.00" in html and "Call B" in html and "80 (High)" in html


def test_a_paused_customer_says_so_among_its_holds(client, manager, book):
    Customer.objects.filter(pk=book["D"].pk).update(
        dunning_paused_until=ON + dt.timedelta(days=3), dunning_pause_reason="Audit"
    )
    client.force_login(manager)
    html = client.get(CUSTOMERS, {"q": "D"}).content.decode()
    assert "dunning paused until 11/26/2026" in html
