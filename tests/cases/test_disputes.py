"""Disputes hold dunning for their invoices only, and resolve with or without a credit note."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.urls import reverse

from accounts.models import Activity, Allocation, Customer, Invoice, Payment
from cases import disputes
from cases.models import Dispute
from dunning import planner
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
WEEK_LATE = ON - dt.timedelta(days=7)


@pytest.fixture
def customer(agent):
    customer = CustomerFactory(assigned_agent=agent, segment=Customer.Segment.STANDARD)
    ContactFactory(customer=customer, is_primary=True)
    return customer


def dispute(customer, invoices, *, by=None, reason=Dispute.Reason.PRICING, **kwargs):
    return disputes.open_dispute(
        customer=customer, invoices=invoices, reason=reason, by=by, **kwargs
    )


def status(invoice) -> str:
    invoice.refresh_from_db()
    return invoice.status


def test_opening_a_dispute_holds_its_invoices_only_and_is_logged(customer, agent):
    disputed = InvoiceFactory(customer=customer, number="D-1")
    other = InvoiceFactory(customer=customer, number="OK-1")
    opened = dispute(customer, [disputed], by=agent, description="Price list of 2025 applied")
    assert opened.status == Dispute.Status.OPEN and opened.owner == agent
    assert opened.opened_by == agent
    assert (status(disputed), status(other)) == ("disputed", "open")
    customer.refresh_from_db()
    assert not customer.is_in_dispute  # a customer-wide hold would stop the other invoices
    entry = Activity.objects.get(kind=Activity.Kind.DISPUTE)
    assert entry.actor == agent and entry.invoice == disputed
    assert f"Dispute #{opened.pk} opened (Pricing) on D-1; dunning held for D-1" in entry.text
    assert "Price list of 2025 applied" in entry.text


def test_the_planner_chases_the_customers_other_invoices_not_the_disputed_one(customer):
    disputed = InvoiceFactory(customer=customer, number="D-1", due_on=WEEK_LATE)
    InvoiceFactory(customer=customer, number="OK-1", due_on=WEEK_LATE)
    dispute(customer, [disputed])
    planner.plan(on=ON)
    lines = Notice.objects.filter(customer=customer).values_list(
        "lines__invoice__number", flat=True
    )
    assert set(lines) == {"OK-1"}


def test_resolving_for_us_resumes_dunning_with_the_status_its_balance_says(customer, manager):
    whole = InvoiceFactory(customer=customer, number="W", amount=Decimal("100.00"))
    part = InvoiceFactory(
        customer=customer, number="P", amount=Decimal("100.00"), open_balance=Decimal("40.00")
    )
    part.status = "partially_paid"
    part.save()
    opened = dispute(customer, [whole, part])
    resolved = disputes.resolve_dispute(
        dispute=opened, outcome="us", note="Delivery note signed by the customer", by=manager
    )
    assert resolved.status == Dispute.Status.RESOLVED_US and resolved.resolved_by == manager
    assert (status(whole), status(part)) == ("open", "partially_paid")
    entry = Activity.objects.filter(kind=Activity.Kind.DISPUTE).first()
    assert entry.actor == manager
    assert "resolved for us: Delivery note signed by the customer" in entry.text
    assert "Dunning resumes for W, P" in entry.text
    planner.plan(on=ON)
    assert Notice.objects.filter(customer=customer, step__offset_days=0).exists()


def test_resolving_for_the_customer_issues_a_credit_note_through_the_ledger(customer, finance):
    older = InvoiceFactory(customer=customer, number="A", amount=Decimal("100.00"), due_on=ON)
    newer = InvoiceFactory(
        customer=customer, number="B", amount=Decimal("100.00"), due_on=ON + dt.timedelta(days=5)
    )
    opened = dispute(customer, [older, newer], reason=Dispute.Reason.QUANTITY)
    resolved = disputes.resolve_dispute(
        dispute=opened,
        outcome="customer",
        note="Three pallets short",
        credit_amount="130.00",
        by=finance,
    )
    credit = resolved.credit_note
    assert (credit.kind, credit.amount, credit.unallocated_amount) == (
        Payment.Kind.CREDIT_NOTE,
        Decimal("130.00"),
        Decimal("0.00"),
    )
    assert (credit.source, credit.external_id, credit.customer) == (
        "dispute",
        str(opened.pk),
        customer,
    )
    assert sorted(
        Allocation.objects.filter(payment=credit).values_list("invoice__number", "amount")
    ) == [
        ("A", Decimal("100.00")),
        ("B", Decimal("30.00")),
    ]
    assert (status(older), status(newer)) == ("paid", "partially_paid")
    newer.refresh_from_db()
    assert newer.open_balance == Decimal("70.00")
    text = Activity.objects.filter(kind=Activity.Kind.DISPUTE).first().text
    assert "resolved for the customer: Three pallets short" in text
    assert "Credit note USD 130.00 issued and applied to A (100.00), B (30.00)" in text
    assert "Dunning resumes for B" in text
    assert (
        Activity.objects.filter(kind=Activity.Kind.ALLOCATION, details__rule="dispute").count() == 2
    )


def test_a_credit_is_refused_when_too_large_or_when_resolved_for_us(customer, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("100.00"))
    opened = dispute(customer, [invoice])
    for outcome, amount, message in [
        ("customer", "100.01", "more than the 100.00"),
        ("us", "10.00", "Only a dispute resolved for the customer"),
        ("customer", "-5", "more than zero"),
    ]:
        with pytest.raises(ValidationError) as refused:
            disputes.resolve_dispute(
                dispute=opened, outcome=outcome, note="n", credit_amount=amount, by=manager
            )
        assert message in " ".join(refused.value.message_dict["credit_amount"])
    with pytest.raises(ValidationError) as refused:
        disputes.resolve_dispute(dispute=opened, outcome="maybe", note="", by=manager)
    assert set(refused.value.message_dict) == {"outcome", "note"}
    assert status(invoice) == "disputed" and not Payment.objects.exists()


def test_only_holders_of_resolve_dispute_resolve(customer, agent, manager, finance):
    opened = dispute(customer, [InvoiceFactory(customer=customer)], by=agent)
    with pytest.raises(PermissionDenied):
        disputes.resolve_dispute(dispute=opened, outcome="us", note="x", by=agent)
    assert manager.has_perm("cases.resolve_dispute")
    disputes.resolve_dispute(dispute=opened, outcome="us", note="x", by=finance)
    with pytest.raises(ValidationError, match="already resolved for us"):
        disputes.resolve_dispute(dispute=opened, outcome="us", note="x", by=manager)


def test_an_invoice_under_two_disputes_stays_held_until_both_are_resolved(customer, manager):
    shared = InvoiceFactory(customer=customer, number="S")
    first = dispute(customer, [shared], reason=Dispute.Reason.PRICING)
    second = dispute(customer, [shared], reason=Dispute.Reason.QUALITY)
    disputes.resolve_dispute(dispute=first, outcome="us", note="price is right", by=manager)
    assert status(shared) == "disputed"
    assert "S stay(s) held by another open dispute" in Activity.objects.first().text
    disputes.resolve_dispute(dispute=second, outcome="us", note="quality is fine", by=manager)
    assert status(shared) == "open"


def test_start_review_takes_ownership_and_keeps_the_hold(customer, agent):
    invoice = InvoiceFactory(customer=customer)
    opened = dispute(customer, [invoice])  # by the system: owned by the customer's agent
    assert opened.owner == agent
    reviewed = disputes.start_review(dispute=opened, by=agent, note="asked for the POD")
    assert reviewed.status == Dispute.Status.UNDER_REVIEW and status(invoice) == "disputed"
    assert "under review: asked for the POD" in Activity.objects.first().text
    with pytest.raises(ValidationError):
        disputes.start_review(dispute=opened, by=agent)


def test_open_dispute_refuses_bad_input_by_field(customer):
    theirs = InvoiceFactory(customer=CustomerFactory())
    cancelled = InvoiceFactory(customer=customer, status="cancelled")
    with pytest.raises(ValidationError) as refused:
        dispute(customer, [theirs, cancelled], reason="mood")
    errors = refused.value.message_dict
    assert "Unknown reason" in errors["reason"][0]
    assert any("another customer" in e for e in errors["invoices"])
    assert any("is cancelled" in e for e in errors["invoices"])


def test_a_paid_invoice_can_be_disputed_without_reopening_it(customer, manager):
    paid = InvoiceFactory(customer=customer, status="paid", open_balance=Decimal("0.00"))
    opened = dispute(customer, [paid], reason=Dispute.Reason.DUPLICATE)
    assert status(paid) == "paid"
    resolved = disputes.resolve_dispute(
        dispute=opened, outcome="customer", note="charged twice", credit_amount="100.00", by=manager
    )
    assert resolved.credit_note.unallocated_amount == Decimal("100.00")  # credit on account
    assert status(paid) == "paid"


def test_an_agent_cannot_open_a_dispute_for_another_agents_customer(agent):
    theirs = CustomerFactory(assigned_agent=UserFactory(username="x", role="Collections agent"))
    with pytest.raises(PermissionDenied):
        dispute(theirs, [InvoiceFactory(customer=theirs)], by=agent)


def test_a_webhook_opening_the_same_dispute_twice_gets_the_first(customer):
    invoice = InvoiceFactory(customer=customer)
    first = dispute(customer, [invoice], source="stripe:dp_1", reason=Dispute.Reason.NOT_RECEIVED)
    again = dispute(customer, [invoice], source="stripe:dp_1", reason=Dispute.Reason.NOT_RECEIVED)
    assert again.pk == first.pk
    assert Dispute.objects.count() == 1
    assert Activity.objects.filter(kind=Activity.Kind.DISPUTE).count() == 1


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_deliveries_of_one_webhook_at_once_open_one_dispute():
    customer = CustomerFactory()
    invoice = InvoiceFactory(customer=customer)
    barrier = threading.Barrier(2)
    results, errors = [], []

    def deliver():
        try:
            barrier.wait()
            results.append(
                dispute(
                    customer, [invoice], source="stripe:dp_race", reason=Dispute.Reason.OTHER
                ).pk
            )
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(results)) == 1 and Dispute.objects.count() == 1
    assert Activity.objects.filter(kind=Activity.Kind.DISPUTE).count() == 1


def test_an_agent_opens_a_dispute_from_the_customer_page(client, customer, agent):
    invoice = InvoiceFactory(customer=customer, number="ADM-1")
    url = reverse("admin:cases_dispute_open", args=[customer.pk])
    client.force_login(agent)
    page = client.get(url)
    assert page.status_code == 200 and "ADM-1" in page.content.decode()
    done = client.post(
        url,
        {"apply": "1", "invoices": [invoice.pk], "reason": "quality", "description": "dented"},
    )
    assert done.status_code == 302
    opened = Dispute.objects.get()
    assert (opened.owner, opened.reason) == (agent, "quality") and status(invoice) == "disputed"
    # An agent may not resolve: no button, and the page answers 403.
    change = client.get(reverse("admin:cases_dispute_change", args=[opened.pk]))
    assert reverse("admin:cases_dispute_resolve", args=[opened.pk]) not in change.content.decode()
    assert client.get(reverse("admin:cases_dispute_resolve", args=[opened.pk])).status_code == 403


def test_a_manager_resolves_from_the_dispute_page(client, customer, manager):
    invoice = InvoiceFactory(customer=customer, amount=Decimal("80.00"))
    opened = dispute(customer, [invoice])
    client.force_login(manager)
    change = client.get(reverse("admin:cases_dispute_change", args=[opened.pk]))
    url = reverse("admin:cases_dispute_resolve", args=[opened.pk])
    assert url in change.content.decode()
    done = client.post(
        url, {"apply": "1", "outcome": "customer", "note": "goodwill", "credit_amount": "80.00"}
    )
    assert done.status_code == 302
    opened.refresh_from_db()
    assert (
        opened.status == Dispute.Status.RESOLVED_CUSTOMER and status(invoice) == Invoice.Status.PAID
    )
