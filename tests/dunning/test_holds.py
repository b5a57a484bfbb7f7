"""Invoice-level holds: a promise to pay, a payment plan and a dispute hold only their invoices."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest

from cases.models import Dispute, PaymentPlan, PromiseToPay
from dunning import planner, sender
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)
WEEK_LATE = ON - dt.timedelta(days=7)


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def customer():
    customer = CustomerFactory(timezone="America/Chicago")
    ContactFactory(customer=customer, email="ap@acme.example", is_primary=True)
    return customer


def late(customer, number):
    return InvoiceFactory(customer=customer, number=number, due_on=WEEK_LATE)


def promise(customer, invoices, *, holds_until, status=PromiseToPay.Status.OPEN):
    made = PromiseToPay.objects.create(
        customer=customer,
        amount=Decimal("100.00"),
        currency="USD",
        promised_on=holds_until - dt.timedelta(days=3),
        holds_until=holds_until,
        status=status,
    )
    made.invoices.set(invoices)
    return made


def noticed(customer) -> set[str]:
    return set(
        Notice.objects.filter(customer=customer, channel="email").values_list(
            "lines__invoice__number", flat=True
        )
    )


def test_open_promise_holds_its_invoices_until_the_grace_ends(customer):
    held, chased = late(customer, "HELD"), late(customer, "CHASED")
    promise(customer, [held], holds_until=ON)
    planner.plan(on=ON)
    assert noticed(customer) == {"CHASED"}
    Notice.objects.all().delete()
    promise(customer, [chased], holds_until=ON - dt.timedelta(days=1))  # ended yesterday
    planner.plan(on=ON)
    assert noticed(customer) == {"CHASED"}


def test_kept_or_broken_promise_does_not_hold(customer):
    invoice = late(customer, "INV-1")
    promise(customer, [invoice], holds_until=ON, status=PromiseToPay.Status.BROKEN)
    planner.plan(on=ON)
    assert noticed(customer) == {"INV-1"}


@pytest.mark.parametrize(
    ("status", "is_held"),
    [("proposed", True), ("active", True), ("broken", False), ("completed", False)],
)
def test_payment_plan_holds_its_invoices_while_proposed_or_active(customer, status, is_held):
    in_plan = late(customer, "IN-PLAN")
    late(customer, "OTHER")
    plan = PaymentPlan.objects.create(
        customer=customer, currency="USD", total_amount=Decimal("100.00"), status=status
    )
    plan.invoices.set([in_plan])
    planner.plan(on=ON)
    assert noticed(customer) == ({"OTHER"} if is_held else {"IN-PLAN", "OTHER"})


def test_active_dispute_holds_only_the_disputed_invoice(customer):
    disputed = late(customer, "DISPUTED")
    late(customer, "OTHER")
    dispute = Dispute.objects.create(customer=customer, reason=Dispute.Reason.QUALITY)
    dispute.invoices.set([disputed])
    planner.plan(on=ON)
    assert noticed(customer) == {"OTHER"}
    Dispute.objects.filter(pk=dispute.pk).update(status=Dispute.Status.RESOLVED_US)
    planner.plan(on=ON)
    assert noticed(customer) == {"DISPUTED", "OTHER"}


def test_promise_made_after_planning_defers_the_notice_until_the_hold_ends(customer):
    invoice = late(customer, "INV-1")
    planner.plan(on=ON)
    promise(customer, [invoice], holds_until=ON + dt.timedelta(days=4))
    assert sender.send_due(now=MONDAY_10AM).deferred >= 1
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == "deferred"
    assert notice.not_before_at == dt.datetime(2026, 11, 28, 8, 0, tzinfo=CHICAGO)
    assert "promise to pay" in notice.reason


def test_dispute_opened_after_planning_sends_the_rest_and_leaves_the_disputed_invoice_out(
    customer,
):
    disputed = late(customer, "DISPUTED")
    late(customer, "OTHER")
    planner.plan(on=ON)
    dispute = Dispute.objects.create(customer=customer, reason=Dispute.Reason.PRICING)
    dispute.invoices.set([disputed])
    sender.send_due(now=MONDAY_10AM)
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == "sent"
    assert "OTHER" in notice.body_text and "DISPUTED" not in notice.body_text


def test_plan_made_after_planning_defers_a_notice_with_only_plan_invoices_to_tomorrow(customer):
    invoice = late(customer, "INV-1")
    planner.plan(on=ON)
    plan = PaymentPlan.objects.create(
        customer=customer, currency="USD", total_amount=Decimal("100.00"), status="active"
    )
    plan.invoices.set([invoice])
    sender.send_due(now=MONDAY_10AM)
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == "deferred"
    assert notice.not_before_at == dt.datetime(2026, 11, 24, 8, 0, tzinfo=CHICAGO)
    assert "payment plan" in notice.reason
