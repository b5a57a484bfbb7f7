"""The customer page's tools: a few primary actions, the rest in a "More" menu; the
dispute form and the allocation picker offer open invoices only."""

import re

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

MOST = 5  # Next account, three actions and More: what fits beside the name at 1280 px


@pytest.mark.parametrize("role", ["agent", "manager", "finance"])
def test_a_few_primary_actions_and_the_rest_under_more(client, role, request):
    user = request.getfixturevalue(role)
    customer = CustomerFactory(assigned_agent=user if role == "agent" else None)
    client.force_login(user)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    html = page.content.decode()
    toolbar = html.split('class="object-tools"')[1].split('class="more-actions"')[0]
    assert len(re.findall(r"<li\b", toolbar)) <= MOST
    more = html.split('class="more-actions"')[1].split("</details>")[0]
    assert "History" in more
    if role == "manager":  # nothing lost, only grouped
        for label in ["Log call", "Promise to pay", "Dispute", "Payment plan", "Assign"]:
            assert label in toolbar + more, label


def test_the_dispute_form_offers_open_invoices_only(client, manager):
    customer = CustomerFactory()
    open_one = InvoiceFactory(customer=customer, number="INV-OPEN")
    InvoiceFactory(customer=customer, number="INV-PAID", status="paid", open_balance=0)
    client.force_login(manager)
    form = client.get(reverse("admin:cases_dispute_open", args=[customer.pk])).context["form"]
    assert list(form.fields["invoices"].queryset) == [open_one]


def test_the_allocation_picker_offers_open_invoices_only(client, finance):
    InvoiceFactory(number="INV-7001")
    InvoiceFactory(number="INV-7002", status="paid", open_balance=0)
    client.force_login(finance)
    found = client.get(
        reverse("admin:autocomplete"),
        {
            "term": "INV-700",
            "app_label": "accounts",
            "model_name": "allocation",
            "field_name": "invoice",
        },
    ).json()
    assert [row["text"].split(" ")[0] for row in found["results"]] == ["INV-7001"]
