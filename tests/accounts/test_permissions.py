"""The permission matrix in the README, checked group by group and through the surfaces."""

import datetime as dt

import pytest
from django import forms as djforms
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Activity, Customer, Invoice
from tests.clock import ON as TODAY
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db

VIEW_LEDGER = {
    "view_customer",
    "view_contact",
    "view_invoice",
    "view_payment",
    "view_allocation",
    "view_activity",
}
AGENT = VIEW_LEDGER | {
    "change_customer",
    "add_contact",
    "change_contact",
    "add_activity",
    "log_activity",
    "assign_customer",
    "pause_dunning",
}
MATRIX = {
    "Collections agent": AGENT,
    "Collections manager": AGENT
    | {"work_all_customers", "change_customer_terms", "pause_dunning_unlimited", "change_invoice"},
    "Finance": VIEW_LEDGER
    | {
        "work_all_customers",
        "change_customer_terms",
        "add_customer",
        "change_customer",
        "add_contact",
        "change_contact",
        "add_invoice",
        "change_invoice",
        "add_payment",
        "change_payment",
        "add_allocation",
    },
}
VIEW_INTAKE = {"view_intakebatch", "view_rejection", "view_sourcehealth", "view_importprofile"}
MATRIX["Collections manager"] |= VIEW_INTAKE | {"view_matchproposal"}
MATRIX["Finance"] |= VIEW_INTAKE | {
    "add_intakebatch",
    "change_rejection",
    "resolve_rejection",
    "add_importprofile",
    "change_importprofile",
    "view_webhookevent",
    "view_bankstatement",
    "view_bankline",
    "view_matchproposal",
    "review_match",
}
DUNNING_VIEW = {"view_policy", "view_step", "view_template", "view_notice"}
MATRIX["Collections agent"] |= DUNNING_VIEW
MATRIX["Collections manager"] |= DUNNING_VIEW | {
    "add_policy",
    "change_policy",
    "add_step",
    "change_step",
    "delete_step",
    "add_template",
    "change_template",
    "approve_notice",
    "send_notice_now",
    "switch_policy",
}
MATRIX["Finance"] |= {"view_notice"}
CASE_VIEW = {
    "view_task",
    "view_promisetopay",
    "view_dispute",
    "view_paymentplan",
    "view_installment",
    "view_recovery",
    "view_routingrule",
}
CASE_AGENT = CASE_VIEW | {
    "add_task",
    "change_task",
    "add_promisetopay",
    "change_promisetopay",
    "add_dispute",
    "change_dispute",
    "add_paymentplan",
    "add_recovery",
}
MATRIX["Collections agent"] |= CASE_AGENT
MATRIX["Collections manager"] |= CASE_AGENT | {
    "change_paymentplan",
    "approve_paymentplan",
    "change_recovery",
    "approve_recovery",
    "resolve_dispute",
    "add_routingrule",
    "change_routingrule",
    "delete_routingrule",
}
MATRIX["Finance"] |= CASE_VIEW | {"resolve_dispute"}
REPORTING_VIEW = {"view_aging_report", "view_statement"}
REPORTING_EXPORT = REPORTING_VIEW | {"export_aging_report", "view_reportexport"}
MATRIX["Collections agent"] |= REPORTING_VIEW
MATRIX["Collections manager"] |= REPORTING_EXPORT | {
    "view_scheduledreport",
    "add_scheduledreport",
    "change_scheduledreport",
    "delete_scheduledreport",
    "view_dashboard",
}
MATRIX["Finance"] |= REPORTING_EXPORT | {"view_scheduledreport"}
MATRIX["Collections manager"] |= {"view_accesslog"}  # who looked at which debtor
MATRIX["Collections manager"] |= {"erase_customer"}  # privacy: erasure of personal data
# Merging a duplicate customer into another (accounts/merging.py).
MATRIX["Collections manager"] |= {"merge_customers"}
MATRIX["Finance"] |= {"merge_customers"}
# Staff login (accounts.0022_staff_auth): managers unlock logins and revoke anyone's tokens.
MATRIX["Collections manager"] |= {
    "view_accessattempt",
    "delete_accessattempt",
    "view_accessfailurelog",
    "view_accesslog",
    "revoke_any_apitoken",
}
# The ECB's FX rates the reports convert with (accounts.0029_fx_rates): everyone reads them.
for role in MATRIX:
    MATRIX[role] |= {"view_fxrate"}
# Every role reads the nightly predictions (invoice list and page, customer page).
for role in MATRIX:
    MATRIX[role] |= {"view_invoiceprediction"}
# Console lists to CSV/XLSX (staff.0002_saved_filters_and_list_exports): managers, finance.
MATRIX["Collections manager"] |= {"export_lists"}
MATRIX["Finance"] |= {"export_lists"}
# Which messages get paid (reporting.0005_effectiveness_report): managers.
MATRIX["Collections manager"] |= {"view_effectiveness_report"}
# The model card (predictions.0001_predictor_models): every role reads it; managers activate.
for role in MATRIX:
    MATRIX[role] |= {"view_predictormodel"}
MATRIX["Collections manager"] |= {"activate_predictormodel"}
# Debtors' inbound messages and automatic payments (integrations.0014_inbound_email_roles):
# agents and managers read them; managers cancel a customer's automatic payment.
MATRIX["Collections agent"] |= {"view_inboundemail", "view_autopaymandate", "view_autopaycharge"}
MATRIX["Collections manager"] |= {
    "view_inboundemail",
    "view_autopaymandate",
    "view_autopaycharge",
    "cancel_mandate",
}


def test_groups_hold_exactly_the_documented_permissions():
    for name, expected in MATRIX.items():
        codenames = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert codenames == expected, name


def test_no_role_may_delete_ledger_rows():
    for name in MATRIX:
        perms = Group.objects.get(name=name).permissions.filter(codename__startswith="delete_")
        # Routing rules are configuration, not ledger rows: managers may remove them.
        ledger = perms.filter(content_type__app_label="accounts").exclude(
            codename="delete_routingrule"
        )
        assert not ledger.exists(), name


def test_agent_works_own_and_unassigned_customers_only(agent):
    other = UserFactory(username="other-agent", role="Collections agent")
    mine = CustomerFactory(assigned_agent=agent)
    unassigned = CustomerFactory()
    theirs = CustomerFactory(assigned_agent=other)
    services.add_note(customer=mine, text="ok", by=agent)
    services.add_note(customer=unassigned, text="ok", by=agent)
    with pytest.raises(PermissionDenied):
        services.add_note(customer=theirs, text="not mine", by=agent)
    with pytest.raises(PermissionDenied):
        services.pause_dunning(customers=[theirs], until=TODAY, reason="x", by=agent, today=TODAY)
    assert not Activity.objects.filter(customer=theirs).exists()


def test_manager_works_every_customer(manager, agent):
    theirs = CustomerFactory(assigned_agent=agent)
    services.add_note(customer=theirs, text="manager note", by=manager)
    assert Activity.objects.get(customer=theirs).actor == manager


def test_agent_pauses_up_to_fourteen_days_and_manager_longer(agent, manager):
    customer = CustomerFactory(assigned_agent=agent)
    services.pause_dunning(
        customers=[customer],
        until=TODAY + dt.timedelta(days=14),
        reason="AP on holiday",
        by=agent,
        today=TODAY,
    )
    with pytest.raises(ValidationError, match="at most 14 days"):
        services.pause_dunning(
            customers=[customer],
            until=TODAY + dt.timedelta(days=15),
            reason="longer",
            by=agent,
            today=TODAY,
        )
    services.pause_dunning(
        customers=[customer],
        until=TODAY + dt.timedelta(days=60),
        reason="payment plan being drafted",
        by=manager,
        today=TODAY,
    )
    customer.refresh_from_db()
    assert customer.dunning_paused_until == TODAY + dt.timedelta(days=60)
    assert customer.is_dunning_paused(TODAY + dt.timedelta(days=60))
    assert not customer.is_dunning_paused(TODAY + dt.timedelta(days=61))


def test_finance_cannot_pause_dunning_or_log_calls(finance):
    customer = CustomerFactory()
    with pytest.raises(PermissionDenied):
        services.pause_dunning(
            customers=[customer], until=TODAY, reason="x", by=finance, today=TODAY
        )
    with pytest.raises(PermissionDenied):
        services.log_call(customer=customer, outcome="reached", by=finance)


@pytest.mark.parametrize(
    ("role", "url_name", "expected"),
    [
        ("agent", "admin:accounts_payment_add", 403),
        ("agent", "admin:accounts_invoice_add", 403),
        ("finance", "admin:accounts_payment_add", 200),
        ("finance", "admin:accounts_invoice_add", 200),
        ("manager", "admin:accounts_payment_add", 403),
        ("agent", "admin:accounts_customer_changelist", 200),
        ("finance", "admin:accounts_activity_changelist", 200),
    ],
)
def test_admin_pages_follow_the_roles(client, request, role, url_name, expected):
    client.force_login(request.getfixturevalue(role))
    assert client.get(reverse(url_name)).status_code == expected


@pytest.mark.parametrize("role", ["agent", "manager", "finance"])
def test_no_role_can_delete_an_invoice_in_the_admin(client, request, role):
    invoice = InvoiceFactory()
    client.force_login(request.getfixturevalue(role))
    url = reverse("admin:accounts_invoice_delete", args=[invoice.pk])
    assert client.post(url, {"post": "yes"}).status_code == 403
    assert Invoice.objects.filter(pk=invoice.pk).exists()


def test_agent_cannot_edit_another_agents_customer_in_the_admin(client, agent):
    other = UserFactory(username="other-agent", role="Collections agent")
    theirs = CustomerFactory(assigned_agent=other, name="Theirs Inc")
    client.force_login(agent)
    url = reverse("admin:accounts_customer_change", args=[theirs.pk])
    page = client.get(url)
    assert page.status_code == 200  # may look...
    assert b'name="name"' not in page.content  # ...but not edit
    client.post(url, {"name": "Renamed"})
    theirs.refresh_from_db()
    assert theirs.name == "Theirs Inc"


def offered_actions(client, user) -> set[str]:
    client.force_login(user)
    form = client.get(reverse("admin:accounts_customer_changelist")).context["action_form"]
    return {name for name, _ in form.fields["action"].choices} if form else set()


def test_actions_offered_follow_the_roles(client, agent, finance):
    daily = {"add_note", "log_call", "pause_dunning", "assign"}
    assert daily <= offered_actions(client, agent)
    assert not daily & offered_actions(client, finance)


def test_api_follows_the_roles(agent, finance):
    customer = CustomerFactory()
    invoice = {
        "customer": customer.pk,
        "number": "API-1",
        "issued_on": "2026-11-01",
        "due_on": "2026-12-01",
        "currency": "USD",
        "amount": "120.50",
    }
    api = APIClient()
    api.force_authenticate(agent)
    assert api.get("/api/v1/invoices/").status_code == 200
    assert api.post("/api/v1/invoices/", invoice, format="json").status_code == 403
    assert api.delete(f"/api/v1/customers/{customer.pk}/").status_code in (403, 405)
    api.force_authenticate(finance)
    created = api.post("/api/v1/invoices/", invoice, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["open_balance"] == "120.50"
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_api_needs_authentication():
    assert APIClient().get("/api/v1/invoices/").status_code in (401, 403)


def test_finance_edits_any_customer_but_has_no_agent_actions(client, finance, agent):
    customer = CustomerFactory(assigned_agent=agent, name="Agent's Customer")
    client.force_login(finance)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert b'name="credit_limit"' in page.content
    assert b"Add note" not in page.content and b"Pause dunning" not in page.content


CASE_WORK = CASE_AGENT | {
    "change_paymentplan",
    "approve_paymentplan",
    "change_recovery",
    "approve_recovery",
    "resolve_dispute",
    "add_routingrule",
    "change_routingrule",
    "delete_routingrule",
}


@pytest.mark.parametrize("role", MATRIX)
def test_case_work_rights_moved_with_their_models_to_the_cases_app(role):
    held = Group.objects.get(name=role).permissions.filter(codename__in=CASE_WORK)
    user = UserFactory(role=role)

    assert set(held.values_list("content_type__app_label", flat=True)) == {"cases"}
    for codename in held.values_list("codename", flat=True):
        assert user.has_perm(f"cases.{codename}")
        assert not user.has_perm(f"accounts.{codename}")


# --- One table, both surfaces ----------------------------------------------------------
#
# The README's matrix for work on a customer, as (role, action) -> the customers it is
# allowed on, relative to the user acting: their own, another agent's, an unassigned one.
# Every row is tried through the console and through the API; each must allow exactly
# these and change nothing anywhere else.
OWN, OTHER, UNASSIGNED = "own", "other", "unassigned"
TARGETS = (OWN, OTHER, UNASSIGNED)
ALL = {OWN, OTHER, UNASSIGNED}
AGENTS_OWN = {OWN, UNASSIGNED}
NOWHERE: set[str] = set()
# action: (what it changes, the value it sets)
ACTIONS = {
    "edit name": ("name", "Renamed Ltd"),
    "edit do_not_contact": ("do_not_contact", True),
    "edit is_bankrupt": ("is_bankrupt", True),
    "edit credit_limit": ("credit_limit", "5000.00"),
    "edit segment": ("segment", "strategic"),
    "edit status": ("status", "closed"),
    "add contact": (None, "New Person"),
    "edit contact email": ("email", "changed@example.com"),
    "add note": (None, "Called, will pay Friday"),
}
RULES = [
    # role       action                  allowed on
    ("agent", "edit name", AGENTS_OWN),
    ("agent", "edit do_not_contact", AGENTS_OWN),
    ("agent", "edit is_bankrupt", AGENTS_OWN),
    ("agent", "edit credit_limit", NOWHERE),
    ("agent", "edit segment", NOWHERE),
    ("agent", "edit status", NOWHERE),
    ("agent", "add contact", AGENTS_OWN),
    ("agent", "edit contact email", AGENTS_OWN),
    ("agent", "add note", AGENTS_OWN),
    ("manager", "edit name", ALL),
    ("manager", "edit do_not_contact", ALL),
    ("manager", "edit is_bankrupt", ALL),
    ("manager", "edit credit_limit", ALL),
    ("manager", "edit segment", ALL),
    ("manager", "edit status", ALL),
    ("manager", "add contact", ALL),
    ("manager", "edit contact email", ALL),
    ("manager", "add note", ALL),
    ("finance", "edit name", ALL),
    ("finance", "edit do_not_contact", ALL),
    ("finance", "edit is_bankrupt", ALL),
    ("finance", "edit credit_limit", ALL),
    ("finance", "edit segment", ALL),
    ("finance", "edit status", ALL),
    ("finance", "add contact", ALL),
    ("finance", "edit contact email", ALL),
    ("finance", "add note", NOWHERE),
]


def test_the_table_covers_every_role_and_action():
    assert {(role, action) for role, action, _ in RULES} == {
        (role, action) for role in ("agent", "manager", "finance") for action in ACTIONS
    }


def form_values(form) -> dict:
    """What a browser posts for this form as the page shows it."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        key = form.add_prefix(name)
        if isinstance(field, djforms.BooleanField):
            if value:
                data[key] = "on"
        elif isinstance(value, list | tuple):
            data[key] = [str(v) for v in value]
        elif value is not None:
            data[key] = str(value)
    return data


def change_page_post(page) -> dict:
    """The POST the admin change page would send unchanged: the form and every inline."""
    data = form_values(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        data.update(form_values(formset.management_form))
        for form in formset.forms:
            data.update(form_values(form))
    return data


def through_the_console(client, user, action, customer, contact) -> None:
    field, value = ACTIONS[action]
    client.force_login(user)
    change_url = reverse("admin:accounts_customer_change", args=[customer.pk])
    if action == "add note":
        client.post(
            reverse("admin:accounts_customer_note", args=[customer.pk]),
            {"text": value, "apply": "1"},
        )
    elif action == "edit contact email":
        url = reverse("admin:accounts_contact_change", args=[contact.pk])
        page = client.get(url)
        data = form_values(page.context["adminform"].form) if page.status_code == 200 else {}
        client.post(url, {**data, field: value})
    elif action == "add contact":
        data = change_page_post(client.get(change_url))
        n = int(data["contacts-TOTAL_FORMS"])
        data.update(
            {
                "contacts-TOTAL_FORMS": str(n + 1),
                f"contacts-{n}-name": value,
                f"contacts-{n}-customer": str(customer.pk),
                f"contacts-{n}-email": "new.person@example.com",
            }
        )
        client.post(change_url, data)
    else:
        data = change_page_post(client.get(change_url))
        if isinstance(value, bool):
            data[field] = "on"
        else:
            data[field] = value
        client.post(change_url, data)


def through_the_api(user, action, customer, contact) -> None:
    field, value = ACTIONS[action]
    api = APIClient()
    api.force_authenticate(user)
    if action == "add note":
        response = api.post(
            "/api/v1/activities/",
            {"customer": customer.pk, "kind": "note", "text": value},
            format="json",
        )
    elif action == "edit contact email":
        response = api.patch(f"/api/v1/contacts/{contact.pk}/", {field: value}, format="json")
    elif action == "add contact":
        body = {"customer": customer.pk, "name": value, "email": "new.person@example.com"}
        response = api.post("/api/v1/contacts/", body, format="json")
    else:
        response = api.patch(f"/api/v1/customers/{customer.pk}/", {field: value}, format="json")
    # Allowed or refused, never anything else: a refusal is a 403 that says why.
    assert response.status_code in (200, 201, 403), response.content
    if response.status_code == 403:
        assert response.json(), "a refusal says why"


def did_it_happen(action, customer, contact) -> bool:
    field, value = ACTIONS[action]
    if action == "add note":
        return Activity.objects.filter(customer=customer, kind="note", text=value).exists()
    if action == "add contact":
        return customer.contacts.filter(name=value).exists()
    if action == "edit contact email":
        contact.refresh_from_db()
        return contact.email == value
    customer.refresh_from_db()
    return str(getattr(customer, field)) == str(value)


@pytest.mark.parametrize("surface", ["console", "api"])
@pytest.mark.parametrize(("role", "action", "allowed_on"), RULES)
def test_the_matrix_holds_in_the_console_and_the_api(
    client, request, surface, role, action, allowed_on
):
    user = request.getfixturevalue(role)
    other_agent = UserFactory(username="other-agent", role="Collections agent")
    customers = {
        OWN: CustomerFactory(assigned_agent=user),
        OTHER: CustomerFactory(assigned_agent=other_agent),
        UNASSIGNED: CustomerFactory(),
    }
    contacts = {target: ContactFactory(customer=c) for target, c in customers.items()}
    happened = set()
    for target in TARGETS:
        customer, contact = customers[target], contacts[target]
        if surface == "console":
            through_the_console(client, user, action, customer, contact)
        else:
            through_the_api(user, action, customer, contact)
        if did_it_happen(action, customer, contact):
            happened.add(target)
    assert happened == allowed_on
