"""Managers switch a customer's policy or take it out of automation; agents resume invoices."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Activity, Customer
from dunning import planner
from dunning import services as dunning_services
from dunning.models import Notice, Policy
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
CUSTOMERS = reverse("admin:accounts_customer_changelist")
INVOICES = reverse("admin:accounts_invoice_changelist")


def steps_noticed(customer) -> set[str]:
    return set(
        Notice.objects.filter(customer=customer).values_list("step__policy__name", flat=True)
    )


def test_manager_switches_policy_from_the_customer_page_and_the_planner_follows(client, manager):
    customer = CustomerFactory(segment=Customer.Segment.STANDARD)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    client.force_login(manager)
    url = reverse("admin:accounts_customer_policy", args=[customer.pk])
    high_risk = Policy.objects.get(name="High risk")
    response = client.post(url, {"apply": "1", "policy": high_risk.pk, "reason": "two bounced"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.dunning_policy == high_risk
    entry = Activity.objects.get(customer=customer, kind="override")
    assert entry.actor == manager and "High risk" in entry.text and "two bounced" in entry.text
    assert entry.details["override"] == "policy"
    planner.plan(on=ON)
    assert steps_noticed(customer) == {"High risk"}


def test_switching_back_to_the_segment_default(client, manager):
    customer = CustomerFactory(
        segment=Customer.Segment.STANDARD, dunning_policy=Policy.objects.get(name="High risk")
    )
    client.force_login(manager)
    client.post(
        CUSTOMERS,
        {
            "action": "switch_policy",
            "_selected_action": [customer.pk],
            "apply": "1",
            "policy": "",
            "reason": "paid up",
        },
    )
    customer.refresh_from_db()
    assert customer.dunning_policy is None
    assert "segment's default" in Activity.objects.get(customer=customer).text


def test_agents_cannot_switch_policy_or_exclude(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    client.force_login(agent)
    for name in ("policy", "exclude"):
        url = reverse(f"admin:accounts_customer_{name}", args=[customer.pk])
        response = client.post(url, {"apply": "1", "reason": "why not"})
        assert response.status_code in (302, 403)
    customer.refresh_from_db()
    assert not customer.is_excluded_from_automation
    assert not Activity.objects.exists()


def test_excluded_customer_gets_no_notices_until_put_back(client, manager):
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    client.force_login(manager)
    client.post(
        reverse("admin:accounts_customer_exclude", args=[customer.pk]),
        {"apply": "1", "reason": "handled by the account manager"},
    )
    customer.refresh_from_db()
    assert customer.is_excluded_from_automation
    planner.plan(on=ON)
    assert not Notice.objects.filter(customer=customer).exists()
    client.post(
        reverse("admin:accounts_customer_include", args=[customer.pk]),
        {"apply": "1", "reason": "back to normal"},
    )
    customer.refresh_from_db()
    assert not customer.is_excluded_from_automation
    planner.plan(on=ON)
    assert Notice.objects.filter(customer=customer).exists()
    texts = list(Activity.objects.filter(customer=customer).values_list("text", flat=True))
    assert any("Excluded" in t and "account manager" in t for t in texts)
    assert any("Back in" in t and "back to normal" in t for t in texts)


def test_a_single_invoice_is_resumed_from_the_invoice_list(client, agent):
    customer = CustomerFactory(assigned_agent=agent)
    invoice = InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    ledger.pause_invoices(
        invoices=[invoice], until=ON + dt.timedelta(days=5), reason="PO check", by=agent, today=ON
    )
    planner.plan(on=ON)
    assert not Notice.objects.exists()
    client.force_login(agent)
    response = client.post(
        INVOICES, {"action": "resume_invoices", "_selected_action": [invoice.pk]}
    )
    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.dunning_paused_until is None and invoice.dunning_pause_reason == ""
    entry = Activity.objects.filter(invoice=invoice).first()
    assert "resumed" in entry.text and entry.actor == agent
    planner.plan(on=ON)
    assert Notice.objects.filter(customer=customer).exists()


def test_the_customer_page_offers_dunnings_buttons_to_managers_only(client, manager, agent):
    customer = CustomerFactory(assigned_agent=agent)
    page = reverse("admin:accounts_customer_change", args=[customer.pk])
    policy = reverse("admin:accounts_customer_policy", args=[customer.pk])
    exclude = reverse("admin:accounts_customer_exclude", args=[customer.pk])
    include = reverse("admin:accounts_customer_include", args=[customer.pk])

    client.force_login(manager)
    html = client.get(page).content.decode()
    assert policy in html and exclude in html and include not in html
    Customer.objects.filter(pk=customer.pk).update(is_excluded_from_automation=True)
    html = client.get(page).content.decode()
    assert include in html and exclude not in html

    client.force_login(agent)
    html = client.get(page).content.decode()
    assert policy not in html and include not in html


def test_the_installments_policy_is_not_offered_to_customers(client, manager):
    customer = CustomerFactory()
    client.force_login(manager)
    html = client.get(reverse("admin:accounts_customer_policy", args=[customer.pk])).content
    assert b"High risk" in html and b"Payment plan installments" not in html


def test_the_service_refuses_the_installments_policy_for_a_customer(manager):
    customer = CustomerFactory()
    reminders = Policy.objects.get(purpose=Policy.Purpose.INSTALLMENTS)
    with pytest.raises(ValidationError, match="reminds of installments"):
        dunning_services.switch_policy(
            customers=[customer], policy=reminders, by=manager, reason="try"
        )
    customer.refresh_from_db()
    assert customer.dunning_policy is None
