"""A debtor's visit in a real browser: from the dunning e-mail's link to the portal.

A dunning notice goes out through the one sender into the local outbox; the debtor opens
the portal link in its text, pays part of the balance by bank transfer, promises a date,
disputes an invoice, asks for a payment plan, switches the portal to German, and answers
the e-mail (through the console's "reply as the debtor" on the kept outbox message). Each
step shows on the agent's timeline and, where a person must act, as the agent's task on
the worklist. Every portal page the debtor sees is checked
with axe-core (no serious or critical violation), and one page at a phone's width.

axe-core comes from the pinned PyPI package selenium-axe-python (requirements.txt), which
ships axe.min.js (MPL-2.0); it is injected into the page and run there.
"""

import datetime as dt
import json
import re
from decimal import Decimal
from importlib import resources

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from selenium.webdriver.support.ui import Select

from accounts.models import Activity, Customer
from cases.models import Dispute, PaymentPlan, PromiseToPay, Task
from cases.worklist import worklist
from dunning import planner, sender
from dunning.models import OutboxMessage
from integrations.models import InboundEmail
from tests.browser import selectors as s
from tests.clock import NOW, ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

AXE = resources.files("selenium_axe_python").joinpath("axe-core", "axe.min.js").read_text()
PHONE = (390, 844)
OUTBOX_MESSAGE_URL = "/admin/dunning/outboxmessage/{id}/change/"
LINK = re.compile(r"https?://\S+?/portal/l/[^/\s]+/")


def axe_problems(console) -> list[str]:
    """Run axe-core on the page shown; its serious and critical violations, one line each."""
    driver = console.driver
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then("
        "  r => done(JSON.stringify({violations: r.violations, passed: r.passes.length})),"
        "  e => done(JSON.stringify({error: String(e)})));"
    )
    result = json.loads(result)
    assert "error" not in result, f"axe-core failed on {console.path}: {result['error']}"
    assert result["passed"] > 10, f"axe-core checked next to nothing on {console.path}"
    return [
        f"{violation['impact']} {violation['id']}: {violation['help']} "
        f"at {[node['target'] for node in violation['nodes']]}"
        for violation in result["violations"]
        if violation["impact"] in ("serious", "critical")
    ]


def assert_accessible(console) -> None:
    problems = axe_problems(console)
    assert not problems, f"axe-core on {console.path}:\n" + "\n".join(problems)


def assert_fits_a_phone(console) -> None:
    """At a phone's size the page scrolls only vertically."""
    driver = console.driver
    size = driver.get_window_size()
    driver.set_window_size(*PHONE)
    try:
        driver.refresh()
        console.wait_ready()
        inner, scroll = driver.execute_script(
            "return [window.innerWidth, document.documentElement.scrollWidth]"
        )
        assert inner <= PHONE[0], f"the window did not shrink to a phone's width: {inner}"
        assert scroll <= inner, f"{console.path} scrolls sideways on a phone: {scroll} > {inner}"
        assert_accessible(console)
    finally:
        driver.set_window_size(size["width"], size["height"])


def portal_moves(customer, action: str):
    return Activity.objects.filter(
        customer=customer, channel=Activity.Channel.PORTAL, details__action=action
    )


def on_the_worklist(agent, customer):
    """The customer's row on the agent's worklist (None when it is not there)."""
    rows = worklist(viewer=agent, now=timezone.now()).rows  # the clock ticks on from NOW
    return next((row for row in rows if row.customer_id == customer.pk), None)


def test_a_debtor_goes_from_the_dunning_email_to_the_portal_and_acts_there(
    console, settings, tmp_path
):
    settings.EMAIL_BACKEND = "dunning.outbox.OutboxEmailBackend"
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STRIPE_API_KEY = ""
    settings.SITE_URL = console.base_url
    settings.BANK_TRANSFER_IBAN = "DE89370400440532013000"

    agent = UserFactory(username="agent", role="Collections agent")
    customer = CustomerFactory(
        name="Harbour Freight GmbH",
        kind=Customer.Kind.BUSINESS,
        assigned_agent=agent,
        language="en",
    )
    ContactFactory(
        customer=customer, name="Dana Weber", email="ap@harbour.example", is_primary=True
    )
    paying, promised, planned = (
        InvoiceFactory(
            customer=customer,
            number=number,
            amount=Decimal(amount),
            currency="USD",
            issued_on=ON - dt.timedelta(days=37),
            due_on=ON - dt.timedelta(days=7),
        )
        for number, amount in (("INV-D-1", "800.00"), ("INV-D-2", "450.00"), ("INV-D-3", "900.00"))
    )

    # The nightly planner and the sender, as in production: the e-mail lands in the outbox.
    planner.plan(on=ON)
    assert sender.send_due(now=NOW).sent >= 1
    email = OutboxMessage.objects.get(channel="email", recipient="ap@harbour.example")
    assert "INV-D-1" in email.body_text
    link = LINK.search(email.body_text)
    assert link, f"no portal link in the e-mail:\n{email.body_text}"

    # The debtor opens the link: logged in, on their account's overview.
    console.visit(link.group(0).removeprefix(console.base_url))
    assert console.path == "/portal/home/"
    assert "Account of Harbour Freight GmbH" in console.text
    assert re.search(r"USD 2,?150\.00", console.find("#balances").text), console.text
    assert portal_moves(customer, "visit").filter(details__via="link").exists()
    assert_accessible(console)
    assert_fits_a_phone(console)

    # 1. Pay part of one invoice by bank transfer, saying why.
    console.click("#pay-now")
    assert console.path == "/portal/pay/"
    assert_accessible(console)
    console.find(f"#pay-form input[name=invoices][value='{paying.pk}']").click()
    console.fill(amount="300.00")
    Select(console.field("reason")).select_by_value("cash_flow")
    console.fill(note="The rest at the end of the month.")
    console.click("#pay-transfer")
    assert console.find("#transfer-reference").text
    assert "USD 300.00" in console.find("#transfer-amount").text
    assert_accessible(console)
    paid = portal_moves(customer, "pay").get()
    assert paid.details["amount"] == "300.00" and paid.details["partial"] is True
    assert paid.details["invoice_ids"] == [paying.pk] and paid.details["reason"] == "cash_flow"
    partial_task = Task.objects.open().get(customer=customer, title__startswith="Partial payment")
    assert partial_task.assignee == agent
    assert on_the_worklist(agent, customer).debtor_activity == paid

    # 2. Promise to pay the second invoice in ten days.
    console.click("#nav-promise")
    assert_accessible(console)
    console.find(f"#promise-form #id_invoices_{promised.pk}").click()
    console.fill(amount="450.00")
    console.set("promised_on", ON + dt.timedelta(days=10))
    console.click("#promise-submit")
    assert console.has("#portal-message-1"), console.text[:800]
    assert_accessible(console)
    promise = PromiseToPay.objects.get(customer=customer)
    assert promise.amount == Decimal("450.00") and promise.promised_on == ON + dt.timedelta(days=10)
    assert list(promise.invoices.all()) == [promised]
    assert Activity.objects.filter(customer=customer, kind=Activity.Kind.PROMISE).exists()

    # 3. Dispute the first invoice, with a delivery note attached.
    note = tmp_path / "delivery-note.txt"
    note.write_text("Delivered 3 pallets, invoiced 4.\n")
    console.click("#nav-dispute")
    assert_accessible(console)
    console.find(f"#dispute-form #id_invoices_{paying.pk}").click()
    Select(console.field("reason")).select_by_value(Dispute.Reason.QUANTITY)
    console.fill(message="We received three pallets, not four.")
    console.set("attachments", note)
    console.click("#dispute-submit")
    assert console.has("#portal-message-1"), console.text[:800]
    assert_accessible(console)
    dispute = Dispute.objects.get(customer=customer)
    assert dispute.reason == Dispute.Reason.QUANTITY and list(dispute.invoices.all()) == [paying]
    assert portal_moves(customer, "dispute").exists()
    assert Task.objects.open().filter(customer=customer, assignee=agent, title__contains="dispute")

    # 4. Ask for a plan for the third: three installments fit the rules, accepted at once.
    console.click("#nav-plan")
    assert_accessible(console)
    console.find(f"#plan-form #id_invoices_{planned.pk}").click()
    console.fill(installments=3)
    console.set("first_due_on", ON + dt.timedelta(days=14))
    console.click("#plan-submit")
    assert console.has("#portal-message-1"), console.text[:800]
    assert_accessible(console)
    plan = PaymentPlan.objects.get(customer=customer)
    assert plan.status == PaymentPlan.Status.ACTIVE and plan.installments.count() == 3
    assert portal_moves(customer, "plan").exists()

    # 5. Switch the portal to German: the next page is in German.
    console.click("#nav-preferences")
    assert_accessible(console)
    Select(console.field("language")).select_by_value("de")
    console.click("#preferences-submit")
    assert console.find("html").get_attribute("lang") == "de"
    assert "Ihre Einstellungen sind gespeichert." in console.text
    assert_accessible(console)
    customer.refresh_from_db()
    assert customer.language == "de"
    assert portal_moves(customer, "preferences").filter(details__language="de").exists()
    console.click("header nav a[href='/portal/home/']")
    assert "Konto von Harbour Freight GmbH" in console.text
    assert_accessible(console)
    # The other pages of the menu, in German too, pass axe-core as well.
    for path in ("/portal/invoices/", "/portal/statement/", "/portal/message/", "/portal/autopay/"):
        console.click(f"header nav a[href='{path}']")
        assert console.find("html").get_attribute("lang") == "de"
        assert_accessible(console)
    console.click("#logout")
    assert console.path == "/portal/"
    assert_accessible(console)  # the sign-in page

    # 6. Answer the dunning e-mail: the console's "reply as the debtor" on the kept message.
    admin = UserFactory(username="admin", is_superuser=True)
    device = TOTPDevice.objects.create(user=admin, name="default", confirmed=True)
    console.log_in(admin, device)
    console.visit(OUTBOX_MESSAGE_URL.format(id=email.pk))
    console.find("#id_reply_text").send_keys("Dana here: the rest follows on the 15th.")
    console.click("#outbox-reply-submit")
    assert console.has(s.MESSAGE_DONE), console.text[:800]
    reply = InboundEmail.objects.get(customer=customer)
    assert reply.notice_id is not None and reply.task is not None
    assert reply.task.assignee == agent
    answered = Activity.objects.get(customer=customer, kind=Activity.Kind.REPLY)

    # The agent's worklist: the customer, with the debtor's latest move (the reply) under
    # the name, and the open tasks the portal and the reply raised.
    row = on_the_worklist(agent, customer)
    assert row is not None and row.debtor_activity == answered
    open_tasks = set(Task.objects.open().filter(customer=customer, assignee=agent))
    assert {partial_task, reply.task} <= open_tasks and len(open_tasks) >= 3
    # ... as the console shows it (a superuser looks at the agent's list and the customer).
    console.visit(s.WORKLIST_URL + f"?agent={agent.pk}")
    assert "Harbour Freight GmbH" in console.text
    assert "Dana here: the rest follows on the 15th." in console.find(".debtor-activity").text
    console.visit(s.CUSTOMER_URL.format(id=customer.pk))
    for entry in (
        paid,
        answered,
        *portal_moves(customer, "dispute"),
        *portal_moves(customer, "plan"),
    ):
        assert entry.text[:60] in console.text, entry.text
