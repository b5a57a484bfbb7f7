"""The admin index tells each user what waits for them: approvals for managers, overdue
tasks for agents, as counts with links, in a few cheap queries."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import PaymentPlan, Recovery, Task
from dunning.models import Notice, Step
from reporting import notifications
from tests.clock import NOW, ON
from tests.factories import CustomerFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db
INDEX = reverse("admin:index")


def plan(status=PaymentPlan.Status.PROPOSED):
    return PaymentPlan.objects.create(
        customer=CustomerFactory(), currency="EUR", total_amount=Decimal("300.00"), status=status
    )


def recovery(*, by, status=Recovery.Status.PROPOSED):
    return Recovery.objects.create(
        customer=CustomerFactory(), kind=Recovery.Kind.WRITE_OFF, proposed_by=by, status=status
    )


def notice(status=Notice.Status.AWAITING_APPROVAL):
    return Notice.objects.create(
        customer=CustomerFactory(),
        step=Step.objects.filter(channel="email").first(),
        channel="email",
        planned_on=ON,
        status=status,
    )


@pytest.fixture
def waiting(agent, manager):
    """Two plans, one write-off (and one the manager proposed), three notices waiting;
    decided rows beside them that wait for nobody."""
    plan(), plan(), plan(PaymentPlan.Status.ACTIVE)
    recovery(by=agent), recovery(by=manager), recovery(by=agent, status="approved")
    notice(), notice(), notice(), notice(Notice.Status.SENT)


def counts(user) -> dict[str, int]:
    return {item.key: item.count for item in notifications.for_user(user, now=NOW)}


def test_a_manager_sees_the_approvals_waiting_for_them(manager, waiting):
    found = counts(manager)
    # The manager's own write-off proposal waits for another manager (four eyes).
    assert (found["plans"], found["recoveries"], found["notices"]) == (2, 1, 3)


def test_an_agent_sees_their_overdue_tasks_and_no_approvals(agent, waiting):
    customer = CustomerFactory(assigned_agent=agent)
    TaskFactory(customer=customer, assignee=agent, due_at=NOW - dt.timedelta(days=2))
    TaskFactory(customer=customer, assignee=agent, due_at=NOW - dt.timedelta(hours=1))
    TaskFactory(customer=customer, assignee=agent, due_at=NOW + dt.timedelta(hours=1))
    TaskFactory(customer=customer, assignee=agent, due_at=NOW + dt.timedelta(days=3))
    done = TaskFactory(customer=customer, assignee=agent, due_at=NOW - dt.timedelta(days=1))
    Task.objects.filter(pk=done.pk).update(status="done", completed_at=NOW)
    TaskFactory(customer=customer, assignee=UserFactory(), due_at=NOW - dt.timedelta(days=1))
    assert counts(agent) == {"overdue_tasks": 2, "due_today": 3}


def test_the_index_page_shows_counts_with_links(client, manager, waiting):
    client.force_login(manager)
    body = client.get(INDEX).content.decode()
    assert 'id="notifications"' in body
    assert "2 payment plans await approval" in body
    assert "1 write-off or placement awaits approval" in body
    assert "3 notices await approval" in body
    assert reverse("admin:dunning_notice_changelist") + "?status__exact=awaiting_approval" in body
    assert reverse("admin:cases_paymentplan_changelist") + "?status__exact=proposed" in body
    assert client.get(reverse("admin:dunning_notice_changelist"), {
        "status__exact": "awaiting_approval"}).status_code == 200  # fmt: skip


def test_the_agents_index_links_to_their_overdue_tasks(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    TaskFactory(customer=customer, assignee=agent, due_at=NOW - dt.timedelta(hours=3))
    client.force_login(agent)
    body = client.get(INDEX).content.decode()
    link = reverse("admin:cases_task_changelist") + "?agent=me&amp;overdue=yes"
    assert "1 of your tasks is overdue" in body and link in body
    assert "await approval" not in body
    overdue = client.get(reverse("admin:cases_task_changelist"), {"agent": "me", "overdue": "yes"})
    assert overdue.status_code == 200


def test_the_counts_cost_the_same_whatever_is_waiting(manager, agent):
    notifications.for_user(manager, now=NOW)  # the permission cache
    with CaptureQueriesContext(connection) as few:
        notifications.for_user(manager, now=NOW)
    for _ in range(5):
        plan(), recovery(by=agent), notice()
        TaskFactory(customer=CustomerFactory(), assignee=manager, due_at=NOW)
    with CaptureQueriesContext(connection) as many:
        notifications.for_user(manager, now=NOW)
    assert len(few) == len(many) <= 4
