"""A manager's round in a real browser: the second factor, a plan approved, a notice edited
then approved, the aging report downloaded as a PDF."""

import datetime as dt
from decimal import Decimal

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from cases import plans
from cases.models import PaymentPlan
from dunning import planner
from dunning.models import Notice, Step
from tests.browser import selectors as s
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def _dunning_settings(browser_settings):
    browser_settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    browser_settings.DUNNING_HIGH_VALUE_THRESHOLD = "1000"  # the +7 e-mail waits for a manager


def proposed_plan(agent) -> PaymentPlan:
    """A plan over the approval threshold, proposed by an agent: it waits for a manager."""
    customer = CustomerFactory(name="Nordwind Logistik AG", assigned_agent=agent)
    invoice = InvoiceFactory(customer=customer, number="PLAN-7000", amount=Decimal("7000.00"))
    return plans.propose_plan(
        customer=customer,
        invoices=[invoice],
        installments=[
            (ON + dt.timedelta(days=5), Decimal("3500.00")),
            (ON + dt.timedelta(days=35), Decimal("3500.00")),
        ],
        by=agent,
        today=ON,
    )


def notice_awaiting_approval() -> Notice:
    """The +7 e-mail of a high-value customer, planned by tonight's run: it waits too."""
    Step.objects.filter(template__name="firm-overdue", channel="email").update(
        approval=Step.Approval.HIGH_VALUE
    )
    customer = CustomerFactory(name="Acme Supplies Inc")
    ContactFactory(customer=customer, name="Dana", email="dana@acme.example", is_primary=True)
    InvoiceFactory(
        customer=customer,
        number="HV-1",
        due_on=ON - dt.timedelta(days=7),
        amount=Decimal("1500.00"),
    )
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer).exclude(channel="email").delete()
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == Notice.Status.AWAITING_APPROVAL
    return notice


def test_manager_approves_a_plan_edits_and_approves_a_notice_and_downloads_the_aging_pdf(
    console,
):
    agent = UserFactory(username="agent", role="Collections agent")
    manager = UserFactory(username="manager", role="Collections manager")
    device = TOTPDevice.objects.create(user=manager, name="default", confirmed=True)
    plan = proposed_plan(agent)
    notice = notice_awaiting_approval()

    console.log_in(manager, device)  # the password, then the authenticator's code

    console.visit(s.PLANS_PROPOSED_URL)
    console.shot("manager-plans-proposed")
    console.click(s.LINK_TO_PLAN, id=plan.pk)
    console.click(s.LINK_APPROVE_PLAN, id=plan.pk)
    console.submit()
    assert console.has(s.MESSAGE_DONE), console.text[:500]
    plan.refresh_from_db()
    assert (plan.status, plan.approved_by) == (PaymentPlan.Status.ACTIVE, manager)

    console.visit(s.NOTICES_AWAITING_URL)
    console.shot("manager-notices-awaiting-approval")
    console.click(s.LINK_EDIT_NOTICE, id=notice.pk)
    console.fill(
        **{
            s.NOTICE_SUBJECT: "Invoice HV-1: as agreed on the phone",
            s.NOTICE_BODY: "Dear Dana,\n\nAs agreed, please pay HV-1 by Friday.\n\nKind regards",
            s.NOTICE_REASON: "Friendlier after the call",
        }
    )
    console.shot("manager-notice-edit")
    console.submit(s.NOTICE_SAVE_AND_APPROVE)
    assert not console.has(s.ERRORS), console.text[:800]
    notice.refresh_from_db()
    assert notice.status == Notice.Status.APPROVED
    assert notice.subject == "Invoice HV-1: as agreed on the phone"

    console.visit(s.AGING_URL)
    console.shot("manager-aging")
    pdf_link = next(
        link
        for link in console.driver.find_elements("css selector", s.AGING_DOWNLOADS)
        if link.text.strip() == s.AGING_PDF_LABEL
    )
    pdf_link.click()
    pdf = console.wait_for_download(".pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    console.check()
