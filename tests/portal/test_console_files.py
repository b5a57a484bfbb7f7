"""Staff open the files a debtor attached to a dispute in the portal, from the dispute's page."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from accounts import timeline
from accounts.models import Activity
from cases.models import Dispute
from portal import actions
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def disputed(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(name="Owes Money SARL")
    contact = ContactFactory(customer=customer, email="ap@owes.example")
    invoice = InvoiceFactory(customer=customer, number="INV-1")
    dispute = actions.open_dispute(
        customer=customer,
        contact=contact,
        invoice_ids=[invoice.pk],
        reason=Dispute.Reason.NOT_RECEIVED,
        message="Never arrived.",
        attachments=[SimpleUploadedFile("delivery.pdf", PDF, content_type="application/pdf")],
    )
    entry = Activity.objects.get(customer=customer, kind=Activity.Kind.PORTAL)
    return dispute, entry


def test_the_dispute_page_links_the_file_and_staff_download_it(client, manager, disputed):
    dispute, entry = disputed
    client.force_login(manager)
    page = client.get(reverse("admin:cases_dispute_change", args=[dispute.pk])).content.decode()
    url = reverse("portal:attachment", args=[entry.pk, 0])
    assert url in page and "delivery.pdf" in page
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert "delivery.pdf" in response["Content-Disposition"]


def test_nobody_else_gets_the_file(client, disputed):
    _dispute, entry = disputed
    url = reverse("portal:attachment", args=[entry.pk, 0])
    assert client.get(url).status_code == 302  # to the console's login
    client.force_login(UserFactory(username="no-role"))  # staff, but may not see disputes
    assert client.get(url).status_code == 403


def test_a_path_outside_the_customers_folder_or_a_wrong_index_is_not_found(
    client, manager, disputed
):
    _dispute, entry = disputed
    client.force_login(manager)
    assert client.get(reverse("portal:attachment", args=[entry.pk, 1])).status_code == 404
    other = CustomerFactory()
    forged = timeline.add(
        Activity.Kind.PORTAL,
        customer=entry.customer_id,
        text="forged",
        details={
            "action": "dispute",
            "attachments": [{"name": "x.pdf", "path": f"portal/attachments/{other.pk}/x.pdf"}],
        },
    )
    assert client.get(reverse("portal:attachment", args=[forged.pk, 0])).status_code == 404
