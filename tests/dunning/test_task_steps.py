"""Call, escalation and review steps become tasks in people's worklists, exactly once."""

import datetime as dt
import zoneinfo

import pytest

from accounts.models import Customer
from cases.models import Task
from dunning import planner, sender
from dunning.models import Notice
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
NIGHT = dt.datetime(2026, 11, 23, 2, 0, tzinfo=CHICAGO)  # quiet hours do not apply to tasks


def at_step(days_late: int, **customer_fields):
    customer = CustomerFactory(segment=Customer.Segment.STANDARD, **customer_fields)
    InvoiceFactory(customer=customer, number="LATE-1", due_on=ON - dt.timedelta(days=days_late))
    InvoiceFactory(customer=customer, number="LATE-2", due_on=ON - dt.timedelta(days=days_late))
    planner.plan(on=ON)
    return customer


def test_call_step_raises_one_call_task_for_the_assigned_agent(agent):
    customer = at_step(15, assigned_agent=agent, name="Acme Rockets")
    result = sender.send_due(now=NIGHT)
    assert result.sent == 1
    task = Task.objects.get(customer=customer)
    assert (task.kind, task.assignee, task.status) == ("call", agent, "open")
    assert "Acme Rockets" in task.title and "USD 200.00" in task.title
    assert task.details["invoices"] == ["LATE-1", "LATE-2"]
    notice = Notice.objects.get(customer=customer, channel="call")
    assert notice.status == "sent" and notice.provider_message_id == f"task:{task.pk}"
    assert customer.activities.filter(kind="task").count() == 1
    # A retried send or a second run raises nothing twice.
    assert sender.send_next(now=NIGHT, notice_id=notice.pk) is None
    assert sender.send_due(now=NIGHT).sent == 0
    assert Task.objects.count() == 1


def test_call_step_for_an_unassigned_customer_goes_to_the_unassigned_queue():
    customer = at_step(15)
    sender.send_due(now=NIGHT)
    assert Task.objects.get(customer=customer).assignee is None


def test_escalation_goes_to_the_least_busy_manager(agent):
    busy = UserFactory(username="busy-manager", role="Collections manager")
    free = UserFactory(username="free-manager", role="Collections manager")
    other = CustomerFactory()
    Task.objects.create(customer=other, kind="call", title="x", due_at=NIGHT, assignee=busy)
    customer = at_step(60, assigned_agent=agent)
    sender.send_due(now=NIGHT)
    task = Task.objects.get(customer=customer)
    assert (task.kind, task.assignee) == ("review", free)
    assert task.title.startswith("Escalation")


def test_review_step_raises_a_review_task(agent):
    customer = at_step(90, assigned_agent=agent)
    sender.send_due(now=NIGHT)
    task = Task.objects.get(customer=customer)
    assert (task.kind, task.assignee) == ("review", agent)
    assert "review" in task.title.lower()


def test_call_task_is_not_raised_for_a_customer_who_asked_not_to_be_contacted(agent):
    customer = at_step(15, assigned_agent=agent)
    Customer.objects.filter(pk=customer.pk).update(do_not_contact=True)
    sender.send_due(now=NIGHT)
    assert not Task.objects.exists()
    assert Notice.objects.get(customer=customer, channel="call").status == "skipped"


def test_call_task_is_cancelled_when_the_invoices_were_paid_since_planning(agent):
    customer = at_step(15, assigned_agent=agent)
    customer.invoices.update(status="paid", open_balance=0)
    sender.send_due(now=NIGHT)
    assert not Task.objects.exists()
    assert Notice.objects.get(customer=customer, channel="call").status == "cancelled"
