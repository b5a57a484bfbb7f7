"""Routing: first matching rule by priority, the least loaded agent under the cap, logged."""

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import Activity, Customer
from cases import routing
from tests.factories import CustomerFactory, InvoiceFactory, RoutingRuleFactory, UserFactory

pytestmark = pytest.mark.django_db


def agent_named(name):
    return UserFactory(username=name, role="Collections agent")


@pytest.fixture
def senior():
    return agent_named("senior")


@pytest.fixture
def junior():
    return agent_named("junior")


def agent_of(customer):
    customer.refresh_from_db()
    return customer.assigned_agent


def test_the_first_matching_rule_by_priority_wins(senior, junior):
    RoutingRuleFactory(name="Routine", priority=20, agents=[junior])
    RoutingRuleFactory(name="Strategic", priority=10, segment="strategic", agents=[senior])
    strategic = CustomerFactory(segment="strategic")
    standard = CustomerFactory(segment="standard")
    result = routing.route_customers()
    assert (agent_of(strategic), agent_of(standard)) == (senior, junior)
    assert result.routed == 2 and result.by_rule == {"Strategic": 1, "Routine": 1}


def test_each_criterion_must_match(senior, junior):
    RoutingRuleFactory(
        name="Big German high risk",
        priority=1,
        risk_band="high",
        min_balance=Decimal("1000.00"),
        language="de",
        countries="DE, AT",
        agents=[senior],
    )
    RoutingRuleFactory(name="Everyone else", priority=2, agents=[junior])
    fits = CustomerFactory(risk_band="high", language="de-AT", country="AT")
    InvoiceFactory(customer=fits, amount=Decimal("1000.00"))
    wrong_band = CustomerFactory(risk_band="medium", language="de", country="DE")
    InvoiceFactory(customer=wrong_band, amount=Decimal("5000.00"))
    wrong_country = CustomerFactory(risk_band="high", language="de", country="CH")
    InvoiceFactory(customer=wrong_country, amount=Decimal("5000.00"))
    wrong_language = CustomerFactory(risk_band="high", language="en", country="DE")
    InvoiceFactory(customer=wrong_language, amount=Decimal("5000.00"))
    routing.route_customers()
    assert agent_of(fits) == senior
    assert {agent_of(c) for c in (wrong_band, wrong_country, wrong_language)} == {junior}


def test_the_balance_threshold_takes_the_largest_currency_never_a_sum(senior, junior):
    RoutingRuleFactory(name="High value", priority=1, min_balance=Decimal("1000"), agents=[senior])
    RoutingRuleFactory(name="Rest", priority=2, agents=[junior])
    split = CustomerFactory()
    InvoiceFactory(customer=split, amount=Decimal("600.00"), currency="USD")
    InvoiceFactory(customer=split, amount=Decimal("600.00"), currency="EUR")
    one_currency = CustomerFactory()
    InvoiceFactory(customer=one_currency, amount=Decimal("600.00"))
    InvoiceFactory(customer=one_currency, amount=Decimal("400.00"))
    paid = CustomerFactory()
    InvoiceFactory(customer=paid, amount=Decimal("5000.00"), open_balance=0, status="paid")
    routing.route_customers()
    assert (agent_of(split), agent_of(one_currency), agent_of(paid)) == (junior, senior, junior)


def test_the_least_loaded_agent_gets_the_customer_up_to_the_cap(senior, junior):
    RoutingRuleFactory(name="Pool", max_accounts_per_agent=3, agents=[senior, junior])
    CustomerFactory(assigned_agent=senior)
    CustomerFactory(assigned_agent=senior)
    CustomerFactory(assigned_agent=junior, status="written_off")  # not counted: not worked
    new = [CustomerFactory() for _ in range(5)]
    result = routing.route_customers()
    agents = [agent_of(customer) for customer in new]
    assert agents.count(senior) == 1 and agents.count(junior) == 3
    assert agents.count(None) == 1
    assert (result.routed, result.full, result.no_rule) == (4, 1, 0)


def test_a_full_rule_does_not_overflow_to_a_later_rule(senior, junior):
    RoutingRuleFactory(
        name="Strategic", priority=1, segment="strategic", max_accounts_per_agent=0, agents=[senior]
    )
    RoutingRuleFactory(name="Rest", priority=2, agents=[junior])
    customer = CustomerFactory(segment="strategic")
    result = routing.route_customers()
    assert agent_of(customer) is None and result.full == 1


def test_the_biggest_balances_are_placed_first_when_capacity_is_short(senior):
    RoutingRuleFactory(max_accounts_per_agent=1, agents=[senior])
    small, big = CustomerFactory(), CustomerFactory()
    InvoiceFactory(customer=small, amount=Decimal("10.00"))
    InvoiceFactory(customer=big, amount=Decimal("9000.00"))
    routing.route_customers()
    assert (agent_of(big), agent_of(small)) == (senior, None)


def test_inactive_rules_inactive_agents_and_inactive_customers_are_left_out(senior, junior):
    RoutingRuleFactory(name="Off", priority=1, is_active=False, agents=[senior])
    gone = UserFactory(username="gone", role="Collections agent", is_active=False)
    RoutingRuleFactory(name="On", priority=2, agents=[gone, junior])
    customer = CustomerFactory()
    placed = CustomerFactory(status="placed_with_agency")
    routing.route_customers()
    assert agent_of(customer) == junior and agent_of(placed) is None


def test_no_rule_leaves_the_customer_in_the_queue(senior):
    RoutingRuleFactory(segment="strategic", agents=[senior])
    customer = CustomerFactory(segment="standard")
    result = routing.route_customers()
    assert agent_of(customer) is None and result.no_rule == 1


def test_routing_is_logged_and_rerouting_names_the_previous_agent(manager, senior, junior):
    RoutingRuleFactory(name="Seniors", agents=[senior])
    customer = CustomerFactory(assigned_agent=junior)
    untouched = CustomerFactory(assigned_agent=junior)
    routing.route_customers(customer_ids=[customer.pk], by=manager)
    assert agent_of(customer) == senior and agent_of(untouched) == junior
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.ASSIGNMENT)
    assert entry.details == {
        "from": junior.pk,
        "to": senior.pk,
        "reason": "routing rule “Seniors”",
    }
    assert entry.actor == manager and "senior" in entry.text and "junior" in entry.text
    assert entry.text.endswith(": routing rule “Seniors”")
    assert not Activity.objects.filter(customer=untouched).exists()


def test_a_second_run_moves_nobody(senior):
    RoutingRuleFactory(agents=[senior])
    CustomerFactory()
    assert routing.route_customers().routed == 1
    assert routing.route_customers().routed == 0
    assert (
        routing.route_customers(
            customer_ids=list(Customer.objects.values_list("pk", flat=True))
        ).routed
        == 0
    )
    assert Activity.objects.filter(kind=Activity.Kind.ASSIGNMENT).count() == 1


def test_only_managers_route(agent, senior):
    RoutingRuleFactory(agents=[senior])
    CustomerFactory()
    with pytest.raises(PermissionDenied):
        routing.route_customers(by=agent)


def test_queries_do_not_grow_with_the_customers(senior, junior):
    RoutingRuleFactory(name="Seniors", priority=1, segment="strategic", agents=[senior])
    RoutingRuleFactory(name="Juniors", priority=2, agents=[junior])

    def route(n):
        for i in range(n):
            InvoiceFactory(customer=CustomerFactory(segment="strategic" if i % 2 else "standard"))
        with CaptureQueriesContext(connection) as queries:
            assert routing.route_customers().routed == n
        return len(queries)

    assert route(4) == route(40)


# --- The console ---


def test_the_route_button_routes_the_queue(client, manager, senior):
    RoutingRuleFactory(agents=[senior])
    customer = CustomerFactory()
    client.force_login(manager)
    listing = client.get(reverse("admin:cases_routingrule_changelist"))
    assert b"Route unassigned customers now" in listing.content
    response = client.post(reverse("admin:cases_routingrule_route"), follow=True)
    assert agent_of(customer) == senior
    assert "Routed 1 customers" in response.content.decode()


def test_agents_see_rules_but_cannot_route(client, agent, senior):
    RoutingRuleFactory(agents=[senior])
    CustomerFactory()
    client.force_login(agent)
    listing = client.get(reverse("admin:cases_routingrule_changelist"))
    assert listing.status_code == 200 and b"Route unassigned customers now" not in listing.content
    assert client.post(reverse("admin:cases_routingrule_route")).status_code == 403


def test_the_route_action(client, manager, senior):
    rule = RoutingRuleFactory(agents=[senior])
    customer = CustomerFactory()
    client.force_login(manager)
    client.post(
        reverse("admin:cases_routingrule_changelist"),
        {"action": "route_now", "_selected_action": [rule.pk]},
    )
    assert agent_of(customer) == senior


@pytest.mark.parametrize("role", ["agent", "finance", "manager"])
def test_every_role_opens_a_rule(client, role, request, senior):
    """A read-only viewer's form has no `agents` field: opening a rule answered 500."""
    rule = RoutingRuleFactory(name="Strategic", agents=[senior])
    client.force_login(request.getfixturevalue(role))
    response = client.get(reverse("admin:cases_routingrule_change", args=[rule.pk]))
    assert response.status_code == 200
    assert "Strategic" in response.content.decode()
