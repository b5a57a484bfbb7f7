import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.db import connection

from accounts.models import Customer
from dunning import planner
from dunning.models import Notice, NoticeInvoice, Policy, Step
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def days_ago(n: int) -> dt.date:
    return ON - dt.timedelta(days=n)


def step(policy: str, offset: int, channel: str = "email") -> Step:
    return Step.objects.get(policy__name=policy, offset_days=offset, channel=channel)


def notices_for(customer) -> list[tuple[str, int, list[str]]]:
    return sorted(
        (n.step.name, n.step.offset_days, sorted(n.lines.values_list("invoice__number", flat=True)))
        for n in Notice.objects.filter(customer=customer).select_related("step")
    )


def test_each_invoice_meets_the_step_its_due_date_puts_it_at():
    customer = CustomerFactory(segment=Customer.Segment.STANDARD)
    InvoiceFactory(customer=customer, number="SOON", due_on=ON + dt.timedelta(days=3))
    InvoiceFactory(customer=customer, number="TODAY", due_on=ON)
    InvoiceFactory(customer=customer, number="WEEK", due_on=days_ago(7))
    InvoiceFactory(customer=customer, number="BETWEEN", due_on=days_ago(11))
    planner.plan(on=ON)
    assert notices_for(customer) == [
        ("Due today", 0, ["TODAY"]),
        ("Friendly reminder", -3, ["SOON"]),
        ("Overdue SMS", 7, ["WEEK"]),
        ("Overdue e-mail", 7, ["WEEK"]),
    ]


def test_one_notice_per_customer_per_step_lists_every_invoice():
    customer = CustomerFactory()
    for n in range(3):
        InvoiceFactory(customer=customer, number=f"W{n}", due_on=days_ago(7))
    other = CustomerFactory()
    InvoiceFactory(customer=other, number="X", due_on=days_ago(7))
    planner.plan(on=ON)
    email = step("Standard", 7)
    mine = Notice.objects.get(customer=customer, step=email)
    assert sorted(mine.lines.values_list("invoice__number", flat=True)) == ["W0", "W1", "W2"]
    assert Notice.objects.filter(step=email).count() == 2


def test_running_twice_plans_nothing_the_second_time():
    InvoiceFactory(due_on=days_ago(7))
    first = planner.plan(on=ON)
    second = planner.plan(on=ON)
    assert first.planned == 2  # e-mail and SMS at +7
    assert (second.planned, second.evaluated) == (0, 0)
    assert Notice.objects.count() == 2


def test_a_missed_night_is_caught_up_within_the_window(settings):
    settings.DUNNING_CATCH_UP_DAYS = 3
    InvoiceFactory(number="LATE2", due_on=days_ago(9))  # reached +7 two days ago
    InvoiceFactory(number="LATE5", due_on=days_ago(12))  # five days ago: outside the window
    planner.plan(on=ON)
    planned = set(NoticeInvoice.objects.values_list("invoice__number", flat=True))
    assert planned == {"LATE2"}


@pytest.mark.parametrize(
    ("hold", "channel_still_allowed"),
    [
        ({"dunning_paused_until": ON, "dunning_pause_reason": "AP holiday"}, None),
        ({"is_in_dispute": True}, None),
        ({"is_in_payment_plan": True}, None),
        ({"is_bankrupt": True}, None),
        ({"is_excluded_from_automation": True}, None),
        ({"status": Customer.Status.WRITTEN_OFF}, None),
        ({"do_not_contact": True}, "escalation"),
        ({"cease_communication": True}, "escalation"),
    ],
)
def test_holds_suppress_dunning(hold, channel_still_allowed):
    customer = CustomerFactory(**hold)
    InvoiceFactory(customer=customer, due_on=days_ago(7))
    InvoiceFactory(customer=customer, due_on=days_ago(60))
    result = planner.plan(on=ON)
    channels = set(Notice.objects.filter(customer=customer).values_list("channel", flat=True))
    assert channels == ({channel_still_allowed} if channel_still_allowed else set())
    assert result.suppressed >= 2


def test_a_pause_that_ended_yesterday_no_longer_holds():
    customer = CustomerFactory(dunning_paused_until=days_ago(1), dunning_pause_reason="x")
    InvoiceFactory(customer=customer, due_on=days_ago(7))
    planner.plan(on=ON)
    assert Notice.objects.filter(customer=customer).count() == 2


def test_paid_disputed_and_cancelled_invoices_are_never_chased():
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, due_on=days_ago(7), open_balance=0, status="paid")
    InvoiceFactory(customer=customer, due_on=days_ago(7), status="disputed")
    InvoiceFactory(customer=customer, due_on=days_ago(7), status="cancelled")
    assert planner.plan(on=ON).evaluated == 0


def test_segment_chooses_the_policy_and_a_customer_override_wins():
    strategic = CustomerFactory(segment=Customer.Segment.STRATEGIC)
    InvoiceFactory(customer=strategic, due_on=days_ago(7))
    overridden = CustomerFactory(
        segment=Customer.Segment.STRATEGIC, dunning_policy=Policy.objects.get(name="High risk")
    )
    InvoiceFactory(customer=overridden, due_on=days_ago(7))
    planner.plan(on=ON)
    assert [n[0] for n in notices_for(strategic)] == ["Senior agent call"]
    assert [n[0] for n in notices_for(overridden)] == ["Call the customer"]


def test_high_value_and_legal_notices_wait_for_approval(settings):
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "5000"
    small = CustomerFactory()
    InvoiceFactory(customer=small, due_on=days_ago(30), amount=Decimal("4999.99"))
    big = CustomerFactory()
    InvoiceFactory(customer=big, due_on=days_ago(30), amount=Decimal("3000.00"), currency="EUR")
    InvoiceFactory(customer=big, due_on=days_ago(30), amount=Decimal("3000.00"), currency="EUR")
    # Balances in two currencies are never added: 4000 USD + 4000 EUR stays below 5000.
    mixed = CustomerFactory()
    InvoiceFactory(customer=mixed, due_on=days_ago(30), amount=Decimal("4000.00"))
    InvoiceFactory(customer=mixed, due_on=days_ago(30), amount=Decimal("4000.00"), currency="EUR")
    result = planner.plan(on=ON)
    letters = dict(Notice.objects.filter(channel="letter").values_list("customer_id", "status"))
    assert letters == {small.pk: "planned", big.pk: "awaiting_approval", mixed.pk: "planned"}
    assert result.awaiting_approval == 1


def test_dry_run_counts_but_writes_nothing():
    InvoiceFactory(due_on=days_ago(7))
    result = planner.plan(on=ON, dry_run=True)
    assert result.planned == 2
    assert not Notice.objects.exists()


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_concurrent_planners_plan_each_invoice_once():
    customers = [CustomerFactory() for _ in range(20)]
    for customer in customers:
        for _ in range(3):
            InvoiceFactory(customer=customer, due_on=days_ago(7))
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait(timeout=5)
            results.append(planner.plan(on=ON).planned)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 40]
    assert Notice.objects.count() == 40
    assert NoticeInvoice.objects.count() == 120


def test_catch_up_never_sends_a_step_the_invoice_has_moved_past(settings):
    settings.DUNNING_CATCH_UP_DAYS = 5
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, number="D1", due_on=days_ago(1))  # the -3 step: 4 days ago
    planner.plan(on=ON)
    # The "due in 3 days" reminder is not sent late; the missed "due today" is caught up.
    assert notices_for(customer) == [("Due today", 0, ["D1"])]


def test_a_paused_invoice_is_held_while_the_customers_others_go_on(agent):
    from accounts import services as ledger

    customer = CustomerFactory(assigned_agent=agent)
    held = InvoiceFactory(customer=customer, number="HELD", due_on=days_ago(7))
    InvoiceFactory(customer=customer, number="GOES", due_on=days_ago(7))
    ledger.pause_invoices(
        invoices=[held],
        until=ON + dt.timedelta(days=5),
        reason="credit note coming",
        by=agent,
        today=ON,
    )
    result = planner.plan(on=ON)
    planned = set(NoticeInvoice.objects.values_list("invoice__number", flat=True))
    assert planned == {"GOES"} and result.suppressed == 2  # e-mail and SMS steps
    assert held.activities.get().details["hold"] == "invoice_paused"


def test_agents_pause_invoices_from_the_invoice_list(client, agent):
    from accounts.models import Invoice

    customer = CustomerFactory(assigned_agent=agent)
    invoice = InvoiceFactory(customer=customer)
    client.force_login(agent)
    until = (dt.date.today() + dt.timedelta(days=5)).isoformat()
    response = client.post(
        "/admin/accounts/invoice/",
        {
            "action": "pause_invoices",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "until": until,
            "reason": "waiting for the credit note",
        },
    )
    assert response.status_code == 302
    assert Invoice.objects.get(pk=invoice.pk).dunning_pause_reason == "waiting for the credit note"
    too_long = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    client.post(
        "/admin/accounts/invoice/",
        {
            "action": "pause_invoices",
            "_selected_action": [invoice.pk],
            "apply": "1",
            "until": too_long,
            "reason": "longer",
        },
    )
    assert str(Invoice.objects.get(pk=invoice.pk).dunning_paused_until) == until
