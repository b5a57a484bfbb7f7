"""The worklist shows the debtor's own latest move: a reply, a portal visit or action."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts import timeline
from accounts.models import Activity
from cases import worklist
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)


@pytest.fixture
def owing(agent):
    customer = CustomerFactory(name="Owing Ltd", assigned_agent=agent)
    InvoiceFactory(
        customer=customer, amount=Decimal("800.00"), due_on=NOW.date() - dt.timedelta(days=20)
    )
    return customer


def entry(customer, kind, text, *, days_ago, channel="", by=None):
    return timeline.add(
        kind,
        customer=customer,
        text=text,
        channel=channel,
        by=by,
        at=NOW - dt.timedelta(days=days_ago),
    )


def row_of(agent, customer):
    result = worklist.worklist(viewer=agent, now=NOW)
    return next(row for row in result.rows if row.customer_id == customer.pk)


def test_the_latest_debtor_move_of_the_last_week(agent, owing):
    entry(owing, Activity.Kind.REPLY, "Old reply", days_ago=9, channel="email")
    assert row_of(agent, owing).debtor_activity is None
    entry(owing, Activity.Kind.PORTAL, "opened the portal (link)", days_ago=2, channel="portal")
    entry(owing, Activity.Kind.PROMISE, "Promised USD 800 in the portal", days_ago=1,
          channel="portal")  # fmt: skip
    entry(owing, Activity.Kind.NOTE, "Agent's note", days_ago=0, by=agent)
    activity = row_of(agent, owing).debtor_activity
    assert activity.text == "Promised USD 800 in the portal"


def test_an_agents_own_entries_are_not_the_debtors(agent, owing):
    entry(owing, Activity.Kind.PROMISE, "Promise by phone", days_ago=0, channel="phone", by=agent)
    assert row_of(agent, owing).debtor_activity is None


def test_the_page_shows_it(client, agent, owing):
    entry(owing, Activity.Kind.REPLY, "We will pay on Friday", days_ago=0, channel="email")
    client.force_login(agent)
    page = client.get(reverse("admin:cases_task_worklist")).content.decode()
    assert "debtor-activity" in page and "We will pay on Friday" in page
