"""Payment plans: proposed, approved above the threshold, filled by payments, broken when missed."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services
from accounts.models import Activity, Customer
from cases import plans
from cases.models import PaymentPlan, Task
from dunning import planner, sender
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)


def days(n: int) -> dt.date:
    return ON + dt.timedelta(days=n)


@pytest.fixture(autouse=True)
def _locmem_mail_and_threshold(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"
    settings.INSTALLMENT_REMINDER_DAYS = 3


@pytest.fixture
def customer(agent):
    customer = CustomerFactory(
        assigned_agent=agent, segment=Customer.Segment.STANDARD, timezone="America/Chicago"
    )
    ContactFactory(customer=customer, name="Dana", email="ap@acme.example", is_primary=True)
    return customer


def propose(customer, invoices, installments, *, by=None, **kwargs):
    return plans.propose_plan(
        customer=customer,
        invoices=invoices,
        installments=[(due, Decimal(amount)) for due, amount in installments],
        by=by,
        today=ON,
        **kwargs,
    )


def three_hundreds(customer, **kwargs):
    invoice = InvoiceFactory(customer=customer, number="PLAN-1", amount=Decimal("300.00"))
    plan = propose(
        customer,
        [invoice],
        [(days(7), "100.00"), (days(37), "100.00"), (days(67), "100.00")],
        **kwargs,
    )
    return plan, invoice


def pay(invoice, amount, on=ON):
    payment = services.record_payment(
        amount=amount, currency=invoice.currency, received_on=on, customer=invoice.customer
    )
    return services.allocate(payment=payment, invoice=invoice, amount=amount, on=on)


def installments(plan):
    return list(plan.installments.values_list("sequence", "paid_amount", "status", "paid_on"))


def test_a_plan_under_the_threshold_is_active_at_once_and_logged(customer, agent):
    plan, invoice = three_hundreds(customer, by=agent, note="salary on the 1st")
    assert plan.status == PaymentPlan.Status.ACTIVE and plan.approved_at is not None
    assert (plan.total_amount, plan.currency, plan.grace_days) == (Decimal("300.00"), "USD", 5)
    assert [(i.sequence, i.due_on, i.amount) for i in plan.installments.all()] == [
        (1, days(7), Decimal("100.00")),
        (2, days(37), Decimal("100.00")),
        (3, days(67), Decimal("100.00")),
    ]
    entry = Activity.objects.get(kind=Activity.Kind.PAYMENT_PLAN)
    assert entry.actor == agent and entry.invoice == invoice
    assert f"Payment plan #{plan.pk}: USD 300.00 in 3 installment(s)" in entry.text
    assert "active at once" in entry.text and "salary on the 1st" in entry.text
    customer.refresh_from_db()
    assert not customer.is_in_payment_plan  # the hold is on the plan's invoices only


@pytest.mark.parametrize(
    ("total", "expected"),
    [("5000.00", PaymentPlan.Status.ACTIVE), ("5000.01", PaymentPlan.Status.PROPOSED)],
)
def test_plans_above_the_threshold_wait_for_approval(customer, total, expected):
    invoice = InvoiceFactory(customer=customer, amount=Decimal(total))
    plan = propose(customer, [invoice], [(days(10), total)])
    assert plan.status == expected
    text = Activity.objects.get(kind=Activity.Kind.PAYMENT_PLAN).text
    assert ("waits for a manager's approval" in text) == (expected == "proposed")


def test_a_manager_approves_an_agent_cannot(customer, agent, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("6000.00"))
    plan = propose(customer, [invoice], [(days(10), "3000.00"), (days(40), "3000.00")], by=agent)
    assert plan.status == PaymentPlan.Status.PROPOSED
    with pytest.raises(PermissionDenied):
        plans.approve_plan(plan=plan, by=agent)
    plans.approve_plan(plan=plan, by=manager, note="customer's best offer")
    plan.refresh_from_db()
    assert (plan.status, plan.approved_by) == (PaymentPlan.Status.ACTIVE, manager)
    entry = Activity.objects.filter(kind=Activity.Kind.PAYMENT_PLAN).first()
    assert entry.actor == manager and "approved: customer's best offer" in entry.text
    with pytest.raises(ValidationError, match="not awaiting approval"):
        plans.approve_plan(plan=plan, by=manager)


def test_rejecting_needs_a_reason_and_releases_the_invoices(customer, agent, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("6000.00"), due_on=ON)
    plan = propose(customer, [invoice], [(days(10), "6000.00")], by=agent)
    with pytest.raises(PermissionDenied):
        plans.reject_plan(plan=plan, by=agent, reason="no")
    with pytest.raises(ValidationError) as refused:
        plans.reject_plan(plan=plan, by=manager, reason=" ")
    assert "reason" in refused.value.message_dict
    plans.reject_plan(plan=plan, by=manager, reason="too long for this balance")
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.REJECTED and plan.closed_at
    assert "rejected: too long for this balance" in Activity.objects.first().text
    planner.plan(on=ON)
    assert Notice.objects.filter(customer=customer, lines__invoice=invoice).exists()


def test_each_wrong_input_is_named(customer):
    a = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    euros = InvoiceFactory(customer=customer, currency="EUR")
    disputed = InvoiceFactory(customer=customer, status="disputed")
    cases = [
        ([a], [(days(1), "60.00"), (days(2), "30.00")], "add up to USD 90.00 but"),
        ([a], [(days(2), "50.00"), (days(1), "50.00")], "must ascend"),
        ([a], [(days(1), "50.00"), (days(1), "50.00")], "must ascend"),
        ([a], [(days(-1), "50.00"), (days(1), "50.00")], "in the past"),
        ([a], [(days(1), "0.00"), (days(2), "100.00")], "more than zero"),
        ([a], [], "at least one installment"),
        ([a, euros], [(days(1), "200.00")], "one currency"),
        ([disputed], [(days(1), "100.00")], "is disputed"),
    ]
    for invoices, rows, message in cases:
        with pytest.raises(ValidationError) as refused:
            propose(customer, invoices, rows)
        assert message in str(refused.value.message_dict), (rows, refused.value)
    assert not PaymentPlan.objects.exists()


def test_an_invoice_is_in_one_holding_plan_at_a_time(customer, manager):
    plan, invoice = three_hundreds(customer)
    with pytest.raises(ValidationError, match=f"already in payment plan #{plan.pk}"):
        propose(customer, [invoice], [(days(3), "300.00")])


def test_an_agent_proposes_only_for_own_and_unassigned_customers(agent):
    theirs = CustomerFactory(assigned_agent=UserFactory(username="x", role="Collections agent"))
    invoice = InvoiceFactory(customer=theirs)
    with pytest.raises(PermissionDenied):
        propose(theirs, [invoice], [(days(3), "100.00")], by=agent)


def on_the_day(clock, day: dt.date) -> None:
    """Payments are received on or before today: move the clock to the day money arrives."""
    clock.move_to(dt.datetime.combine(day, dt.time(16), tzinfo=dt.UTC))


def test_payments_fill_installments_in_order_and_complete_the_plan(customer, clock):
    plan, invoice = three_hundreds(customer)
    on_the_day(clock, days(6))
    pay(invoice, "150.00", on=days(6))
    assert installments(plan) == [
        (1, Decimal("100.00"), "paid", days(6)),
        (2, Decimal("50.00"), "pending", None),
        (3, Decimal("0.00"), "pending", None),
    ]
    texts = list(Activity.objects.filter(kind="payment_plan").values_list("text", flat=True))
    assert f"Installment 1 of 3 of plan #{plan.pk} paid: USD 100.00" in texts
    on_the_day(clock, days(30))
    pay(invoice, "150.00", on=days(30))
    assert [row[2] for row in installments(plan)] == ["paid", "paid", "paid"]
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.COMPLETED and plan.closed_at
    assert Activity.objects.filter(text__contains="completed: every installment paid").exists()


def test_reconciliation_booking_fills_installments(customer):
    plan, invoice = three_hundreds(customer)
    [payment] = services.record_payments(
        [{"amount": "200.00", "currency": "USD", "received_on": ON, "customer": customer}]
    )
    assert services.allocate_many(
        [(payment.pk, [(invoice.pk, Decimal("200.00"))])], rule="invoice_number", on=days(2)
    ) == [""]
    assert [row[2] for row in installments(plan)] == ["paid", "paid", "pending"]


def test_a_missed_installment_breaks_the_plan_after_the_grace(customer, agent):
    plan, invoice = three_hundreds(customer, grace_days=5)  # first due days(7)
    pay(invoice, "60.00")  # partly paid is still missed
    assert plans.detect_missed_installments(today=days(12)) == []  # the 5th day of grace
    assert plans.detect_missed_installments(today=days(13)) == [plan.pk]
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.BROKEN and plan.closed_at
    assert installments(plan)[0][2] == "missed" and installments(plan)[1][2] == "pending"
    task = Task.objects.get(source=f"plan:{plan.pk}:missed")
    assert (task.kind, task.assignee, task.due_at.date()) == (Task.Kind.CALL, agent, days(13))
    entry = Activity.objects.filter(kind=Activity.Kind.PAYMENT_PLAN).first()
    assert f"Payment plan #{plan.pk} broken: installment 1 (USD 100.00 due 2026-11-30" in entry.text
    assert "60.00 paid" in entry.text and "dunning resumes" in entry.text
    assert plans.detect_missed_installments(today=days(14)) == []
    assert Task.objects.filter(source__startswith="plan:").count() == 1


def test_a_plan_paid_in_time_is_not_broken(customer):
    plan, invoice = three_hundreds(customer)
    pay(invoice, "100.00")
    assert plans.detect_missed_installments(today=days(40)) == []
    assert plans.detect_missed_installments(today=days(43)) == [plan.pk]  # the 2nd, past grace


def test_a_plan_holds_dunning_for_its_invoices_until_it_breaks(customer):
    """Both invoices reach the due-date step today; the plan's waits until the plan breaks."""
    in_plan = InvoiceFactory(customer=customer, number="IN-PLAN", due_on=ON)
    InvoiceFactory(customer=customer, number="OUTSIDE", due_on=ON)
    plan = propose(customer, [in_plan], [(ON, "100.00")], grace_days=0)

    def noticed(on):
        planner.plan(on=on)
        return set(
            Notice.objects.filter(
                customer=customer, planned_on=on, installment__isnull=True
            ).values_list("lines__invoice__number", flat=True)
        )

    assert noticed(ON) == {"OUTSIDE"}
    assert plans.detect_missed_installments(today=days(1)) == [plan.pk]
    assert noticed(days(1)) == {"IN-PLAN"}  # the due-date step, caught up


def test_monthly_installments_split_a_total_exactly():
    rows = plans.monthly_installments(
        total=Decimal("1000.00"), count=3, first_due_on=dt.date(2027, 1, 31)
    )
    assert rows == [
        (dt.date(2027, 1, 31), Decimal("333.33")),
        (dt.date(2027, 2, 28), Decimal("333.33")),
        (dt.date(2027, 3, 31), Decimal("333.34")),
    ]


def test_an_agent_proposes_a_plan_from_the_customer_page(client, customer, agent):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("900.00"))
    url = reverse("admin:cases_paymentplan_propose", args=[customer.pk])
    client.force_login(agent)
    assert client.get(url).status_code == 200
    form = {
        "apply": "1",
        "invoices": [invoice.pk],
        "installments-TOTAL_FORMS": "12",
        "installments-INITIAL_FORMS": "0",
    }
    wrong = client.post(
        url, {**form, "installments-0-due_on": days(5).isoformat(), "installments-0-amount": "800"}
    )
    assert wrong.status_code == 200 and "must match exactly" in wrong.content.decode()
    done = client.post(
        url, {**form, "split_count": "3", "first_due_on": days(5).isoformat(), "note": "3 months"}
    )
    assert done.status_code == 302
    plan = PaymentPlan.objects.get()
    assert (plan.status, plan.proposed_by, plan.installments.count()) == ("active", agent, 3)


def test_a_manager_approves_from_the_list_and_an_agent_cannot(client, customer, agent, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("7000.00"))
    plan = propose(customer, [invoice], [(days(5), "7000.00")], by=agent)
    changelist = reverse("admin:cases_paymentplan_changelist")
    client.force_login(agent)
    assert client.get(reverse("admin:cases_paymentplan_approve", args=[plan.pk])).status_code == 403
    client.post(changelist, {"action": "approve", "_selected_action": [plan.pk]})
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.PROPOSED
    client.force_login(manager)
    assert client.get(changelist).status_code == 200
    client.post(changelist, {"action": "approve", "_selected_action": [plan.pk]})
    plan.refresh_from_db()
    assert (plan.status, plan.approved_by) == (PaymentPlan.Status.ACTIVE, manager)


def test_the_plan_page_shows_its_installments_and_the_decision_buttons(client, customer, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("8000.00"))
    plan = propose(customer, [invoice], [(days(5), "4000.00"), (days(35), "4000.00")])
    client.force_login(manager)
    listing = client.get(reverse("admin:cases_paymentplan_changelist"), {"status": "proposed"})
    assert listing.status_code == 200 and "0 / 2" in listing.content.decode()
    page = client.get(reverse("admin:cases_paymentplan_change", args=[plan.pk])).content.decode()
    assert reverse("admin:cases_paymentplan_approve", args=[plan.pk]) in page
    assert "4000.00" in page
    reject = reverse("admin:cases_paymentplan_reject", args=[plan.pk])
    assert client.post(reject, {"apply": "1", "reason": "ask for a deposit"}).status_code == 302
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.REJECTED


def test_cancelling_an_active_plan_stops_reminders_and_resumes_dunning(customer, agent):
    invoice = InvoiceFactory(customer=customer, number="CX-1", amount=Decimal("300.00"), due_on=ON)
    plan = propose(customer, [invoice], [(days(3), "100.00"), (days(33), "200.00")], by=agent)
    assert plan.status == PaymentPlan.Status.ACTIVE
    planner.plan(on=ON)
    assert not Notice.objects.filter(lines__invoice=invoice).exists()  # held by the plan
    with pytest.raises(ValidationError) as refused:
        plans.cancel_plan(plan=plan, by=agent, reason="  ")
    assert "reason" in refused.value.message_dict
    plans.cancel_plan(plan=plan, by=agent, reason="Customer will pay in full")
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.CANCELLED and plan.closed_at
    entry = Activity.objects.filter(kind=Activity.Kind.PAYMENT_PLAN).first()
    assert entry.actor == agent
    assert "cancelled (2 installment(s) unpaid): Customer will pay in full" in entry.text
    # The reminder planned while the plan was active is not sent, none is planned again,
    # the installment is never "missed", and dunning is back.
    # (Nor is the plan's offer, planned when the agent proposed it: dunning/offers.py.)
    [reminder] = Notice.objects.filter(installment__plan=plan, step__policy__purpose="installments")
    [offer] = Notice.objects.filter(installment__plan=plan, step__policy__purpose="plan_offer")
    assert sender.send_due(now=MONDAY_10AM).cancelled == 2
    reminder.refresh_from_db()
    assert reminder.status == Notice.Status.CANCELLED and "plan cancelled" in reminder.reason
    offer.refresh_from_db()
    assert offer.status == Notice.Status.CANCELLED and "plan cancelled" in offer.reason
    assert not mail.outbox
    assert plans.detect_missed_installments(today=days(60)) == []
    planner.plan(on=ON)
    assert Notice.objects.filter(lines__invoice=invoice).exists()
    assert Notice.objects.filter(installment__plan=plan).count() == 2
    with pytest.raises(ValidationError, match="only a proposed or active plan"):
        plans.cancel_plan(plan=plan, by=agent, reason="again")


def test_only_whoever_may_work_the_customer_cancels(customer, agent, finance):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("300.00"), due_on=ON)
    plan = propose(customer, [invoice], [(days(3), "300.00")], by=agent)
    other_agent = UserFactory(username="other-agent", role="Collections agent")
    with pytest.raises(PermissionDenied):
        plans.cancel_plan(plan=plan, by=other_agent, reason="not mine")
    with pytest.raises(PermissionDenied):
        plans.cancel_plan(plan=plan, by=finance, reason="no")


def test_an_agent_cancels_from_the_plan_page(client, customer, agent):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("6000.00"), due_on=ON)
    plan = propose(customer, [invoice], [(days(10), "6000.00")], by=agent)
    client.force_login(agent)
    page = client.get(reverse("admin:cases_paymentplan_change", args=[plan.pk]))
    url = reverse("admin:cases_paymentplan_cancel", args=[plan.pk])
    assert url in page.content.decode()
    assert client.post(url, {"apply": "1", "reason": ""}).status_code == 200
    done = client.post(url, {"apply": "1", "reason": "Set up on the wrong invoice"})
    assert done.status_code == 302
    plan.refresh_from_db()
    assert plan.status == PaymentPlan.Status.CANCELLED
    # From the list, for several at once (nothing left to cancel here).
    changelist = reverse("admin:cases_paymentplan_changelist")
    response = client.post(
        changelist,
        {"action": "cancel_plans", "_selected_action": [plan.pk], "apply": "1", "reason": "x"},
    )
    assert response.status_code == 302


@pytest.mark.parametrize("decision", ["approve", "reject", "cancel"])
def test_a_proposed_plan_raises_one_approval_task_closed_by_the_decision(
    customer, agent, manager, decision
):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("6000.00"), due_on=ON)
    small = InvoiceFactory(customer=customer, amount=Decimal("100.00"), due_on=ON)
    propose(customer, [small], [(days(10), "100.00")], by=agent)  # active at once: no task
    plan = propose(customer, [invoice], [(days(10), "6000.00")], by=agent)
    [task] = Task.objects.filter(kind=Task.Kind.APPROVAL)
    assert task.assignee is None and task.status == "open"  # the managers' queue
    assert task.title == f"Approve or reject payment plan #{plan.pk}: USD 6000.00"
    if decision == "approve":
        plans.approve_plan(plan=plan, by=manager)
    elif decision == "reject":
        plans.reject_plan(plan=plan, by=manager, reason="too long")
    else:
        plans.cancel_plan(plan=plan, by=agent, reason="customer pays in full")
    task.refresh_from_db()
    expected = {"approve": "done", "reject": "done", "cancel": "cancelled"}[decision]
    assert task.status == expected
