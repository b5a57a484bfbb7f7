"""The demo portfolio: deterministic users, customers, contacts, invoices, payments, timeline.

`plan_portfolio` is pure: for a seed and a "today" it yields the same plain rows every time,
in chunks of customers. `write_chunk` stores each chunk with bulk_create in one transaction,
so memory stays flat however many customers are asked for. It bypasses the per-row service
functions for speed, so every row is built to satisfy the models' CHECK constraints and the
ledger invariants the services keep: an invoice's open balance is its amount minus its
allocations, a payment's unallocated amount is its amount minus its allocations, and every
payment and allocation has its timeline entry.

How customers pay has the structure of real receivables (`_Habit`): each customer its own
lateness, drifting over time and for some worsening or improving, slower in December, in
August in Europe and at quarter ends, later for bigger-than-usual invoices, delayed by
disputes, in payment runs for batch payers, and never certain. The predictor is
backtested on this history, so it must be neither too regular nor tuned to it.
"""

import datetime as dt
import math
import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from pathlib import Path

import phonenumbers
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import (
    Activity,
    Allocation,
    Contact,
    Customer,
    Invoice,
    InvoiceQuerySet,
    Payment,
    normalize_phone,
)

SOURCE = "demo"
CHUNK_SIZE = 500  # customers planned and written per transaction
BATCH_SIZE = 1000  # rows per INSERT
HISTORY_DAYS = 730  # two years of invoices before today
FRIDAY = 4  # batch payers' payment-run day (date.weekday())

# username, group, first name, last name; the superuser comes last.
DEMO_USERS = (
    ("agent", "Collections agent", "Sam", "Carter"),
    ("manager", "Collections manager", "Priya", "Shah"),
    ("finance", "Finance", "Tom", "Becker"),
    ("admin", None, "Ada", "Admin"),
)


@dataclass(frozen=True)
class Market:
    country: str
    timezone: str
    language: str
    currency: str
    per_100_usd: int  # rough exchange rate, only to keep amounts plausible in each currency
    weight: int
    legal_forms: tuple[str, ...]
    area_codes: tuple[str, ...] = ()  # US only: local area codes for the 555-01xx range


MARKETS = (
    Market("US", "America/New_York", "en", "USD", 100, 14, ("Inc.", "LLC", "Corp."),
           ("212", "646", "617", "305")),
    Market("US", "America/Chicago", "en", "USD", 100, 11, ("Inc.", "LLC", "Co."),
           ("312", "773", "214", "713")),
    Market("US", "America/Los_Angeles", "en", "USD", 100, 10, ("Inc.", "LLC"),
           ("213", "310", "415", "206")),
    Market("GB", "Europe/London", "en", "GBP", 79, 12, ("Ltd", "Ltd", "LLP", "plc")),
    Market("DE", "Europe/Berlin", "de", "EUR", 92, 11, ("GmbH", "GmbH", "AG", "KG")),
    Market("FR", "Europe/Paris", "fr", "EUR", 92, 8, ("SAS", "SARL", "SA")),
    Market("ES", "Europe/Madrid", "es", "EUR", 92, 5, ("S.L.", "S.A.")),
    Market("MX", "America/Mexico_City", "es", "MXN", 1700, 3, ("S.A. de C.V.",)),
    Market("BR", "America/Sao_Paulo", "pt", "BRL", 500, 5, ("Ltda.", "S.A.")),
    Market("AU", "Australia/Sydney", "en", "AUD", 152, 6, ("Pty Ltd",)),
    Market("JP", "Asia/Tokyo", "ja", "JPY", 15000, 5, ("K.K.", "Co., Ltd.")),
    Market("ZA", "Africa/Johannesburg", "en", "ZAR", 1850, 4, ("(Pty) Ltd",)),
    Market("CA", "America/Toronto", "en", "CAD", 135, 4, ("Inc.", "Ltd.")),
)  # fmt: skip
WHOLE_UNIT_CURRENCIES = frozenset({"JPY"})  # no minor unit in practice: amounts end in .00

FIRST_NAMES = {
    "en": ("James", "Mary", "Robert", "Patricia", "Michael", "Jennifer", "David", "Linda",
           "Sarah", "Daniel", "Emily", "Olivia", "Thomas", "Aisha", "Kevin", "Grace"),
    "de": ("Lukas", "Anna", "Jonas", "Lena", "Felix", "Sophie", "Maximilian", "Laura", "Jan",
           "Julia", "Tobias", "Katrin"),
    "fr": ("Camille", "Louis", "Chloé", "Hugo", "Manon", "Lucas", "Léa", "Antoine", "Juliette",
           "Mathieu", "Élodie", "Nicolas"),
    "es": ("Lucía", "Hugo", "Martina", "Pablo", "Sofía", "Alejandro", "Carmen", "Javier",
           "Elena", "Diego", "Isabel", "Andrés"),
    "pt": ("João", "Maria", "Pedro", "Ana", "Lucas", "Juliana", "Gabriel", "Beatriz", "Rafael",
           "Camila", "Tiago", "Larissa"),
    "ja": ("Hiroshi", "Yuki", "Takashi", "Akiko", "Kenji", "Naoko", "Satoshi", "Yumi",
           "Daisuke", "Haruka", "Shota", "Emi"),
}  # fmt: skip
LAST_NAMES = {
    "en": ("Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Taylor", "Clarke", "Walker", "Wright", "Hughes", "Patel", "Nguyen", "O'Brien"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
           "Hoffmann", "Schäfer", "Koch", "Richter"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand",
           "Leroy", "Moreau", "Lefèvre", "Girard"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez",
           "Pérez", "Gómez", "Ruiz", "Hernández", "Díaz"),
    "pt": ("Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira",
           "Lima", "Gomes", "Costa", "Ribeiro"),
    "ja": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura",
           "Kobayashi", "Kato", "Yoshida", "Yamada"),
}  # fmt: skip

# Company names: "Northwind Logistics GmbH", "Transports Meridian SAS", "Tanaka Software K.K."
NAME_STARTS = ("North", "Blue", "Silver", "Oak", "Iron", "Bright", "Red", "Pine", "Clear",
               "Stone", "Green", "Cedar", "Gold", "Swift", "River", "Maple", "East", "West",
               "High", "Sun")  # fmt: skip
NAME_ENDS = ("wind", "bridge", "field", "gate", "line", "point", "wood", "ridge", "crest", "way",
             "port", "ford", "haven", "light", "view", "brook")  # fmt: skip
NAME_WORDS = ("Atlas", "Meridian", "Pioneer", "Sterling", "Summit", "Harbor", "Falcon", "Cobalt",
              "Granite", "Vertex", "Apex", "Keystone", "Beacon", "Horizon", "Lakeside",
              "Evergreen", "Orion", "Polaris")  # fmt: skip
NAME_EXTRAS = ("Group", "Holdings", "International", "Partners", "Solutions", "Services")
INDUSTRIES = {
    "Manufacturing": ("Manufacturing", "Industries", "Fabrication", "Works"),
    "Retail": ("Retail", "Stores", "Outfitters", "Market"),
    "Software": ("Software", "Systems", "Labs", "Digital"),
    "Healthcare": ("Health", "Medical", "Care", "Clinics"),
    "Logistics": ("Logistics", "Freight", "Transport", "Shipping"),
    "Construction": ("Construction", "Builders", "Contracting"),
    "Hospitality": ("Hotels", "Hospitality", "Catering"),
    "Wholesale": ("Wholesale", "Distribution", "Supply", "Trading"),
}
INDUSTRY_WEIGHTS = (16, 14, 12, 10, 14, 12, 8, 14)
# The local word for the industry, and whether it comes first ("Transports Atlas SAS").
LOCAL_INDUSTRY_WORDS = {
    "de": (False, {"Manufacturing": "Werke", "Retail": "Handel", "Software": "Software",
                   "Healthcare": "Medizintechnik", "Logistics": "Logistik", "Construction": "Bau",
                   "Hospitality": "Hotels", "Wholesale": "Handel"}),
    "fr": (True, {"Manufacturing": "Industrie", "Retail": "Commerce", "Software": "Logiciels",
                  "Healthcare": "Santé", "Logistics": "Transports",
                  "Construction": "Construction", "Hospitality": "Hôtellerie",
                  "Wholesale": "Distribution"}),
    "es": (True, {"Manufacturing": "Industrial", "Retail": "Comercial", "Software": "Software",
                  "Healthcare": "Salud", "Logistics": "Logística",
                  "Construction": "Construcciones", "Hospitality": "Hoteles",
                  "Wholesale": "Distribuciones"}),
    "pt": (True, {"Manufacturing": "Indústria", "Retail": "Comércio", "Software": "Software",
                  "Healthcare": "Saúde", "Logistics": "Logística",
                  "Construction": "Construções", "Hospitality": "Hotelaria",
                  "Wholesale": "Distribuidora"}),
}  # fmt: skip
CONSUMER_MAIL_DOMAINS = ("mail.example", "inbox.example", "post.example")
CONTACT_ROLES = ("Controller", "CFO", "Office Manager", "Purchasing Manager", "Owner",
                 "Finance Director")  # fmt: skip
AP_MAILBOXES = ("ap", "accounts.payable", "invoices", "payables")

PAUSE_REASONS = (
    "Awaiting remittance advice from AP",
    "Promise to pay confirmed by the CFO",
    "Bank details being updated on their side",
    "New AP system go-live; invoices being re-keyed",
    "Payment plan under discussion",
)
DISPUTE_REASONS = (
    "quantity delivered short",
    "price does not match the contract",
    "goods damaged in transit",
    "service not completed",
    "looks like a duplicate of an earlier invoice",
)
NOTES = (
    "Sent a copy of the statement to {email} on request.",
    "AP says {number} is approved and in the next payment run.",
    "Customer is switching ERP systems; payments may be a week late this month.",
    "Asked for remittance advice for the last payment.",
    "PO number missing on {number}; sent the PO reference to {email}.",
    "Confirmed bank details over the phone with {contact}.",
)
CALL_OUTCOMES = tuple(Activity.CallOutcome.values)
CALL_OUTCOME_WEIGHTS = (15, 30, 25, 20, 5, 5)  # reached, no answer, voicemail, PTP, dispute, wrong
CALL_TEXTS = {
    "reached": "Spoke to {contact}; {number} is waiting for approval.",
    "no_answer": "",
    "left_voicemail": "Left a voicemail for {contact} about {number}.",
    "promise_to_pay": "{contact} promised to pay {number} by {promised_on}.",
    "dispute": "{contact} says {number} does not match the delivery; sent proof of delivery.",
    "wrong_number": "Number no longer reaches {contact}.",
}


@dataclass(frozen=True)
class Profile:
    """How a kind of customer is billed and pays."""

    invoices_per_month: float
    median_usd: int
    terms: tuple[int, ...]
    on_time: float  # share paid by the due date
    never: float  # share never paid
    partial: float  # share paid in part first
    dispute: float  # share disputed
    mean_days_late: int
    is_batch_payer: float  # share of customers paying in weekly runs, several invoices at once


PROFILES = {
    Customer.Segment.STRATEGIC: Profile(
        invoices_per_month=1.8, median_usd=18000, terms=(45, 60, 30), on_time=0.8, never=0.003,
        partial=0.04, dispute=0.02, mean_days_late=14, is_batch_payer=0.8,
    ),
    Customer.Segment.STANDARD: Profile(
        invoices_per_month=1.1, median_usd=3500, terms=(30, 30, 30, 15, 45), on_time=0.65,
        never=0.012, partial=0.06, dispute=0.02, mean_days_late=22, is_batch_payer=0.3,
    ),
    Customer.Segment.HIGH_RISK: Profile(
        invoices_per_month=0.9, median_usd=2200, terms=(15, 30), on_time=0.35, never=0.05,
        partial=0.1, dispute=0.04, mean_days_late=38, is_batch_payer=0.1,
    ),
    Customer.Kind.CONSUMER: Profile(
        invoices_per_month=1.0, median_usd=140, terms=(15, 30), on_time=0.7, never=0.03,
        partial=0.04, dispute=0.01, mean_days_late=20, is_batch_payer=0.0,
    ),
}  # fmt: skip
METHODS = {
    Customer.Kind.BUSINESS: (
        (Payment.Method.BANK_TRANSFER, Payment.Method.DIRECT_DEBIT, Payment.Method.CHECK,
         Payment.Method.CARD), (60, 15, 15, 10)),
    Customer.Kind.CONSUMER: (
        (Payment.Method.CARD, Payment.Method.DIRECT_DEBIT, Payment.Method.BANK_TRANSFER),
        (50, 30, 20)),
}  # fmt: skip


# Where payments slow down in August, with much of the continent on holiday.
AUGUST_MARKETS = frozenset({"GB", "DE", "FR", "ES"})
YEAR_END_CLOSED = ((12, 22), (1, 3))  # many AP departments pay nothing between these days
LATENESS_SPREAD = 2.3  # customers' own lateness around their profile's, in log-odds
LATENESS_DRIFT = 0.8  # how far a customer's lateness wanders over time, in log-odds
DRIFT_KEEP_PER_MONTH = 0.85  # AR(1): the part of last month's deviation still there


class _Habit:
    """How one customer pays, drawn around its profile: the structure real receivables
    show, so a predictor backtested on the demo meets the patterns it meets on real data,
    and the chance that keeps any of them from being certain.

    1. A habit of its own: a lateness score (the log-odds of paying after the due date)
       drawn around the profile's, so customers of one profile differ; the spread leaves
       most customers reliable and some habitually late. How late a late payment is grows
       with the same score.
    2. Persistence: the score drifts from invoice to invoice, AR(1) in time (invoices
       months apart are less alike than neighbours); about one customer in eight
       deteriorates over its last months, one in twelve improves over its history.
    3. Seasons: invoices due in December, in August in European markets, or in the last
       week of a quarter are paid late more often, and nothing is paid over the year-end
       close (YEAR_END_CLOSED) by most: that money arrives in January.
    4. An invoice bigger than the customer's usual is paid late more often, a smaller one
       a little less.
    Disputes and batch payers' payment runs act in `_Planner._settle`.
    """

    def __init__(
        self, rng: random.Random, profile: Profile, customer: dict, invoices: list[dict],
        today: dt.date,
    ):  # fmt: skip
        self.profile = profile
        self.is_august_slow = customer["country"] in AUGUST_MARKETS
        late = 1 - profile.on_time - profile.never
        # The profile's share late is the average over customers: widen the log-odds so
        # the average of the spread-out customers lands near it (the probit approximation).
        widen = math.sqrt(1 + math.pi * (LATENESS_SPREAD**2 + LATENESS_DRIFT**2) / 8)
        # Seasons, sizes, trends and weekend receipts add lateness of their own: start lower.
        self.typical = math.log(late / (1 - late)) * widen - 0.3
        self.score = self.typical + rng.gauss(0, LATENESS_SPREAD)
        self.drift = rng.gauss(0, LATENESS_DRIFT)
        self.drift_on = invoices[0]["issued_on"] if invoices else today
        amounts = sorted(invoice["amount"] for invoice in invoices)
        self.usual_cents = amounts[len(amounts) // 2] if amounts else 1
        first_on = invoices[0]["issued_on"] if invoices else today
        roll = rng.random()
        self.trend = None  # (from, to, log-odds at `from`, log-odds at `to`)
        if roll < 0.12:  # deteriorating over its last months
            start = today - dt.timedelta(days=rng.randint(60, 240))
            self.trend = (max(start, first_on), today, 0.0, rng.uniform(1.5, 3.0))
        elif roll < 0.2:  # improving: late at first, better by the middle of its history
            end = first_on + dt.timedelta(days=int((today - first_on).days * rng.uniform(0.3, 0.8)))
            self.trend = (first_on, end, rng.uniform(1.0, 2.5), 0.0)

    def pay_on(self, rng: random.Random, invoice: dict) -> dt.date | None:
        """The day this invoice would be paid (None: never), for invoices taken in order."""
        issued_on, due_on = invoice["issued_on"], invoice["due_on"]
        months = max(0, (issued_on - self.drift_on).days) / 30.4
        keep = DRIFT_KEEP_PER_MONTH**months
        self.drift = keep * self.drift + math.sqrt(1 - keep**2) * rng.gauss(0, LATENESS_DRIFT)
        self.drift_on = issued_on
        habit = self.score + self.drift + self._trend(due_on)
        lateness = habit + self._season(due_on)
        ratio = min(8.0, max(0.125, invoice["amount"] / self.usual_cents))
        lateness += math.log2(ratio) * (0.6 if ratio > 1 else 0.25)
        # The habitually late more often never pay; exp(-0.5) keeps the profile's average.
        never = min(0.5, self.profile.never * math.exp(0.4 * (habit - self.typical) - 0.5))
        if rng.random() < never:
            return None
        if rng.random() >= 1 / (1 + math.exp(-lateness)):
            terms = (due_on - issued_on).days
            days = -rng.randint(0, terms // 3)
        else:
            mean = self.profile.mean_days_late * math.exp(0.1 * (habit - self.typical))
            days = 1 + min(240, int(rng.expovariate(1 / min(120.0, max(3.0, mean)))))
        pay_on = max(due_on + dt.timedelta(days=days), issued_on)
        return self._after_closures(rng, pay_on)

    def _trend(self, on: dt.date) -> float:
        if self.trend is None:
            return 0.0
        start, end, at_start, at_end = self.trend
        span = max(1, (end - start).days)
        share = min(1.0, max(0.0, (on - start).days / span))
        return at_start + (at_end - at_start) * share

    def _season(self, due_on: dt.date) -> float:
        lateness = 0.0
        if due_on.month == 12:
            lateness += 0.5
        if due_on.month == 8 and self.is_august_slow:
            lateness += 0.4
        if due_on.month % 3 == 0 and due_on.day >= 24:  # cash kept for the quarter's close
            lateness += 0.35
        return lateness

    def _after_closures(self, rng: random.Random, pay_on: dt.date) -> dt.date:
        """Most money due over the year-end close arrives after it, some of it in August
        in Europe after the holidays."""
        (from_month, from_day), (to_month, to_day) = YEAR_END_CLOSED
        is_closed = (pay_on.month, pay_on.day) >= (from_month, from_day) or (
            pay_on.month,
            pay_on.day,
        ) <= (to_month, to_day)
        if is_closed and rng.random() < 0.7:
            year = pay_on.year + (1 if pay_on.month == 12 else 0)
            return dt.date(year, to_month, to_day) + dt.timedelta(days=rng.randint(1, 8))
        if self.is_august_slow and pay_on.month == 8 and pay_on.day < 25 and rng.random() < 0.3:
            return pay_on.replace(day=25) + dt.timedelta(days=rng.randint(0, 10))
        return pay_on


ROW_KINDS = ("customers", "contacts", "invoices", "payments", "allocations", "activities")


@dataclass
class PortfolioChunk:
    """Plain rows for a run of customers; references are external_ref, number and keys."""

    customers: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    invoices: list[dict] = field(default_factory=list)
    payments: list[dict] = field(default_factory=list)
    allocations: list[dict] = field(default_factory=list)
    activities: list[dict] = field(default_factory=list)


@dataclass
class _Receipt:
    on: dt.date
    cents: int
    is_credit_note: bool
    invoice: dict
    is_disputed: bool


def plan_portfolio(
    *,
    customers: int,
    seed: int,
    today: dt.date,
    tz: dt.tzinfo,
    chunk_size: int = CHUNK_SIZE,
    invoice_rate: float = 1.0,
) -> Iterator[PortfolioChunk]:
    """Yield the demo portfolio as plain rows, `chunk_size` customers at a time.

    The same customers, seed, today and tz always give the same rows, whatever the chunk
    size: customer i draws from its own random.Random seeded with (seed, i), and the few
    customers with a special part (holds, credit notes...) are picked by random.Random(seed).
    `invoice_rate` scales how often customers are invoiced (the scale benchmark asks for
    fewer invoices per customer than the demo has); 1 is the demo's.
    """
    if invoice_rate <= 0:
        raise ValueError("invoice_rate must be positive")
    planner = _Planner(customers=customers, seed=seed, today=today, tz=tz)
    planner.invoice_rate = invoice_rate
    for start in range(0, customers, chunk_size):
        chunk = PortfolioChunk()
        if start == 0:
            planner.plan_unknown_payer(chunk)
        for index in range(start, min(start + chunk_size, customers)):
            planner.plan_customer(index, chunk)
        yield chunk


class _Planner:
    """The sequential state of one plan: numbering and the company names already used."""

    def __init__(self, *, customers: int, seed: int, today: dt.date, tz: dt.tzinfo):
        self.seed = seed
        self.today = today
        self.last_day = today - dt.timedelta(days=1)  # the latest day anything has happened
        self.tz = tz
        self.invoice_rate = 1.0
        self.invoice_count = 0
        self.payment_count = 0
        self.allocation_count = 0
        self.allocation_seqs: dict[str, int] = {}  # invoice number -> its rows so far
        self.credit_note_count = 0
        self.names: set[str] = set()
        # The timeline texts the services write, translated once rather than per row.
        self.texts = {
            "payment": _(timeline.PAYMENT_TEXT),
            "allocation": _(timeline.ALLOCATION_TEXT),
            "paused": _("Dunning paused until %(until)s: %(reason)s"),
            "field_changed": _("%(field)s: %(old)s → %(new)s"),
        }
        self.kind_labels = {kind.value: str(kind.label) for kind in Payment.Kind}
        # A few customers play a part, spread over the portfolio by the portfolio's own seed.
        self.picker = random.Random(seed)
        parts = (
            ["stalled"] * max(1, customers // 100)
            + ["paused"] * max(2, customers // 100)
            + ["do_not_contact"] * max(1, customers // 250)
            + ["in_dispute"] * max(1, customers // 500)
            + ["credit_note"] * 2
            + ["unapplied"] * 3
        )
        picked = self.picker.sample(range(customers), min(customers, len(parts)))
        self.parts = dict(zip(picked, parts, strict=False))

    # -- the payment nobody can place ------------------------------------------------------

    def plan_unknown_payer(self, chunk: PortfolioChunk) -> None:
        rng = self.picker
        received_on = _weekday_on_or_before(self.today - dt.timedelta(days=rng.randint(1, 10)))
        payer = f"{rng.choice(NAME_WORDS)} {rng.choice(NAME_EXTRAS)}".upper()
        cents = rng.randint(400, 9000) * 100 + rng.choice((0, 0, 50, 99))
        chunk.payments.append(
            self._payment(
                customer=None,
                kind=Payment.Kind.PAYMENT,
                cents=cents,
                unallocated_cents=cents,
                currency="USD",
                received_on=received_on,
                method=Payment.Method.BANK_TRANSFER,
                reference=f"TRF FROM {payer} REF {rng.randint(10000, 99999)}",
                created_by=None,
            )
        )

    # -- one customer and everything that belongs to it ----------------------------------

    def plan_customer(self, index: int, chunk: PortfolioChunk) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        part = self.parts.get(index)
        self.allocation_seqs.clear()  # an invoice's allocations are all planned with it
        market = rng.choices(MARKETS, weights=[m.weight for m in MARKETS])[0]
        segment = rng.choices(Customer.Segment.values, weights=(10, 70, 20))[0]
        is_consumer = segment != Customer.Segment.STRATEGIC and rng.random() < 0.17
        if part == "stalled":
            segment, is_consumer = Customer.Segment.HIGH_RISK.value, False
        kind = Customer.Kind.CONSUMER if is_consumer else Customer.Kind.BUSINESS
        profile = PROFILES[Customer.Kind.CONSUMER if is_consumer else segment]
        ref = f"CUST-{index + 1:06d}"

        person = _person(rng, market.language) if is_consumer else None
        if person:
            name, industry, domain = _full_name(*person, market.language), "", ""
        else:
            name, industry, domain = self._company(rng, market)
        if segment == Customer.Segment.STRATEGIC:
            assigned = "manager"
        else:
            assigned = "agent" if rng.random() < 0.8 else None
        customer = {
            "name": name,
            "source": SOURCE,
            "external_ref": ref,
            "kind": kind,
            "segment": segment,
            "industry": industry,
            "country": market.country,
            "timezone": market.timezone,
            "language": market.language,
            "currency": market.currency,
            "credit_limit": self._credit_limit(rng, market, segment, is_consumer),
            "assigned_agent": assigned,
            "dunning_paused_until": None,
            "dunning_pause_reason": "",
            "do_not_contact": part == "do_not_contact",
            "is_in_dispute": part == "in_dispute",
            # Its own random stream, so the rest of the portfolio stays as it was.
            "postal_address": _postal_address(random.Random(f"{self.seed}:{index}:a"), market),
        }
        if part == "paused":
            customer["dunning_paused_until"] = self.today + dt.timedelta(days=rng.randint(1, 14))
            customer["dunning_pause_reason"] = rng.choice(PAUSE_REASONS)
        chunk.customers.append(customer)
        contacts = self._contacts(rng, market, customer, domain, person)
        chunk.contacts.extend(contacts)

        invoices = self._invoices(rng, market, profile, customer, part)
        is_batch_payer = rng.random() < profile.is_batch_payer
        receipts = self._settle(rng, profile, customer, invoices, part, is_batch_payer)
        chunk.invoices.extend(invoices)
        method = rng.choices(*METHODS[kind])[0]
        self._payments(rng, chunk, customer, receipts, method, is_batch_payer)
        if part == "unapplied":
            self._unapplied_payment(rng, chunk, customer, profile, market)
        self._timeline(rng, chunk, customer, contacts[0], invoices, part)

    def _company(self, rng: random.Random, market: Market) -> tuple[str, str, str]:
        industry = rng.choices(tuple(INDUSTRIES), weights=INDUSTRY_WEIGHTS)[0]
        for attempt in range(12):
            style = rng.randrange(3)
            if style == 0:
                brand = rng.choice(NAME_STARTS) + rng.choice(NAME_ENDS)
            elif style == 1:
                brand = rng.choice(NAME_WORDS)
            else:
                brand = rng.choice(LAST_NAMES[market.language])
            noun = rng.choice(INDUSTRIES[industry])
            words = [brand, noun]
            noun_first, local_words = LOCAL_INDUSTRY_WORDS.get(market.language, (False, {}))
            if local_words and rng.random() < 0.5:
                words = (
                    [local_words[industry], brand] if noun_first else [brand, local_words[industry]]
                )
            if attempt >= 6:  # the short names are running out
                words.append(rng.choice(NAME_EXTRAS))
            trade_name = " ".join(words)
            name = f"{trade_name} {rng.choice(market.legal_forms)}"
            if trade_name not in self.names:
                break
        self.names.add(trade_name)
        return name, industry, f"{slugify(trade_name)}.example"

    def _credit_limit(
        self, rng: random.Random, market: Market, segment: str, is_consumer: bool
    ) -> Decimal | None:
        if is_consumer:
            usd = rng.choice((None, 500, 1000, 2500, 5000))
        elif segment == Customer.Segment.STRATEGIC:
            usd = rng.randint(5, 40) * 50_000
        elif segment == Customer.Segment.HIGH_RISK:
            usd = rng.choice((None, rng.randint(2, 25) * 1000))
        else:
            usd = rng.randint(2, 40) * 5000
        if usd is None:
            return None
        units = usd * market.per_100_usd // 100
        if units >= 1000:
            units = units // 1000 * 1000
        return _money(units * 100)

    def _contacts(
        self,
        rng: random.Random,
        market: Market,
        customer: dict,
        domain: str,
        person: tuple[str, str] | None,
    ) -> list[dict]:
        """One to three people at a business, the person themselves for a consumer."""
        contacts = []
        count = 1 if person else rng.choices((1, 2, 3), weights=(30, 45, 25))[0]
        for position in range(count):
            if person:
                first, last = person
                name = customer["name"]
                local = f"{slugify(first)}.{slugify(last)}{rng.randint(1, 99)}"
                email = f"{local}@{rng.choice(CONSUMER_MAIL_DOMAINS)}"
                role = ""
            else:
                first, last = _person(rng, market.language)
                name = _full_name(first, last, market.language)
                role = "Accounts Payable" if position == 0 else rng.choice(CONTACT_ROLES)
                if position == 0 and rng.random() < 0.5:
                    local = rng.choice(AP_MAILBOXES)
                else:
                    local = f"{slugify(first)}.{slugify(last)}"
                email = f"{local}@{domain}"
            is_mobile = person is not None or position > 0 or rng.random() < 0.3
            contacts.append(
                {
                    "customer": customer["external_ref"],
                    "name": name,
                    "role": role,
                    "email": email,
                    "phone": _phone(rng, market, is_mobile=is_mobile),
                    "is_primary": position == 0,
                }
            )
        return contacts

    def _invoices(
        self,
        rng: random.Random,
        market: Market,
        profile: Profile,
        customer: dict,
        part: str | None,
    ) -> list[dict]:
        """Issue dates over the history (a fifth of customers joined later), amounts, terms."""
        history_days = HISTORY_DAYS if rng.random() < 0.8 else rng.randint(60, HISTORY_DAYS)
        if part == "stalled":
            history_days = HISTORY_DAYS
        issued_on = self.today - dt.timedelta(days=history_days - rng.randint(0, 20))
        terms = rng.choice(profile.terms)
        median_cents = profile.median_usd * 100 * market.per_100_usd // 100
        is_consumer = customer["kind"] == Customer.Kind.CONSUMER
        dates = []
        while issued_on <= self.today:
            dates.append(issued_on)
            if is_consumer:  # a monthly bill
                issued_on = _add_months(issued_on, max(1, round(1 / self.invoice_rate)))
            else:
                gap = rng.expovariate(profile.invoices_per_month * self.invoice_rate / 30.4)
                issued_on = _weekday_on_or_after(issued_on + dt.timedelta(days=1 + int(gap)))
        if part == "stalled":
            # One unpaid invoice in every aging bucket, however small the portfolio.
            dates.extend(
                self.today - dt.timedelta(days=terms + days_past_due)
                for days_past_due in (-5, 15, 45, 75, 105, 140)
            )
            dates = sorted(set(dates))
        invoices = []
        for issued_on in dates:
            cents = median_cents * rng.randint(30, 170) // 100
            if rng.random() < 0.12:  # the occasional big order
                cents *= rng.randint(2, 5)
            if market.currency in WHOLE_UNIT_CURRENCIES or rng.random() < 0.25:
                cents = cents // 100 * 100
            cents = max(cents, 100)
            invoice_terms = terms if rng.random() < 0.9 else rng.choice((15, 30, 45, 60))
            if part == "stalled":
                invoice_terms = terms
            self.invoice_count += 1
            invoices.append(
                {
                    "customer": customer["external_ref"],
                    "number": f"INV-{issued_on.year}-{self.invoice_count:06d}",
                    "source": SOURCE,
                    "issued_on": issued_on,
                    "due_on": issued_on + dt.timedelta(days=invoice_terms),
                    "currency": customer["currency"],
                    "amount": cents,  # cents until _settle turns the money into Decimal
                    "open_balance": cents,
                    "status": Invoice.Status.OPEN,
                    "reference": ""
                    if is_consumer or rng.random() < 0.4
                    else f"PO-{rng.randint(10000, 99999)}",
                }
            )
        return invoices

    def _settle(
        self,
        rng: random.Random,
        profile: Profile,
        customer: dict,
        invoices: list[dict],
        part: str | None,
        is_batch_payer: bool,
    ) -> list[_Receipt]:
        """Decide what has been received against each invoice before today.

        Each invoice gets a day it would be paid (on time, late, or never) from the
        customer's habit (`_Habit`: its own lateness, drifting, seasons, size); whatever falls
        before today has been received, the rest is still open. That leaves recent invoices
        mostly current and spreads the unpaid ones over every aging bucket. Money arrives on
        weekdays; batch payers pay in a Friday payment run.
        """
        stalled_on = None  # a struggling customer stops paying altogether
        if customer["segment"] == Customer.Segment.HIGH_RISK and rng.random() < 0.25:
            stalled_on = self.today - dt.timedelta(days=rng.randint(20, 150))
        if part == "stalled":
            stalled_on = self.today - dt.timedelta(days=rng.randint(160, 170))
        credit_noted = None
        if part == "credit_note":
            eligible = [i for i in invoices if i["issued_on"] <= self.today - dt.timedelta(days=5)]
            credit_noted = rng.choice(eligible[-6:])["number"] if eligible else None
        run_day = FRIDAY if is_batch_payer else None
        habit = _Habit(rng, profile, customer, invoices, self.today)
        receipts = []
        for invoice in invoices:
            amount = invoice["amount"]
            is_disputed = rng.random() < profile.dispute
            if part == "in_dispute" and (
                invoice is invoices[-1] or invoice["issued_on"] > self.today - dt.timedelta(days=75)
            ):
                is_disputed = True
            planned: list[tuple[dt.date, int, bool]] = []
            if invoice["number"] == credit_noted:
                credit = max(100, amount * rng.randint(10, 30) // 100 // 100 * 100)
                if credit < amount:
                    day = invoice["issued_on"] + dt.timedelta(days=rng.randint(3, 20))
                    planned.append((min(day, self.last_day), credit, True))
            remaining = amount - sum(credit for _on, credit, _is_credit_note in planned)
            pay_on = habit.pay_on(rng, invoice)
            if is_disputed:
                # The undisputed part is sometimes paid at once, the rest once the dispute is
                # settled, which most are within a few months.
                paid = 0
                if pay_on and rng.random() < 0.4:
                    paid = remaining * rng.randint(40, 90) // 100 // 100 * 100
                    if 0 < paid < remaining:
                        planned.append((pay_on, paid, False))
                    else:
                        paid = 0
                if part != "in_dispute" and rng.random() < 0.75:
                    settled_on = invoice["due_on"] + dt.timedelta(days=rng.randint(20, 120))
                    planned.append((settled_on, remaining - paid, False))
            elif pay_on and rng.random() < profile.partial:
                paid = remaining * rng.randint(25, 75) // 100 // 100 * 100
                if 0 < paid < remaining:
                    planned.append((pay_on, paid, False))
                    if rng.random() < 0.75:
                        rest_on = pay_on + dt.timedelta(days=rng.randint(14, 60))
                        planned.append((rest_on, remaining - paid, False))
                else:
                    planned.append((pay_on, remaining, False))
            elif pay_on:
                planned.append((pay_on, remaining, False))
            # Money arrives on a weekday, a batch payer's in its Friday payment run: the one
            # before the due date for money meant to be on time, the next one for late money.
            planned = [
                (on if is_credit_note else _arrival(on, invoice, run_day), cents, is_credit_note)
                for on, cents, is_credit_note in planned
            ]

            balance = amount
            for on, cents, is_credit_note in sorted(planned, key=lambda p: p[0]):
                if on > self.last_day or (stalled_on and on >= stalled_on and not is_credit_note):
                    continue
                balance -= cents
                receipts.append(
                    _Receipt(
                        on=on,
                        cents=cents,
                        is_credit_note=is_credit_note,
                        invoice=invoice,
                        is_disputed=is_disputed,
                    )
                )
            invoice["open_balance"] = balance
            invoice["status"] = _status(amount, balance, is_disputed)
        for invoice in invoices:
            invoice["amount"] = _money(invoice["amount"])
            invoice["open_balance"] = _money(invoice["open_balance"])
        return receipts

    def _payments(
        self,
        rng: random.Random,
        chunk: PortfolioChunk,
        customer: dict,
        receipts: list[_Receipt],
        method: str,
        is_batch_payer: bool,
    ) -> None:
        """Turn receipts into payments and allocations, with their timeline entries.

        A batch payer's payment run is one payment allocated to several invoices; credit
        notes are always their own payment.
        """
        groups: dict[tuple, list[_Receipt]] = {}
        applied: list[tuple[dt.datetime, dict, dict, _Receipt]] = []
        for receipt in receipts:
            if receipt.is_credit_note:
                key = (receipt.on, "credit_note", receipt.invoice["number"])
            elif is_batch_payer:
                key = (receipt.on, "run", "")
            else:
                key = (receipt.on, "payment", receipt.invoice["number"])
            groups.setdefault(key, []).append(receipt)
        for (received_on, group_kind, _number), group in sorted(groups.items(), key=lambda g: g[0]):
            numbers = [r.invoice["number"] for r in group]
            cents = sum(r.cents for r in group)
            overpaid = 0
            if group_kind == "credit_note":
                self.credit_note_count += 1
                external_id = f"CN-{received_on.year}-{self.credit_note_count:04d}"
                kind, pay_method = Payment.Kind.CREDIT_NOTE, Payment.Method.CREDIT_NOTE
                reference, rule, by = (
                    f"{external_id} against {numbers[0]}",
                    "credit_note",
                    "finance",
                )
                allocated_on = received_on
            else:
                external_id = ""
                kind = Payment.Kind.PAYMENT
                pay_method = method if rng.random() < 0.9 else Payment.Method.BANK_TRANSFER
                reference, is_matched = _remittance(rng, pay_method, customer, numbers, received_on)
                rule = "remittance_match" if is_matched else "manual"
                by = "finance" if pay_method == Payment.Method.CHECK else None
                allocated_on = received_on
                if not is_matched:
                    by = "finance"
                    allocated_on = min(
                        received_on + dt.timedelta(days=rng.randint(0, 3)), self.last_day
                    )
                if len(group) == 1 and rng.random() < 0.01:  # paid a round sum, a little over
                    overpaid = rng.randint(1, 50) * 100
            payment = self._payment(
                customer=customer["external_ref"],
                kind=kind,
                cents=cents + overpaid,
                unallocated_cents=overpaid,
                currency=customer["currency"],
                received_on=received_on,
                method=pay_method,
                reference=reference,
                created_by=by,
                external_id=external_id,
            )
            chunk.payments.append(payment)
            received_at = _at(received_on, 6, rng.randint(0, 119), self.tz)
            if kind == Payment.Kind.CREDIT_NOTE:
                received_at = _at(received_on, 10, rng.randint(0, 300), self.tz)
            chunk.activities.append(self._payment_activity(payment, received_at))
            for receipt in group:
                self.allocation_count += 1
                allocation = {
                    "key": f"A{self.allocation_count}",
                    "payment": payment["key"],
                    "invoice": receipt.invoice["number"],
                    "amount": _money(receipt.cents),
                    "allocated_on": allocated_on,
                    "seq": self._next_seq(receipt.invoice["number"]),
                    "rule": rule,
                    "created_by": by,
                }
                chunk.allocations.append(allocation)
                if rule == "manual":
                    at = _at(allocated_on, rng.randint(9, 16), rng.randint(0, 59), self.tz)
                    at = max(at, received_at + dt.timedelta(minutes=1))
                else:
                    at = received_at + dt.timedelta(minutes=rng.randint(1, 30))
                applied.append((at, payment, allocation, receipt))
        # Each allocation entry tells the balance it left, so walk them in timeline order.
        applied.sort(key=lambda entry: entry[0])
        balances = {}
        for at, payment, allocation, receipt in applied:
            invoice = receipt.invoice
            left = balances.get(invoice["number"], invoice["amount"]) - allocation["amount"]
            balances[invoice["number"]] = left
            status = _status(invoice["amount"], left, receipt.is_disputed)
            chunk.activities.append(
                self._allocation_activity(payment, allocation, left, status, at)
            )

    def _unapplied_payment(
        self,
        rng: random.Random,
        chunk: PortfolioChunk,
        customer: dict,
        profile: Profile,
        market: Market,
    ) -> None:
        """Money from a known customer that nobody has matched to an invoice yet."""
        received_on = _weekday_on_or_before(self.today - dt.timedelta(days=rng.randint(2, 20)))
        cents = profile.median_usd * market.per_100_usd * rng.randint(50, 150) // 100 // 100 * 100
        payment = self._payment(
            customer=customer["external_ref"],
            kind=Payment.Kind.PAYMENT,
            cents=max(cents, 100),
            unallocated_cents=max(cents, 100),
            currency=customer["currency"],
            received_on=received_on,
            method=Payment.Method.BANK_TRANSFER,
            reference=rng.choice(("Payment on account", "Remittance to follow", "Payment")),
            created_by=None,
        )
        chunk.payments.append(payment)
        at = _at(received_on, 6, rng.randint(0, 119), self.tz)
        chunk.activities.append(self._payment_activity(payment, at))

    def _next_seq(self, invoice_number: str) -> int:
        """The number the invoice's next allocation row takes (Allocation.seq)."""
        self.allocation_seqs[invoice_number] = self.allocation_seqs.get(invoice_number, 0) + 1
        return self.allocation_seqs[invoice_number]

    def _payment(
        self,
        *,
        customer: str | None,
        kind: str,
        cents: int,
        unallocated_cents: int,
        currency: str,
        received_on: dt.date,
        method: str,
        reference: str,
        created_by: str | None,
        external_id: str = "",
    ) -> dict:
        self.payment_count += 1
        return {
            "key": f"P{self.payment_count}",
            "customer": customer,
            "kind": kind,
            "amount": _money(cents),
            "currency": currency,
            "unallocated_amount": _money(unallocated_cents),
            "received_on": received_on,
            "method": method,
            "remittance_reference": reference[:255],
            "source": SOURCE,
            "external_id": external_id or f"BTX-{self.payment_count:08d}",
            "created_by": created_by,
        }

    def _payment_activity(self, payment: dict, at: dt.datetime) -> dict:
        """The entry services.save_new_payment writes."""
        return {
            "customer": payment["customer"],
            "invoice": None,
            "kind": Activity.Kind.PAYMENT,
            "channel": "",
            "outcome": "",
            "actor": payment["created_by"],
            "text": self.texts["payment"]
            % {
                "kind": self.kind_labels[payment["kind"]],
                "currency": payment["currency"],
                "amount": payment["amount"],
            },
            "details": {"amount": str(payment["amount"]), "currency": payment["currency"]},
            "occurred_at": at,
            "payment": payment["key"],
            "allocation": None,
        }

    def _allocation_activity(
        self, payment: dict, allocation: dict, left: Decimal, status: str, at: dt.datetime
    ) -> dict:
        """The entry services.allocate writes."""
        return {
            "customer": payment["customer"],
            "invoice": allocation["invoice"],
            "kind": Activity.Kind.ALLOCATION,
            "channel": "",
            "outcome": "",
            "actor": allocation["created_by"],
            "text": self.texts["allocation"]
            % {
                "currency": payment["currency"],
                "amount": allocation["amount"],
                "kind": self.kind_labels[payment["kind"]].lower(),
                "n": allocation["invoice"],
                "left": left,
            },
            "details": {
                "amount": str(allocation["amount"]),
                "rule": allocation["rule"],
                "status": status,
            },
            "occurred_at": at,
            "payment": payment["key"],
            "allocation": allocation["key"],
        }

    def _timeline(
        self,
        rng: random.Random,
        chunk: PortfolioChunk,
        customer: dict,
        contact: dict,
        invoices: list[dict],
        part: str | None,
    ) -> None:
        """Holds, disputes, notes and calls: what the collectors did in the past weeks."""
        actor = customer["assigned_agent"] or "agent"
        ref = customer["external_ref"]
        entries = []
        if part == "paused":
            until = customer["dunning_paused_until"].isoformat()
            reason = customer["dunning_pause_reason"]
            entries.append(
                {
                    "kind": Activity.Kind.HOLD_CHANGE,
                    "occurred_at": self._office_hours(rng, days_ago=(1, 4)),
                    "text": self.texts["paused"] % {"until": until, "reason": reason},
                    "details": {"hold": "dunning_paused", "until": until, "reason": reason},
                }
            )
        for flag in ("do_not_contact", "is_in_dispute"):
            if customer[flag]:
                label = Customer._meta.get_field(flag).verbose_name
                entries.append(
                    {
                        "kind": Activity.Kind.HOLD_CHANGE,
                        "occurred_at": self._office_hours(rng, days_ago=(3, 20)),
                        "text": self.texts["field_changed"]
                        % {"field": label, "old": False, "new": True},
                        "details": {"field": flag, "from": False, "to": True},
                    }
                )
        for invoice in invoices:
            if invoice["status"] == Invoice.Status.DISPUTED:
                day = min(
                    invoice["issued_on"] + dt.timedelta(days=rng.randint(5, 25)), self.last_day
                )
                reason = rng.choice(DISPUTE_REASONS)
                entries.append(
                    {
                        "kind": Activity.Kind.NOTE,
                        "invoice": invoice["number"],
                        "occurred_at": _at(day, rng.randint(9, 16), rng.randint(0, 59), self.tz),
                        "text": f"{contact['name']} disputes {invoice['number']}: {reason}.",
                    }
                )
        overdue = [
            i
            for i in invoices
            if i["status"] in InvoiceQuerySet.OPEN_STATUSES and i["due_on"] < self.today
        ]
        words = {
            "contact": contact["name"],
            "email": contact["email"],
            "number": overdue[0]["number"] if overdue else invoices[-1]["number"],
        }
        if rng.random() < 0.3:
            note = rng.choice(NOTES)
            entries.append(
                {
                    "kind": Activity.Kind.NOTE,
                    "invoice": words["number"] if "{number}" in note else None,
                    "occurred_at": self._office_hours(rng, days_ago=(1, 45)),
                    "text": note.format(**words),
                }
            )
        if overdue and not customer["do_not_contact"] and rng.random() < 0.7:
            days = sorted(rng.sample(range(1, 29), rng.randint(1, 3)), reverse=True)
            for days_ago in days:
                outcome = rng.choices(CALL_OUTCOMES, weights=CALL_OUTCOME_WEIGHTS)[0]
                occurred_at = self._office_hours(rng, days_ago=(days_ago, days_ago))
                promised_on = occurred_at.date() + dt.timedelta(days=rng.randint(3, 14))
                entries.append(
                    {
                        "kind": Activity.Kind.CALL,
                        "invoice": words["number"],
                        "channel": Activity.Channel.PHONE,
                        "outcome": outcome,
                        "occurred_at": occurred_at,
                        "text": CALL_TEXTS[outcome].format(promised_on=promised_on, **words),
                        "details": {"phone": contact["phone"]},
                    }
                )
        for entry in entries:
            chunk.activities.append(
                {
                    "customer": ref,
                    "invoice": entry.get("invoice"),
                    "kind": entry["kind"],
                    "channel": entry.get("channel", ""),
                    "outcome": entry.get("outcome", ""),
                    "actor": actor,
                    "text": entry["text"],
                    "details": entry.get("details", {}),
                    "occurred_at": entry["occurred_at"],
                    "payment": None,
                    "allocation": None,
                }
            )

    def _office_hours(self, rng: random.Random, *, days_ago: tuple[int, int]) -> dt.datetime:
        day = _weekday_on_or_before(self.today - dt.timedelta(days=rng.randint(*days_ago)))
        return _at(day, rng.randint(9, 16), rng.randint(0, 59), self.tz)


def _remittance(
    rng: random.Random, method: str, customer: dict, numbers: list[str], on: dt.date
) -> tuple[str, bool]:
    """The payer's reference, and whether it names the invoices (so it matches by itself)."""
    if rng.random() < 0.1:
        vague = rng.choice(("Payment", "See remittance advice", f"Payment run {on:%b %Y}"))
        return vague, False
    listed = ", ".join(numbers)
    if len(listed) > 200:
        listed = ", ".join(numbers[:12]) + f" +{len(numbers) - 12} more"
    prefix = {
        Payment.Method.DIRECT_DEBIT: f"DD {customer['external_ref']} ",
        Payment.Method.CARD: "Card payment ",
        Payment.Method.CHECK: f"Check #{rng.randint(1000, 99999)} ",
    }.get(method, rng.choice(("", "", "Payment ", "Inv ")))
    return prefix + listed, True


def _status(amount: int | Decimal, balance: int | Decimal, is_disputed: bool) -> str:
    """Invoice.status_for_balance, for an invoice that has not been stored yet."""
    if balance == 0:
        return Invoice.Status.PAID
    if is_disputed:
        return Invoice.Status.DISPUTED
    if balance < amount:
        return Invoice.Status.PARTIALLY_PAID
    return Invoice.Status.OPEN


def _money(cents: int) -> Decimal:
    """Cents as a two-place Decimal; amounts are integers of cents until here."""
    return Decimal(cents).scaleb(-2)


# A street, a postcode and a city per country, for the address window of letters.
ADDRESSES = {
    "US": ("Main Street", "10001", "New York, NY"),
    "GB": ("High Street", "EC1A 1BB", "London"),
    "DE": ("Hauptstraße", "10115", "Berlin"),
    "FR": ("rue de la République", "75002", "Paris"),
    "ES": ("Calle Mayor", "28013", "Madrid"),
    "MX": ("Avenida Reforma", "06600", "Ciudad de México"),
    "BR": ("Avenida Paulista", "01310-100", "São Paulo"),
    "AU": ("George Street", "2000", "Sydney NSW"),
    "JP": ("Chiyoda 1-1", "100-0001", "Tokyo"),
    "ZA": ("Long Street", "8001", "Cape Town"),
    "CA": ("King Street", "M5H 2N2", "Toronto ON"),
}


def _postal_address(rng: random.Random, market: Market) -> str:
    street, postcode, city = ADDRESSES[market.country]
    number = rng.randint(1, 180)
    first = f"{street} {number}" if market.language in ("de", "es", "pt") else f"{number} {street}"
    if market.country in ("US", "AU", "CA", "GB"):
        return f"{first}\n{city} {postcode}"
    return f"{first}\n{postcode} {city}"


def _person(rng: random.Random, language: str) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES[language]), rng.choice(LAST_NAMES[language])


def _full_name(first: str, last: str, language: str) -> str:
    return f"{last} {first}" if language == "ja" else f"{first} {last}"


@cache
def _example_number(region: str, is_mobile: bool) -> str:
    kind = (
        phonenumbers.PhoneNumberType.MOBILE
        if is_mobile
        else phonenumbers.PhoneNumberType.FIXED_LINE
    )
    number = phonenumbers.example_number_for_type(region, kind)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _phone(rng: random.Random, market: Market, *, is_mobile: bool) -> str:
    """A number valid for the market's country: its example number with new last digits."""
    example = _example_number(market.country, is_mobile)
    country_code = str(phonenumbers.country_code_for_region(market.country))
    national = example[1 + len(country_code) :]
    for _attempt in range(5):
        if market.area_codes:  # 555-0100 to 555-0199 are the US numbers set aside for fiction
            candidate = f"{rng.choice(market.area_codes)}55501{rng.randint(0, 99):02d}"
        else:
            candidate = f"{national[:-4]}{rng.randint(0, 9999):04d}"
        try:
            return normalize_phone(f"+{country_code}{candidate}")
        except ValidationError:
            continue
    return example


def _at(day: dt.date, hour: int, minute: int, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour + minute // 60, minute % 60), tzinfo=tz)


def _weekday_on_or_after(day: dt.date, weekday: int | None = None) -> dt.date:
    """The next weekday (Mon-Fri) on or after `day`, or the next given weekday (4 = Friday)."""
    if weekday is None:
        return day + dt.timedelta(days=7 - day.weekday() if day.weekday() >= 5 else 0)
    return day + dt.timedelta(days=(weekday - day.weekday()) % 7)


def _arrival(on: dt.date, invoice: dict, run_day: int | None) -> dt.date:
    """The weekday (or payment-run day) money planned for `on` arrives: on or before it
    when it is meant to be on time (not before the invoice), otherwise on or after it."""
    if on <= invoice["due_on"]:
        if run_day is None:
            day = _weekday_on_or_before(on)
        else:
            day = on - dt.timedelta(days=(on.weekday() - run_day) % 7)
        if day >= invoice["issued_on"]:
            return day
    return _weekday_on_or_after(on, run_day)


def _weekday_on_or_before(day: dt.date) -> dt.date:
    """`day`, or the Friday before it when it falls on a weekend."""
    return day - dt.timedelta(days=max(0, day.weekday() - 4))


def _add_months(day: dt.date, months: int) -> dt.date:
    month = day.month - 1 + months
    return day.replace(year=day.year + month // 12, month=month % 12 + 1, day=min(day.day, 28))


def write_chunk(chunk: PortfolioChunk, users: dict[str, int]) -> None:
    """Store one chunk in one transaction, resolving references to the new primary keys."""
    with transaction.atomic():
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    assigned_agent_id=users.get(row["assigned_agent"]),
                    **_without(row, "assigned_agent"),
                )
                for row in chunk.customers
            ],
            batch_size=BATCH_SIZE,
        )
        customer_ids = {c.external_ref: c.pk for c in customers}
        Contact.objects.bulk_create(
            [
                Contact(customer_id=customer_ids[row["customer"]], **_without(row, "customer"))
                for row in chunk.contacts
            ],
            batch_size=BATCH_SIZE,
        )
        invoices = Invoice.objects.bulk_create(
            [
                Invoice(customer_id=customer_ids[row["customer"]], **_without(row, "customer"))
                for row in chunk.invoices
            ],
            batch_size=BATCH_SIZE,
        )
        invoice_ids = {i.number: i.pk for i in invoices}
        payments = Payment.objects.bulk_create(
            [
                Payment(
                    customer_id=customer_ids.get(row["customer"]),
                    created_by_id=users.get(row["created_by"]),
                    **_without(row, "key", "customer", "created_by"),
                )
                for row in chunk.payments
            ],
            batch_size=BATCH_SIZE,
        )
        payment_ids = {row["key"]: p.pk for row, p in zip(chunk.payments, payments, strict=True)}
        allocations = Allocation.objects.bulk_create(
            [
                Allocation(
                    payment_id=payment_ids[row["payment"]],
                    invoice_id=invoice_ids[row["invoice"]],
                    created_by_id=users.get(row["created_by"]),
                    **_without(row, "key", "payment", "invoice", "created_by"),
                )
                for row in chunk.allocations
            ],
            batch_size=BATCH_SIZE,
        )
        allocation_ids = {
            row["key"]: a.pk for row, a in zip(chunk.allocations, allocations, strict=True)
        }
        activities = []
        for row in chunk.activities:
            details = dict(row["details"])
            if row["payment"]:
                details["payment"] = payment_ids[row["payment"]]
            if row["allocation"]:
                details["allocation"] = allocation_ids[row["allocation"]]
            activities.append(
                timeline.entry(
                    row["kind"],
                    customer=customer_ids[row["customer"]],
                    invoice=invoice_ids[row["invoice"]] if row["invoice"] else None,
                    by=users.get(row["actor"]),
                    channel=row["channel"],
                    outcome=row["outcome"],
                    text=row["text"],
                    details=details,
                    at=row["occurred_at"],
                )
            )
        timeline.add_all(activities)


def _without(row: dict, *keys: str) -> dict:
    return {k: v for k, v in row.items() if k not in keys}


def ensure_users() -> tuple[dict[str, int], str, list[str]]:
    """Create the demo logins; return their ids, the password, and who has that password.

    A new user gets the password (DEMO_PASSWORD, or a generated one). A user that already
    exists keeps its password unless DEMO_PASSWORD is given, which resets it.
    """
    given = os.environ.get("DEMO_PASSWORD", "")
    password = given or secrets.token_urlsafe(12)
    hashed = make_password(password)  # hashed once: the hasher is slow on purpose
    User = get_user_model()
    ids, has_password = {}, []
    with transaction.atomic():
        for username, group_name, first_name, last_name in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first_name,
                    "last_name": last_name,
                    "email": f"{username}@example.com",
                    "is_staff": True,
                    "is_superuser": group_name is None,
                    "password": hashed,
                },
            )
            if created or given:
                if not created:
                    user.password = hashed
                    user.save(update_fields=["password"])
                has_password.append(username)
            if group_name:
                try:
                    user.groups.add(Group.objects.get(name=group_name))
                except Group.DoesNotExist as exc:
                    raise CommandError(f"Group {group_name!r} is missing; run migrate.") from exc
            ids[username] = user.pk
    return ids, password, has_password


def write_credentials(line: str, *, replace: bool) -> Path:
    """Keep the logins where scripts/run_all.py shows them, readable by the owner only."""
    path = settings.VAR_DIR / "demo-credentials.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_APPEND)
    descriptor = os.open(path, flags, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file may have been created with a looser mode
    with os.fdopen(descriptor, "w", encoding="utf-8") as credentials:
        credentials.write(line + "\n")
    return path
