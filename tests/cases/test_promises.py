"""Promises to pay: recorded, kept by payments, broken after the grace; dunning holds meanwhile."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services
from accounts.models import Activity, Customer, Payment
from cases import promises
from cases.models import PromiseToPay, Task
from dunning import planner
from dunning.models import Notice
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def days(n: int) -> dt.date:
    return ON + dt.timedelta(days=n)


@pytest.fixture
def customer(agent):
    customer = CustomerFactory(assigned_agent=agent, segment=Customer.Segment.STANDARD)
    ContactFactory(customer=customer, is_primary=True)
    return customer


def promise(customer, invoices, *, amount="100.00", promised_on=None, by=None, **kwargs):
    return promises.record_promise(
        customer=customer,
        invoices=invoices,
        amount=amount,
        promised_on=promised_on or days(5),
        channel=Activity.Channel.PHONE,
        by=by,
        today=ON,
        **kwargs,
    )


def pay(invoice, amount, *, kind=Payment.Kind.PAYMENT):
    payment = services.record_payment(
        amount=amount,
        currency=invoice.currency,
        received_on=ON,
        customer=invoice.customer,
        kind=kind,
    )
    return services.allocate(payment=payment, invoice=invoice, amount=amount, on=ON)


def test_recording_a_promise_holds_until_the_grace_ends_and_goes_on_the_timeline(
    customer, agent, settings
):
    settings.PROMISE_GRACE_DAYS = 3
    a = InvoiceFactory(customer=customer, number="A", amount=Decimal("300.00"))
    b = InvoiceFactory(customer=customer, number="B", amount=Decimal("200.00"))
    made = promise(customer, [a, b], amount="450.00", promised_on=days(5), by=agent, note="CFO")
    assert made.status == PromiseToPay.Status.OPEN
    assert (made.amount, made.currency, made.holds_until) == (Decimal("450.00"), "USD", days(8))
    assert set(made.invoices.values_list("number", flat=True)) == {"A", "B"}
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PROMISE)
    assert entry.actor == agent and entry.channel == Activity.Channel.PHONE
    assert "USD 450.00 by 2026-11-28 for A, B" in entry.text and "CFO" in entry.text
    assert entry.details["holds_until"] == "2026-12-01" and entry.details["promise"] == made.pk


def test_grace_days_can_be_chosen_per_promise(customer):
    invoice = InvoiceFactory(customer=customer)
    assert promise(customer, [invoice], grace_days=0).holds_until == days(5)


def test_each_wrong_field_is_named():
    customer, other = CustomerFactory(), CustomerFactory()
    mine = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    euros = InvoiceFactory(customer=customer, currency="EUR")
    theirs = InvoiceFactory(customer=other)
    paid = InvoiceFactory(customer=customer, status="paid", open_balance=Decimal("0.00"))
    cases = [
        ({"invoices": [mine, theirs]}, "invoices", "another customer"),
        ({"invoices": [mine, euros]}, "invoices", "one currency"),
        ({"invoices": [paid]}, "invoices", "is paid"),
        ({"invoices": []}, "invoices", "at least one"),
        ({"amount": "100.01"}, "amount", "more than the USD 100.00 open"),
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": "abc"}, "amount", "not an amount"),
        ({"promised_on": days(-1)}, "promised_on", "in the past"),
        ({"channel": "pigeon"}, "channel", "Unknown channel"),
        ({"grace_days": -1}, "grace_days", "negative"),
    ]
    for overrides, field, message in cases:
        kwargs = {"invoices": [mine], **overrides}
        with pytest.raises(ValidationError) as refused:
            if "channel" in overrides:
                promises.record_promise(
                    customer=customer,
                    amount="10.00",
                    promised_on=days(1),
                    by=None,
                    today=ON,
                    **kwargs,
                )
            else:
                promise(customer, **kwargs)
        assert message in " ".join(refused.value.message_dict[field]), (overrides, refused.value)
    assert not PromiseToPay.objects.exists()


def test_a_promise_for_today_is_fine_and_the_full_open_balance_may_be_promised(customer):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    assert promise(customer, [invoice], amount="100.00", promised_on=ON).promised_on == ON


def test_one_open_promise_per_invoice(customer):
    invoice = InvoiceFactory(customer=customer, number="X-1")
    first = promise(customer, [invoice], amount="50.00")
    with pytest.raises(ValidationError, match=rf"X-1 already has an open promise \(#{first.pk}\)"):
        promise(customer, [invoice], amount="50.00")
    promises.cancel_promise(promise=first, by=None, reason="customer changed the date")
    assert promise(customer, [invoice], amount="50.00").status == PromiseToPay.Status.OPEN


def test_an_agent_records_promises_only_for_own_and_unassigned_customers(customer, agent):
    colleague = UserFactory(username="colleague", role="Collections agent")
    theirs = CustomerFactory(assigned_agent=colleague)
    with pytest.raises(PermissionDenied):
        promise(theirs, [InvoiceFactory(customer=theirs)], by=agent)
    finance = UserFactory(username="fin", role="Finance")
    with pytest.raises(PermissionDenied):
        promise(customer, [InvoiceFactory(customer=customer)], by=finance)
    assert promise(customer, [InvoiceFactory(customer=customer)], by=agent).pk


def test_cancelling_needs_a_reason_and_is_logged(customer, agent):
    made = promise(customer, [InvoiceFactory(customer=customer)], by=agent)
    with pytest.raises(ValidationError) as refused:
        promises.cancel_promise(promise=made, by=agent, reason="  ")
    assert "reason" in refused.value.message_dict
    promises.cancel_promise(promise=made, by=agent, reason="recorded on the wrong account")
    made.refresh_from_db()
    assert made.status == PromiseToPay.Status.CANCELLED and made.resolved_at
    entry = Activity.objects.filter(kind=Activity.Kind.PROMISE).first()
    assert entry.actor == agent and "cancelled: recorded on the wrong account" in entry.text
    with pytest.raises(ValidationError, match="already cancelled"):
        promises.cancel_promise(promise=made, by=agent, reason="again")


def test_payments_since_the_promise_mark_it_kept_when_they_reach_the_amount(customer):
    a = InvoiceFactory(customer=customer, amount=Decimal("300.00"))
    b = InvoiceFactory(customer=customer, amount=Decimal("200.00"))
    made = promise(customer, [a, b], amount="400.00")
    pay(a, "300.00")
    made.refresh_from_db()
    assert (made.status, made.paid_amount) == (PromiseToPay.Status.OPEN, Decimal("300.00"))
    pay(b, "100.00")
    made.refresh_from_db()
    assert (made.status, made.paid_amount) == (PromiseToPay.Status.KEPT, Decimal("400.00"))
    assert made.resolved_at is not None
    entry = Activity.objects.filter(kind=Activity.Kind.PROMISE).first()
    assert entry.text.startswith("Promise kept: USD 400.00 paid of 400.00 promised")
    assert entry.actor is None and entry.details["status"] == "kept"


def test_money_applied_before_the_promise_and_write_offs_do_not_count(customer):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("500.00"))
    pay(invoice, "100.00")  # before the promise
    made = promise(customer, [invoice], amount="200.00")
    pay(invoice, "50.00", kind=Payment.Kind.WRITE_OFF)
    made.refresh_from_db()
    assert (made.status, made.paid_amount) == (PromiseToPay.Status.OPEN, Decimal("0.00"))
    pay(invoice, "200.00", kind=Payment.Kind.CREDIT_NOTE)  # a credit counts
    made.refresh_from_db()
    assert made.status == PromiseToPay.Status.KEPT


def test_reconciliation_booking_with_allocate_many_keeps_promises(customer):
    """The bank import books through allocate_many; the hook runs once for the batch."""
    other = CustomerFactory()
    kept_invoice = InvoiceFactory(customer=customer, amount=Decimal("120.00"))
    short_invoice = InvoiceFactory(customer=other, amount=Decimal("120.00"))
    kept = promise(customer, [kept_invoice], amount="120.00")
    short = promise(other, [short_invoice], amount="120.00")
    payments = services.record_payments(
        [
            {"amount": "120.00", "currency": "USD", "received_on": ON, "customer": customer},
            {"amount": "20.00", "currency": "USD", "received_on": ON, "customer": other},
        ]
    )
    outcomes = services.allocate_many(
        [
            (payments[0].pk, [(kept_invoice.pk, Decimal("120.00"))]),
            (payments[1].pk, [(short_invoice.pk, Decimal("20.00"))]),
        ],
        rule="invoice_number",
        on=ON,
    )
    assert outcomes == ["", ""]
    kept.refresh_from_db()
    short.refresh_from_db()
    assert kept.status == PromiseToPay.Status.KEPT
    assert (short.status, short.paid_amount) == (PromiseToPay.Status.OPEN, Decimal("20.00"))


def test_the_hook_costs_the_same_few_queries_for_any_number_of_promises():
    def booking_queries(n: int) -> int:
        customer = CustomerFactory()
        invoices = [InvoiceFactory(customer=customer, amount=Decimal("10.00")) for _ in range(n)]
        for invoice in invoices:
            promise(customer, [invoice], amount="10.00")
        payment = PaymentFactory(customer=customer, amount=Decimal(10 * n))
        lines = [(invoice.pk, Decimal("10.00")) for invoice in invoices]
        with CaptureQueriesContext(connection) as queries:
            services.allocate_many([(payment.pk, lines)], on=ON)
        assert PromiseToPay.objects.filter(customer=customer, status="kept").count() == n
        return len(queries)

    assert booking_queries(3) == booking_queries(40)


def test_a_promise_breaks_the_day_after_its_hold_ends(customer, agent):
    invoice = InvoiceFactory(customer=customer, number="LATE-1")
    made = promise(customer, [invoice], amount="100.00", promised_on=days(2), grace_days=3)
    assert made.holds_until == days(5)
    assert promises.detect_broken_promises(today=days(5)) == []
    made.refresh_from_db()
    assert made.status == PromiseToPay.Status.OPEN
    assert promises.detect_broken_promises(today=days(6)) == [made.pk]
    made.refresh_from_db()
    assert made.status == PromiseToPay.Status.BROKEN and made.resolved_at
    task = Task.objects.get(source=f"promise:{made.pk}")
    assert (task.kind, task.assignee, task.customer) == (Task.Kind.CALL, agent, customer)
    assert task.due_at.date() == days(6) and task.status == Task.Status.OPEN
    entry = Activity.objects.filter(kind=Activity.Kind.PROMISE).first()
    assert entry.text.startswith("Promise broken: USD 100.00 was promised for 2026-11-25")
    assert "call task goes to agent" in entry.text
    assert Activity.objects.filter(kind=Activity.Kind.TASK, details__task=task.pk).exists()
    # A second run (a retried task) changes nothing.
    assert promises.detect_broken_promises(today=days(6)) == []
    assert Task.objects.filter(source=f"promise:{made.pk}").count() == 1


def test_a_partly_paid_promise_still_breaks_and_a_paid_one_is_kept_not_broken(customer):
    short = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    paid = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    broken = promise(customer, [short], amount="100.00", promised_on=ON, grace_days=0)
    kept = promise(customer, [paid], amount="100.00", promised_on=ON, grace_days=0)
    pay(short, "99.99")
    pay(paid, "100.00")
    assert promises.detect_broken_promises(today=days(1)) == [broken.pk]
    kept.refresh_from_db()
    assert kept.status == PromiseToPay.Status.KEPT


def test_promise_record_counts_kept_and_broken_per_customer(customer):
    other = CustomerFactory()
    for n in range(3):
        made = promise(customer, [InvoiceFactory(customer=customer)], promised_on=ON, grace_days=0)
        if n == 0:
            pay(made.invoices.get(), "100.00")
    promise(other, [InvoiceFactory(customer=other)], promised_on=days(9))  # still open
    promises.detect_broken_promises(today=days(1))
    record = promises.promise_record([customer.pk, other.pk, 999_999])
    assert record[customer.pk] == (1, 2)
    assert record[customer.pk].broken_share == pytest.approx(2 / 3)
    assert record[other.pk] == (0, 0) and record[other.pk].broken_share is None
    assert record[999_999] == (0, 0)


def test_a_promise_holds_dunning_for_its_invoices_until_its_hold_ends(customer):
    """Both invoices reach the 7-day step on days(7); the promised one waits for its hold."""
    held = InvoiceFactory(customer=customer, number="HELD", due_on=ON)
    InvoiceFactory(customer=customer, number="CHASED", due_on=ON)
    promise(customer, [held], amount="100.00", promised_on=days(4), grace_days=3)  # to days(7)

    def noticed(on):
        planner.plan(on=on)
        return set(
            Notice.objects.filter(customer=customer, channel="email", planned_on=on).values_list(
                "lines__invoice__number", flat=True
            )
        )

    assert noticed(days(7)) == {"CHASED"}
    # The hold ended (days(7) was its last day); the promise breaks, dunning catches up.
    promises.detect_broken_promises(today=days(8))
    assert noticed(days(8)) == {"HELD"}


def test_an_agent_records_a_promise_from_the_customer_page(client, customer, agent):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("250.00"))
    url = reverse("admin:cases_promisetopay_record", args=[customer.pk])
    client.force_login(agent)
    page = client.get(url)
    assert page.status_code == 200 and invoice.number in page.content.decode()
    refused = client.post(
        url,
        {
            "apply": "1",
            "invoices": [invoice.pk],
            "amount": "300.00",
            "promised_on": ON.isoformat(),
            "channel": "phone",
        },
    )
    assert refused.status_code == 200
    assert "more than the USD 250.00 open" in refused.content.decode()
    done = client.post(
        url,
        {
            "apply": "1",
            "invoices": [invoice.pk],
            "amount": "250.00",
            "promised_on": ON.isoformat(),
            "channel": "email",
            "note": "by transfer",
        },
    )
    assert done.status_code == 302
    assert done["Location"] == reverse("admin:accounts_customer_change", args=[customer.pk])
    made = PromiseToPay.objects.get()
    assert made.recorded_by == agent and made.channel == "email"


def test_the_cancel_action_needs_a_reason(client, customer, agent):
    made = promise(customer, [InvoiceFactory(customer=customer)], by=agent)
    client.force_login(agent)
    url = reverse("admin:cases_promisetopay_changelist")
    form = client.post(url, {"action": "cancel_promises", "_selected_action": [made.pk]})
    assert form.status_code == 200 and "Reason" in form.content.decode()
    client.post(
        url,
        {
            "action": "cancel_promises",
            "_selected_action": [made.pk],
            "apply": "1",
            "reason": "wrong customer",
        },
    )
    made.refresh_from_db()
    assert made.status == PromiseToPay.Status.CANCELLED


def test_the_promise_list_filters_by_status(client, customer, manager):
    promise(customer, [InvoiceFactory(customer=customer, number="LISTED")])
    client.force_login(manager)
    page = client.get(reverse("admin:cases_promisetopay_changelist"), {"status__exact": "open"})
    assert page.status_code == 200 and customer.name in page.content.decode()
