"""The matching engine, the review queue and the unapplied cash queue."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from accounts import services
from accounts.models import Activity, Allocation, Invoice, Payment
from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementLine
from integrations.models import MatchProposal
from integrations.reconciliation import matching
from tests.factories import TODAY, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def pay(amount, *, customer=None, currency="USD", remittance="") -> Payment:
    return services.record_payment(
        amount=amount,
        currency=currency,
        received_on=TODAY,
        customer=customer,
        remittance_reference=remittance,
        source="bank",
    )


def run(*payments) -> matching.Outcome:
    return matching.reconcile([p.pk for p in payments])


def invoice(customer, number, amount, *, days_ago=0, currency="USD") -> Invoice:
    due = TODAY - dt.timedelta(days=days_ago)
    return InvoiceFactory(
        customer=customer, number=number, amount=Decimal(amount), due_on=due, currency=currency
    )


def allocations(payment) -> list[tuple[str, Decimal, str]]:
    return sorted(
        (a.invoice.number, a.amount, a.rule)
        for a in Allocation.objects.filter(payment=payment).select_related("invoice")
    )


def test_invoice_number_and_exact_amount_books_with_full_confidence():
    customer = CustomerFactory()
    inv = invoice(customer, "INV-1001", "250.00")
    payment = pay("250.00", remittance="payment for inv-1001, thanks")  # payer unknown
    outcome = run(payment)
    assert (outcome.matched, outcome.by_rule) == (1, {"invoice_number": 1})
    assert allocations(payment) == [("INV-1001", Decimal("250.00"), "invoice_number")]
    inv.refresh_from_db()
    payment.refresh_from_db()
    assert inv.status == "paid" and payment.customer == customer  # the number named the payer
    entry = Activity.objects.get(invoice=inv, kind="allocation")
    assert entry.details["rule"] == "invoice_number"


def test_several_numbers_that_add_up_are_paid_together():
    customer = CustomerFactory()
    invoice(customer, "INV-1", "100.00", days_ago=20)
    invoice(customer, "INV-2", "50.00", days_ago=10)
    payment = pay("150.00", customer=customer, remittance="INV-1 INV-2")
    run(payment)
    assert allocations(payment) == [
        ("INV-1", Decimal("100.00"), "invoice_number"),
        ("INV-2", Decimal("50.00"), "invoice_number"),
    ]


def test_invoice_number_with_a_different_amount_books_at_095_and_leaves_credit():
    customer = CustomerFactory()
    inv = invoice(customer, "INV-2002", "100.00")
    payment = pay("120.00", customer=customer, remittance="INV-2002")
    outcome = run(payment)
    assert (outcome.partially_matched, outcome.by_rule) == (
        1,
        {"invoice_number_amount_differs": 1},
    )
    assert matching.RULES["invoice_number_amount_differs"] == Decimal("0.95")
    payment.refresh_from_db()
    inv.refresh_from_db()
    assert inv.status == "paid" and payment.unallocated_amount == Decimal("20.00")  # credit


def test_short_payment_quoting_a_number_pays_part_of_it():
    customer = CustomerFactory()
    inv = invoice(customer, "INV-3", "100.00")
    payment = pay("40.00", customer=customer, remittance="INV-3")
    assert run(payment).matched == 1
    inv.refresh_from_db()
    assert (inv.status, inv.open_balance) == ("partially_paid", Decimal("60.00"))


def test_number_of_another_customers_invoice_is_ignored_when_the_payer_is_known():
    payer, other = CustomerFactory(), CustomerFactory()
    invoice(other, "INV-9", "10.00")
    mine = invoice(payer, "INV-10", "10.00")
    payment = pay("10.00", customer=payer, remittance="INV-9")
    run(payment)
    assert allocations(payment) == [(mine.number, Decimal("10.00"), "exact_amount")]


def test_unique_exact_amount_books_at_09():
    customer = CustomerFactory()
    invoice(customer, "A-1", "80.00", days_ago=30)
    invoice(customer, "A-2", "75.50", days_ago=5)
    payment = pay("75.50", customer=customer, remittance="monthly payment")
    outcome = run(payment)
    assert outcome.by_rule == {"exact_amount": 1} and outcome.matched == 1
    assert allocations(payment) == [("A-2", Decimal("75.50"), "exact_amount")]


def test_two_invoices_with_the_same_amount_go_to_review():
    customer = CustomerFactory()
    invoice(customer, "B-1", "60.00", days_ago=30)
    invoice(customer, "B-2", "60.00", days_ago=5)
    payment = pay("60.00", customer=customer)
    outcome = run(payment)
    assert outcome.review == 1 and not Allocation.objects.exists()
    proposal = MatchProposal.objects.get()
    assert proposal.rule == "exact_amount_several"
    assert proposal.lines == [{"invoice": Invoice.objects.get(number="B-1").pk, "amount": "60.00"}]


def test_subset_sum_is_proposed_at_08_not_booked():
    customer = CustomerFactory()
    a = invoice(customer, "C-1", "30.00", days_ago=40)
    invoice(customer, "C-2", "45.00", days_ago=30)
    c = invoice(customer, "C-3", "70.00", days_ago=20)
    payment = pay("100.00", customer=customer)
    outcome = run(payment)
    assert (outcome.review, outcome.by_rule) == (1, {"subset_sum": 1})
    proposal = MatchProposal.objects.get(payment=payment)
    assert proposal.status == "pending" and proposal.confidence == Decimal("0.800")
    assert proposal.lines == [
        {"invoice": a.pk, "amount": "30.00"},
        {"invoice": c.pk, "amount": "70.00"},
    ]
    assert "add up" in proposal.explanation
    assert not Allocation.objects.exists()


def test_subset_sum_books_when_the_threshold_allows(settings):
    settings.RECONCILIATION_AUTO_BOOK_CONFIDENCE = "0.8"
    customer = CustomerFactory()
    invoice(customer, "D-1", "30.00", days_ago=40)
    invoice(customer, "D-2", "70.00", days_ago=20)
    payment = pay("100.00", customer=customer)
    assert run(payment).matched == 1
    assert [rule for *_x, rule in allocations(payment)] == ["subset_sum", "subset_sum"]


def test_oldest_first_is_proposed_with_low_confidence():
    customer = CustomerFactory()
    old = invoice(customer, "E-1", "100.00", days_ago=60)
    new = invoice(customer, "E-2", "100.00", days_ago=10)
    payment = pay("130.00", customer=customer)
    run(payment)
    proposal = MatchProposal.objects.get()
    assert (proposal.rule, proposal.confidence) == ("oldest_first", Decimal("0.600"))
    assert proposal.lines == [
        {"invoice": old.pk, "amount": "100.00"},
        {"invoice": new.pk, "amount": "30.00"},
    ]
    assert not Allocation.objects.exists()


def test_unknown_payer_without_numbers_stays_unmatched():
    invoice(CustomerFactory(), "F-1", "10.00")
    payment = pay("10.00", remittance="thank you")
    outcome = run(payment)
    assert outcome.unmatched == 1 and not MatchProposal.objects.exists()


def test_currency_mismatch_is_never_matched():
    customer = CustomerFactory()
    invoice(customer, "G-1", "100.00", currency="EUR")
    payment = pay("100.00", customer=customer, currency="USD", remittance="G-1")
    outcome = run(payment)
    assert outcome.unmatched == 1
    assert not Allocation.objects.exists() and not MatchProposal.objects.exists()


def test_two_payments_in_one_run_do_not_fill_the_same_invoice_twice():
    customer = CustomerFactory()
    invoice(customer, "H-1", "50.00")
    first = pay("50.00", customer=customer, remittance="H-1")
    second = pay("50.00", customer=customer, remittance="H-1")
    outcome = run(first, second)
    assert outcome.matched == 1 and outcome.unmatched == 1
    assert Allocation.objects.count() == 1


def test_reconcile_again_leaves_booked_and_pending_payments_alone():
    customer = CustomerFactory()
    invoice(customer, "J-1", "10.00", days_ago=5)
    invoice(customer, "J-2", "10.00", days_ago=1)
    payment = pay("10.00", customer=customer)
    run(payment)
    assert MatchProposal.objects.count() == 1
    outcome = run(payment)
    assert outcome.review == 0 and MatchProposal.objects.count() == 1


def test_import_books_numbers_and_queues_the_rest():
    customer = CustomerFactory(name="Kappa Foods")
    invoice(customer, "K-100", "40.00", days_ago=30)
    invoice(customer, "K-101", "25.00", days_ago=10)
    content = (
        b"date,amount,currency,name,reference\n"
        b"2026-11-20,40.00,USD,Kappa Foods,K-100\n"
        b"2026-11-20,10.00,USD,Kappa Foods,on account\n"
    )
    result = import_statement(content=content)
    assert result.summary() == {
        "lines": 2,
        "payments": 2,
        "matched": 1,
        "partially_matched": 0,
        "unmatched": 1,
        "duplicates": 0,
    }
    assert result.outcome.review == 1
    assert MatchProposal.objects.get().rule == "oldest_first"


# --- the admin ------------------------------------------------------------------------


@pytest.fixture
def proposal():
    customer = CustomerFactory()
    invoice(customer, "P-1", "30.00", days_ago=20)
    invoice(customer, "P-2", "70.00", days_ago=10)
    payment = pay("100.00", customer=customer)
    run(payment)
    return MatchProposal.objects.get(payment=payment)


def changelist_action(client, action, proposal):
    return client.post(
        "/admin/integrations/matchproposal/",
        {"action": action, "_selected_action": [proposal.pk]},
        follow=True,
    )


def test_finance_accepts_a_proposal_and_it_is_booked(client, finance, proposal):
    client.force_login(finance)
    response = changelist_action(client, "accept", proposal)
    assert response.status_code == 200
    proposal.refresh_from_db()
    assert proposal.status == "accepted" and proposal.decided_by == finance
    assert sorted(a.amount for a in Allocation.objects.filter(payment=proposal.payment)) == [
        Decimal("30.00"),
        Decimal("70.00"),
    ]
    assert set(Allocation.objects.values_list("rule", "created_by")) == {("subset_sum", finance.pk)}
    assert set(Invoice.objects.values_list("status", flat=True)) == {"paid"}


def test_accepting_rechecks_balances(client, finance, proposal):
    # Someone paid P-2 meanwhile: the proposal can no longer be booked as proposed.
    p2 = Invoice.objects.get(number="P-2")
    services.allocate(payment=pay("70.00", customer=p2.customer), invoice=p2)
    client.force_login(finance)
    response = changelist_action(client, "accept", proposal)
    assert "not booked" in response.content.decode()
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    assert not Allocation.objects.filter(payment=proposal.payment).exists()


def test_finance_rejects_a_proposal(client, finance, proposal):
    client.force_login(finance)
    changelist_action(client, "reject", proposal)
    proposal.refresh_from_db()
    assert proposal.status == "rejected" and not Allocation.objects.exists()


def test_agents_cannot_review_or_allocate(client, agent, proposal):
    client.force_login(agent)
    assert client.get("/admin/integrations/matchproposal/").status_code == 403
    changelist_action(client, "accept", proposal)
    proposal.refresh_from_db()
    assert proposal.status == "pending"
    assert client.get("/admin/integrations/matchproposal/unapplied/").status_code == 403
    url = f"/admin/integrations/matchproposal/unapplied/{proposal.payment_id}/"
    assert client.get(url).status_code == 403
    assert client.get("/admin/integrations/bankstatement/upload/").status_code == 403


def test_manager_sees_proposals_but_cannot_decide(client, manager, proposal):
    client.force_login(manager)
    assert client.get("/admin/integrations/matchproposal/").status_code == 200
    changelist_action(client, "accept", proposal)
    proposal.refresh_from_db()
    assert proposal.status == "pending"


def split_post(client, payment, rows):
    data = {
        "split-TOTAL_FORMS": str(len(rows)),
        "split-INITIAL_FORMS": "0",
        "split-MIN_NUM_FORMS": "0",
        "split-MAX_NUM_FORMS": "50",
    }
    for i, (number, amount) in enumerate(rows):
        data[f"split-{i}-invoice"] = number
        data[f"split-{i}-amount"] = amount
    return client.post(f"/admin/integrations/matchproposal/unapplied/{payment.pk}/", data)


def test_finance_splits_an_unapplied_payment_by_hand(client, finance):
    customer = CustomerFactory(name="Lambda Ltd")
    invoice(customer, "L-1", "100.00")
    invoice(customer, "L-2", "100.00")
    payment = pay("150.00", remittance="no reference")
    client.force_login(finance)
    queue = client.get("/admin/integrations/matchproposal/unapplied/")
    assert queue.status_code == 200 and "150.00" in queue.content.decode()
    page = client.get(f"/admin/integrations/matchproposal/unapplied/{payment.pk}/?q=lambda")
    assert page.status_code == 200 and "L-1" in page.content.decode()
    response = split_post(client, payment, [("L-1", "100.00"), ("L-2", "40.00"), ("", "")])
    assert response.status_code == 302
    assert allocations(payment) == [
        ("L-1", Decimal("100.00"), "manual"),
        ("L-2", Decimal("40.00"), "manual"),
    ]
    payment.refresh_from_db()
    assert payment.unallocated_amount == Decimal("10.00") and payment.customer == customer


def test_manual_split_errors_are_shown_and_nothing_is_booked(client, finance):
    customer = CustomerFactory()
    invoice(customer, "M-1", "100.00")
    invoice(customer, "M-2", "100.00")
    payment = pay("150.00", customer=customer)
    client.force_login(finance)
    # More than the payment holds, across two rows: the second allocation fails.
    response = split_post(client, payment, [("M-1", "100.00"), ("M-2", "100.00")])
    assert response.status_code == 200
    assert "Only 50.00 of this payment is unallocated" in response.content.decode()
    assert not Allocation.objects.exists()
    response = split_post(client, payment, [("NOPE-1", "10.00")])
    assert "No invoice NOPE-1 for this payer" in response.content.decode()


def test_finance_uploads_a_statement_from_the_admin(client, finance):
    client.force_login(finance)
    page = client.get("/admin/integrations/bankstatement/")
    assert page.status_code == 200 and "Import a statement" in page.content.decode()
    upload = SimpleUploadedFile(
        "s.csv", b"date,amount,currency,name,reference\n2026-11-20,5.00,USD,x,y\n"
    )
    response = client.post(
        "/admin/integrations/bankstatement/upload/", {"file": upload, "format": ""}
    )
    assert response.status_code == 302
    assert Payment.objects.filter(source="bank").count() == 1
    line_page = client.get("/admin/integrations/bankline/")
    assert line_page.status_code == 200 and "payment" in line_page.content.decode()
    broken = SimpleUploadedFile("b.xml", b"<Document><BkToCstmrStmt>")
    response = client.post("/admin/integrations/bankstatement/upload/", {"file": broken})
    assert response.status_code == 200 and "cannot be read" in response.content.decode()


def test_reconcile_command_matches_payments_recorded_before_their_invoice():
    customer = CustomerFactory()
    payment = pay("45.00", customer=customer, remittance="INV-LATE-1")
    assert run(payment).unmatched == 1  # the invoice is not loaded yet
    invoice(customer, "INV-LATE-1", "45.00")
    out = StringIO()
    call_command("reconcile", "--source", "bank", stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1]) == {
        "payments": 1,
        "matched": 1,
        "partially_matched": 0,
        "review": 0,
        "unmatched": 0,
    }


def test_payer_whose_quoted_invoice_was_just_filled_is_matched_on_its_other_invoices():
    customer = CustomerFactory()
    invoice(customer, "M-1", "100.00", days_ago=20)
    invoice(customer, "M-2", "100.00", days_ago=5)
    first = pay("100.00", customer=customer, remittance="M-1")
    second = pay("100.00", customer=customer, remittance="M-1 again")
    outcome = run(first, second)
    assert outcome.by_rule == {"invoice_number": 1, "exact_amount": 1} and outcome.matched == 2
    assert allocations(second) == [("M-2", Decimal("100.00"), "exact_amount")]


def _open(cents: list[int]) -> list[matching.OpenInvoice]:
    return [
        matching.OpenInvoice(
            pk, 1, f"N-{pk}", "USD", Decimal(c) / 100, TODAY + dt.timedelta(days=pk)
        )
        for pk, c in enumerate(cents, start=1)
    ]


def decide_for(amount: str, cents: list[int]) -> matching.Match:
    return matching.decide(
        amount=Decimal(amount),
        currency="USD",
        payer_id=1,
        words=set(),
        numbered={},
        open_by_customer={1: _open(cents)},
    )


def test_subset_sum_among_twenty_invoices_finds_up_to_six_and_no_more():
    cents = [10_000 + 101 * k for k in range(20)]  # 100.00, 101.01, ... all different
    six = sum(cents[:6])  # and no five or fewer add up to it
    match = decide_for(f"{six / 100:.2f}", cents)
    assert match.rule == "subset_sum" and len(match.lines) == 6
    assert sum(amount for _i, amount in match.lines) == Decimal(six) / 100
    seven = sum(cents[:7])  # only seven of the smallest add up to this
    assert decide_for(f"{seven / 100:.2f}", cents).rule == "oldest_first"
    assert decide_for("345.67", cents).rule == "oldest_first"  # nothing adds up


def test_subset_sum_prefers_fewest_then_oldest_invoices():
    match = decide_for("100.00", [2_000, 3_000, 5_000, 8_000, 7_000, 1_500, 8_500])
    assert [invoice.number for invoice, _a in match.lines] == ["N-1", "N-4"]


# --- what keeps reconciliation fast at a million invoices ----------------------------------


def _invoice_update_counts() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relname = 'accounts_invoice'"
        )
        row = cursor.fetchone()
    return row or (0, 0)


@pytest.mark.postgresql
def test_booking_payments_rewrites_no_invoice_index():
    """A balance update must be a HOT update: no index may name status, open_balance or
    updated_at (migration 0014), or every booking inserts into all the invoice indexes."""
    from django.db import connection

    customer = CustomerFactory()
    paid = invoice(customer, "INV-HOT-1", "100.00")
    part = invoice(customer, "INV-HOT-2", "80.00")
    payments = [pay("100.00", remittance="INV-HOT-1"), pay("30.00", remittance="INV-HOT-2")]
    updates_before, hot_before = _invoice_update_counts()

    outcome = run(*payments)

    assert outcome.matched + outcome.partially_matched == 2
    paid.refresh_from_db()
    part.refresh_from_db()
    assert (paid.status, part.status) == ("paid", "partially_paid")
    updates, hot = _invoice_update_counts()
    assert updates - updates_before >= 2
    assert hot - hot_before == updates - updates_before  # every one of them HOT
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = 'accounts_invoice'")
        assert "fillfactor=90" in cursor.fetchone()[0]


@pytest.mark.postgresql
def test_payer_lookup_by_bank_account_uses_the_counterparty_index():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    customer = CustomerFactory(name="Acme Rockets")
    import_statement(
        content=b"date,amount,currency,name,iban,reference\n"
        b"2026-11-20,10.00,USD,ACME ROCKETS,DE02120300000000202051,thanks\n",
        filename="first.csv",
        reconcile=False,
    )
    line = StatementLine(
        line_number=1,
        booked_on=TODAY,
        amount=Decimal("5.00"),
        currency="USD",
        counterparty_name="Someone else",
        counterparty_account="DE02120300000000202051",
    )

    with CaptureQueriesContext(connection) as queries:
        assert matching.identify_payers([line]) == [customer.pk]

    [lookup] = [q["sql"] for q in queries if "integrations_bankline" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + lookup)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "bank_line_counterparty" in plan
