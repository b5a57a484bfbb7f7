import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.models import Activity
from dunning import planner, rendering
from dunning.models import Notice, Template
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
NOTICES = reverse("admin:dunning_notice_changelist")


@pytest.fixture
def waiting(settings):
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "1000"
    customer = CustomerFactory(name="Big Spender")
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=30), amount=Decimal("5000"))
    planner.plan(on=ON)
    return Notice.objects.get(customer=customer, channel="letter")


def test_manager_approves_with_a_reason_on_the_timeline(client, manager, waiting):
    assert waiting.status == "awaiting_approval"
    client.force_login(manager)
    response = client.post(
        NOTICES,
        {
            "action": "approve",
            "_selected_action": [waiting.pk],
            "apply": "1",
            "reason": "Spoke to their CFO; letter is fine",
        },
    )
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert (waiting.status, waiting.decided_by) == ("approved", manager)
    entry = Activity.objects.get(kind="override", customer=waiting.customer)
    assert entry.actor == manager and "CFO" in entry.text


def test_agents_cannot_approve(client, agent, waiting):
    client.force_login(agent)
    form = client.get(NOTICES).context["action_form"]
    choices = {name for name, _ in form.fields["action"].choices} if form else set()
    assert "approve" not in choices
    client.post(
        NOTICES,
        {"action": "approve", "_selected_action": [waiting.pk], "apply": "1", "reason": "x"},
    )
    waiting.refresh_from_db()
    assert waiting.status == "awaiting_approval"


def test_skip_and_send_now_are_recorded(client, manager, waiting):
    client.force_login(manager)
    client.post(
        NOTICES,
        {
            "action": "skip",
            "_selected_action": [waiting.pk],
            "apply": "1",
            "reason": "customer paid by phone",
        },
    )
    waiting.refresh_from_db()
    assert waiting.status == "skipped" and waiting.reason == "Skipped: customer paid by phone"


def test_tonight_view_groups_what_will_go_out(client, manager, waiting):
    client.force_login(manager)
    page = client.get(reverse("admin:dunning_notice_tonight")).content.decode()
    assert "Final notice letter" in page and "awaiting_approval" in page


def test_template_preview_renders_against_a_customer_and_names_unknown_variables(client, manager):
    customer = CustomerFactory(name="Preview Co")
    InvoiceFactory(customer=customer, number="PV-1")
    template = Template.objects.get(name="firm-overdue", language="en")
    client.force_login(manager)
    url = reverse("admin:dunning_template_preview", args=[template.pk])
    page = client.get(url, {"customer": customer.pk}).content.decode()
    assert "PV-1" in page and "Overdue: please pay now" in page
    template.body_text = "Dear {{ cusomer_name }}"
    template.save()
    page = client.get(url, {"customer": customer.pk}).content.decode()
    assert "unknown variable(s): cusomer_name" in page


def test_sms_segments_are_counted():
    assert rendering.sms_segments("a" * 160) == 1
    assert rendering.sms_segments("a" * 161) == 2
    assert rendering.sms_segments("€" * 80) == 1  # extended GSM characters count twice
    assert rendering.sms_segments("Grüße 😀" * 10) == 2  # UCS-2: 70 per single message


def test_templates_cannot_reach_code_or_files():
    with pytest.raises(rendering.RenderError):
        rendering.render_string('{% include "/etc/passwd" %}', {})
    with pytest.raises(rendering.RenderError):
        rendering.render_string("{% load static %}", {})
