"""The managers' dashboard: who sees it, what it shows, where its links lead, what it costs."""

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts import services
from accounts.models import Activity, Customer, Payment
from cases.models import PromiseToPay
from reporting import dashboard
from tests.factories import ActivityFactory, CustomerFactory, InvoiceFactory, UserFactory
from tests.reporting.test_kpis import make_step, notice, on, pay

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/admin/reporting/dashboard/"


def days_ago(n: int) -> dt.date:
    return timezone.localdate() - dt.timedelta(days=n)


def small_portfolio(customers: int = 3, *, agent=None) -> None:
    """A few customers with an invoice in each bucket, payments, calls and notices."""
    agent = agent or UserFactory(username="ann", role="Collections agent")
    step = make_step("Standard plus", "reminder-plus", 7)
    for n in range(customers):
        customer = CustomerFactory(
            assigned_agent=agent, currency="EUR", segment=Customer.Segment.STANDARD
        )
        invoices = [
            InvoiceFactory(
                customer=customer,
                currency="EUR",
                amount=D("100.00") + n,
                due_on=days_ago(days),
                issued_on=days_ago(days + 30),
            )
            for days in (-3, 5, 45, 75, 100, 150)
        ]
        pay(invoices[1], "20.00", days_ago(2))
        services.log_call(customer=customer, outcome="reached", by=agent)
        notice(customer, step, [invoices[2]], sent_on=days_ago(20))


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


# --- who sees it ---------------------------------------------------------------------------


def test_a_manager_sees_every_section(client_for, manager):
    small_portfolio()
    response = client_for(manager).get(URL)
    assert response.status_code == 200
    page = response.content.decode()
    for section in [
        "key-figures",
        "aging",
        "trends",
        "cash-forecast",
        "largest",
        "crossing",
        "team",
        "campaigns",
    ]:
        assert f'id="{section}"' in page, section
    # Four charts, drawn on the server: the aging bars, the two trends, the cash forecast.
    assert len(re.findall(r'<svg [^>]*class="chart"', page)) == 4
    assert "Aging distribution, EUR" in page
    assert "DSO at each month end, EUR" in page
    assert "<script" not in page.split('id="content"')[1]  # no JavaScript needed


def test_a_superuser_sees_it(client_for, superuser):
    assert client_for(superuser).get(URL).status_code == 200


def test_an_agent_is_refused(client_for, agent):
    assert client_for(agent).get(URL).status_code == 403


def test_finance_is_refused_until_given_the_dashboard_permission(client_for, finance):
    assert client_for(finance).get(URL).status_code == 403


def test_anyone_holding_the_dashboard_permission_sees_it(client_for, finance, monkeypatch):
    # The permission a reporting model may define; here any existing one stands in for it.
    permission = Permission.objects.get(codename="view_invoice")
    monkeypatch.setattr(dashboard, "DASHBOARD_PERMISSION", "accounts.view_invoice")
    finance.user_permissions.add(permission)
    assert client_for(finance).get(URL).status_code == 200


def test_anonymous_and_non_staff_users_are_sent_to_the_login_page(client, client_for):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    outsider = UserFactory(username="outsider", is_staff=False, role="Collections manager")
    response = client_for(outsider).get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


# --- what it shows -------------------------------------------------------------------------


def test_links_lead_to_filtered_admin_lists_that_open(client_for, manager):
    small_portfolio()
    client = client_for(manager)
    page = client.get(URL).content.decode()
    links = {html.unescape(href) for href in re.findall(r'href="(/admin/[^"#]+)"', page)}
    expected_kinds = [
        "/admin/accounts/invoice/?bucket=",
        "customer__segment__exact=standard",
        "/admin/accounts/invoice/?customer__id__exact=",
        "/admin/accounts/activity/?actor__id__exact=",
        "/admin/accounts/customer/?agent=",
        "/admin/dunning/notice/?step__id__exact=",
    ]
    for kind in expected_kinds:
        assert any(kind in link for link in links), kind
    for link in sorted(links):
        if "?" not in link and "/change/" not in link:
            continue  # the admin's own navigation
        response = client.get(link)
        # A filter the list does not know redirects to "?e=1"; every link must just open.
        assert response.status_code == 200, link


def test_the_currency_can_be_switched_and_an_unknown_one_falls_back(client_for, manager):
    small_portfolio()
    InvoiceFactory(currency="USD", amount=D("70.00"), due_on=days_ago(40))
    client = client_for(manager)
    assert "Aging distribution, USD" in client.get(URL + "?currency=USD").content.decode()
    # EUR has the most open invoices, so it is the default and the fallback.
    assert "Aging distribution, EUR" in client.get(URL + "?currency=XXX").content.decode()
    assert "Aging distribution, EUR" in client.get(URL).content.decode()


def test_an_empty_ledger_renders(client_for, manager):
    response = client_for(manager).get(URL)
    assert response.status_code == 200
    assert "Nothing is past due." in response.content.decode()


def test_key_figures_show_the_selected_currency(client_for, manager):
    today = timezone.localdate()
    customer = CustomerFactory()
    # Issued and due 40 days ago, unpaid: 250.00 open, all of it past due.
    InvoiceFactory(
        customer=customer,
        currency="CHF",
        amount=D("250.00"),
        issued_on=today - dt.timedelta(days=40),
        due_on=today - dt.timedelta(days=40),
    )
    page = client_for(manager).get(URL + "?currency=CHF&days=90").content.decode()
    figures = page.split('id="key-figures"')[1].split("</table>")[0]
    assert re.search(r"Receivables</th><td[^>]*>250\.00<", figures)
    assert re.search(r"Past due</th><td[^>]*><a [^>]*>250\.00<", figures)
    # 90 days of sales: the one invoice, 250; DSO, simple = 250 / 250 x 90 = 90.0.
    assert re.search(r"DSO, simple \(days\)</th><td[^>]*>90\.0<", figures)


def test_names_are_escaped(client_for, manager):
    evil = CustomerFactory(name='<img src=x onerror="alert(1)">')
    InvoiceFactory(customer=evil, currency="EUR", due_on=days_ago(10))
    page = client_for(manager).get(URL).content.decode()
    assert '<img src=x onerror="alert(1)">' not in page
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


def test_aging_distribution_per_currency_segment_and_bucket():
    as_of = dt.date(2026, 6, 30)
    strategic = CustomerFactory(segment=Customer.Segment.STRATEGIC)
    standard = CustomerFactory(segment=Customer.Segment.STANDARD)

    def invoice(customer, amount, due_on, currency="EUR"):
        return InvoiceFactory(
            customer=customer,
            currency=currency,
            amount=D(amount),
            due_on=due_on,
            issued_on=due_on - dt.timedelta(days=30),
        )

    invoice(strategic, "100.00", as_of)  # day 0: current
    invoice(strategic, "50.00", as_of - dt.timedelta(days=1))  # day 1: 1-30
    partly = invoice(standard, "80.00", as_of - dt.timedelta(days=31))  # 31-60
    pay(partly, "30.00", dt.date(2026, 6, 1))  # 50 left
    invoice(standard, "40.00", as_of - dt.timedelta(days=121))  # over 120
    invoice(standard, "999.00", as_of - dt.timedelta(days=5), currency="USD")
    aging = dashboard.aging_distribution(as_of)
    assert sorted(aging) == ["EUR", "USD"]
    assert aging["EUR"].by_segment == {
        "strategic": [D("100"), D("50"), D("0"), D("0"), D("0"), D("0")],
        "standard": [D("0"), D("0"), D("50"), D("0"), D("0"), D("40")],
    }
    assert aging["EUR"].total == D("240")
    assert aging["USD"].bucket_totals == [D("0"), D("999"), D("0"), D("0"), D("0"), D("0")]


def test_the_largest_past_due_accounts_come_first_per_currency():
    as_of = dt.date(2026, 6, 30)
    small, big, mixed = (CustomerFactory(name=name) for name in ("Small", "Big", "Mixed"))
    past = as_of - dt.timedelta(days=10)
    InvoiceFactory(customer=small, currency="EUR", amount=D("100.00"), due_on=past)
    InvoiceFactory(customer=big, currency="EUR", amount=D("300.00"), due_on=past)
    InvoiceFactory(
        customer=big, currency="EUR", amount=D("200.00"), due_on=as_of - dt.timedelta(days=70)
    )
    InvoiceFactory(customer=big, currency="EUR", amount=D("5000.00"), due_on=as_of)  # not late
    partly = InvoiceFactory(customer=mixed, currency="EUR", amount=D("450.00"), due_on=past)
    pay(partly, "100.00", dt.date(2026, 6, 25))
    InvoiceFactory(customer=mixed, currency="USD", amount=D("9000.00"), due_on=past)
    rows = dashboard.largest_past_due(as_of, "EUR")
    # Big: 300 + 200 = 500; Mixed: 450 - 100 = 350 (its USD is not added); Small: 100.
    assert [(row.customer.name, row.amount, row.invoices) for row in rows] == [
        ("Big", D("500.00"), 2),
        ("Mixed", D("350.00"), 1),
        ("Small", D("100.00"), 1),
    ]
    assert rows[0].oldest_due_on == as_of - dt.timedelta(days=70)
    assert [row.customer.name for row in dashboard.largest_past_due(as_of, "USD")] == ["Mixed"]
    assert len(dashboard.largest_past_due(as_of, "EUR", limit=2)) == 2


def test_accounts_crossing_into_the_next_bucket_within_seven_days():
    as_of = dt.date(2026, 6, 30)
    by_days = {}
    for days in (-7, -6, 0, 23, 24, 30, 31, 120, 121):
        customer = CustomerFactory(name=f"dpd {days}")
        InvoiceFactory(
            customer=customer,
            currency="EUR",
            amount=D("100.00") + days,  # distinct amounts: a stable order
            due_on=as_of - dt.timedelta(days=days),
            issued_on=as_of - dt.timedelta(days=days + 30),
        )
    rows = dashboard.crossing_next_bucket(as_of, "EUR")
    for row in rows:
        by_days[row.customer.name] = (row.bucket, row.next_bucket, row.crosses_on)
    # Largest first (the amounts grow with the days past due), labelled for people.
    assert [row.customer.name for row in rows][:2] == ["dpd 120", "dpd 30"]
    assert (rows[0].bucket_label, rows[0].next_bucket_label) == ("91-120", "Over 120")
    # Day 0 is current and turns 1-30 tomorrow; -6 turns in 7 days, -7 in 8 (too late);
    # 24 reaches day 31 in 7 days, 23 in 8; day 30 tomorrow; 31 just crossed; 120 tomorrow;
    # 121 is in the last bucket.
    assert by_days == {
        "dpd -6": ("current", "1-30", as_of + dt.timedelta(days=7)),
        "dpd 0": ("current", "1-30", as_of + dt.timedelta(days=1)),
        "dpd 24": ("1-30", "31-60", as_of + dt.timedelta(days=7)),
        "dpd 30": ("1-30", "31-60", as_of + dt.timedelta(days=1)),
        "dpd 120": ("91-120", "120+", as_of + dt.timedelta(days=1)),
    }


def test_trends_at_month_ends_by_hand():
    as_of = dt.date(2026, 4, 15)
    customer = CustomerFactory()
    invoice = InvoiceFactory(
        customer=customer,
        currency="EUR",
        amount=D("1000.00"),
        issued_on=dt.date(2026, 1, 10),
        due_on=dt.date(2026, 2, 9),
    )
    pay(invoice, "400.00", dt.date(2026, 3, 15))
    trend = dashboard.trends(as_of)["EUR"]
    assert trend.month_ends[0] == dt.date(2025, 4, 30)
    assert trend.month_ends[-3:] == [
        dt.date(2026, 1, 31),
        dt.date(2026, 2, 28),
        dt.date(2026, 3, 31),
    ]
    assert len(trend.month_ends) == 12
    # Jan-31: 1000 open, not yet due; Feb-28: all 1000 past due; Mar-31: 600 after the payment.
    assert trend.receivables[-3:] == [D("1000"), D("1000"), D("600")]
    assert trend.past_due[-3:] == [D("0"), D("1000"), D("600")]
    assert trend.receivables[0] == D("0")
    # Count-back on Mar-31: March and February sold nothing (31 + 28 days), January's 1000
    # covers the 600 in 600/1000 of its 31 days: 59 + 18.6 = 77.6.
    assert trend.dso_count_back[-1] == D("77.6")
    # Simple on Mar-31: 600 over Jan-Mar sales of 1000, times their 90 days = 54.
    assert trend.dso_simple[-1] == D("54")
    assert trend.dso_simple[0] is None  # no sales in the three months to Apr-2025


def test_team_productivity_counts_each_agents_own_work():
    as_of = dt.date(2026, 6, 30)
    period = dashboard.kpis.Period(as_of=as_of, days=30)
    ann = UserFactory(username="ann", role="Collections agent")
    bob = UserFactory(username="bob", role="Collections agent")
    mine = CustomerFactory(assigned_agent=ann)
    theirs = CustomerFactory(assigned_agent=bob)
    for kind, actor, day in [
        (Activity.Kind.CALL, ann, dt.date(2026, 6, 3)),
        (Activity.Kind.CALL, ann, dt.date(2026, 6, 30)),
        (Activity.Kind.EMAIL, ann, dt.date(2026, 6, 10)),
        (Activity.Kind.SMS, bob, dt.date(2026, 6, 11)),
        (Activity.Kind.CALL, ann, dt.date(2026, 5, 31)),  # before the period
        (Activity.Kind.EMAIL, None, dt.date(2026, 6, 12)),  # sent by the system
        (Activity.Kind.NOTE, ann, dt.date(2026, 6, 12)),  # a note is not a contact
    ]:
        ActivityFactory(customer=mine, kind=kind, actor=actor, occurred_at=on(day))
    promise = PromiseToPay.objects.create(
        customer=mine,
        amount=D("50.00"),
        currency="EUR",
        promised_on=dt.date(2026, 7, 5),
        holds_until=dt.date(2026, 7, 8),
        recorded_by=ann,
    )
    PromiseToPay.objects.filter(pk=promise.pk).update(created_at=on(dt.date(2026, 6, 20)))
    for customer, amount, currency, kind, day in [
        (mine, "120.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 6, 5)),
        (mine, "30.50", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 6, 30)),
        (mine, "99.00", "USD", Payment.Kind.PAYMENT, dt.date(2026, 6, 5)),  # other currency
        (mine, "15.00", "EUR", Payment.Kind.CREDIT_NOTE, dt.date(2026, 6, 5)),  # not cash
        (mine, "40.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 5, 31)),  # too early
        (theirs, "10.00", "EUR", Payment.Kind.PAYMENT, dt.date(2026, 6, 15)),
    ]:
        services.record_payment(
            amount=amount, currency=currency, received_on=day, customer=customer, kind=kind
        )
    rows = {row.agent.username: row for row in dashboard.team_productivity(period, "EUR")}
    assert (rows["ann"].calls, rows["ann"].emails, rows["ann"].sms) == (2, 1, 0)
    assert rows["ann"].contacts == 3
    assert (rows["ann"].promises, rows["ann"].collected, rows["ann"].payments) == (
        1,
        D("150.50"),
        2,
    )
    assert (rows["bob"].contacts, rows["bob"].promises, rows["bob"].collected) == (
        1,
        0,
        D("10.00"),
    )


def test_campaign_effectiveness_per_policy_step():
    as_of = dt.date(2026, 6, 30)
    period = dashboard.kpis.Period(as_of=as_of, days=30)
    early = make_step("Standard plus", "early", 3)
    late = make_step("Standard plus", "late", 10)
    for name, step, sent_on, paid_on in [
        ("paid", early, dt.date(2026, 6, 2), dt.date(2026, 6, 9)),
        ("not paid", early, dt.date(2026, 6, 3), None),
        ("paid late", late, dt.date(2026, 6, 4), dt.date(2026, 6, 19)),  # day 15
        ("too recent", late, dt.date(2026, 6, 20), dt.date(2026, 6, 21)),  # window open
    ]:
        customer = CustomerFactory(name=name)
        invoice = InvoiceFactory(customer=customer, currency="EUR", due_on=dt.date(2026, 5, 20))
        notice(customer, step, [invoice], sent_on=sent_on)
        if paid_on:
            services.record_payment(
                amount="10.00", currency="EUR", received_on=paid_on, customer=customer
            )
    rows = dashboard.campaign_effectiveness(period, "EUR")
    assert [(r["step_name"], r["sent"], r["followed"], r["rate"]) for r in rows] == [
        ("Standard plus day 3", 2, 1, D("50")),
        ("Standard plus day 10", 1, 0, D("0")),
    ]
    assert rows[0]["notices_url"] == f"/admin/dunning/notice/?step__id__exact={early.pk}"
    assert dashboard.campaign_effectiveness(period, "USD") == []


# --- what it costs -------------------------------------------------------------------------


def test_the_number_of_queries_does_not_grow_with_the_portfolio(
    client_for, manager, django_assert_max_num_queries
):
    agent = UserFactory(username="ann", role="Collections agent")
    small_portfolio(2, agent=agent)
    client = client_for(manager)
    client.get(URL)  # warm caches (content types, currency list)
    with CaptureQueriesContext(connection) as small:
        assert client.get(URL).status_code == 200
    small_portfolio(12, agent=agent)
    # 45 before the cash forecast section, which reads about eight more (predictions.forecast).
    with django_assert_max_num_queries(55), CaptureQueriesContext(connection) as large:
        assert client.get(URL).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
