"""An agent's day in a real browser: log in, work the worklist, log a call, record a promise."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import Activity
from cases.models import PromiseToPay
from tests.browser import selectors as s
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_agent_works_the_worklist_logs_a_call_and_records_a_promise(console):
    agent = UserFactory(username="agent", role="Collections agent")
    customer = CustomerFactory(name="Harbour Freight GmbH", assigned_agent=agent)
    ContactFactory(customer=customer, name="Dana", is_primary=True)
    invoice = InvoiceFactory(
        customer=customer,
        number="INV-B-1",
        due_on=ON - dt.timedelta(days=40),
        amount=Decimal("1250.00"),
    )
    TaskFactory(customer=customer, assignee=agent, title="Call Harbour Freight about INV-B-1")

    console.log_in(agent)
    console.visit(s.WORKLIST_URL)
    assert "Call Harbour Freight about INV-B-1" in console.text
    console.shot("agent-worklist")

    console.click(s.LINK_TO_CUSTOMER, id=customer.pk)
    assert console.path == s.CUSTOMER_URL.format(id=customer.pk)
    assert "Harbour Freight GmbH" in console.text
    console.shot("agent-customer")

    console.click(s.LINK_LOG_CALL, id=customer.pk)
    console.fill(**{s.CALL_OUTCOME: "reached", s.CALL_TEXT: "Dana will pay INV-B-1 on Friday."})
    console.submit()
    assert console.has(s.MESSAGE_DONE), console.text[:500]
    call = Activity.objects.get(customer=customer, kind=Activity.Kind.CALL)
    assert call.actor == agent and "Friday" in call.text

    console.visit(s.CUSTOMER_URL.format(id=customer.pk))
    console.click(s.LINK_RECORD_PROMISE, id=customer.pk)
    console.shot("agent-promise")
    console.select_in_two_boxes(s.PROMISE_INVOICES_FROM, s.PROMISE_INVOICES_CHOOSE, "INV-B-1")
    console.fill(**{s.PROMISE_AMOUNT: "1250.00", s.PROMISE_CHANNEL: "phone"})
    console.set(s.PROMISE_DATE, ON + dt.timedelta(days=4))
    console.submit()
    assert console.has(s.MESSAGE_DONE), console.text[:500]
    promise = PromiseToPay.objects.get(customer=customer)
    assert promise.amount == Decimal("1250.00") and promise.recorded_by == agent
    assert list(promise.invoices.all()) == [invoice]
