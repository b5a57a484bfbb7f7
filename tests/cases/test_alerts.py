"""Aging-bucket alerts reach the agent once: on entering a bucket and a week before."""

import datetime as dt

import pytest

from cases.alerts import raise_aging_alerts
from cases.models import Task
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def owing(days_late: int, **fields):
    customer = CustomerFactory(**fields)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=days_late))
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=3))
    return customer


@pytest.mark.parametrize(
    ("days_late", "expected"),
    [
        (31, "entered 31-60 past due"),
        (61, "entered 61-90 past due"),
        (91, "entered over 90 days past due"),
        (24, "crosses into 31-60 in 7 day(s)"),
        (60, "crosses into 61-90 in 1 day(s)"),
        (84, "crosses into over 90 days in 7 day(s)"),
    ],
)
def test_alert_for_entering_or_about_to_cross_a_bucket(agent, days_late, expected):
    customer = owing(days_late, assigned_agent=agent, name="Acme")
    assert raise_aging_alerts(on=ON) == 1
    task = Task.objects.get(customer=customer)
    assert (task.kind, task.assignee) == ("alert", agent)
    assert task.title == f"Acme {expected}"
    assert customer.activities.filter(kind="task").count() == 1


@pytest.mark.parametrize("days_late", [10, 23, 35, 45, 65, 95, 200])
def test_no_alert_in_the_middle_of_a_bucket(days_late):
    owing(days_late)
    assert raise_aging_alerts(on=ON) == 0


def test_a_missed_night_is_caught_up_within_the_window():
    owing(33)  # entered 31-60 two nights ago
    assert raise_aging_alerts(on=ON) == 1


def test_each_alert_is_raised_once_even_after_the_agent_closes_it(agent):
    customer = owing(25, assigned_agent=agent)
    assert raise_aging_alerts(on=ON) == 1
    Task.objects.filter(customer=customer).update(
        status="done", completed_at=dt.datetime.now(dt.UTC)
    )
    assert raise_aging_alerts(on=ON + dt.timedelta(days=1)) == 0
    # ...but entering the bucket a week later is a new alert.
    assert raise_aging_alerts(on=ON + dt.timedelta(days=6)) == 1


def test_paid_invoices_do_not_count():
    customer = CustomerFactory()
    InvoiceFactory(
        customer=customer, due_on=ON - dt.timedelta(days=31), status="paid", open_balance=0
    )
    assert raise_aging_alerts(on=ON) == 0
