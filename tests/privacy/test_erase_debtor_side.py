"""Erasing a customer also erases the debtor's side: replies and portal messages with their
files, files attached to portal disputes, sign-in codes, a saved payment method's text."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from integrations.inbound import receive
from integrations.models import AutopayMandate, InboundEmail
from portal import actions as portal_actions
from portal.models import AccessCode
from privacy import erasure
from tests.clock import NOW
from tests.factories import ContactFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def test_the_debtors_side_is_erased(manager, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(name="Jane Debtor")
    contact = ContactFactory(customer=customer, name="Jane Debtor", email="jane@debtor.example")
    message = receive.from_portal(
        customer=customer,
        contact=contact,
        subject="About invoice 7",
        text="Jane Debtor here: I will pay on Friday.",
        attachments=[SimpleUploadedFile("note.txt", b"Jane's note", content_type="text/plain")],
    )
    kept = default_storage.save(
        f"{portal_actions.ATTACHMENT_DIR}/{customer.pk}/proof.pdf", ContentFile(b"%PDF-1.4")
    )
    AccessCode.objects.create(
        contact=contact, code_hash="x" * 64, expires_at=NOW + dt.timedelta(minutes=5)
    )
    mandate = AutopayMandate.objects.create(
        customer=customer,
        contact=contact,
        stripe_customer_id="cus_1",
        payment_method_id="pm_1",
        setup_intent_id="seti_1",
        method_type="card",
        display="Visa •••• 4242",
    )
    counts = erasure.erase_customer(customer=customer, reason="Data subject request", by=manager)
    message = InboundEmail.objects.get(pk=message.pk)
    assert "Jane" not in message.text and message.sender == ""
    assert all(not a.file for a in message.attachments.all())
    assert not default_storage.exists(kept)
    assert not AccessCode.objects.filter(contact=contact).exists()
    mandate.refresh_from_db()
    assert mandate.display == "[erased]"
    assert counts["inbound_messages"] == 1 and counts["portal_files"] == 1
