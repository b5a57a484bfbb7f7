"""Working the list: actions on the customer page close the tasks they fulfil, a call
done with "promise to pay" opens the promise form, the tasks are paginated and counted,
and "Next account" walks the list in priority order."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Activity
from cases import promises, worklist
from cases.models import Task
from tests.clock import NOW, ON
from tests.factories import (
    ActivityFactory,
    CustomerFactory,
    InvoiceFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
WORKLIST = reverse("admin:cases_task_worklist")
NEXT = reverse("admin:cases_task_next_account")
DASH = "\N{EN DASH}"  # "tasks 1-25 of 31" is set with an en dash


def days_ago(n: int) -> dt.date:
    return ON - dt.timedelta(days=n)


def customer_page(customer) -> str:
    return reverse("admin:accounts_customer_change", args=[customer.pk])


@pytest.fixture
def account(agent):
    """A customer of the agent with a call task due this morning (overdue)."""
    customer = CustomerFactory(name="Acme", assigned_agent=agent)
    InvoiceFactory(customer=customer, amount=Decimal("900.00"), due_on=days_ago(20))
    task = TaskFactory(
        customer=customer, assignee=agent, title="Call Acme", due_at=NOW - dt.timedelta(hours=2)
    )
    return customer, task


# --- Actions close the tasks they fulfil ---


def test_a_call_logged_on_the_customer_page_closes_the_open_call_task(client, agent, account):
    customer, task = account
    later = TaskFactory(  # call back next week: not fulfilled by today's call
        customer=customer, assignee=agent, title="Call back", due_at=NOW + dt.timedelta(days=7)
    )
    email = TaskFactory(customer=customer, assignee=agent, kind="email", due_at=NOW)
    elsewhere = TaskFactory(customer=CustomerFactory(assigned_agent=agent), assignee=agent)
    client.force_login(agent)
    response = client.post(
        reverse("admin:accounts_customer_call", args=[customer.pk]),
        {"apply": "1", "outcome": "reached", "text": "Spoke to AP"},
    )
    assert response.status_code == 302 and response["Location"] == customer_page(customer)
    task.refresh_from_db()
    assert (task.status, task.outcome, task.completed_by) == (Task.Status.DONE, "reached", agent)
    assert task.outcome_note.startswith("Done by the call logged")
    for untouched in (later, email, elsewhere):
        untouched.refresh_from_db()
        assert untouched.status == Task.Status.OPEN
    call = Activity.objects.get(customer=customer, kind="call")  # one call, not two
    closed = Activity.objects.get(customer=customer, kind="task", details__task=task.pk)
    assert closed.details["fulfilled_by"] == {"call": call.pk}
    assert closed.actor == agent and "Call Acme" in closed.text


def test_a_call_closes_an_unassigned_or_colleagues_call_task_on_the_account(agent, account):
    customer, _mine = account
    queue_task = TaskFactory(customer=customer, assignee=None, due_at=NOW)
    services.log_call(customer=customer, outcome="no_answer", by=agent)
    queue_task.refresh_from_db()
    assert (queue_task.status, queue_task.outcome) == (Task.Status.DONE, "no_answer")


def test_recording_a_promise_closes_the_call_task(client, agent, account):
    customer, task = account
    invoice = customer.invoices.get()
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_promisetopay_record", args=[customer.pk]),
        {
            "apply": "1",
            "invoices": [invoice.pk],
            "amount": "900.00",
            "promised_on": (ON + dt.timedelta(days=5)).isoformat(),
            "channel": "phone",
            "grace_days": "3",
            "note": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    task.refresh_from_db()
    assert (task.status, task.outcome) == (Task.Status.DONE, "promise_to_pay")
    promise = customer.promises.get()
    closed = Activity.objects.get(customer=customer, kind="task", details__task=task.pk)
    assert closed.details["fulfilled_by"] == {"promise": promise.pk}


def test_a_promise_recorded_by_the_system_path_closes_it_too(agent, account):
    customer, task = account
    promises.record_promise(
        customer=customer,
        invoices=list(customer.invoices.all()),
        amount=Decimal("100.00"),
        promised_on=ON + dt.timedelta(days=2),
        channel="email",
        by=agent,
    )
    task.refresh_from_db()
    assert task.status == Task.Status.DONE


# --- A call done with "promise to pay" goes on to the promise form ---


def test_completing_a_call_task_with_promise_to_pay_opens_the_promise_form(client, agent, account):
    customer, task = account
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_task_complete", args=[task.pk]),
        {"outcome": "promise_to_pay", "note": "", "next": WORKLIST},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:cases_promisetopay_record", args=[customer.pk])
    assert client.get(response["Location"]).status_code == 200


def test_completing_a_call_with_another_outcome_returns_to_the_list(client, agent, account):
    _customer, task = account
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_task_complete", args=[task.pk]),
        {"outcome": "no_answer", "next": WORKLIST},
    )
    assert response["Location"] == WORKLIST


def test_logging_a_call_with_promise_to_pay_opens_the_promise_form(client, agent, account):
    customer, _task = account
    client.force_login(agent)
    response = client.post(
        reverse("admin:accounts_customer_call", args=[customer.pk]),
        {"apply": "1", "outcome": "promise_to_pay"},
    )
    assert response["Location"] == reverse("admin:cases_promisetopay_record", args=[customer.pk])


# --- Tasks: paginated and counted, customers first ---


def test_every_task_due_today_is_counted_and_reachable_by_page(agent):
    customer = CustomerFactory(assigned_agent=agent)
    for hour in range(7):  # 09:00 to 15:00, all before NOW (16:00): overdue
        TaskFactory(
            customer=customer,
            assignee=agent,
            due_at=NOW.replace(hour=9 + hour),
            title=f"T{hour}",
        )
    first = worklist.worklist(viewer=agent, now=NOW, tasks_page_size=3)
    third = worklist.worklist(viewer=agent, now=NOW, tasks_page=3, tasks_page_size=3)
    past = worklist.worklist(viewer=agent, now=NOW, tasks_page=9, tasks_page_size=3)
    assert [t.title for t in first.tasks] == ["T0", "T1", "T2"]
    assert [t.title for t in third.tasks] == ["T6"]
    assert (first.tasks_total, first.tasks_pages, first.overdue_tasks) == (7, 3, 7)
    assert (past.tasks, past.tasks_total, past.overdue_tasks) == ([], 7, 7)
    assert (third.first_task, third.last_task) == (7, 7)


def test_overdue_counts_all_tasks_not_only_the_page(agent):
    customer = CustomerFactory(assigned_agent=agent)
    for n in range(4):
        TaskFactory(customer=customer, assignee=agent, due_at=NOW - dt.timedelta(hours=n + 1))
    TaskFactory(customer=customer, assignee=agent, due_at=NOW + dt.timedelta(hours=1))
    result = worklist.worklist(viewer=agent, now=NOW, tasks_page_size=2)
    assert (len(result.tasks), result.tasks_total, result.overdue_tasks) == (2, 5, 4)


def test_the_page_puts_customers_first_and_pages_the_tasks(client, agent, account):
    customer, _task = account
    for n in range(30):
        TaskFactory(
            customer=customer,
            assignee=agent,
            title=f"Task {n:02d}",
            due_at=NOW + dt.timedelta(minutes=n + 1),
        )
    client.force_login(agent)
    body = client.get(WORKLIST).content.decode()
    assert body.index('id="customers"') < body.index('id="tasks"')
    assert "31 tasks due today" in body and "(1 overdue)" in body
    assert f"tasks 1{DASH}25 of 31" in body and "tasks_page=2" in body
    assert "Task 23" in body and "Task 24" not in body
    second = client.get(WORKLIST, {"tasks_page": "2"}).content.decode()
    assert "Task 24" in second and "Task 29" in second and f"tasks 26{DASH}31 of 31" in second
    assert 'id="next-account"' in body


def test_the_page_links_keep_whose_list_it_is(client, manager, agent, account):
    customer, _task = account
    for n in range(25):
        TaskFactory(customer=customer, assignee=agent, due_at=NOW + dt.timedelta(minutes=n + 1))
    client.force_login(manager)
    body = client.get(WORKLIST, {"agent": agent.pk}).content.decode()
    assert f"?agent={agent.pk}&amp;tasks_page=2" in body
    assert 'id="next-account"' not in body  # the button walks the viewer's own list


# --- Next account ---


@pytest.fixture
def book(agent):
    """Three customers of the agent in priority order: big, middle, small."""
    made = {}
    for name, amount, age in [("Big", "20000.00", 130), ("Middle", "2000.00", 40),
                              ("Small", "50.00", 5)]:  # fmt: skip
        made[name] = CustomerFactory(name=name, assigned_agent=agent)
        InvoiceFactory(customer=made[name], amount=Decimal(amount), due_on=days_ago(age))
    return made


def test_next_account_follows_the_priority_order_skipping_what_is_worked_today(agent, book):
    assert worklist.next_account(viewer=agent).name == "Big"
    services.log_call(customer=book["Big"], outcome="reached", by=agent)
    assert worklist.next_account(viewer=agent).name == "Middle"
    # Leaving Middle without working it goes on to the next one.
    assert worklist.next_account(viewer=agent, after=book["Middle"].pk).name == "Small"
    services.add_note(customer=book["Middle"], text="Left a message", by=agent)
    services.add_note(customer=book["Small"], text="Checked", by=agent)
    assert worklist.next_account(viewer=agent) is None


def test_only_the_agents_own_work_today_counts_as_worked(agent, book):
    colleague = UserFactory(role="Collections manager")
    ActivityFactory(customer=book["Big"], kind="note", actor=colleague, occurred_at=NOW)
    ActivityFactory(  # the agent's call yesterday: worked yesterday, not today
        customer=book["Big"],
        kind="call",
        actor=agent,
        occurred_at=NOW - dt.timedelta(days=1),
    )
    ActivityFactory(customer=book["Big"], kind="payment", actor=None, occurred_at=NOW)
    assert worklist.next_account(viewer=agent).name == "Big"


def test_the_next_account_button_opens_the_next_customer(client, agent, book):
    client.force_login(agent)
    page = client.get(customer_page(book["Big"])).content.decode()
    assert f"{NEXT}?after={book['Big'].pk}" in page
    response = client.get(NEXT, {"after": book["Big"].pk})
    assert response.status_code == 302 and response["Location"] == customer_page(book["Middle"])
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(m.startswith("Next account: Middle") for m in shown)


def test_next_account_returns_to_the_list_when_everything_is_worked(client, agent, book):
    for customer in book.values():
        services.add_note(customer=customer, text="Done", by=agent)
    client.force_login(agent)
    response = client.get(NEXT)
    assert response["Location"] == WORKLIST
    assert "every account is worked" in str(next(iter(get_messages(response.wsgi_request))))


def test_next_account_is_one_query(agent, book, django_assert_num_queries):
    worklist.next_account(viewer=agent)  # the permission cache
    with django_assert_num_queries(1):
        worklist.next_account(viewer=agent, after=book["Big"].pk, now=timezone.now())
