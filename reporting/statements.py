"""The customer statement: a customer's open items and their aging as of a date, as a PDF."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Customer

from .aging import AgingReport, InvoiceRow, customer_rows, invoice_rows
from .exports import quiet_pdf_logs, snapshot


@dataclass
class CustomerStatement:
    customer: Customer
    as_of: dt.date
    report: AgingReport
    lines: list[InvoiceRow]
    pay_links: dict[int, str]  # invoice id -> pay link, where the invoice has one
    aging: list  # CustomerRow per currency

    @property
    def item_count(self) -> int:
        return len(self.lines)


def build(customer: Customer, *, as_of: dt.date) -> CustomerStatement:
    """The open items and per-currency aging of one customer as of `as_of` (SQL aggregates)."""
    report = AgingReport(as_of=as_of, detail=True)
    with snapshot():
        lines = list(invoice_rows(report, customer_ids=[customer.pk]))
        aging = list(customer_rows(report, customer_ids=[customer.pk]))
        pay_links = dict(
            customer.invoices.filter(pk__in=[line.invoice_id for line in lines])
            .exclude(pay_link="")
            .values_list("pk", "pay_link")
        )
    lines.sort(key=lambda line: (line.currency, line.due_on, line.number))
    return CustomerStatement(customer, as_of, report, lines, pay_links, aging)


def render_pdf(statement: CustomerStatement) -> bytes:
    customer = statement.customer
    contact = customer.contacts.filter(is_primary=True).first()
    html = render_to_string(
        "reporting/statement.html",
        {
            "company_name": settings.COMPANY_NAME,
            "company_email": settings.DEFAULT_FROM_EMAIL,
            "company_site": settings.SITE_URL,
            "customer": customer,
            "contact": contact,
            "as_of": statement.as_of,
            "generated_at": timezone.localtime(),
            "buckets": [str(bucket.label) for bucket in statement.report.buckets],
            "lines": [
                {
                    "number": line.number,
                    "issued_on": line.issued_on,
                    "due_on": line.due_on,
                    "days": max(line.days_past_due, 0),
                    "currency": line.currency,
                    "amount": f"{line.amount:,.2f}",
                    "balance": f"{line.balance:,.2f}",
                    "is_disputed": line.status == "disputed",
                    "pay_link": statement.pay_links.get(line.invoice_id, ""),
                }
                for line in statement.lines
            ],
            "aging": [
                {
                    "currency": row.currency,
                    "buckets": [f"{value:,.2f}" for value in row.buckets],
                    "total": f"{row.total:,.2f}",
                }
                for row in statement.aging
            ],
        },
    )
    with quiet_pdf_logs():
        from weasyprint import HTML  # heavy; only PDFs need it

        return HTML(string=html, base_url=settings.SITE_URL).write_pdf()
