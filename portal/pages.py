"""What the portal's pages show, read for one customer: a few indexed queries each.

Every query here filters by the logged-in customer first, so an id from another customer
is simply not found (a 404, the same as an id that does not exist).
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.core.paginator import Paginator
from django.db.models import Count, Min, Q, Sum
from django.db.models.functions import Coalesce

from accounts.models import Allocation, Customer, Invoice, Payment
from accounts.money import format_amount
from cases.models import Dispute, PaymentPlan, PromiseToPay

PAGE_SIZE = 25
ZERO = Decimal("0.00")


@dataclass
class Balance:
    currency: str
    open: str
    overdue: str
    open_count: int
    overdue_count: int
    next_due_on: dt.date | None


def balances(customer: Customer, *, today: dt.date) -> list[Balance]:
    """Open and overdue balance per currency: one aggregate query."""
    rows = (
        Invoice.objects.outstanding()
        .filter(customer=customer)
        .values("currency")
        .annotate(
            open=Coalesce(Sum("open_balance"), ZERO),
            overdue=Coalesce(Sum("open_balance", filter=Q(due_on__lt=today)), ZERO),
            open_count=Count("id"),
            overdue_count=Count("id", filter=Q(due_on__lt=today)),
            next_due_on=Min("due_on", filter=Q(due_on__gte=today)),
        )
        .order_by("currency")
    )
    return [
        Balance(
            currency=row["currency"],
            open=format_amount(row["open"], row["currency"]),
            overdue=format_amount(row["overdue"], row["currency"]),
            open_count=row["open_count"],
            overdue_count=row["overdue_count"],
            next_due_on=row["next_due_on"],
        )
        for row in rows
    ]


def open_invoices(customer: Customer, *, limit: int | None = None):
    invoices = (
        Invoice.objects.outstanding().filter(customer=customer).order_by("due_on", "number", "id")
    )
    return list(invoices[:limit] if limit else invoices)


def open_cases(customer: Customer) -> dict:
    """The promises, plans and disputes still running, for the home page."""
    return {
        "promises": list(
            PromiseToPay.objects.filter(
                customer=customer, status=PromiseToPay.Status.OPEN
            ).order_by("promised_on")[:5]
        ),
        "plans": list(
            PaymentPlan.objects.filter(
                customer=customer,
                status__in=PaymentPlan.HOLDING_STATUSES,
            ).order_by("-created_at")[:5]
        ),
        "disputes": list(
            Dispute.objects.filter(customer=customer, status__in=Dispute.ACTIVE_STATUSES).order_by(
                "-opened_at"
            )[:5]
        ),
    }


def invoice_page(customer: Customer, *, which: str, page: str | int | None):
    """One page of the customer's open or paid invoices (newest due first for paid)."""
    invoices = Invoice.objects.filter(customer=customer)
    if which == "paid":
        invoices = invoices.filter(status=Invoice.Status.PAID).order_by("-due_on", "-id")
    else:
        invoices = invoices.outstanding().order_by("due_on", "id")
    paginator = Paginator(invoices, PAGE_SIZE)
    return paginator.get_page(page)


def invoice_for(customer: Customer, invoice_id: int) -> Invoice | None:
    return Invoice.objects.filter(customer=customer, pk=invoice_id).first()


def payments_on(invoice: Invoice) -> list[Allocation]:
    return list(
        Allocation.objects.filter(invoice=invoice)
        .select_related("payment")
        .order_by("allocated_on", "seq")
    )


@dataclass
class StatementLine:
    on: dt.date
    what: str
    reference: str
    currency: str
    debit: Decimal
    credit: Decimal
    balance: Decimal = ZERO


@dataclass
class PeriodStatement:
    start: dt.date
    end: dt.date
    currencies: list[dict]  # {"currency", "opening", "closing", "lines"}


def period_statement(customer: Customer, *, start: dt.date, end: dt.date) -> PeriodStatement:
    """A statement of account for a period, per currency: the balance brought forward, the
    invoices issued and the money received (payments, credit notes and write-offs, less
    refunds) in the period, and the balance carried forward. Cancelled invoices count
    nowhere; refunds are counted on the payment's date."""
    invoices = Invoice.objects.filter(customer=customer).exclude(status=Invoice.Status.CANCELLED)
    payments = Payment.objects.filter(customer=customer)
    opening: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for row in (
        invoices.filter(issued_on__lt=start).values("currency").annotate(total=Sum("amount"))
    ):
        opening[row["currency"]] += row["total"]
    for row in (
        payments.filter(received_on__lt=start)
        .values("currency")
        .annotate(total=Sum("amount"), refunded=Sum("refunded_amount"))
    ):
        opening[row["currency"]] -= row["total"] - row["refunded"]
    lines: dict[str, list[StatementLine]] = defaultdict(list)
    for invoice in invoices.filter(issued_on__range=(start, end)).order_by("issued_on", "id"):
        lines[invoice.currency].append(
            StatementLine(
                invoice.issued_on, "invoice", invoice.number, invoice.currency, invoice.amount, ZERO
            )
        )
    for payment in payments.filter(received_on__range=(start, end)).order_by("received_on", "id"):
        lines[payment.currency].append(
            StatementLine(
                payment.received_on,
                payment.kind,
                payment.remittance_reference[:60],
                payment.currency,
                ZERO,
                payment.amount - payment.refunded_amount,
            )
        )
    currencies = []
    for currency in sorted(set(opening) | set(lines)):
        running = opening[currency]
        ordered = sorted(lines[currency], key=lambda line: (line.on, line.credit > 0))
        for line in ordered:
            running += line.debit - line.credit
            line.balance = running
        currencies.append(
            {
                "currency": currency,
                "opening": opening[currency],
                "closing": running,
                "lines": ordered,
            }
        )
    return PeriodStatement(start, end, currencies)
