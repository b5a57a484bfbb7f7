"""Bad input to the ledger's API answers 4xx naming the field or parameter, never 500."""

import base64
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import timeline
from accounts.models import Activity, Contact, Customer
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db

# Every filter of every list endpoint, with values it must refuse: an id that is not a
# whole number (or out of the database's range), a choice or text holding NUL (which
# PostgreSQL refuses outright), a date that does not exist.
NOT_AN_ID = ["abc", "1e9999", "9" * 30, "-1"]
NOT_A_CHOICE = ["\x00", "nonsense"]
NOT_A_DATE = ["2026-13-45", "yesterday"]
NOT_A_MOMENT = ["2026-13-45", "2026-02-30T25:61"]
FILTERS = {
    "customers": {
        "segment": NOT_A_CHOICE,
        "status": NOT_A_CHOICE,
        "agent": ["x", *NOT_AN_ID],
        "updated_since": NOT_A_MOMENT,
    },
    "contacts": {"customer": NOT_AN_ID},
    "invoices": {
        "customer": NOT_AN_ID,
        "status": NOT_A_CHOICE,
        "currency": ["\x00", "EURO"],
        "due_from": NOT_A_DATE,
        "due_to": NOT_A_DATE,
        "updated_since": NOT_A_MOMENT,
    },
    "payments": {
        "customer": NOT_AN_ID,
        "received_from": NOT_A_DATE,
        "received_to": NOT_A_DATE,
    },
    "activities": {"customer": NOT_AN_ID, "invoice": NOT_AN_ID, "kind": NOT_A_CHOICE},
    "notices": {
        "customer": NOT_AN_ID,
        "status": NOT_A_CHOICE,
        "channel": NOT_A_CHOICE,
        "step": NOT_AN_ID,
        "planned_from": NOT_A_DATE,
        "planned_to": NOT_A_DATE,
        "invoice": NOT_AN_ID,
    },
    "intake-batches": {
        "source": NOT_A_CHOICE,
        "kind": NOT_A_CHOICE,
        "status": NOT_A_CHOICE,
        "started_since": NOT_A_MOMENT,
    },
    "rejections": {"batch": NOT_AN_ID, "status": NOT_A_CHOICE},
}
PAGINATION = {"cursor", "page_size"}


@pytest.fixture
def api(finance):
    client = APIClient()
    client.force_authenticate(finance)
    return client


def schema(api) -> dict:
    return api.get(reverse("schema"), HTTP_ACCEPT="application/json").json()


def test_every_list_filter_in_the_schema_is_tried_here(api):
    """The table above covers every filter the API offers (a new one must join it)."""
    offered = {}
    for path, operations in schema(api)["paths"].items():
        parameters = operations.get("get", {}).get("parameters", [])
        query = {p["name"] for p in parameters if p["in"] == "query"} - PAGINATION
        if query:
            offered[path.removeprefix("/api/v1/").strip("/")] = query
    assert offered == {endpoint: set(params) for endpoint, params in FILTERS.items()}


@pytest.mark.parametrize(
    ("endpoint", "param", "value"),
    [
        (endpoint, param, value)
        for endpoint, params in FILTERS.items()
        for param, values in params.items()
        for value in values
    ],
)
def test_a_bad_filter_value_answers_400_naming_the_parameter(api, endpoint, param, value):
    response = api.get(f"/api/v1/{endpoint}/", {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()


def test_good_filter_values_still_filter(api, agent):
    mine = CustomerFactory(assigned_agent=agent, segment="strategic")
    CustomerFactory(segment="strategic")
    ContactFactory(customer=mine, name="Mine")
    ContactFactory(name="Theirs")
    listed = api.get("/api/v1/customers/", {"agent": agent.pk, "segment": "strategic"}).json()
    assert [c["id"] for c in listed["results"]] == [mine.pk]
    contacts = api.get("/api/v1/contacts/", {"customer": mine.pk}).json()["results"]
    assert [c["name"] for c in contacts] == ["Mine"]
    since = api.get("/api/v1/customers/", {"updated_since": "2026-11-23T15:00Z"}).json()
    assert len(since["results"]) == Customer.objects.count()
    assert not api.get("/api/v1/customers/", {"updated_since": "2026-11-24"}).json()["results"]


def test_a_forged_cursor_is_refused_not_sent_to_the_database(api):
    CustomerFactory()
    for position in ("abc", "1e9999", "9" * 30):
        cursor = base64.b64encode(f"o=0&r=0&p={position}".encode()).decode()
        assert api.get("/api/v1/customers/", {"cursor": cursor}).status_code == 404


def test_a_negative_credit_limit_is_refused_naming_the_field_on_create_and_update(api):
    body = {"name": "Acme", "currency": "USD", "credit_limit": "-1"}
    created = api.post("/api/v1/customers/", body, format="json")
    assert created.status_code == 400
    assert "credit_limit" in created.json()
    customer = CustomerFactory()
    patched = api.patch(f"/api/v1/customers/{customer.pk}/", {"credit_limit": "-1"}, format="json")
    assert patched.status_code == 400 and "credit_limit" in patched.json()
    assert Customer.objects.count() == 1


def test_a_customer_created_through_the_api_is_on_the_timeline(api, finance):
    created = api.post("/api/v1/customers/", {"name": "Acme", "credit_limit": "10"}, format="json")
    assert created.status_code == 201, created.content
    entry = Activity.objects.get(customer_id=created.json()["id"])
    assert (entry.text, entry.actor) == ("Customer created", finance)


@pytest.mark.parametrize("customer", ["abc", "1e9999", 1e300, "9" * 30, None, [1]])
def test_a_contact_for_a_customer_that_is_no_id_names_the_field(api, customer):
    body = {"customer": customer, "name": "Ann", "phone": "+14155550123"}
    response = api.post("/api/v1/contacts/", body, format="json")
    assert response.status_code == 400
    assert "customer" in response.json()
    assert not Contact.objects.exists()


def send(api, method: str, url: str, body: dict):
    """JSON as any client may send it: \\u escapes reach even a lone surrogate."""
    return api.generic(method, url, json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("character", ["\x00", "\x07", "\x1b", "\ud800"])
def test_control_characters_in_text_are_refused_naming_the_field(api, character):
    customer = CustomerFactory(name="Acme")
    contact = ContactFactory(customer=customer, name="Ann")
    name = f"Ac{character}me"
    responses = {
        "customer": send(api, "POST", "/api/v1/customers/", {"name": name}),
        "customer edit": send(api, "PATCH", f"/api/v1/customers/{customer.pk}/", {"name": name}),
        "contact": send(api, "PATCH", f"/api/v1/contacts/{contact.pk}/", {"name": name}),
        "contact role": send(
            api,
            "POST",
            "/api/v1/contacts/",
            {"customer": customer.pk, "name": "Bo", "role": f"A{character}P"},
        ),
    }
    for what, response in responses.items():
        assert response.status_code == 400, what
        assert {"name", "role"} & set(response.json()), what
    customer.refresh_from_db()
    contact.refresh_from_db()
    assert (customer.name, contact.name) == ("Acme", "Ann")
    assert Customer.objects.count() == 1 and Contact.objects.count() == 1


def test_text_may_keep_line_breaks_and_tabs(manager):
    customer = CustomerFactory()
    api = APIClient()
    api.force_authenticate(manager)
    body = {"customer": customer.pk, "kind": "note", "text": "Line one\n\tline two\r\n"}
    assert api.post("/api/v1/activities/", body, format="json").status_code == 201


def test_a_note_on_another_customers_invoice_is_refused(manager):
    customer = CustomerFactory()
    invoice = InvoiceFactory()
    api = APIClient()
    api.force_authenticate(manager)
    body = {"customer": customer.pk, "invoice": invoice.pk, "kind": "note", "text": "x"}
    response = api.post("/api/v1/activities/", body, format="json")
    assert response.status_code == 400 and "invoice" in response.json()


def test_a_contact_stays_with_its_customer(api):
    contact = ContactFactory()
    other = CustomerFactory()
    response = api.patch(f"/api/v1/contacts/{contact.pk}/", {"customer": other.pk}, format="json")
    assert response.status_code == 400 and "customer" in response.json()
    contact.refresh_from_db()
    assert contact.customer_id != other.pk


def test_a_second_primary_contact_is_refused_naming_the_field(api):
    first = ContactFactory(is_primary=True)
    body = {"customer": first.customer_id, "name": "Bo", "is_primary": True}
    response = api.post("/api/v1/contacts/", body, format="json")
    assert response.status_code == 400 and "is_primary" in response.json()


def test_an_agent_is_told_which_fields_are_reserved(agent):
    customer = CustomerFactory(assigned_agent=agent)
    api = APIClient()
    api.force_authenticate(agent)
    body = {"credit_limit": "9000.00", "segment": "strategic", "name": "Renamed"}
    response = api.patch(f"/api/v1/customers/{customer.pk}/", body, format="json")
    assert response.status_code == 403
    assert set(response.json()) == {"credit_limit", "segment"}
    customer.refresh_from_db()
    assert customer.name != "Renamed"  # nothing of a refused request is kept
    # Sending a reserved field unchanged (a PUT of what was read) is no change at all.
    same = {"credit_limit": None, "segment": customer.segment, "name": "Renamed"}
    assert api.patch(f"/api/v1/customers/{customer.pk}/", same, format="json").status_code == 200


def test_the_schema_says_what_system_entries_hold(api):
    customer = CustomerFactory()
    timeline.add(Activity.Kind.STATUS_CHANGE, customer=customer, by=None, text="by the system")
    components = schema(api)["components"]["schemas"]
    assert components["Activity"]["properties"]["actor"].get("nullable") is True
    assert components["IntakeBatch"]["properties"]["created_by"].get("nullable") is True
    listed = api.get("/api/v1/activities/", {"customer": customer.pk}).json()["results"]
    assert [entry["actor"] for entry in listed] == [None]


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/customers/", "updated_since"),
        ("/api/v1/invoices/", "updated_since"),
        ("/api/v1/intake-batches/", "started_since"),
    ],
)
def test_a_moment_with_any_offset_is_compared_in_utc_and_an_impossible_one_named(api, url, param):
    """PostgreSQL refuses offsets past ±15:59: schemathesis's "-17:51" answered 500."""
    assert api.get(url, {param: "1348-12-17T18:53:31-17:51"}).status_code == 200
    refused = api.get(url, {param: "9999-12-31T23:00:00-05:00"})
    assert refused.status_code == 400
    assert param in refused.json()
