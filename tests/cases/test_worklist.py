"""The worklist: who needs the agent today, in the stated priority order, and who may see it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Activity, Customer
from cases import worklist
from cases.models import PromiseToPay, Task
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 12, tzinfo=dt.UTC)
TODAY = NOW.date()


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def broken_promise(customer, *, promised_on=None):
    promised_on = promised_on or days_ago(30)
    return PromiseToPay.objects.create(
        customer=customer,
        amount=Decimal("100.00"),
        currency="USD",
        promised_on=promised_on,
        holds_until=promised_on,
        status=PromiseToPay.Status.BROKEN,
    )


@pytest.fixture
def book(agent):
    """A book whose order is worked out by hand in the test below."""
    other = UserFactory(role="Collections agent")
    a = CustomerFactory(name="A", assigned_agent=agent, risk_score=50, risk_band="medium")
    InvoiceFactory(customer=a, amount=Decimal("12000.00"), due_on=days_ago(100))
    broken_promise(a)
    broken_promise(a, promised_on=days_ago(400))  # outside the 12 months
    b = CustomerFactory(name="B", assigned_agent=agent)
    InvoiceFactory(customer=b, amount=Decimal("600.00"), due_on=days_ago(10))
    InvoiceFactory(customer=b, amount=Decimal("500.00"), due_on=days_ago(5), currency="EUR")
    TaskFactory(customer=b, assignee=agent, title="Call B", due_at=NOW - dt.timedelta(hours=2))
    c = CustomerFactory(name="C", assigned_agent=agent)
    InvoiceFactory(customer=c, due_on=TODAY + dt.timedelta(days=5))  # not due yet
    TaskFactory(customer=c, assignee=agent, title="Send C a copy", kind="email",
                due_at=NOW + dt.timedelta(hours=3))  # fmt: skip
    d = CustomerFactory(name="D", assigned_agent=agent)
    InvoiceFactory(customer=d, amount=Decimal("50.00"), due_on=days_ago(200))
    e = CustomerFactory(name="E (other agent)", assigned_agent=other)
    InvoiceFactory(customer=e, amount=Decimal("99999.00"), due_on=days_ago(300))
    f = CustomerFactory(name="F (written off)", assigned_agent=agent, status="written_off")
    InvoiceFactory(customer=f, amount=Decimal("5000.00"), due_on=days_ago(300))
    g = CustomerFactory(name="G (current)", assigned_agent=agent)
    InvoiceFactory(customer=g, due_on=TODAY)  # day 0 is current
    h = CustomerFactory(name="H (task next week)", assigned_agent=agent)
    TaskFactory(customer=h, assignee=agent, due_at=NOW + dt.timedelta(days=7))
    return {"a": a, "b": b, "c": c, "d": d, "other": other}


def test_order_and_points_follow_the_stated_rules(agent, book):
    result = worklist.worklist(viewer=agent, now=NOW)
    assert [row.name for row in result.rows] == ["A", "D", "B", "C"]
    assert result.total == 4
    points = {row.name: (row.priority, row.points) for row in result.rows}
    # A: 12,000 (30) + 100 days (91-120: 20) + risk 50 / 5 (10) + one broken promise (5)
    assert points["A"] == (
        65,
        {"amount": 30, "age": 20, "risk": 10, "promises": 5, "task": 0, "predicted": 0},
    )
    # D: 50 (5) + 200 days (25); ties with B at 30 and goes first: the older debt
    assert points["D"] == (
        30,
        {"amount": 5, "age": 25, "risk": 0, "promises": 0, "task": 0, "predicted": 0},
    )
    # B: 600 USD and 500 EUR are never added: 600 (15) + 10 days (5) + overdue task (10)
    assert points["B"] == (
        30,
        {"amount": 15, "age": 5, "risk": 0, "promises": 0, "task": 10, "predicted": 0},
    )
    # C: nothing past due, a task due later today (5)
    assert points["C"] == (
        5,
        {"amount": 0, "age": 0, "risk": 0, "promises": 0, "task": 5, "predicted": 0},
    )


def test_rows_say_the_next_action_and_its_deadline(agent, book):
    rows = {row.name: row for row in worklist.worklist(viewer=agent, now=NOW).rows}
    assert (rows["B"].next_action, rows["B"].is_overdue) == ("Call B", True)
    assert rows["B"].deadline == NOW - dt.timedelta(hours=2)
    assert (rows["B"].currency, rows["B"].past_due_amount) == ("USD", Decimal("600.00"))
    assert rows["C"].next_action == "Send C a copy" and not rows["C"].is_overdue
    assert rows["D"].next_action == "Review for write-off or agency placement"
    assert rows["D"].days_past_due == 200 and rows["D"].deadline == TODAY
    assert rows["A"].next_action == "Call about USD 12000.00 past due"


def test_an_open_promise_or_a_pause_is_the_next_action(agent):
    promised = CustomerFactory(name="Promised", assigned_agent=agent)
    InvoiceFactory(customer=promised, due_on=days_ago(20))
    PromiseToPay.objects.create(
        customer=promised,
        amount=Decimal("100.00"),
        currency="USD",
        promised_on=TODAY + dt.timedelta(days=3),
        holds_until=TODAY + dt.timedelta(days=6),
    )
    paused = CustomerFactory(
        name="Paused",
        assigned_agent=agent,
        dunning_paused_until=TODAY + dt.timedelta(days=4),
        dunning_pause_reason="Waiting for the PO",
    )
    InvoiceFactory(customer=paused, due_on=days_ago(20))
    rows = {row.name: row for row in worklist.worklist(viewer=agent, now=NOW).rows}
    assert rows["Promised"].next_action.startswith("Check the promised payment")
    assert rows["Promised"].deadline == TODAY + dt.timedelta(days=3)
    assert rows["Paused"].deadline == TODAY + dt.timedelta(days=4)


def test_tasks_due_today_are_listed_with_overdue_ones_counted(agent, book):
    result = worklist.worklist(viewer=agent, now=NOW)
    assert [task.title for task in result.tasks] == ["Call B", "Send C a copy"]
    assert result.overdue_tasks == 1


def test_an_agent_sees_only_their_own_list(agent, book):
    with pytest.raises(PermissionDenied):
        worklist.worklist(viewer=agent, agent=book["other"], now=NOW)
    with pytest.raises(PermissionDenied):
        worklist.worklist(viewer=agent, unassigned=True, now=NOW)


def test_a_manager_sees_any_agents_list_and_the_unassigned_queue(manager, agent, book):
    theirs = worklist.worklist(viewer=manager, agent=book["other"], now=NOW)
    assert [row.name for row in theirs.rows] == ["E (other agent)"]
    mine = worklist.worklist(viewer=manager, agent=agent, now=NOW)
    assert mine.rows[0].name == "A"
    nobody = CustomerFactory(name="Nobody's")
    InvoiceFactory(customer=nobody, due_on=days_ago(40))
    TaskFactory(customer=nobody, assignee=None, kind="approval", title="Approve write-off",
                due_at=NOW - dt.timedelta(days=1))  # fmt: skip
    queue = worklist.worklist(viewer=manager, unassigned=True, now=NOW)
    assert [row.name for row in queue.rows] == ["Nobody's"]
    assert [task.title for task in queue.tasks] == ["Approve write-off"]


def test_pages_and_the_total(agent, book):
    first = worklist.worklist(viewer=agent, now=NOW, page_size=3)
    second = worklist.worklist(viewer=agent, now=NOW, page=2, page_size=3)
    assert [row.name for row in first.rows + second.rows] == ["A", "D", "B", "C"]
    assert (first.total, first.pages, second.total) == (4, 2, 4)
    past = worklist.worklist(viewer=agent, now=NOW, page=5, page_size=3)
    assert past.rows == [] and past.total == 4


def test_the_query_count_does_not_grow_with_the_list(agent, book):
    worklist.worklist(viewer=agent, now=NOW)  # the permission cache
    with CaptureQueriesContext(connection) as small:
        worklist.worklist(viewer=agent, now=NOW)
    for n in range(20):
        customer = CustomerFactory(assigned_agent=agent)
        InvoiceFactory(customer=customer, due_on=days_ago(n + 1))
        TaskFactory(customer=customer, assignee=agent, due_at=NOW)
    with CaptureQueriesContext(connection) as big:
        result = worklist.worklist(viewer=agent, now=NOW)
    assert result.total == 24
    assert len(big) == len(small) == 3  # the page, the debtors' latest moves, the tasks


def test_a_customer_placed_with_an_agency_leaves_the_list(agent, book):
    Customer.objects.filter(pk=book["a"].pk).update(status="placed_with_agency")
    names = [row.name for row in worklist.worklist(viewer=agent, now=NOW).rows]
    assert "A" not in names


# --- The page ---


def test_the_page_shows_tasks_customers_and_links(client, agent):
    customer = CustomerFactory(name="Acme Widgets", assigned_agent=agent)
    InvoiceFactory(customer=customer, due_on=timezone.localdate() - dt.timedelta(days=45))
    TaskFactory(
        customer=customer,
        assignee=agent,
        title="Chase Acme",
        due_at=timezone.now() - dt.timedelta(hours=1),
    )
    client.force_login(agent)
    response = client.get(reverse("admin:cases_task_worklist"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "Worklist of agent" in body and "Chase Acme" in body
    assert reverse("admin:accounts_customer_change", args=[customer.pk]) in body
    assert "overdue" in body and 'name="outcome"' in body
    assert 'id="agent-filter"' not in body  # agents get no agent picker


def test_an_agent_cannot_open_another_agents_page(client, agent):
    other = UserFactory(role="Collections agent")
    client.force_login(agent)
    url = reverse("admin:cases_task_worklist")
    assert client.get(url, {"agent": other.pk}).status_code == 403
    assert client.get(url, {"agent": "none"}).status_code == 403


def test_a_manager_picks_an_agent_or_the_queue(client, manager, agent):
    customer = CustomerFactory(name="Agent customer", assigned_agent=agent)
    InvoiceFactory(customer=customer, due_on=timezone.localdate() - dt.timedelta(days=3))
    queue_customer = CustomerFactory(name="Queue customer")
    InvoiceFactory(customer=queue_customer, due_on=timezone.localdate() - dt.timedelta(days=3))
    client.force_login(manager)
    url = reverse("admin:cases_task_worklist")
    body = client.get(url, {"agent": agent.pk}).content.decode()
    assert 'id="agent-filter"' in body and "Agent customer" in body
    assert "Queue customer" not in body
    body = client.get(url, {"agent": "none"}).content.decode()
    assert "Unassigned queue" in body and "Queue customer" in body


def test_the_complete_form_completes_the_task_and_returns_to_the_list(client, agent):
    task = TaskFactory(
        customer=CustomerFactory(assigned_agent=agent),
        assignee=agent,
        due_at=timezone.now(),
    )
    client.force_login(agent)
    back = reverse("admin:cases_task_worklist") + "?page=1"
    response = client.post(
        reverse("admin:cases_task_complete", args=[task.pk]),
        {"outcome": "no_answer", "note": "Rang twice", "next": back},
    )
    assert response.status_code == 302 and response["Location"] == back
    task.refresh_from_db()
    assert (task.status, task.outcome) == (Task.Status.DONE, "no_answer")
    assert Activity.objects.filter(kind="call", outcome="no_answer", actor=agent).exists()


def test_the_complete_form_refuses_another_agents_task(client, agent):
    other = UserFactory(role="Collections agent")
    task = TaskFactory(customer=CustomerFactory(assigned_agent=other), assignee=other)
    client.force_login(agent)
    response = client.post(
        reverse("admin:cases_task_complete", args=[task.pk]),
        {"outcome": "reached", "next": "https://evil.example.com/"},
        follow=True,
    )
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN
    assert response.redirect_chain[0][0] == reverse("admin:cases_task_worklist")
    assert "assigned to" in response.content.decode()


# --- Predictions in the priority (issue #17) ---


def twins(agent):
    """Two customers equal in everything the other scores look at: 600 due 10 days ago.
    Their invoices by customer name."""
    first = CustomerFactory(name="First", assigned_agent=agent)
    second = CustomerFactory(name="Second", assigned_agent=agent)
    invoices = {
        customer.name: InvoiceFactory(
            customer=customer, amount=Decimal("600.00"), due_on=days_ago(10)
        )
        for customer in (first, second)
    }
    return invoices


def test_an_account_predicted_late_ranks_above_an_otherwise_equal_one(agent, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    invoices = twins(agent)
    # Without predictions the tie goes by name: First, then Second.
    assert [r.name for r in worklist.worklist(viewer=agent, now=NOW).rows] == ["First", "Second"]
    upcoming = InvoiceFactory(
        customer=invoices["Second"].customer, due_on=TODAY + dt.timedelta(days=10)
    )
    InvoicePredictionFactory(invoice=upcoming, probability_late=Decimal("0.8300"))
    InvoicePredictionFactory(invoice=invoices["First"], probability_late=Decimal("0.2000"))
    rows = worklist.worklist(viewer=agent, now=NOW).rows
    assert [r.name for r in rows] == ["Second", "First"]
    by_name = {r.name: r for r in rows}
    assert by_name["Second"].points["predicted"] == 8  # 0.83: eight whole tenths
    assert by_name["Second"].priority == by_name["First"].priority + 8
    assert by_name["Second"].late_probability == Decimal("0.8300")
    # Below the threshold a prediction adds nothing, but it is still shown.
    assert by_name["First"].points["predicted"] == 0
    assert by_name["First"].late_probability == Decimal("0.2000")


def test_the_threshold_setting_decides_what_counts_as_predicted_late(agent, settings):
    invoices = twins(agent)
    InvoicePredictionFactory(invoice=invoices["Second"], probability_late=Decimal("0.6500"))
    settings.PREDICTED_LATE_THRESHOLD = 0.7
    rows = worklist.worklist(viewer=agent, now=NOW).rows
    assert {r.name: r.points["predicted"] for r in rows} == {"First": 0, "Second": 0}
    settings.PREDICTED_LATE_THRESHOLD = 0.6
    rows = worklist.worklist(viewer=agent, now=NOW).rows
    assert {r.name: r.points["predicted"] for r in rows} == {"First": 0, "Second": 6}
    assert [r.name for r in rows] == ["Second", "First"]


def test_a_prediction_on_an_invoice_paid_since_does_not_count(agent, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    invoices = twins(agent)
    paid = InvoiceFactory(
        customer=invoices["First"].customer,
        due_on=TODAY + dt.timedelta(days=3),
        status="paid",
        open_balance=Decimal("0.00"),
    )
    InvoicePredictionFactory(invoice=paid, probability_late=Decimal("0.9900"))
    rows = worklist.worklist(viewer=agent, now=NOW).rows
    assert [r.name for r in rows] == ["First", "Second"]
    assert rows[0].points["predicted"] == 0 and rows[0].late_probability is None


def test_a_prediction_alone_puts_nobody_on_the_list(agent):
    quiet = CustomerFactory(name="Not due yet", assigned_agent=agent)
    upcoming = InvoiceFactory(customer=quiet, due_on=TODAY + dt.timedelta(days=10))
    InvoicePredictionFactory(invoice=upcoming, probability_late=Decimal("0.9500"))
    assert worklist.worklist(viewer=agent, now=NOW).total == 0


def test_next_account_follows_the_predicted_order(agent, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    invoices = twins(agent)
    InvoicePredictionFactory(invoice=invoices["Second"], probability_late=Decimal("0.7000"))
    assert worklist.next_account(viewer=agent, now=NOW).name == "Second"


def test_the_page_shows_the_predicted_points_and_probability(client, agent, settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    invoices = twins(agent)
    InvoicePredictionFactory(invoice=invoices["Second"], probability_late=Decimal("0.7349"))
    client.force_login(agent)
    page = client.get(reverse("admin:cases_task_worklist")).content.decode()
    assert "late 73%" in page
    assert "15 + 5 + 0 + 0 + 0 + 7" in page
