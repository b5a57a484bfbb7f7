"""A debtor's visit in a real browser: from the dunning e-mail's link to the portal.

A dunning notice goes out through the one sender into the local outbox; the debtor opens
the portal link in its text, pays part of the balance by bank transfer, and each step
shows on the agent's timeline and worklist. Every portal page the debtor sees is checked
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
from selenium.webdriver.support.ui import Select

from accounts.models import Activity, Customer
from cases.models import Task
from cases.worklist import worklist
from dunning import planner, sender
from dunning.models import OutboxMessage
from tests.clock import NOW, ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

AXE = resources.files("selenium_axe_python").joinpath("axe-core", "axe.min.js").read_text()
PHONE = (390, 844)
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


def test_a_debtor_follows_the_dunning_emails_link_and_pays_part_by_transfer(console, settings):
    settings.EMAIL_BACKEND = "dunning.outbox.OutboxEmailBackend"
    settings.STRIPE_API_KEY = ""
    settings.SITE_URL = console.base_url
    settings.BANK_TRANSFER_IBAN = "DE89370400440532013000"

    agent = UserFactory(username="agent", role="Collections agent")
    customer = CustomerFactory(
        name="Harbour Freight GmbH", kind=Customer.Kind.BUSINESS, assigned_agent=agent
    )
    ContactFactory(
        customer=customer, name="Dana Weber", email="ap@harbour.example", is_primary=True
    )
    first = InvoiceFactory(
        customer=customer,
        number="INV-D-1",
        amount=Decimal("800.00"),
        currency="USD",
        issued_on=ON - dt.timedelta(days=37),
        due_on=ON - dt.timedelta(days=7),
    )
    InvoiceFactory(
        customer=customer,
        number="INV-D-2",
        amount=Decimal("450.00"),
        currency="USD",
        issued_on=ON - dt.timedelta(days=30),
        due_on=ON - dt.timedelta(days=7),
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
    assert re.search(r"USD 1,?250\.00", console.find("#balances").text), console.text
    assert portal_moves(customer, "visit").filter(details__via="link").exists()
    assert_accessible(console)
    assert_fits_a_phone(console)

    # Pay part of the balance by bank transfer, saying why.
    console.click("#pay-now")
    assert console.path == "/portal/pay/"
    assert_accessible(console)
    console.find(f"#pay-form input[name=invoices][value='{first.pk}']").click()
    console.fill(amount="300.00")
    Select(console.field("reason")).select_by_value("cash_flow")
    console.fill(note="The rest at the end of the month.")
    console.click("#pay-transfer")
    reference = console.find("#transfer-reference").text
    assert reference and "USD 300.00" in console.find("#transfer-amount").text
    assert_accessible(console)

    paid = portal_moves(customer, "pay").get()
    assert paid.details["amount"] == "300.00" and paid.details["partial"] is True
    assert paid.details["invoice_ids"] == [first.pk] and paid.details["reason"] == "cash_flow"
    task = Task.objects.open().get(customer=customer, title__startswith="Partial payment")
    assert task.assignee == agent
    row = on_the_worklist(agent, customer)
    assert row is not None and row.debtor_activity == paid

    console.click("#logout")
    assert console.path == "/portal/"
