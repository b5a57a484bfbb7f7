"""The customer's collection summary on its row: kept by the ledger's services, refreshed
nightly, never written back by an edit."""

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import transaction

from accounts import services, summaries
from accounts.models import Customer, Invoice
from cases import case_tasks, next_actions, nightly
from collections_mgmt.celery import app
from tests.clock import NOW, ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def new_invoice(customer, *, number, due_on, amount="100.00", currency="USD") -> Invoice:
    invoice = Invoice(
        customer=customer,
        number=number,
        issued_on=due_on - dt.timedelta(days=30),
        due_on=due_on,
        currency=currency,
        amount=Decimal(amount),
    )
    return services.save_new_invoice(invoice=invoice)


def fresh(customer) -> Customer:
    return Customer.objects.get(pk=customer.pk)


def test_a_new_invoice_and_a_payment_move_the_amount_past_due_at_once():
    customer = CustomerFactory()
    late = new_invoice(customer, number="L-1", due_on=ON - dt.timedelta(days=40), amount="300")
    new_invoice(customer, number="N-1", due_on=ON + dt.timedelta(days=10), amount="50")
    row = fresh(customer)
    assert (row.past_due_amount, row.past_due_currency) == (Decimal("300.00"), "USD")
    assert row.oldest_due_on == ON - dt.timedelta(days=40) and row.days_past_due == 40
    assert row.past_due_changed_on == ON

    payment = services.record_payment(
        amount="120", currency="USD", received_on=ON, customer=customer
    )
    services.allocate(payment=payment, invoice=late)
    assert fresh(customer).past_due_amount == Decimal("180.00")

    services.refund_payment(payment=payment, amount="120")
    assert fresh(customer).past_due_amount == Decimal("300.00")


@pytest.fixture
def eager():
    """Queued tasks run in this process, as a worker would run them."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_allocate_many_queues_a_refresh_of_every_customer_it_touched(
    eager, django_capture_on_commit_callbacks
):
    a, b = CustomerFactory(), CustomerFactory()
    ia = new_invoice(a, number="A-1", due_on=ON - dt.timedelta(days=5))
    ib = new_invoice(b, number="B-1", due_on=ON - dt.timedelta(days=5))
    pa = services.record_payment(amount="100", currency="USD", received_on=ON, customer=a)
    pb = services.record_payment(amount="60", currency="USD", received_on=ON, customer=b)
    with django_capture_on_commit_callbacks() as queued:
        services.allocate_many(
            [(pa.pk, [(ia.pk, Decimal("100"))]), (pb.pk, [(ib.pk, Decimal("60"))])]
        )
    # Not on the booking's own path: the figures move when the worker runs the task.
    assert fresh(b).past_due_amount == Decimal("100.00") and len(queued) == 1
    queued[0]()
    assert fresh(a).past_due_amount == 0 and fresh(a).past_due_currency == ""
    assert fresh(a).oldest_due_on is None
    assert fresh(b).past_due_amount == Decimal("40.00")


def test_currencies_are_never_added_the_largest_one_counts():
    customer = CustomerFactory()
    new_invoice(customer, number="U-1", due_on=ON - dt.timedelta(days=3), amount="100")
    late = ON - dt.timedelta(days=3)
    new_invoice(customer, number="E-1", due_on=late, amount="900", currency="EUR")
    new_invoice(customer, number="E-2", due_on=late, amount="50", currency="EUR")
    row = fresh(customer)
    assert (row.past_due_amount, row.past_due_currency) == (Decimal("950.00"), "EUR")
    assert row.past_due_currencies == 2


def test_an_invoice_falling_due_overnight_counts_after_the_nightly_refresh(clock):
    customer = CustomerFactory()
    new_invoice(customer, number="D-1", due_on=ON, amount="70")  # due today: not yet past due
    assert fresh(customer).past_due_amount == 0
    assert fresh(customer).days_past_due == 0

    tomorrow = ON + dt.timedelta(days=1)
    clock.move_to(NOW + dt.timedelta(days=1))
    assert fresh(customer).days_past_due == 1  # counted from the stored due date
    nightly.run_case_work(on=tomorrow, now=NOW + dt.timedelta(days=1))
    row = fresh(customer)
    assert (row.past_due_amount, row.past_due_changed_on) == (Decimal("70.00"), tomorrow)
    # The night after, nothing changed: nothing is written.
    assert summaries.refresh_past_due(today=tomorrow + dt.timedelta(days=1)) == 0


def test_the_full_refresh_repairs_rows_written_behind_the_services_back():
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=9), amount=Decimal("45"))
    assert fresh(customer).past_due_amount == 0  # the factory bypasses the services
    assert summaries.refresh_past_due() == 1
    assert fresh(customer).past_due_amount == Decimal("45.00")
    assert summaries.refresh_past_due() == 0  # nothing changed: nothing written


def test_an_edit_on_a_stale_copy_does_not_write_an_old_balance_back(manager):
    customer = CustomerFactory()
    stale = fresh(customer)
    new_invoice(customer, number="S-1", due_on=ON - dt.timedelta(days=2), amount="80")
    stale.industry = "Logistics"
    services.save_customer(customer=stale, by=manager)
    row = fresh(customer)
    assert row.industry == "Logistics" and row.past_due_amount == Decimal("80.00")


def test_the_next_action_is_the_next_open_task(manager):
    customer = CustomerFactory()
    later = case_tasks.create_task(
        customer=customer, kind="call", title="Call later", due_at=NOW + dt.timedelta(days=3)
    )
    sooner = case_tasks.create_task(
        customer=customer, kind="email", title="Send a copy", due_at=NOW + dt.timedelta(hours=2)
    )
    row = fresh(customer)
    assert (row.next_action, row.next_action_at) == ("Send a copy", sooner.due_at)
    case_tasks.complete_task(task=sooner, outcome="", by=manager)
    assert fresh(customer).next_action == "Call later"
    with transaction.atomic():
        case_tasks.cancel_task(task=later, by=manager, reason="Paid meanwhile")
    row = fresh(customer)
    assert (row.next_action, row.next_action_at) == ("", None)
    assert next_actions.refresh_next_actions() == 0


def test_the_command_refreshes_every_customer():
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=3), amount=Decimal("12"))
    out = io.StringIO()
    call_command("refresh_customer_summaries", stdout=out)
    assert "past due: 1 customers changed" in out.getvalue()
    assert fresh(customer).past_due_amount == Decimal("12.00")


def test_an_imported_invoice_and_an_amount_change_move_the_customers_figures(
    tmp_path, eager, django_capture_on_commit_callbacks
):
    from integrations.intake import spreadsheets
    from integrations.models import ImportProfile

    header = "Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n"

    def load(content: str):
        path = tmp_path / "invoices.csv"
        path.write_text(header + content)
        with open(path, "rb") as stream, django_capture_on_commit_callbacks(execute=True):
            spreadsheets.import_invoices(
                stream,
                filename=path.name,
                profile=ImportProfile.objects.get(name="generic-csv"),
            )

    load("IMP-1,Acme Imports,2026-09-01,2026-10-01,USD,250.00\n")
    customer = Customer.objects.get(name="Acme Imports")
    assert (customer.past_due_amount, customer.oldest_due_on) == (
        Decimal("250.00"),
        dt.date(2026, 10, 1),
    )
    load("IMP-1,Acme Imports,2026-09-01,2026-10-01,USD,275.00\n")
    assert fresh(customer).past_due_amount == Decimal("275.00")


def test_a_broker_that_cannot_be_reached_does_not_undo_the_booking(
    monkeypatch, django_capture_on_commit_callbacks
):
    from accounts import tasks

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.refresh_past_due, "delay", down)
    customer = CustomerFactory()
    invoice = new_invoice(customer, number="X-1", due_on=ON - dt.timedelta(days=5))
    payment = services.record_payment(
        amount="100", currency="USD", received_on=ON, customer=customer
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.allocate_many([(payment.pk, [(invoice.pk, Decimal("100"))])])
    assert Invoice.objects.get(pk=invoice.pk).open_balance == 0
    assert fresh(customer).past_due_amount == Decimal("100.00")  # until the night
