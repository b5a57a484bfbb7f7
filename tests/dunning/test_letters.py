import datetime as dt
import io
import zoneinfo

import pytest
from pypdf import PdfReader

from accounts.models import Activity
from dunning import planner, sender
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def letter(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    customer = CustomerFactory(
        name="Paper Trail GmbH", postal_address="Hauptstraße 5\n10115 Berlin", country="DE"
    )
    ContactFactory(customer=customer, name="Mia Weber", is_primary=True)
    InvoiceFactory(customer=customer, number="LTR-1", due_on=ON - dt.timedelta(days=30))
    planner.plan(on=ON)
    return Notice.objects.get(customer=customer, channel="letter")


def test_final_notice_is_rendered_to_a_pdf_for_printing(letter):
    late_evening = dt.datetime(2026, 11, 23, 23, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    sender.send_due(now=late_evening)  # letters are not bound to contact hours
    letter.refresh_from_db()
    assert letter.status == "sent" and letter.document.name.endswith(".pdf")
    reader = PdfReader(io.BytesIO(letter.document.read()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "final notice before further action" in text.lower()
    assert "Paper Trail GmbH" in text and "10115 Berlin" in text and "LTR-1" in text
    assert f"page 1 of {len(reader.pages)}" in text
    assert letter.recipient == "Hauptstraße 5, 10115 Berlin"
    assert Activity.objects.filter(kind="letter", details__notice=letter.pk).exists()


def test_letters_download_from_the_console_only(client, manager, letter):
    sender.send_due(now=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC))
    url = f"/admin/dunning/notice/{letter.pk}/letter/"
    assert client.get(url).status_code == 302  # to the login page
    client.force_login(manager)
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content).startswith(b"%PDF")
