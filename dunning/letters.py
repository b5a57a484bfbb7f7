"""Letters: a notice's text laid out for print and rendered to PDF with WeasyPrint."""

from django.core.files.base import ContentFile
from django.template.loader import render_to_string

from .models import Notice


def render_pdf(*, notice: Notice, content: dict, context: dict) -> bytes:
    from weasyprint import HTML  # imported here: it is heavy, and only letters need it

    html = render_to_string(
        "dunning/letter.html",
        {
            **context,
            **content,
            "tone": notice.step.tone,
            "language": notice.customer.language,
            "postal_address": notice.customer.postal_address,
        },
    )
    return HTML(string=html).write_pdf()


def store(notice: Notice, pdf: bytes) -> None:
    notice.document.save(f"letter-{notice.pk}.pdf", ContentFile(pdf), save=False)
