import pytest
from rest_framework.test import APIClient

from accounts.models import Activity, Invoice
from integrations.models import IntakeBatch, Rejection

pytestmark = pytest.mark.django_db
URL = "/api/v1/invoices/bulk/"


def item(number, **changes):
    return {
        "number": number,
        "customer_ref": "C-1",
        "customer_name": "Acme Rockets",
        "email": "ap@acme.example",
        "issued_on": "2026-10-01",
        "due_on": "2026-10-31",
        "currency": "USD",
        "amount": "1250.00",
        **changes,
    }


@pytest.fixture
def api(finance):
    client = APIClient()
    client.force_authenticate(finance)
    return client


def test_valid_items_load_and_invalid_ones_are_named_by_index_and_field(api):
    body = {
        "source": "erp",
        "invoices": [
            item("A-1"),
            item("A-2", due_on="31/10/2026"),
            item("A-3", currency="XYZ"),
            item("A-4", amount=1250.0),
            item("A-5"),
        ],
    }
    response = api.post(URL, body, format="json")
    assert response.status_code == 200, response.content
    data = response.json()
    assert {k: data[k] for k in ("read", "created", "updated", "unchanged", "rejected")} == {
        "read": 5,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "rejected": 3,
    }
    errors = {e["index"]: e["errors"] for e in data["errors"]}
    assert set(errors) == {1, 2, 3}
    assert "due_on" in errors[1] and "currency" in errors[2] and "amount" in errors[3]
    assert set(Invoice.objects.values_list("number", flat=True)) == {"A-1", "A-5"}
    assert Invoice.objects.get(number="A-1").source == "erp"
    assert Rejection.objects.filter(batch_id=data["batch"]).count() == 3
    assert IntakeBatch.objects.get(pk=data["batch"]).source == "api"


def test_a_retried_bulk_request_changes_nothing(api):
    body = {"invoices": [item("R-1")]}
    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    retry = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="bulk-1")
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert IntakeBatch.objects.count() == 1 and Invoice.objects.count() == 1


def test_loading_the_same_invoices_again_is_all_unchanged_and_a_change_is_logged(api):
    api.post(URL, {"invoices": [item("U-1"), item("U-2")]}, format="json")
    again = api.post(URL, {"invoices": [item("U-1"), item("U-2")]}, format="json").json()
    assert (again["unchanged"], again["created"]) == (2, 0)
    moved = api.post(URL, {"invoices": [item("U-1", due_on="2026-12-15")]}, format="json").json()
    assert moved["updated"] == 1
    invoice = Invoice.objects.get(number="U-1")
    assert str(invoice.due_on) == "2026-12-15"
    assert Activity.objects.filter(invoice=invoice, details__field="due_on").exists()


def test_bulk_needs_the_finance_role(agent):
    client = APIClient()
    client.force_authenticate(agent)
    assert client.post(URL, {"invoices": [item("X")]}, format="json").status_code == 403
    assert not Invoice.objects.exists()


def test_bulk_body_must_be_a_bounded_list(api, monkeypatch):
    assert api.post(URL, {"invoices": []}, format="json").status_code == 400
    from integrations import api as integrations_api

    monkeypatch.setattr(integrations_api, "MAX_BULK_ITEMS", 2)
    too_many = api.post(URL, {"invoices": [item("1"), item("2"), item("3")]}, format="json")
    assert too_many.status_code == 400 and "at most 2" in too_many.json()["invoices"][0]


def test_api_items_stay_strict_a_bad_email_rejects_the_item_with_its_amount_at_stake(api):
    body = {"source": "erp", "invoices": [item("B-1", email="not-an-address"), item("B-2")]}

    response = api.post(URL, body, format="json")

    data = response.json()
    assert (data["created"], data["rejected"], data["warned"]) == (1, 1, 0)
    assert "email" in data["errors"][0]["errors"]
    rejection = Rejection.objects.get(batch_id=data["batch"])
    assert (str(rejection.amount), rejection.currency, rejection.invoices_blocked) == (
        "1250.00",
        "USD",
        1,
    )
