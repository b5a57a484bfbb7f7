"""The demo's payment behaviour has the structure of real receivables: habits that last,
seasons, and bigger invoices paid later (demo/portfolio.py, `_Habit`)."""

import datetime as dt
import statistics
from collections import defaultdict
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from accounts.models import Customer, Payment
from demo.portfolio import HISTORY_DAYS, plan_portfolio
from tests.factories import TODAY


@dataclass(frozen=True)
class Settled:
    customer: str
    segment: str
    kind: str
    country: str
    issued_on: dt.date
    due_on: dt.date
    cents: int
    days_late: int

    @property
    def is_late(self) -> bool:
        return self.days_late > 0


@pytest.fixture(scope="module")
def settled() -> list[Settled]:
    """Every invoice paid in full, with the day its last payment (not credit) arrived."""
    customers, invoices, received_on, paid_on = {}, {}, {}, {}
    for chunk in plan_portfolio(customers=400, seed=42, today=TODAY, tz=ZoneInfo("UTC")):
        customers.update((row["external_ref"], row) for row in chunk.customers)
        invoices.update((row["number"], row) for row in chunk.invoices)
        received_on.update(
            (row["key"], row["received_on"])
            for row in chunk.payments
            if row["kind"] == Payment.Kind.PAYMENT
        )
        for allocation in chunk.allocations:
            day = received_on.get(allocation["payment"])
            number = allocation["invoice"]
            if day and day > paid_on.get(number, dt.date.min):
                paid_on[number] = day
    rows = []
    for number, invoice in invoices.items():
        if invoice["open_balance"] or number not in paid_on:
            continue
        customer = customers[invoice["customer"]]
        rows.append(
            Settled(
                customer=customer["external_ref"],
                segment=customer["segment"],
                kind=customer["kind"],
                country=customer["country"],
                issued_on=invoice["issued_on"],
                due_on=invoice["due_on"],
                cents=int(invoice["amount"] * 100),
                days_late=(paid_on[number] - invoice["due_on"]).days,
            )
        )
    return rows


def share_late(rows) -> float:
    rows = list(rows)
    return sum(row.is_late for row in rows) / len(rows)


def test_the_history_covers_two_years(settled):
    assert HISTORY_DAYS >= 730
    assert min(row.issued_on for row in settled) <= TODAY - dt.timedelta(days=700)


def test_customers_of_one_profile_keep_their_own_habit(settled):
    """Among standard business customers alike on paper, the share of invoices paid late in
    the first year predicts the share in the second: a habit, not the profile's average."""
    halfway = TODAY - dt.timedelta(days=HISTORY_DAYS // 2)
    halves = defaultdict(lambda: ([], []))
    for row in settled:
        if row.segment == Customer.Segment.STANDARD and row.kind == Customer.Kind.BUSINESS:
            halves[row.customer][row.issued_on >= halfway].append(row.is_late)
    pairs = [
        (sum(first) / len(first), sum(second) / len(second))
        for first, second in halves.values()
        if len(first) >= 5 and len(second) >= 5
    ]

    assert len(pairs) >= 100
    assert statistics.correlation(*zip(*pairs, strict=True)) > 0.4
    # Most are reliable, some habitually late: the customers' shares are spread out.
    second_year = sorted(second for _first, second in pairs)
    assert second_year[len(pairs) // 4] < 0.25
    assert second_year[-len(pairs) // 10] > 0.6


def test_december_invoices_are_paid_later(settled):
    december = [row for row in settled if row.due_on.month == 12]
    others = [row for row in settled if row.due_on.month != 12]

    assert share_late(december) > share_late(others) + 0.05
    assert statistics.mean(row.days_late for row in december) > statistics.mean(
        row.days_late for row in others
    )


def test_european_customers_pay_later_in_august(settled):
    europe = [row for row in settled if row.country in ("GB", "DE", "FR", "ES")]
    august = [row for row in europe if row.due_on.month == 8]
    spring = [row for row in europe if row.due_on.month in (4, 5, 6)]

    assert share_late(august) > share_late(spring) + 0.04


def test_bigger_than_usual_invoices_are_paid_later(settled):
    amounts = defaultdict(list)
    for row in settled:
        amounts[row.customer].append(row.cents)
    usual = {customer: statistics.median(cents) for customer, cents in amounts.items()}
    big = [row for row in settled if row.cents >= 2 * usual[row.customer]]
    rest = [row for row in settled if row.cents < 2 * usual[row.customer]]

    assert len(big) > 200
    assert share_late(big) > share_late(rest) + 0.08


def test_nothing_is_certain(settled):
    """Most customers pay some invoices on time and some late: no habit is a certainty."""
    by_customer = defaultdict(list)
    for row in settled:
        by_customer[row.customer].append(row.is_late)
    shares = [sum(late) / len(late) for late in by_customer.values() if len(late) >= 20]

    assert 0.3 < share_late(settled) < 0.6
    assert sum(0 < share < 1 for share in shares) > 0.8 * len(shares)


def test_invoice_rate_scales_the_invoices_not_the_customers():
    """The scale benchmark (bench/predict.py) plans fewer invoices per customer."""

    def plan(rate: float) -> tuple[list[str], int]:
        chunks = list(
            plan_portfolio(customers=60, seed=7, today=TODAY, tz=ZoneInfo("UTC"), invoice_rate=rate)
        )
        refs = [row["external_ref"] for chunk in chunks for row in chunk.customers]
        return refs, sum(len(chunk.invoices) for chunk in chunks)

    refs, invoices = plan(1.0)
    fewer_refs, fewer = plan(0.25)

    assert fewer_refs == refs
    assert 0.15 * invoices < fewer < 0.4 * invoices
    with pytest.raises(ValueError, match="positive"):
        next(plan_portfolio(customers=1, seed=7, today=TODAY, tz=ZoneInfo("UTC"), invoice_rate=0))
