"""Write-offs and agency placements: reviews, proposals, four-eyes approval, holds, reversal."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import Activity, Allocation, Customer, Invoice, Payment
from cases import case_tasks, recoveries
from cases.models import Dispute, Recovery, Task
from dunning import planner
from dunning.models import Notice
from tests.clock import ON as TODAY
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


@pytest.fixture
def second_manager():
    return UserFactory(username="manager2", role="Collections manager")


@pytest.fixture
def debtor(agent):
    customer = CustomerFactory(name="Gone Bust Ltd", assigned_agent=agent)
    old = InvoiceFactory(customer=customer, amount=Decimal("300.00"), due_on=days_ago(150))
    part = InvoiceFactory(customer=customer, amount=Decimal("100.00"), due_on=days_ago(130))
    payment = PaymentFactory(customer=customer, amount=Decimal("40.00"))
    services.allocate(payment=payment, invoice=part)
    part.refresh_from_db()
    return customer, [old, part]


def write_off(customer, invoices, by, reason="Insolvent, no assets"):
    return recoveries.propose_recovery(
        customer=customer, invoices=invoices, kind="write_off", by=by, reason=reason
    )


# --- Reviews ---


def test_a_review_task_goes_to_the_agent_once(agent, debtor):
    customer, _ = debtor
    young = CustomerFactory(assigned_agent=agent)
    InvoiceFactory(customer=young, due_on=days_ago(120))  # day 120 is not past the age
    closed = CustomerFactory(assigned_agent=agent, status="closed")
    InvoiceFactory(customer=closed, due_on=days_ago(300))
    [task] = recoveries.propose_reviews(today=TODAY)
    assert (task.customer, task.kind, task.assignee) == (customer, "review", agent)
    assert task.source == f"recovery-review:{customer.pk}"
    assert "USD 360.00" in task.title
    assert task.details["oldest_due_on"] == days_ago(150).isoformat()
    assert Activity.objects.filter(customer=customer, kind="task").count() == 1
    assert recoveries.propose_reviews(today=TODAY) == []
    assert Task.objects.filter(kind="review").count() == 1


def test_the_review_age_is_a_setting(settings, debtor):
    settings.WRITE_OFF_REVIEW_DAYS = 200
    assert recoveries.propose_reviews(today=TODAY) == []


def test_a_review_closed_recently_or_a_pending_proposal_raises_none(agent, debtor):
    [task] = recoveries.propose_reviews(today=TODAY)
    case_tasks.complete_task(task=task, outcome="done", note="Still trading", by=agent)
    assert recoveries.propose_reviews(today=TODAY) == []
    other = CustomerFactory(assigned_agent=agent)
    InvoiceFactory(customer=other, due_on=days_ago(200))
    write_off(other, list(other.invoices.all()), agent)
    assert recoveries.propose_reviews(today=TODAY) == []


# --- Proposals ---


def test_an_agent_proposes_and_the_managers_get_an_approval_task(agent, debtor):
    customer, invoices = debtor
    [review] = recoveries.propose_reviews(today=TODAY)
    recovery = write_off(customer, invoices, agent)
    assert (recovery.status, recovery.proposed_by) == ("proposed", agent)
    assert set(recovery.invoices.all()) == set(invoices)
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.WRITE_OFF)
    assert "USD 360.00" in entry.text and "Insolvent" in entry.text and entry.actor == agent
    review.refresh_from_db()
    assert (review.status, review.outcome) == ("done", "write_off_proposed")
    approval = Task.objects.get(kind="approval")
    assert approval.assignee is None and approval.source == f"recovery-approval:{recovery.pk}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reason": " "}, "Say why"),
        ({"kind": "agency"}, "Name the collections agency"),
        ({"invoices": []}, "at least one invoice"),
    ],
)
def test_a_proposal_needs_a_reason_an_agency_and_invoices(agent, debtor, change, message):
    customer, invoices = debtor
    arguments = {
        "customer": customer,
        "invoices": invoices,
        "kind": "write_off",
        "by": agent,
        "reason": "Insolvent",
        **change,
    }
    with pytest.raises(ValidationError, match=message):
        recoveries.propose_recovery(**arguments)


def test_a_proposal_refuses_mixed_currencies_paid_and_foreign_invoices(agent, debtor):
    customer, invoices = debtor
    euro = InvoiceFactory(customer=customer, currency="EUR")
    with pytest.raises(ValidationError, match="one currency"):
        write_off(customer, [*invoices, euro], agent)
    paid = InvoiceFactory(customer=customer, open_balance=Decimal("0.00"), status="paid")
    with pytest.raises(ValidationError, match="not outstanding"):
        write_off(customer, [paid], agent)
    foreign = InvoiceFactory(customer=CustomerFactory(assigned_agent=agent))
    with pytest.raises(ValidationError, match="another customer"):
        write_off(customer, [foreign], agent)


def test_an_invoice_is_in_one_live_recovery_at_a_time(agent, debtor):
    customer, invoices = debtor
    first = write_off(customer, invoices[:1], agent)
    with pytest.raises(ValidationError, match=f"recovery #{first.pk}"):
        write_off(customer, invoices, agent)


def test_an_agent_cannot_propose_for_another_agents_customer(agent):
    other = UserFactory(role="Collections agent")
    customer = CustomerFactory(assigned_agent=other)
    invoice = InvoiceFactory(customer=customer)
    with pytest.raises(PermissionDenied):
        write_off(customer, [invoice], agent)


# --- Approval ---


def test_approving_a_write_off_closes_the_balances_with_an_adjustment(agent, manager, debtor):
    customer, (old, part) = debtor
    call = TaskFactory(customer=customer, assignee=agent, kind="call")
    recovery = write_off(customer, [old, part], agent)
    recoveries.approve_recovery(recovery=recovery, by=manager, today=TODAY)
    recovery.refresh_from_db()
    assert (recovery.status, recovery.decided_by) == ("approved", manager)
    adjustment = recovery.adjustment
    assert (adjustment.kind, adjustment.method) == (Payment.Kind.WRITE_OFF, "adjustment")
    assert (adjustment.amount, adjustment.currency, adjustment.unallocated_amount) == (
        Decimal("360.00"),
        "USD",
        Decimal("0.00"),
    )
    assert sorted(
        Allocation.objects.filter(payment=adjustment).values_list("amount", flat=True)
    ) == [
        Decimal("60.00"),
        Decimal("300.00"),
    ]
    for invoice in (old, part):
        invoice.refresh_from_db()
        assert (invoice.open_balance, invoice.status) == (0, Invoice.Status.WRITTEN_OFF)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.WRITTEN_OFF
    status = Activity.objects.get(customer=customer, kind=Activity.Kind.STATUS_CHANGE)
    assert status.details == {"field": "status", "from": "active", "to": "written_off"}
    approved = Activity.objects.filter(customer=customer, kind=Activity.Kind.WRITE_OFF).latest("pk")
    assert approved.details["event"] == "approved" and approved.actor == manager
    call.refresh_from_db()
    assert call.status == Task.Status.CANCELLED
    approval = Task.objects.get(kind="approval")
    assert (approval.status, approval.outcome) == ("done", "approved")


def test_a_partial_write_off_leaves_the_customer_active(agent, manager, debtor):
    customer, (old, part) = debtor
    recovery = write_off(customer, [old], agent)
    recoveries.approve_recovery(recovery=recovery, by=manager)
    customer.refresh_from_db()
    part.refresh_from_db()
    assert customer.status == "active" and part.status == "partially_paid"


def test_agents_never_approve_and_nobody_approves_their_own_proposal(
    agent, manager, second_manager, debtor
):
    customer, invoices = debtor
    recovery = write_off(customer, invoices, manager)
    with pytest.raises(PermissionDenied):
        recoveries.approve_recovery(recovery=recovery, by=agent)
    with pytest.raises(PermissionDenied, match="other than the proposer"):
        recoveries.approve_recovery(recovery=recovery, by=manager)
    with pytest.raises(PermissionDenied):
        recoveries.approve_recovery(recovery=recovery, by=None)
    recoveries.approve_recovery(recovery=recovery, by=second_manager)
    with pytest.raises(ValidationError, match="is approved"):
        recoveries.approve_recovery(recovery=recovery, by=second_manager)


def test_an_invoice_paid_since_the_proposal_blocks_the_write_off(agent, manager, debtor):
    customer, (old, part) = debtor
    recovery = write_off(customer, [old, part], agent)
    services.allocate(
        payment=PaymentFactory(customer=customer, amount=Decimal("60.00")), invoice=part
    )
    with pytest.raises(ValidationError, match="not outstanding"):
        recoveries.approve_recovery(recovery=recovery, by=manager)
    old.refresh_from_db()
    assert old.status == "open" and not Payment.objects.filter(kind="write_off").exists()


def test_approving_a_placement_records_the_agency_and_stops_our_dunning(agent, manager, debtor):
    customer, invoices = debtor
    recovery = recoveries.propose_recovery(
        customer=customer,
        invoices=invoices,
        kind="agency",
        by=agent,
        reason="No response in 5 months",
        agency_name="Acme Recoveries",
    )
    recoveries.approve_recovery(recovery=recovery, by=manager)
    customer.refresh_from_db()
    assert customer.status == Customer.Status.PLACED_WITH_AGENCY
    entry = Activity.objects.filter(customer=customer, kind=Activity.Kind.PLACEMENT).latest("pk")
    assert "Acme Recoveries" in entry.text and entry.details["agency"] == "Acme Recoveries"
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.status in ("open", "partially_paid")  # the agency collects them


def test_written_off_and_placed_customers_get_no_notices(agent, manager):
    def customer_due_today(name):
        customer = CustomerFactory(name=name, assigned_agent=agent)
        InvoiceFactory(customer=customer, due_on=TODAY, issued_on=TODAY - dt.timedelta(days=30))
        return customer

    chased = customer_due_today("Chased")
    written = customer_due_today("Written off")
    placed = customer_due_today("Placed")
    recoveries.approve_recovery(
        recovery=write_off(written, list(written.invoices.all()), agent), by=manager
    )
    recoveries.approve_recovery(
        recovery=recoveries.propose_recovery(
            customer=placed,
            invoices=list(placed.invoices.all()),
            kind="agency",
            by=agent,
            reason="Skipped town",
            agency_name="Acme Recoveries",
        ),
        by=manager,
    )
    planner.plan(on=TODAY)
    assert set(Notice.objects.values_list("customer__name", flat=True)) == {"Chased"}
    assert chased.pk in Notice.objects.values_list("customer_id", flat=True)


# --- Rejection and reversal ---


def test_a_rejection_needs_a_reason_and_is_logged(agent, manager, debtor):
    customer, invoices = debtor
    recovery = write_off(customer, invoices, agent)
    with pytest.raises(ValidationError, match="Say why"):
        recoveries.reject_recovery(recovery=recovery, by=manager, reason="")
    with pytest.raises(PermissionDenied):
        recoveries.reject_recovery(recovery=recovery, by=agent, reason="No")
    recoveries.reject_recovery(recovery=recovery, by=manager, reason="Assets found")
    recovery.refresh_from_db()
    assert (recovery.status, recovery.decided_by) == ("rejected", manager)
    entry = Activity.objects.filter(customer=customer, kind="write_off").latest("pk")
    assert "Assets found" in entry.text and entry.details["event"] == "rejected"
    assert Task.objects.get(kind="approval").outcome == "rejected"
    write_off(customer, invoices, agent)  # the invoices may be proposed again


def test_reversing_a_write_off_reopens_the_invoices_from_their_balances(agent, manager, debtor):
    customer, (old, part) = debtor
    disputed = InvoiceFactory(customer=customer, amount=Decimal("50.00"), status="disputed")
    dispute = Dispute.objects.create(customer=customer, reason="quality")
    dispute.invoices.add(disputed)
    recovery = write_off(customer, [old, part, disputed], agent)
    recoveries.approve_recovery(recovery=recovery, by=manager)
    with pytest.raises(PermissionDenied):
        recoveries.reverse_recovery(recovery=recovery, by=agent, reason="Paid after all")
    with pytest.raises(ValidationError, match="Say why"):
        recoveries.reverse_recovery(recovery=recovery, by=manager, reason=" ")
    before = Activity.objects.latest("pk").pk
    recoveries.reverse_recovery(recovery=recovery, by=manager, reason="Customer refinanced")
    for invoice in (old, part, disputed):
        invoice.refresh_from_db()
    assert (old.open_balance, old.status) == (Decimal("300.00"), "open")
    assert (part.open_balance, part.status) == (Decimal("60.00"), "partially_paid")
    assert (disputed.open_balance, disputed.status) == (Decimal("50.00"), "disputed")
    recovery.refresh_from_db()
    reversals = Allocation.objects.filter(payment=recovery.adjustment, amount__lt=0)
    assert reversals.count() == 3 and all(r.reverses_id for r in reversals)
    assert (recovery.status, recovery.reversed_by, recovery.reversal_reason) == (
        "reversed",
        manager,
        "Customer refinanced",
    )
    assert recovery.adjustment.refunded_amount == Decimal("410.00")
    customer.refresh_from_db()
    assert customer.status == "active"
    reversed_entry = Activity.objects.filter(customer=customer, kind="write_off").latest("pk")
    assert "Customer refinanced" in reversed_entry.text and reversed_entry.actor == manager
    back = Activity.objects.filter(customer=customer, kind="status_change").latest("pk")
    assert back.details == {"field": "status", "from": "written_off", "to": "active"}
    # The adjustment is taken back: nobody was refunded, and the timeline says so.
    ledger_entries = Activity.objects.filter(customer=customer, kind__in=["payment", "allocation"])
    texts = [entry.text for entry in ledger_entries.filter(pk__gt=before)]
    assert texts and all(t.startswith("Write-off reversed") for t in texts)
    assert not any("Refund" in t for t in texts)
    with pytest.raises(ValidationError, match="is reversed"):
        recoveries.reverse_recovery(recovery=recovery, by=manager, reason="again")


def test_a_reversed_write_off_is_chased_again(agent, manager):
    customer = CustomerFactory(assigned_agent=agent)
    InvoiceFactory(customer=customer, due_on=TODAY, issued_on=TODAY - dt.timedelta(days=30))
    recovery = write_off(customer, list(customer.invoices.all()), agent)
    recoveries.approve_recovery(recovery=recovery, by=manager)
    recoveries.reverse_recovery(recovery=recovery, by=manager, reason="Wrong customer")
    planner.plan(on=TODAY)
    assert Notice.objects.filter(customer=customer).exists()


def test_reversing_a_placement_makes_the_customer_active(agent, manager, debtor):
    customer, invoices = debtor
    recovery = recoveries.propose_recovery(
        customer=customer,
        invoices=invoices,
        kind="agency",
        by=agent,
        reason="No contact",
        agency_name="Acme Recoveries",
    )
    recoveries.approve_recovery(recovery=recovery, by=manager)
    recoveries.reverse_recovery(recovery=recovery, by=manager, reason="Agency returned it")
    customer.refresh_from_db()
    assert customer.status == "active"
    entry = Activity.objects.filter(customer=customer, kind="placement").latest("pk")
    assert entry.details["event"] == "reversed" and "Agency returned it" in entry.text


# --- The console ---


def test_an_agent_proposes_in_the_console(client, agent, debtor):
    customer, invoices = debtor
    client.force_login(agent)
    url = reverse("admin:cases_recovery_add")
    refused = client.post(
        url,
        {
            "customer": customer.pk,
            "kind": "agency",
            "invoices": [i.pk for i in invoices],
            "reason": "No contact",
        },
    )
    assert refused.status_code == 200 and b"Name the collections agency" in refused.content
    response = client.post(
        url,
        {
            "customer": customer.pk,
            "kind": "write_off",
            "invoices": [i.pk for i in invoices],
            "reason": "Insolvent",
        },
    )
    assert response.status_code == 302
    recovery = Recovery.objects.get()
    assert (recovery.kind, recovery.proposed_by, recovery.invoices.count()) == (
        "write_off",
        agent,
        2,
    )
    listing = client.get(reverse("admin:cases_recovery_changelist")).content.decode()
    assert "Approve the selected proposals" not in listing


def test_a_manager_approves_and_reverses_in_the_console(client, agent, manager, debtor):
    customer, invoices = debtor
    recovery = write_off(customer, invoices, agent)
    client.force_login(manager)
    url = reverse("admin:cases_recovery_changelist")
    client.post(url, {"action": "approve", "_selected_action": [recovery.pk]})
    recovery.refresh_from_db()
    assert recovery.status == "approved"
    form = client.post(url, {"action": "reverse", "_selected_action": [recovery.pk]})
    assert form.status_code == 200 and b'name="reason"' in form.content
    client.post(
        url,
        {"action": "reverse", "_selected_action": [recovery.pk], "apply": "1", "reason": "Error"},
    )
    recovery.refresh_from_db()
    assert recovery.status == "reversed" and recovery.reversal_reason == "Error"
    page = client.get(reverse("admin:cases_recovery_change", args=[recovery.pk]))
    assert page.status_code == 200 and b"Error" in page.content


def test_the_proposer_sees_the_refusal_in_the_console(client, manager, debtor):
    customer, invoices = debtor
    recovery = write_off(customer, invoices, manager)
    client.force_login(manager)
    response = client.post(
        reverse("admin:cases_recovery_changelist"),
        {"action": "approve", "_selected_action": [recovery.pk]},
        follow=True,
    )
    assert "other than the proposer" in response.content.decode()
    recovery.refresh_from_db()
    assert recovery.status == "proposed"
