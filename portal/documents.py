"""PDFs the debtor downloads: a copy of an invoice made from the ledger, and a statement of
account for a period. Rendered by WeasyPrint from templates in the customer's language."""

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.models import Customer, Invoice
from reporting.exports import quiet_pdf_logs

from .pages import PeriodStatement


def _pdf(template: str, context: dict) -> bytes:
    from weasyprint import HTML  # heavy: imported only when a PDF is asked for

    html = render_to_string(
        template,
        {
            "company_name": settings.COMPANY_NAME,
            "company_email": settings.DEFAULT_FROM_EMAIL,
            "generated_at": timezone.localtime(),
            **context,
        },
    )
    with quiet_pdf_logs():
        return HTML(string=html).write_pdf()


def invoice_copy(invoice: Invoice, *, allocations) -> bytes:
    return _pdf(
        "portal/invoice_pdf.html",
        {"invoice": invoice, "customer": invoice.customer, "allocations": allocations},
    )


def statement_pdf(customer: Customer, statement: PeriodStatement) -> bytes:
    return _pdf("portal/statement_pdf.html", {"customer": customer, "statement": statement})
