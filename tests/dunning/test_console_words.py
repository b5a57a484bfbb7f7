"""The dunning console in words and in width: labels not codes, a customer picker, a notice
list whose Status, Reason and Edit columns fit."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from dunning import rendering
from dunning.models import Notice, Template
from tests.factories import CustomerFactory, InvoiceFactory
from tests.reporting.test_kpis import make_step, notice

pytestmark = pytest.mark.django_db


def test_the_template_preview_picks_the_customer_by_name(client, manager):
    customer = CustomerFactory(name="Preview Picker GmbH")
    template = Template.objects.get(name="firm-overdue", language="en")
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[template.pk])
    page = client.get(url).content.decode()
    assert "Customer id" not in page
    field = re.search(r'<select name="customer"[^>]*>', page).group(0)
    assert "admin-autocomplete" in field and "data-ajax--url" in field
    found = client.get(
        reverse("admin:autocomplete"),
        {
            "term": "Preview Pick",
            "app_label": "dunning",
            "model_name": "notice",
            "field_name": "customer",
        },
    ).json()
    assert [row["id"] for row in found["results"]] == [str(customer.pk)]
    # Chosen, the page shows the name and the preview.
    page = client.get(url, {"customer": customer.pk}).content.decode()
    assert "Preview Picker GmbH" in page


def test_the_notice_list_is_narrow_and_says_things_in_words(client, manager):
    customer = CustomerFactory(name="Words Ltd")
    step = make_step("Standard", "reminder-words", 7)
    waiting = notice(
        customer,
        step,
        [InvoiceFactory(customer=customer)],
        planned_on=timezone.localdate(),
        status=Notice.Status.AWAITING_APPROVAL,
    )
    waiting.reason = "x" * 200
    waiting.save()
    client.force_login(manager)
    page = client.get(reverse("admin:dunning_notice_changelist")).content.decode()
    header = page.split("<thead>")[1].split("</thead>")[0]
    columns = re.findall(r'<th scope="col"', header)
    assert len(columns) <= 9  # the selection box and eight columns at most
    row = page.split("<tbody>")[1].split("</tr>")[0]
    assert "Awaiting approval" in row and "awaiting_approval" not in row
    assert f"{step.name} · E-mail" in row
    shown = re.sub(r'title="[^"]*"', "", row)
    assert "x" * 200 not in shown and "x" * 59 + "…" in shown  # cut, whole on hover
    assert f'title="{"x" * 200}"' in row
    assert "Edit" in row


def test_the_notice_page_names_edited_invoices_by_number(client, manager):
    customer = CustomerFactory()
    invoice = InvoiceFactory(customer=customer, number="INV-NAMED")
    step = make_step("Standard", "reminder-named", 7)
    edited = notice(customer, step, [invoice], planned_on=timezone.localdate())
    edited.edited_invoices = [invoice.pk]
    edited.save()
    client.force_login(manager)
    page = client.get(reverse("admin:dunning_notice_change", args=[edited.pk])).content.decode()
    assert "INV-NAMED" in page
    assert f"[{invoice.pk}]" not in page


def test_a_notice_shows_each_currency_by_its_minor_units():
    """Debtors' messages use the same formatter as the console: yen have no decimals."""
    customer = CustomerFactory(language="en")
    invoice = InvoiceFactory(customer=customer, currency="JPY", amount=Decimal("1250000.00"))
    context = rendering.notice_context(
        customer=customer, invoices=[invoice], contact=None, on=timezone.localdate()
    )
    assert context["invoices"][0]["open_balance_display"] == "1,250,000"
    assert context["totals_display"] == {"JPY": "1,250,000"}
