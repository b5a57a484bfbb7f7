"""Merging a duplicate customer: everything moves, one transaction, on the timeline."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, transaction

from accounts import merging, services, summaries
from accounts.models import AccessLog, Activity, AppendOnlyError, Contact, Customer, Invoice
from cases.disputes import open_dispute
from cases.models import Dispute, PromiseToPay, Task
from cases.promises import record_promise
from dunning import planner
from dunning.models import Notice
from tests.clock import ON
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    TaskFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def pair(manager):
    """#80, the customer as it should be, and #501, the duplicate an import made of it,
    with an invoice, a payment allocated to it, a contact, case work, a notice and a
    timeline of its own."""
    agent = UserFactory(username="claire", role="Collections agent")
    survivor = CustomerFactory(
        name="Transports Summit SA",
        source="demo",
        external_ref="C-0080",
        country="FR",
        currency="EUR",
        assigned_agent=agent,
    )
    ContactFactory(customer=survivor, name="Anne", is_primary=True)
    InvoiceFactory(customer=survivor, number="SUM-1", currency="EUR")
    duplicate = CustomerFactory(
        name="TRANSPORTS SUMMIT S.A.",
        source="spreadsheet",
        external_ref="TRANSPORTS SUMMIT S.A.",
        country="",
        industry="Logistics",
        currency="EUR",
    )
    ContactFactory(customer=duplicate, name="Bruno", is_primary=True)
    overdue = InvoiceFactory(
        customer=duplicate, number="SUM-9001", currency="EUR", due_on=ON - dt.timedelta(days=7)
    )
    other = InvoiceFactory(customer=duplicate, number="SUM-9002", currency="EUR")
    payment = services.record_payment(
        amount=Decimal("40.00"), currency="EUR", received_on=ON, customer=duplicate, by=manager
    )
    services.allocate(payment=payment, invoice=overdue, amount=Decimal("40.00"), by=manager)
    TaskFactory(customer=duplicate)
    record_promise(
        customer=duplicate,
        invoices=[overdue],
        amount=Decimal("10.00"),
        promised_on=ON + dt.timedelta(days=5),
        channel="phone",
        by=manager,
        today=ON,
    )
    open_dispute(customer=duplicate, invoices=[other], reason="pricing", by=manager)
    ActivityFactory(customer=duplicate, text="Called Bruno about SUM-9001")
    InvoiceFactory(
        customer=duplicate, number="SUM-9003", currency="EUR", due_on=ON - dt.timedelta(days=7)
    )
    planner.plan(on=ON)  # a reminder for SUM-9003
    Customer.objects.filter(pk=duplicate.pk).update(do_not_contact=True)
    duplicate.refresh_from_db()
    return survivor, duplicate


def rows_of(customer) -> dict:
    return {
        "invoices": Invoice.objects.filter(customer=customer).count(),
        "payments": customer.payments.count(),
        "contacts": Contact.objects.filter(customer=customer).count(),
        "tasks": Task.objects.filter(customer=customer).count(),
        "promises": PromiseToPay.objects.filter(customer=customer).count(),
        "disputes": Dispute.objects.filter(customer=customer).count(),
        "notices": Notice.objects.filter(customer=customer).count(),
        "timeline": Activity.objects.filter(customer=customer).count(),
    }


def test_everything_of_the_duplicate_moves_to_the_survivor(pair, manager):
    survivor, duplicate = pair
    before = rows_of(duplicate)
    assert before["notices"] >= 1 and before["timeline"] >= 5
    survivor_before = rows_of(survivor)
    texts = sorted(Activity.objects.filter(customer=duplicate).values_list("pk", "text"))

    moved = merging.merge_customers(
        survivor=survivor, duplicate=duplicate, by=manager, reason="Import made a duplicate"
    )

    after = rows_of(survivor)
    for kind in ("invoices", "payments", "contacts", "tasks", "promises", "disputes", "notices"):
        assert after[kind] == survivor_before[kind] + before[kind], kind
    assert moved["accounts.invoice"] == 3 and moved["cases.promisetopay"] == 1
    # The timeline entries moved unchanged (text, time, author), plus the merge's own entry.
    assert after["timeline"] == survivor_before["timeline"] + before["timeline"] + 1
    assert (
        sorted(Activity.objects.filter(pk__in=[pk for pk, _ in texts]).values_list("pk", "text"))
        == texts
    )
    assert set(
        Activity.objects.filter(pk__in=[pk for pk, _ in texts]).values_list("customer", flat=True)
    ) == {survivor.pk}
    # The duplicate is an empty row pointing at the survivor, its own timeline saying so.
    duplicate.refresh_from_db()
    assert (duplicate.status, duplicate.merged_into, duplicate.merged_at is not None) == (
        "merged",
        survivor,
        True,
    )
    assert rows_of(duplicate) == {**dict.fromkeys(before, 0), "timeline": 1}
    assert Activity.objects.get(customer=duplicate).text == (
        f"Merged into Transports Summit SA (#{survivor.pk}): Import made a duplicate"
    )
    # Balances follow: the allocation still pays the invoice, now the survivor's.
    assert services.open_balances(survivor) == {"EUR": Decimal("360.00")}


def test_the_merge_is_on_the_survivors_timeline_with_who_why_and_what_moved(pair, manager):
    survivor, duplicate = pair

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    entry = Activity.objects.get(customer=survivor, kind="merge")
    assert entry.actor == manager
    assert entry.text == f"Merged TRANSPORTS SUMMIT S.A. (#{duplicate.pk}) into this customer: dup"
    assert entry.details["merged"] == duplicate.pk
    assert entry.details["merged_ref"] == "TRANSPORTS SUMMIT S.A."
    assert entry.details["moved"]["accounts.invoice"] == 3
    assert entry.details["filled"] == {"industry": "Logistics", "do_not_contact": True}


def test_the_survivor_keeps_its_values_fills_its_blanks_and_keeps_every_hold(pair, manager):
    survivor, duplicate = pair

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    survivor.refresh_from_db()
    assert (survivor.name, survivor.country, survivor.assigned_agent.username) == (
        "Transports Summit SA",
        "FR",
        "claire",
    )
    assert survivor.industry == "Logistics"  # blank on the survivor
    assert survivor.do_not_contact is True  # a hold of the duplicate is not lost


def test_one_primary_contact_stays(pair, manager):
    survivor, duplicate = pair

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    contacts = dict(Contact.objects.filter(customer=survivor).values_list("name", "is_primary"))
    assert contacts == {"Anne": True, "Bruno": False}


def test_the_access_log_stays_with_the_duplicate(pair, manager, client):
    survivor, duplicate = pair
    client.force_login(manager)
    client.get(f"/admin/accounts/customer/{duplicate.pk}/change/")
    assert AccessLog.objects.filter(customer=duplicate).count() == 1

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    assert AccessLog.objects.filter(customer=duplicate).count() == 1


def test_customers_merged_into_the_duplicate_earlier_now_point_at_the_survivor(pair, manager):
    survivor, duplicate = pair
    older = CustomerFactory(name="Transports Summit")
    merging.merge_customers(survivor=duplicate, duplicate=older, by=manager, reason="dup")

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    older.refresh_from_db()
    assert older.merged_into == survivor
    assert merging.survivors([older.pk, duplicate.pk, survivor.pk]) == {
        older.pk: survivor.pk,
        duplicate.pk: survivor.pk,
    }


@pytest.mark.parametrize("role", ["manager", "finance"])
def test_managers_and_finance_may_merge(pair, request, role):
    survivor, duplicate = pair
    merging.merge_customers(
        survivor=survivor, duplicate=duplicate, by=request.getfixturevalue(role), reason="dup"
    )
    assert Customer.objects.get(pk=duplicate.pk).merged_into == survivor


def test_agents_may_not_merge_and_nothing_moves(pair, agent):
    survivor, duplicate = pair
    with pytest.raises(PermissionDenied):
        merging.merge_customers(survivor=survivor, duplicate=duplicate, by=agent, reason="dup")
    assert Invoice.objects.filter(customer=duplicate).count() == 3
    assert Customer.objects.get(pk=duplicate.pk).merged_into is None


@pytest.mark.parametrize(
    ("case", "field", "message"),
    [
        ("no reason", "reason", "Say why these customers are merged."),
        ("itself", "duplicate", "A customer cannot be merged into itself."),
        ("merged", "duplicate", "was already merged into customer #"),
        ("erased", "duplicate", "had its personal data erased; it cannot be merged."),
    ],
)
def test_a_merge_that_cannot_be_done_is_refused_naming_the_field(
    pair, manager, case, field, message
):
    survivor, duplicate = pair
    reason = "" if case == "no reason" else "dup"
    if case == "itself":
        duplicate = survivor
    elif case == "merged":
        merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="x")
    elif case == "erased":
        Customer.objects.filter(pk=duplicate.pk).update(
            erased_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        )

    with pytest.raises(ValidationError) as refused:
        merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason=reason)

    assert any(message in m for m in refused.value.message_dict[field])


def test_the_timeline_still_refuses_any_other_change(pair):
    _survivor, duplicate = pair
    entry = Activity.objects.filter(customer=duplicate).first()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    if connection.vendor != "postgresql":
        return
    for statement in (
        "UPDATE accounts_activity SET customer_id = %s WHERE id = %s",
        "UPDATE accounts_activity SET text = 'changed' WHERE id = %s",
    ):
        params = [_survivor.pk, entry.pk] if statement.count("%s") == 2 else [entry.pk]
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement, params)
    # Even inside the merge's window only the customer may change.
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('accounts.timeline_merge', 'on', true)")
        cursor.execute("UPDATE accounts_activity SET text = 'changed' WHERE id = %s", [entry.pk])


def test_the_plan_says_what_will_move_without_writing(pair, manager):
    survivor, duplicate = pair

    plan = merging.plan_merge(survivor=survivor, duplicate=duplicate)

    moves = {move.key: (move.count, move.stays) for move in plan.moves}
    assert moves["accounts.invoice"] == (3, False)
    assert moves["accounts.allocation"] == (1, False)
    assert moves["cases.dispute"] == (1, False)
    assert moves["accounts.accesslog"] == (0, True)
    assert plan.filled == {
        "industry": ("Industry", "Logistics"),
        "do_not_contact": ("Do not contact", True),
    }
    assert plan.is_possible
    assert Invoice.objects.filter(customer=duplicate).count() == 3


def test_an_edit_cannot_set_or_clear_the_merged_status(pair, manager, client):
    survivor, duplicate = pair
    survivor.status = Customer.Status.MERGED
    with pytest.raises(ValidationError) as refused:
        services.save_customer(customer=survivor, by=manager)
    assert "Only a merge of two customers" in refused.value.message_dict["status"][0]

    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")
    duplicate.refresh_from_db()
    duplicate.status = Customer.Status.ACTIVE
    with pytest.raises(ValidationError):
        services.save_customer(customer=duplicate, by=manager)
    assert Customer.objects.get(pk=duplicate.pk).status == "merged"


def test_erasing_the_survivor_erases_the_names_merged_into_it(pair, manager):
    from privacy import erasure

    survivor, duplicate = pair
    merging.merge_customers(survivor=survivor, duplicate=duplicate, by=manager, reason="dup")

    erasure.erase_customer(customer=survivor, reason="the debtor asked", by=manager)

    duplicate.refresh_from_db()
    assert duplicate.name == f"Erased customer #{duplicate.pk}"
    assert duplicate.normalized_name == f"erased customer {duplicate.pk}"
    assert duplicate.erased_at is not None
    assert not Activity.objects.filter(text__icontains="TRANSPORTS SUMMIT S.A.").exists()
    assert not Activity.objects.filter(text__icontains="Transports Summit SA").exists()


def test_the_survivor_takes_the_duplicates_past_due_figures(pair, manager):
    survivor, duplicate = pair
    summaries.refresh_past_due(customer_ids=[survivor.pk, duplicate.pk], today=ON)
    duplicate.refresh_from_db()
    assert duplicate.past_due_amount > 0

    merging.merge_customers(
        survivor=survivor, duplicate=duplicate, by=manager, reason="Import made a duplicate"
    )

    survivor.refresh_from_db()
    duplicate.refresh_from_db()
    assert survivor.past_due_amount > 0 and survivor.oldest_due_on is not None
    assert duplicate.past_due_amount == 0 and duplicate.oldest_due_on is None
