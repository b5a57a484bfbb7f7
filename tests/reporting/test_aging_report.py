"""The aging report against hand-computed figures: buckets, dates, currencies, groups, filters."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services
from accounts.models import Activity, Customer, Invoice, Payment
from cases.models import Task
from dunning.models import Notice, Step
from reporting.aging import (
    AgingReport,
    Filters,
    bucket_of,
    customer_rows,
    invoice_rows,
    make_buckets,
    parse_edges,
    summary,
)
from reporting.ledger import invoice_balances_as_of
from tests.factories import (
    ActivityFactory,
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal
AS_OF = dt.date(2026, 11, 23)


def invoice_due(customer, days_past_due, amount, *, as_of=AS_OF, **kwargs):
    due_on = as_of - dt.timedelta(days=days_past_due)
    return InvoiceFactory(
        customer=customer,
        due_on=due_on,
        issued_on=due_on - dt.timedelta(days=30),
        amount=D(amount),
        currency=kwargs.pop("currency", customer.currency),
        **kwargs,
    )


def pay(invoice, amount, on, *, kind=Payment.Kind.PAYMENT):
    payment = services.record_payment(
        amount=amount, currency=invoice.currency, received_on=on, customer=invoice.customer,
        kind=kind,
    )  # fmt: skip
    services.allocate(payment=payment, invoice=invoice, amount=amount, on=on)
    return payment


def by_bucket(amounts, report):
    return {bucket.key: value for bucket, value in zip(report.buckets, amounts, strict=True)}


def test_bucket_boundaries_day_zero_is_current_day_one_is_late():
    customer = CustomerFactory()
    # Powers of two, so every bucket's sum names exactly the invoices in it.
    days = [-5, 0, 1, 30, 31, 60, 61, 90, 91, 120, 121, 500]
    for power, day in enumerate(days):
        invoice_due(customer, day, 2**power)
    report = AgingReport(as_of=AS_OF)
    [row] = list(customer_rows(report))
    assert by_bucket(row.buckets, report) == {
        "current": D(1 + 2),  # day -5 and day 0 (the due date itself)
        "1-30": D(4 + 8),  # days 1 and 30
        "31-60": D(16 + 32),
        "61-90": D(64 + 128),
        "91-120": D(256 + 512),
        "120+": D(1024 + 2048),  # day 121 and day 500
    }
    assert row.total == D(4095)
    assert row.invoices == 12
    [total] = summary(report).totals.values()
    assert total.buckets == row.buckets and total.total == D(4095)


def test_custom_bucket_edges_per_report_and_from_settings(settings):
    customer = CustomerFactory()
    for power, day in enumerate([0, 1, 15, 16, 45, 46]):
        invoice_due(customer, day, 2**power)
    report = AgingReport(as_of=AS_OF, edges=(15, 45))
    assert [b.label for b in report.buckets] == ["Current", "1-15", "16-45", "Over 45"]
    [row] = list(customer_rows(report))
    assert row.buckets == [D(1), D(2 + 4), D(8 + 16), D(32)]
    settings.AGING_BUCKET_EDGES = "7"
    report = AgingReport(as_of=AS_OF)
    assert report.edges == (7,)
    assert summary(report).totals["USD"].buckets == [D(1), D(2), D(4 + 8 + 16 + 32)]


@pytest.mark.parametrize("edges", ["", "30,20", "0,30", "a,b", "30,30"])
def test_bad_bucket_edges_are_refused(edges):
    with pytest.raises(ValidationError):
        parse_edges(edges)


def test_default_buckets_match_the_ledger_buckets():
    from accounts.aging import BUCKETS

    assert [(b.key, b.first_day, b.last_day) for b in make_buckets((30, 60, 90, 120))] == [
        (b.key, b.first_day, b.last_day) for b in BUCKETS
    ]


def test_past_report_reproduces_after_later_payments_credit_notes_and_refunds():
    customer = CustomerFactory()
    a = invoice_due(customer, 0, "1000.00", as_of=dt.date(2026, 9, 30))  # due 30 Sep
    b = invoice_due(customer, 0, "400.00", as_of=dt.date(2026, 10, 31))  # due 31 Oct
    pay(a, "250.00", dt.date(2026, 9, 15))  # partial, before the quarter end
    quarter_end = AgingReport(as_of=dt.date(2026, 9, 30))
    before = [(r.buckets, r.total) for r in customer_rows(quarter_end)]
    # After the quarter: a credit note and a payment, then a refund of part of it.
    pay(a, "300.00", dt.date(2026, 10, 5), kind=Payment.Kind.CREDIT_NOTE)
    late = pay(a, "450.00", dt.date(2026, 10, 20))
    pay(b, "400.00", dt.date(2026, 11, 2))
    services.refund_payment(payment=late, amount="50.00", on=dt.date(2026, 11, 10))

    assert [(r.buckets, r.total) for r in customer_rows(quarter_end)] == before
    # Hand-computed: on 30 Sep only A (due that day: current) with 1000 - 250 = 750 open;
    # B was issued 1 Oct, after the report date.
    assert before == [([D("750.00"), *[D("0.00")] * 5], D("750.00"))]
    # 31 Oct: A 750 - 300 - 450 = 0 (paid); B 400 due that day.
    [row] = list(customer_rows(AgingReport(as_of=dt.date(2026, 10, 31))))
    assert (row.buckets[0], row.total, row.oldest_invoice_number) == (D(400), D(400), b.number)
    # Today: B paid; A reopened by the 50.00 refund, 54 days past due (31-60).
    [row] = list(customer_rows(AgingReport(as_of=AS_OF)))
    assert row.total == D("50.00") and row.buckets[2] == D("50.00")
    a.refresh_from_db()
    assert a.open_balance == D("50.00")


def test_currencies_are_reported_apart_and_never_added():
    customer = CustomerFactory()
    invoice_due(customer, 10, "100.00")
    invoice_due(customer, 40, "70.00", currency="EUR")
    other = CustomerFactory(currency="EUR")
    invoice_due(other, 5, "30.00")
    report = AgingReport(as_of=AS_OF)
    rows = {(r.name, r.currency): r.total for r in customer_rows(report)}
    assert rows == {
        (customer.name, "USD"): D("100.00"),
        (customer.name, "EUR"): D("70.00"),
        (other.name, "EUR"): D("30.00"),
    }
    totals = summary(report, count_customers=True).totals
    assert list(totals) == ["EUR", "USD"]
    assert totals["EUR"].total == D("100.00") and totals["EUR"].customers == 2
    assert totals["EUR"].buckets[1:3] == [D("30.00"), D("70.00")]
    assert totals["USD"].total == D("100.00") and totals["USD"].customers == 1


def test_grouping_gives_subtotals_per_group_and_currency():
    agent = UserFactory(username="sam")
    big = CustomerFactory(segment=Customer.Segment.STRATEGIC, assigned_agent=agent)
    small = CustomerFactory(segment=Customer.Segment.STANDARD, industry="Retail")
    also = CustomerFactory(segment=Customer.Segment.STANDARD, industry="Retail", country="DE")
    invoice_due(big, 100, "900.00")
    invoice_due(small, 10, "20.00")
    invoice_due(small, 0, "5.00")
    invoice_due(also, 35, "40.00")
    invoice_due(also, 35, "60.00", currency="EUR")

    by_segment = summary(AgingReport(as_of=AS_OF, group_by="segment"), count_customers=True)
    got = {
        (g.group_label, g.currency): (g.total, g.customers, g.invoices) for g in by_segment.groups
    }
    assert got == {
        ("Standard", "EUR"): (D("60.00"), 1, 1),
        ("Standard", "USD"): (D("65.00"), 2, 3),
        ("Strategic", "USD"): (D("900.00"), 1, 1),
    }
    standard_usd = by_segment.subtotals("standard")[1]
    assert standard_usd.buckets == [D(5), D(20), D(40), D(0), D(0), D(0)]
    assert by_segment.totals["USD"].total == D("965.00")
    # Without customer counts the summary is one aggregate over the invoices: same amounts.
    quick = summary(AgingReport(as_of=AS_OF, group_by="segment"))
    assert [(g.group_key, g.currency, g.buckets, g.invoices) for g in quick.groups] == [
        (g.group_key, g.currency, g.buckets, g.invoices) for g in by_segment.groups
    ]
    assert {g.customers for g in quick.groups} == {None} and quick.customer_count is None

    by_agent = summary(AgingReport(as_of=AS_OF, group_by="agent"))
    assert {(g.group_label, g.currency): g.total for g in by_agent.groups} == {
        ("Unassigned", "EUR"): D("60.00"),
        ("Unassigned", "USD"): D("65.00"),
        ("sam", "USD"): D("900.00"),
    }
    by_country = summary(AgingReport(as_of=AS_OF, group_by="country"))
    assert {(g.group_key, g.currency): g.total for g in by_country.groups} == {
        ("DE", "EUR"): D("60.00"),
        ("DE", "USD"): D("40.00"),
        ("US", "USD"): D("925.00"),
    }
    by_industry = summary(AgingReport(as_of=AS_OF, group_by="industry"))
    assert {(g.group_label, g.currency): g.total for g in by_industry.groups} == {
        ("(none)", "USD"): D("900.00"),
        ("Retail", "EUR"): D("60.00"),
        ("Retail", "USD"): D("65.00"),
    }
    # Customer rows come in group order, largest first within a group and currency.
    rows = list(customer_rows(AgingReport(as_of=AS_OF, group_by="segment")))
    assert [(r.group_key, r.currency, r.total) for r in rows] == [
        ("standard", "EUR", D("60.00")),
        ("standard", "USD", D("40.00")),
        ("standard", "USD", D("25.00")),
        ("strategic", "USD", D("900.00")),
    ]


def test_filters_segment_agent_currency_and_minimum_balance():
    agent = UserFactory(username="kim")
    mine = CustomerFactory(segment=Customer.Segment.HIGH_RISK, assigned_agent=agent)
    other = CustomerFactory(segment=Customer.Segment.HIGH_RISK)
    third = CustomerFactory()
    invoice_due(mine, 3, "10.00")
    invoice_due(mine, 3, "15.00")
    invoice_due(mine, 3, "500.00", currency="EUR")
    invoice_due(other, 3, "24.99")
    invoice_due(third, 3, "1000.00")

    def totals(**filters):
        report = AgingReport(as_of=AS_OF, filters=Filters(**filters))
        rows = {(r.name, r.currency): r.total for r in customer_rows(report)}
        assert {c: t.total for c, t in summary(report).totals.items()} == _sum_by_currency(rows)
        return rows

    assert set(totals(segment="high_risk")) == {
        (mine.name, "USD"), (mine.name, "EUR"), (other.name, "USD")
    }  # fmt: skip
    assert set(totals(agent_id=agent.pk)) == {(mine.name, "USD"), (mine.name, "EUR")}
    assert totals(currency="EUR") == {(mine.name, "EUR"): D("500.00")}
    # The minimum applies to the customer's total in one currency: 25.00 passes, 24.99 not.
    assert totals(min_balance=D("25.00"), currency="USD") == {
        (mine.name, "USD"): D("25.00"),
        (third.name, "USD"): D("1000.00"),
    }
    report = AgingReport(as_of=AS_OF, filters=Filters(min_balance=D("25.00")), detail=True)
    assert sorted(r.number for r in invoice_rows(report)) == sorted(
        Invoice.objects.exclude(customer=other).values_list("number", flat=True)
    )


def _sum_by_currency(rows):
    result = {}
    for (_name, currency), total in rows.items():
        result[currency] = result.get(currency, D(0)) + total
    return result


def test_customer_row_carries_the_account_details():
    agent = UserFactory(username="alex")
    customer = CustomerFactory(
        name="Acme Ltd",
        segment=Customer.Segment.STRATEGIC,
        industry="Retail",
        credit_limit=D("5000.00"),
        currency="USD",
        assigned_agent=agent,
    )
    ContactFactory(customer=customer, name="Pat AP", email="pat@acme.test", is_primary=True)
    ContactFactory(customer=customer, name="Not primary")
    oldest = invoice_due(customer, 75, "100.00")
    invoice_due(customer, 75, "50.00", status=Invoice.Status.DISPUTED)
    invoice_due(customer, 10, "30.00")
    when = timezone.make_aware(dt.datetime(2026, 11, 20, 15, 0))
    ActivityFactory(
        customer=customer,
        kind=Activity.Kind.CALL,
        outcome=Activity.CallOutcome.PROMISE_TO_PAY,
        occurred_at=when,
    )
    ActivityFactory(customer=customer, kind=Activity.Kind.NOTE, occurred_at=when.replace(hour=16))
    ActivityFactory(  # after the report date: not the last contact as of then
        customer=customer, kind=Activity.Kind.EMAIL, occurred_at=when + dt.timedelta(days=5)
    )
    step = Step.objects.filter(channel="email").first()
    Notice.objects.create(customer=customer, step=step, channel="email", planned_on=AS_OF)
    Notice.objects.create(
        customer=customer, step=step, channel="email", planned_on=dt.date(2026, 11, 1),
        status=Notice.Status.SENT,
    )  # fmt: skip
    Task.objects.create(
        customer=customer,
        kind=Task.Kind.CALL,
        title="Call about the promise",
        due_at=timezone.make_aware(dt.datetime(2026, 11, 22, 9, 0)),
    )
    [row] = list(customer_rows(AgingReport(as_of=AS_OF)))
    assert (row.oldest_invoice_number, row.oldest_due_on, row.oldest_days_past_due) == (
        oldest.number,
        oldest.due_on,
        75,
    )
    assert (row.total, row.disputed, row.invoices) == (D("180.00"), D("50.00"), 3)
    assert (row.credit_limit, row.credit_limit_currency) == (D("5000.00"), "USD")
    assert (row.segment, row.industry, row.agent) == ("strategic", "Retail", "alex")
    assert (row.contact_name, row.contact_email) == ("Pat AP", "pat@acme.test")
    assert row.contact_phone == "+14155550123"
    assert (row.last_contact_on, row.last_contact) == (
        dt.date(2026, 11, 20),
        "Call: Promise to pay",
    )
    # The open task (22 Nov) comes before the planned notice (23 Nov).
    assert (row.next_action_on, row.next_action) == (
        dt.date(2026, 11, 22),
        "Task: Call about the promise",
    )
    Task.objects.update(status=Task.Status.DONE, completed_at=timezone.now())
    [row] = list(customer_rows(AgingReport(as_of=AS_OF)))
    assert row.next_action_on == AS_OF and row.next_action.startswith("Notice: ")


def test_limit_keeps_the_largest_balances():
    for amount in ["10.00", "30.00", "20.00"]:
        invoice_due(CustomerFactory(), 1, amount)
    rows = list(customer_rows(AgingReport(as_of=AS_OF), limit=2))
    assert [r.total for r in rows] == [D("30.00"), D("20.00")]


def test_invoice_detail_rows_match_the_customer_rows():
    customer = CustomerFactory()
    invoice_due(customer, 31, "10.00")
    invoice_due(customer, -3, "5.00")
    invoice_due(customer, 200, "1.00", status=Invoice.Status.CANCELLED)
    report = AgingReport(as_of=AS_OF, detail=True)
    lines = list(invoice_rows(report))
    assert [(line.days_past_due, line.bucket.key, line.balance) for line in lines] == [
        (31, "31-60", D("10.00")),
        (-3, "current", D("5.00")),
    ]
    assert {line.customer_total for line in lines} == {D("15.00")}


# --- Against the ledger's per-invoice balances ---------------------------------------------


def expected_summary(report, *, with_customers=True):
    """{(group_key, currency): (buckets, total, disputed, invoices, customers)}, computed in
    Python from `invoice_balances_as_of` (a subquery per invoice, not the report's SQL)."""
    filters = report.filters
    invoices = [
        invoice
        for invoice in invoice_balances_as_of(report.as_of).select_related(
            "customer__assigned_agent"
        )
        if (not filters.currency or invoice.currency == filters.currency)
        and (not filters.segment or invoice.customer.segment == filters.segment)
        and (filters.agent_id is None or invoice.customer.assigned_agent_id == filters.agent_id)
    ]
    customer_totals = {}
    for invoice in invoices:
        key = (invoice.customer_id, invoice.currency)
        customer_totals[key] = customer_totals.get(key, D(0)) + invoice.balance_as_of
    if filters.min_balance is not None:
        invoices = [
            i
            for i in invoices
            if customer_totals[(i.customer_id, i.currency)] >= filters.min_balance
        ]
    keys = {
        "": lambda customer: "",
        "segment": lambda customer: customer.segment,
        "agent": lambda customer: (
            customer.assigned_agent.username if customer.assigned_agent else ""
        ),
    }
    expected = {}
    for invoice in invoices:
        key = (keys[report.group_by](invoice.customer), invoice.currency)
        buckets, total, disputed, count, customers = expected.get(
            key, ([D(0)] * len(report.buckets), D(0), D(0), 0, set())
        )
        index = report.buckets.index(
            bucket_of(report.buckets, (report.as_of - invoice.due_on).days)
        )
        buckets[index] += invoice.balance_as_of
        disputed += invoice.balance_as_of if invoice.status == Invoice.Status.DISPUTED else 0
        customers.add(invoice.customer_id)
        expected[key] = (buckets, total + invoice.balance_as_of, disputed, count + 1, customers)
    return {
        key: (buckets, total, disputed, count, len(customers) if with_customers else None)
        for key, (buckets, total, disputed, count, customers) in expected.items()
    }


def got_summary(report, **kwargs):
    return {
        (g.group_key, g.currency): (g.buckets, g.total, g.disputed, g.invoices, g.customers)
        for g in summary(report, **kwargs).groups
    }


@pytest.fixture
def book_with_later_activity():
    """Three customers, two currencies; payments, a credit note, a refund, a write-off and a
    backdated payment dated after (or around) 31 Aug, the past report date below."""
    agent = UserFactory(username="robin")
    acme = CustomerFactory(segment=Customer.Segment.STRATEGIC, assigned_agent=agent)
    bolt = CustomerFactory(segment=Customer.Segment.STANDARD)
    euro = CustomerFactory(segment=Customer.Segment.STANDARD, currency="EUR")
    quarter_end = dt.date(2026, 8, 31)
    # Paid in full in October: open on 31 Aug, not today.
    paid_later = invoice_due(acme, 20, "1000.00", as_of=quarter_end)
    pay(paid_later, "1000.00", dt.date(2026, 10, 2))
    # Partly paid before, a credit note after, then half of a payment refunded.
    partial = invoice_due(acme, 95, "800.00", as_of=quarter_end)
    pay(partial, "100.00", dt.date(2026, 8, 1))
    pay(partial, "300.00", dt.date(2026, 9, 10), kind=Payment.Kind.CREDIT_NOTE)
    refunded = pay(partial, "400.00", dt.date(2026, 9, 20))
    services.refund_payment(payment=refunded, amount="150.00", on=dt.date(2026, 10, 1))
    # Disputed and still open; another invoice written off in September.
    invoice_due(acme, 40, "250.00", as_of=quarter_end, status=Invoice.Status.DISPUTED)
    written_off = invoice_due(bolt, 130, "90.00", as_of=quarter_end)
    pay(written_off, "90.00", dt.date(2026, 9, 30), kind=Payment.Kind.WRITE_OFF)
    Invoice.objects.filter(pk=written_off.pk).update(status=Invoice.Status.WRITTEN_OFF)
    # Paid on time, refunded in part after the date, then paid again with a payment dated
    # before the refund: on 31 Aug its balance is 100 - 100 - 40 < 0, so it is not open.
    backdated = invoice_due(bolt, 10, "100.00", as_of=quarter_end)
    first = pay(backdated, "100.00", dt.date(2026, 8, 25))
    services.refund_payment(payment=first, amount="40.00", on=dt.date(2026, 9, 15))
    pay(backdated, "40.00", dt.date(2026, 8, 28))
    # Euro: one open, one issued after the date (not in the past report).
    invoice_due(euro, 0, "500.00", as_of=quarter_end)
    invoice_due(euro, -60, "700.00", as_of=quarter_end)
    return {"as_of": quarter_end, "agent": agent, "acme": acme, "bolt": bolt, "euro": euro}


@pytest.mark.parametrize("group_by", ["", "segment", "agent"])
def test_past_summary_matches_the_ledger_balances_after_later_allocations(
    book_with_later_activity, group_by
):
    as_of = book_with_later_activity["as_of"]
    report = AgingReport(as_of=as_of, group_by=group_by)
    expected = expected_summary(report)
    assert got_summary(report, count_customers=True) == expected
    assert got_summary(report) == {key: (*values[:4], None) for key, values in expected.items()}
    # Hand-checked totals on 31 Aug: USD 1000 + (800 - 100) + 250 + 90 = 2040; EUR 500.
    assert {c: t.total for c, t in summary(report).totals.items()} == {
        "EUR": D("500.00"),
        "USD": D("2040.00"),
    }
    # The customer rows add up to the same figures.
    rows = list(customer_rows(report))
    assert sum(r.total for r in rows if r.currency == "USD") == D("2040.00")
    assert sum(r.invoices for r in rows) == summary(report).invoice_count == 5


def test_todays_summary_matches_the_ledger_balances(book_with_later_activity):
    report = AgingReport(as_of=AS_OF, group_by="segment")
    assert got_summary(report, count_customers=True) == expected_summary(report)
    # Today: the refunded 150 reopened `partial` (800 - 100 - 300 - 400 + 150); the disputed
    # 250 and both euro invoices are open; everything else is paid or written off.
    assert {c: t.total for c, t in summary(report).totals.items()} == {
        "EUR": D("1200.00"),
        "USD": D("400.00"),
    }


@pytest.mark.parametrize("as_of", [dt.date(2026, 8, 31), AS_OF])
@pytest.mark.parametrize("group_by", ["", "segment", "agent"])
def test_minimum_balance_applies_per_customer_and_currency(
    book_with_later_activity, as_of, group_by
):
    acme, euro = book_with_later_activity["acme"], book_with_later_activity["euro"]
    invoice_due(acme, 5, "450.00", currency="EUR", as_of=as_of)  # acme's euros: 450 only
    invoice_due(euro, 5, "60.00", currency="USD", as_of=as_of)  # euro's dollars: 60 only
    for minimum in ["0.01", "450.00", "450.01", "500.00", "2040.00", "5000.00"]:
        report = AgingReport(
            as_of=as_of, group_by=group_by, filters=Filters(min_balance=D(minimum))
        )
        expected = expected_summary(report)
        assert got_summary(report) == expected, minimum
        rows = {(r.customer_id, r.currency): r.total for r in customer_rows(report)}
        assert all(total >= D(minimum) for total in rows.values())
        assert len(rows) == sum(values[4] for values in expected.values())
        lines = list(invoice_rows(report))
        assert {(line.customer_id, line.currency) for line in lines} == set(rows)
        assert sum(line.balance for line in lines) == sum(rows.values())
    # On 31 Aug acme owes 2040 in dollars (today 400): above 1,000 only in the past.
    report = AgingReport(as_of=as_of, filters=Filters(min_balance=D("1000.00")))
    assert {(c, t.customers) for c, t in summary(report).totals.items()} == (
        {("USD", 1)} if as_of < AS_OF else {("EUR", 1)}
    )


def test_minimum_balance_with_segment_and_agent_filters(book_with_later_activity):
    as_of = book_with_later_activity["as_of"]
    agent = book_with_later_activity["agent"]
    for filters in [
        Filters(min_balance=D("100.00"), segment="standard"),
        Filters(min_balance=D("100.00"), agent_id=agent.pk),
        Filters(min_balance=D("100.00"), currency="EUR"),
        Filters(min_balance=D("100.00"), segment="strategic", currency="USD"),
    ]:
        for group_by in ["", "agent"]:
            report = AgingReport(as_of=as_of, group_by=group_by, filters=filters)
            assert got_summary(report) == expected_summary(report), filters


def test_the_minimum_balance_plan_setting_stays_inside_its_query(book_with_later_activity):
    """summary() sets parallel_tuple_cost for the minimum-balance query only, then puts
    the caller's value back, inside the caller's transaction too."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL planner settings")
    from reporting.aging import planner_settings

    def setting():
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('parallel_tuple_cost')")
            return cursor.fetchone()[0]

    before = setting()
    with planner_settings(parallel_tuple_cost="0.02"):
        assert setting() == "0.02"
    assert setting() == before
    with pytest.raises(ZeroDivisionError), planner_settings(parallel_tuple_cost="0.03"):
        assert setting() == "0.03"
        raise ZeroDivisionError
    assert setting() == before
    report = AgingReport(
        as_of=book_with_later_activity["as_of"], filters=Filters(min_balance=D("100.00"))
    )
    assert got_summary(report) == expected_summary(report)
    assert setting() == before
