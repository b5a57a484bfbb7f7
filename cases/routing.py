"""Routing: unassigned (or chosen) customers go to agents by the rules managers edit.

A customer goes to the first active rule, by priority (lower first, then id), whose every
set criterion matches: segment, risk band, minimum balance (the customer's largest open
balance in any one currency: currencies are never added), language (en matches en and
en-GB) and country (one of the listed ISO codes). Within the rule it goes to the rule's
active agent with the fewest active customers, if that is under the rule's
max_accounts_per_agent; when every agent of the rule is full, the customer stays in the
unassigned queue (it does not fall through to a later rule, so a strategic account never
lands with a junior agent by overflow). Customers with most money open are placed first.

Only active customers are routed (placed, written-off and closed accounts are not worked).
Assignment goes through accounts.services.assign_customers: one UPDATE per agent and rule,
and one timeline entry (kind assignment) per customer naming the rule.
"""

import heapq
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum
from django.utils.translation import gettext as _

from accounts import bulk, permissions, services
from accounts.models import Customer, Invoice

from .models import RoutingRule


@dataclass
class RoutingResult:
    routed: int = 0
    by_rule: dict[str, int] = field(default_factory=dict)
    no_rule: int = 0  # matched no active rule
    full: int = 0  # matched a rule whose agents are all at their cap


def _countries(rule: RoutingRule) -> set[str]:
    return {code.strip().upper() for code in rule.countries.split(",") if code.strip()}


def matches(rule: RoutingRule, customer: Customer, largest_balance: Decimal) -> bool:
    if rule.segment and customer.segment != rule.segment:
        return False
    if rule.risk_band and customer.risk_band != rule.risk_band:
        return False
    if rule.min_balance is not None and largest_balance < rule.min_balance:
        return False
    if rule.language:
        wanted, spoken = rule.language.lower(), customer.language.lower()
        if spoken != wanted and not spoken.startswith(f"{wanted}-"):
            return False
    countries = _countries(rule)
    return not countries or customer.country.upper() in countries


def _largest_balances(customers: list[Customer]) -> dict[int, Decimal]:
    """Each customer's largest open balance in any one currency (one aggregate query)."""
    largest: dict[int, Decimal] = {}
    rows = (
        Invoice.objects.outstanding()
        .filter(bulk.one_of("customer_id", [c.pk for c in customers]))
        .order_by()
        .values("customer_id", "currency")
        .annotate(total=Sum("open_balance"))
        .values_list("customer_id", "total")
    )
    for customer_id, total in rows:
        largest[customer_id] = max(total, largest.get(customer_id, total))
    return largest


class _Pools:
    """Each rule's active agents in a heap by current load, so picking the least loaded
    agent is O(log n) per customer. Loads change as customers are placed; a heap entry
    whose count is stale is refreshed when it reaches the top."""

    def __init__(self, rules: list[RoutingRule], load: Counter):
        self.load = load
        self.members: dict[int, set[int]] = {}
        self.heaps: dict[int, list[tuple[int, int]]] = {}
        self.rules_of: dict[int, list[int]] = defaultdict(list)
        for rule in rules:
            ids = {agent.pk for agent in rule.agents.all() if agent.is_active}
            self.members[rule.pk] = ids
            self.heaps[rule.pk] = [(load[pk], pk) for pk in ids]
            heapq.heapify(self.heaps[rule.pk])
            for pk in ids:
                self.rules_of[pk].append(rule.pk)

    def least_loaded(self, rule: RoutingRule) -> int | None:
        """The agent with the fewest customers (then the lowest id), if under the cap."""
        heap = self.heaps[rule.pk]
        while heap:
            count, agent_id = heap[0]
            if count != self.load[agent_id]:
                heapq.heapreplace(heap, (self.load[agent_id], agent_id))
                continue
            return agent_id if count < rule.max_accounts_per_agent else None
        return None

    def add(self, agent_id: int, change: int) -> None:
        self.load[agent_id] += change
        if change < 0:  # an entry with the lower count, for every pool the agent is in
            for rule_id in self.rules_of[agent_id]:
                heapq.heappush(self.heaps[rule_id], (self.load[agent_id], agent_id))


@transaction.atomic
def route_customers(*, customer_ids=None, by=None) -> RoutingResult:
    """Assign customers by the routing rules; returns what went where.

    1. Take the candidates: the given active customers (even if assigned: they are
       re-routed), or every active unassigned customer; lock them so a concurrent manual
       assignment waits instead of being overwritten.
    2. Read each one's largest balance per currency (one aggregate), the active rules with
       their active agents, and each agent's current load (one count).
    3. Match in memory, largest balance first, and give each customer to the least loaded
       agent of its rule under the cap; the load counts as it goes.
    4. Assign per agent and rule through services.assign_customers (permission checks, one
       UPDATE, the timeline entries naming the previous agent and the rule).
    """
    # Routing moves other agents' customers: managers only (and the nightly job, by=None).
    permissions.require(by, "accounts.work_all_customers")
    permissions.require(by, "accounts.assign_customer")
    candidates = Customer.objects.select_for_update(of=("self",)).filter(
        status=Customer.Status.ACTIVE
    )
    if customer_ids is None:
        candidates = candidates.filter(assigned_agent__isnull=True)
    else:
        candidates = candidates.filter(bulk.one_of("id", customer_ids))
    customers = list(candidates.select_related("assigned_agent").order_by("pk"))
    result = RoutingResult()
    if not customers:
        return result
    largest = _largest_balances(customers)
    rules = list(
        RoutingRule.objects.filter(is_active=True)
        .prefetch_related("agents")
        .order_by("priority", "id")
    )
    agents = {agent.pk: agent for rule in rules for agent in rule.agents.all() if agent.is_active}
    load = Counter(
        dict(
            Customer.objects.filter(assigned_agent__in=list(agents), status=Customer.Status.ACTIVE)
            .order_by()
            .values("assigned_agent")
            .annotate(n=Count("pk"))
            .values_list("assigned_agent", "n")
        )
    )
    pool = _Pools(rules, load)
    chosen: dict[tuple[int, str], list[Customer]] = defaultdict(list)
    zero = Decimal(0)
    customers.sort(key=lambda c: (-largest.get(c.pk, zero), c.pk))
    for customer in customers:
        balance = largest.get(customer.pk, zero)
        rule = next((r for r in rules if matches(r, customer, balance)), None)
        if rule is None:
            result.no_rule += 1
            continue
        if customer.assigned_agent_id in pool.members[rule.pk]:
            continue  # already with an agent of its rule: re-routing would only churn
        agent_id = pool.least_loaded(rule)
        if agent_id is None:
            result.full += 1
            continue
        pool.add(agent_id, +1)
        if customer.assigned_agent_id in pool.rules_of:
            pool.add(customer.assigned_agent_id, -1)
        chosen[agent_id, rule.name].append(customer)
        result.by_rule[rule.name] = result.by_rule.get(rule.name, 0) + 1
    for (agent_id, rule_name), assigned in chosen.items():
        result.routed += services.assign_customers(
            customers=assigned,
            agent=agents[agent_id],
            by=by,
            reason=_("routing rule “%(rule)s”") % {"rule": rule_name},
        )
    return result
