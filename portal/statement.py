"""A customer's statement as their own page shows it: open invoices, balance per currency,
how to pay each (an invoice's pay link, or a bank transfer with its reference)."""

import datetime as dt
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import translation

from accounts.models import Customer, Invoice
from accounts.money import format_amount, totals_by_currency
from accounts.statement_links import transfer_reference


@dataclass
class StatementLine:
    number: str
    issued_on: dt.date
    due_on: dt.date
    days_past_due: int
    currency: str
    amount: str
    open_balance: str
    is_disputed: bool
    pay_link: str
    reference: str


@dataclass
class Statement:
    customer: Customer
    as_of: dt.date
    lines: list[StatementLine]
    totals: list[tuple[str, str]]  # (currency, formatted balance)
    reference: str  # for one transfer paying everything
    bank: dict = field(default_factory=dict)


def bank_details() -> dict:
    """The configured transfer details; empty values left out (empty dict: none)."""
    details = {
        "bank_name": settings.BANK_TRANSFER_BANK_NAME,
        "iban": settings.BANK_TRANSFER_IBAN,
        "bic": settings.BANK_TRANSFER_BIC,
        "account_number": settings.BANK_TRANSFER_ACCOUNT_NUMBER,
        "routing_number": settings.BANK_TRANSFER_ROUTING_NUMBER,
    }
    details = {key: value for key, value in details.items() if value}
    if details:
        details["payee"] = settings.BANK_TRANSFER_PAYEE or settings.COMPANY_NAME
    return details


def build(customer: Customer, *, as_of: dt.date) -> Statement:
    """The customer's outstanding invoices (one query) and their totals per currency."""
    invoices = list(
        Invoice.objects.outstanding().filter(customer=customer).order_by("due_on", "number")
    )
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        lines = [
            StatementLine(
                number=invoice.number,
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
                days_past_due=max(invoice.days_past_due(as_of), 0),
                currency=invoice.currency,
                amount=format_amount(invoice.amount, invoice.currency),
                open_balance=format_amount(invoice.open_balance, invoice.currency),
                is_disputed=invoice.status == Invoice.Status.DISPUTED,
                pay_link=invoice.pay_link,
                reference=transfer_reference(customer, [invoice]),
            )
            for invoice in invoices
        ]
        totals = totals_by_currency((i.currency, i.open_balance) for i in invoices)
        totals_display = [
            (currency, format_amount(total, currency)) for currency, total in totals.items()
        ]
    return Statement(
        customer=customer,
        as_of=as_of,
        lines=lines,
        totals=totals_display,
        reference=transfer_reference(customer, invoices),
        bank=bank_details(),
    )
