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


def store(notice: Notice, pdf: bytes) -> str:
    """Store the notice's letter under one name per notice; returns that name.

    The name is the notice's own, not dated or made unique: a retry after a worker died
    between storing the file and recording the notice replaces that file, so there is
    never a second letter for one notice.
    """
    name = f"letters/letter-{notice.pk}.pdf"
    storage = notice.document.storage
    if storage.exists(name):
        storage.delete(name)
    notice.document.name = storage.save(name, ContentFile(pdf))
    return notice.document.name
