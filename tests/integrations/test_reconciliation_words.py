"""The reconciliation queue in finance's words: the rule by label, the payment by what it is."""

from decimal import Decimal

import pytest
from django.urls import reverse

from integrations.models import MatchProposal
from tests.factories import InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db


def test_the_queue_names_the_rule_and_the_payment(client, finance):
    invoice = InvoiceFactory(number="INV-Q1", amount=Decimal("1500.00"))
    payment = PaymentFactory(customer=invoice.customer, amount=Decimal("1500.00"))
    MatchProposal.objects.create(
        payment=payment,
        rule="oldest_first",
        confidence=Decimal("0.6"),
        lines=[{"invoice": invoice.pk, "amount": "1500.00"}],
    )
    client.force_login(finance)
    page = client.get(reverse("admin:integrations_matchproposal_changelist")).content.decode()
    rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert "Oldest invoices first" in rows and "oldest_first" not in rows
    assert f"payment {payment.pk}<" not in rows
    assert "Payment USD 1,500.00 on" in rows
