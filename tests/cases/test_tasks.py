"""Tasks: raised once per cause, completed with an outcome, cancelled, reassigned, all logged."""

import datetime as dt
import threading

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from accounts.models import Activity
from cases import case_tasks
from cases.models import Task
from tests.factories import CustomerFactory, TaskFactory, UserFactory

pytestmark = pytest.mark.django_db
DUE = dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)


def test_new_task_goes_to_the_customers_agent_and_is_on_the_timeline(agent):
    customer = CustomerFactory(assigned_agent=agent)
    task = case_tasks.create_task(
        customer=customer, kind="call", title="Call AP about INV-1", due_at=DUE, source="x:1"
    )
    assert (task.assignee, task.status, task.created_by) == (agent, Task.Status.OPEN, None)
    entry = Activity.objects.get(customer=customer)
    assert entry.kind == Activity.Kind.TASK and entry.actor is None
    assert "Call AP about INV-1" in entry.text and "agent" in entry.text
    assert entry.details["task"] == task.pk and entry.details["source"] == "x:1"


def test_the_same_open_cause_raises_one_task(agent):
    customer = CustomerFactory(assigned_agent=agent)
    first = case_tasks.create_task(
        customer=customer, kind="call", title="Call", due_at=DUE, source="promise:7"
    )
    again = case_tasks.create_task(
        customer=customer, kind="call", title="Call again", due_at=DUE, source="promise:7"
    )
    assert again.pk == first.pk and again.title == "Call"
    assert Task.objects.count() == 1
    assert Activity.objects.filter(kind=Activity.Kind.TASK).count() == 1


def test_a_closed_cause_can_raise_a_new_task(agent):
    customer = CustomerFactory(assigned_agent=agent)
    first = case_tasks.create_task(
        customer=customer, kind="review", title="Review", due_at=DUE, source="r:1"
    )
    case_tasks.complete_task(task=first, outcome="done", note="", by=agent)
    second = case_tasks.create_task(
        customer=customer, kind="review", title="Review", due_at=DUE, source="r:1"
    )
    assert second.pk != first.pk


def test_a_task_due_on_a_date_is_due_by_the_end_of_that_day():
    task = case_tasks.create_task(
        customer=CustomerFactory(), kind="email", title="Send copy", due_at=dt.date(2026, 11, 23)
    )
    local = timezone.localtime(task.due_at)
    assert (local.date(), local.hour, local.minute) == (dt.date(2026, 11, 23), 23, 59)


def test_approval_tasks_go_to_the_unassigned_queue(agent):
    customer = CustomerFactory(assigned_agent=agent)
    task = case_tasks.create_task(customer=customer, kind="approval", title="Approve", due_at=DUE)
    assert task.assignee is None


def test_an_explicit_assignee_wins_and_an_inactive_one_is_refused(agent, manager):
    customer = CustomerFactory(assigned_agent=agent)
    task = case_tasks.create_task(
        customer=customer, kind="call", title="Call", due_at=DUE, assignee=manager
    )
    assert task.assignee == manager
    gone = UserFactory(is_active=False)
    with pytest.raises(ValidationError, match="not an active user"):
        case_tasks.create_task(
            customer=customer, kind="call", title="Call", due_at=DUE, assignee=gone
        )


def test_an_agent_cannot_raise_tasks_on_another_agents_customer(agent):
    other = UserFactory(role="Collections agent")
    customer = CustomerFactory(assigned_agent=other)
    with pytest.raises(PermissionDenied):
        case_tasks.create_task(customer=customer, kind="call", title="x", due_at=DUE, by=agent)


def test_unknown_kind_and_empty_title_are_refused():
    customer = CustomerFactory()
    with pytest.raises(ValidationError, match="Unknown task kind"):
        case_tasks.create_task(customer=customer, kind="fax", title="x", due_at=DUE)
    with pytest.raises(ValidationError, match="needs a title"):
        case_tasks.create_task(customer=customer, kind="call", title="  ", due_at=DUE)


def test_completing_a_call_task_logs_the_call_with_its_outcome(agent):
    task = TaskFactory(customer=CustomerFactory(assigned_agent=agent), assignee=agent)
    case_tasks.complete_task(task=task, outcome="promise_to_pay", note="Pays Friday", by=agent)
    task.refresh_from_db()
    assert (task.status, task.outcome, task.outcome_note) == (
        "done",
        "promise_to_pay",
        "Pays Friday",
    )
    assert task.completed_by == agent and task.completed_at is not None
    entry = Activity.objects.get(kind=Activity.Kind.CALL)
    assert (entry.outcome, entry.channel, entry.actor) == ("promise_to_pay", "phone", agent)
    assert "Pays Friday" in entry.text and entry.details["task"] == task.pk


def test_a_call_task_needs_a_call_outcome(agent):
    task = TaskFactory(assignee=agent)
    with pytest.raises(ValidationError, match="Unknown call outcome"):
        case_tasks.complete_task(task=task, outcome="done", note="", by=agent)


def test_completing_another_task_logs_a_task_entry(agent):
    task = TaskFactory(kind="review", assignee=agent)
    case_tasks.complete_task(task=task, outcome="", note="Checked", by=agent)
    task.refresh_from_db()
    assert task.outcome == "done"
    entry = Activity.objects.get(kind=Activity.Kind.TASK)
    assert entry.outcome == "done" and "Checked" in entry.text and entry.actor == agent


def test_a_closed_task_cannot_be_completed_again(agent):
    task = TaskFactory(kind="review", assignee=agent)
    case_tasks.complete_task(task=task, outcome="done", note="", by=agent)
    with pytest.raises(ValidationError, match="already done"):
        case_tasks.complete_task(task=task, outcome="done", note="", by=agent)


def test_agents_work_their_own_and_unassigned_tasks_managers_all(agent, manager):
    other = UserFactory(role="Collections agent")
    theirs = TaskFactory(
        kind="review", assignee=other, customer=CustomerFactory(assigned_agent=other)
    )
    with pytest.raises(PermissionDenied, match="assigned to"):
        case_tasks.complete_task(task=theirs, outcome="done", note="", by=agent)
    case_tasks.complete_task(task=theirs, outcome="done", note="", by=manager)
    queue = TaskFactory(kind="review", assignee=None, customer=CustomerFactory())
    case_tasks.complete_task(task=queue, outcome="done", note="", by=agent)


def test_cancelling_needs_a_reason_and_is_logged(agent):
    task = TaskFactory(kind="email", assignee=agent)
    with pytest.raises(ValidationError, match="Say why"):
        case_tasks.cancel_task(task=task, reason=" ", by=agent)
    case_tasks.cancel_task(task=task, reason="Customer paid", by=agent)
    task.refresh_from_db()
    assert task.status == Task.Status.CANCELLED and task.completed_at is not None
    entry = Activity.objects.get(kind=Activity.Kind.TASK)
    assert "Customer paid" in entry.text and entry.details["event"] == "cancelled"


def test_reassigning_names_both_people(agent, manager):
    other = UserFactory(role="Collections agent")
    task = TaskFactory(kind="call", assignee=agent)
    case_tasks.reassign_task(task=task, assignee=other, reason="Holiday", by=manager)
    task.refresh_from_db()
    assert task.assignee == other
    entry = Activity.objects.get(kind=Activity.Kind.TASK)
    assert entry.details == {
        "task": task.pk,
        "event": "reassigned",
        "from": agent.pk,
        "to": other.pk,
        "reason": "Holiday",
    }
    assert "agent" in entry.text and other.username in entry.text and entry.actor == manager


def test_an_agent_may_take_an_unassigned_task(agent):
    task = TaskFactory(kind="call", assignee=None, customer=CustomerFactory())
    case_tasks.reassign_task(task=task, assignee=agent, by=agent)
    task.refresh_from_db()
    assert task.assignee == agent


def test_overdue_means_open_and_past_its_due_time(agent):
    now = dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC)
    late = TaskFactory(assignee=agent, due_at=now - dt.timedelta(minutes=1))
    later = TaskFactory(assignee=agent, due_at=now + dt.timedelta(minutes=1))
    done = TaskFactory(kind="review", assignee=agent, due_at=now - dt.timedelta(days=1))
    case_tasks.complete_task(task=done, outcome="done", note="", by=agent)
    done.refresh_from_db()
    assert late.is_overdue(now) and not later.is_overdue(now) and not done.is_overdue(now)
    assert list(Task.objects.overdue(now)) == [late]


def test_create_tasks_inserts_a_batch_once(agent):
    customers = [CustomerFactory(assigned_agent=agent) for _ in range(3)]

    def batch():
        return [
            Task(customer=c, kind="review", title="Review", due_at=DUE, source=f"b:{c.pk}")
            for c in customers
        ]

    made = case_tasks.create_tasks(batch())
    assert len(made) == 3 and all(t.assignee == agent for t in made)
    assert case_tasks.create_tasks(batch()) == []
    assert Task.objects.count() == 3
    assert Activity.objects.filter(kind=Activity.Kind.TASK).count() == 3


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_callers_racing_on_one_source_get_one_task():
    customer = CustomerFactory()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def raise_task():
        try:
            barrier.wait()
            task = case_tasks.create_task(
                customer=customer, kind="call", title="Call", due_at=DUE, source="race:1"
            )
            results.append(task.pk)
        except Exception as exc:  # reported by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=raise_task) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(set(results)) == 1
    assert Task.objects.filter(source="race:1").count() == 1


# --- The console ---


def test_task_list_flags_overdue_and_filters_mine(client, agent):
    other = UserFactory(role="Collections agent")
    TaskFactory(title="Mine overdue", assignee=agent, due_at=timezone.now() - dt.timedelta(hours=1))
    TaskFactory(title="Theirs", assignee=other, due_at=timezone.now() + dt.timedelta(hours=1))
    client.force_login(agent)
    url = reverse("admin:cases_task_changelist")
    body = client.get(url, {"agent": "me"}).content.decode()
    assert "Mine overdue" in body and "Theirs" not in body
    assert 'alt="True"' in body  # the overdue flag
    body = client.get(url, {"overdue": "yes"}).content.decode()
    assert "Mine overdue" in body and "Theirs" not in body


def test_complete_action_calls_the_service_and_reports_refusals(client, agent):
    other = UserFactory(role="Collections agent")
    mine = TaskFactory(kind="review", assignee=agent)
    theirs = TaskFactory(
        kind="review", assignee=other, customer=CustomerFactory(assigned_agent=other)
    )
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_task_changelist"),
        {
            "action": "complete",
            "_selected_action": [mine.pk, theirs.pk],
            "apply": "1",
            "outcome": "done",
            "note": "ok",
        },
        follow=True,
    )
    mine.refresh_from_db()
    theirs.refresh_from_db()
    assert mine.status == "done" and theirs.status == "open"
    assert "assigned to" in response.content.decode()


def test_cancel_action_asks_for_a_reason(client, agent):
    task = TaskFactory(kind="email", assignee=agent)
    client.force_login(agent)
    url = reverse("admin:cases_task_changelist")
    form = client.post(url, {"action": "cancel", "_selected_action": [task.pk]})
    assert form.status_code == 200 and b'name="reason"' in form.content
    client.post(
        url, {"action": "cancel", "_selected_action": [task.pk], "apply": "1", "reason": "Paid"}
    )
    task.refresh_from_db()
    assert task.status == "cancelled" and task.outcome_note == "Paid"


def test_reassign_action_moves_the_task(client, manager, agent):
    task = TaskFactory(kind="call", assignee=None)
    client.force_login(manager)
    client.post(
        reverse("admin:cases_task_changelist"),
        {
            "action": "reassign",
            "_selected_action": [task.pk],
            "apply": "1",
            "assignee": agent.pk,
            "reason": "Speaks German",
        },
    )
    task.refresh_from_db()
    assert task.assignee == agent


def test_adding_a_task_in_the_console_goes_through_create_task(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_task_add"),
        {
            "customer": customer.pk,
            "kind": "call",
            "title": "Call the CFO",
            "description": "About the Q3 invoices",
            "due_at_0": "2026-11-25",
            "due_at_1": "10:00:00",
            "assignee": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    task = Task.objects.get()
    assert (task.assignee, task.created_by, task.description) == (
        agent,
        agent,
        "About the Q3 invoices",
    )
    assert Activity.objects.filter(kind=Activity.Kind.TASK, actor=agent).exists()


def test_an_existing_task_cannot_be_edited_or_deleted(client, manager):
    task = TaskFactory(kind="call")
    client.force_login(manager)
    page = client.get(reverse("admin:cases_task_change", args=[task.pk]))
    assert page.status_code == 200 and b'name="title"' not in page.content
    assert client.post(reverse("admin:cases_task_delete", args=[task.pk])).status_code == 403
