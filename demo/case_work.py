"""Demo case work on top of the seeded ledger: routing rules, promises, disputes, plans,
a write-off proposal and tasks, then one nightly case-work run, so that the worklists,
the dashboard and the customer pages have something to show. Deterministic for a seed."""

import datetime as dt
import random
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.utils import timezone

from accounts.models import Customer, Invoice
from cases import case_tasks, disputes, nightly, plans, promises, recoveries
from cases.models import Dispute, RoutingRule, Task

# How many accounts get each kind of case work (fewer on a small portfolio).
SHARE = {"promise": 0.03, "broken": 0.01, "dispute": 0.015, "plan": 0.01, "call": 0.03}


def seed_case_work(*, today: dt.date, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    users = get_user_model().objects.in_bulk(["agent", "manager"], field_name="username")
    agent, manager = users["agent"], users["manager"]
    strategic = RoutingRule.objects.create(
        name="Strategic accounts to the senior team",
        priority=10,
        segment=Customer.Segment.STRATEGIC,
        max_accounts_per_agent=500,
    )
    strategic.agents.set([manager])
    everyone = RoutingRule.objects.create(
        name="Everything else", priority=100, max_accounts_per_agent=2000
    )
    everyone.agents.set([agent])

    late = list(
        Invoice.objects.outstanding()
        .filter(status__in=("open", "partially_paid"), due_on__lt=today)
        .filter(customer__status="active", customer__assigned_agent__isnull=False)
        .select_related("customer", "customer__assigned_agent")
        .order_by("customer_id", "due_on", "id")
    )
    by_customer: dict[int, list[Invoice]] = {}
    for invoice in late:
        by_customer.setdefault(invoice.customer_id, []).append(invoice)
    customers = sorted(by_customer)
    rng.shuffle(customers)
    counts = dict.fromkeys(("promises", "broken", "disputes", "plans", "calls", "write_offs"), 0)

    def take(share: float) -> list[int]:
        n = max(1, round(len(by_customer) * share)) if by_customer else 0
        taken, customers[:] = customers[:n], customers[n:]
        return taken

    for customer_id in take(SHARE["promise"]):
        invoices = by_customer[customer_id][:2]
        invoices = [i for i in invoices if i.currency == invoices[0].currency]
        total = sum((i.open_balance for i in invoices), Decimal("0.00"))
        promises.record_promise(
            customer=invoices[0].customer,
            invoices=invoices,
            amount=total,
            promised_on=today + dt.timedelta(days=rng.randint(1, 10)),
            channel="phone",
            by=invoices[0].customer.assigned_agent,
            note="Demo: AP promised on the phone",
            today=today,
        )
        counts["promises"] += 1
    for customer_id in take(SHARE["broken"]):
        invoice = by_customer[customer_id][0]
        promises.record_promise(
            customer=invoice.customer,
            invoices=[invoice],
            amount=invoice.open_balance,
            promised_on=today - dt.timedelta(days=8),
            channel="phone",
            by=invoice.customer.assigned_agent,
            note="Demo: a promise the customer did not keep",
            today=today - dt.timedelta(days=10),
        )
        counts["broken"] += 1
    for customer_id in take(SHARE["dispute"]):
        invoice = by_customer[customer_id][0]
        disputes.open_dispute(
            customer=invoice.customer,
            invoices=[invoice],
            reason=rng.choice(Dispute.Reason.values),
            description="Demo: the customer contests this invoice",
            by=invoice.customer.assigned_agent,
        )
        counts["disputes"] += 1
    for customer_id in take(SHARE["plan"]):
        invoices = by_customer[customer_id]
        invoices = [i for i in invoices if i.currency == invoices[0].currency][:3]
        total = sum((i.open_balance for i in invoices), Decimal("0.00"))
        plans.propose_plan(
            customer=invoices[0].customer,
            invoices=invoices,
            installments=plans.monthly_installments(
                total=total, count=rng.choice((3, 4, 6)), first_due_on=today + dt.timedelta(7)
            ),
            by=invoices[0].customer.assigned_agent,
            note="Demo: agreed on a call",
            today=today,
        )
        counts["plans"] += 1
    for customer_id in take(SHARE["call"]):
        customer = by_customer[customer_id][0].customer
        case_tasks.create_task(
            customer=customer,
            kind=Task.Kind.CALL,
            title=f"Call back {customer.name} about the open invoices",
            due_at=timezone.make_aware(
                dt.datetime.combine(today + dt.timedelta(days=rng.randint(-2, 3)), dt.time(10))
            ),
            by=customer.assigned_agent,
        )
        counts["calls"] += 1
    oldest = [c for c in customers if by_customer[c][0].days_past_due(today) > 150][:1]
    for customer_id in oldest:
        invoices = by_customer[customer_id]
        invoices = [i for i in invoices if i.currency == invoices[0].currency]
        recoveries.propose_recovery(
            customer=invoices[0].customer,
            invoices=invoices,
            kind="write_off",
            by=invoices[0].customer.assigned_agent,
            reason="Demo: no contact for months, the company has stopped trading",
        )
        counts["write_offs"] += 1
    # The nightly run as it would have run at 01:30 that day, unless that is still to come
    # (a seed just after midnight): nothing the demo writes may be dated in the future.
    now = min(timezone.now(), timezone.make_aware(dt.datetime.combine(today, dt.time(1, 30))))
    run = nightly.run_case_work(on=today, now=now)
    if run["errors"]:
        raise RuntimeError(f"the demo's nightly case work failed: {run['errors']}")
    counts["routed"] = _routed(run.get("routed"))
    counts["tasks"] = Task.objects.open().count()
    return counts


def _routed(outcome) -> int:
    if isinstance(outcome, dict):
        return int(outcome.get("assigned", outcome.get("routed", 0)) or 0)
    return int(outcome or 0)
