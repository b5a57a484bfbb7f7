"""The bulk invoice API under a spike: `Prefer: respond-async` stores the request and
answers 202 with the batch to poll; a worker loads it, and the counts add up."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Invoice
from integrations import tasks
from integrations.models import InboxItem, IntakeBatch, Rejection

pytestmark = pytest.mark.django_db
URL = "/api/v1/invoices/bulk/"
ASYNC = {"HTTP_PREFER": "respond-async"}


def item(number, **changes):
    return {
        "number": number,
        "customer_ref": "C-1",
        "customer_name": "Acme Rockets",
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


def test_an_async_request_is_stored_answered_202_and_loaded_by_a_worker(api):
    body = {"source": "erp", "invoices": [item("A-1"), item("A-2", due_on="31/10/2026")]}

    response = api.post(URL, body, format="json", **ASYNC)

    assert response.status_code == 202, response.content
    data = response.json()
    assert data["status"] == "queued"
    assert data["url"].endswith(f"/api/v1/intake-batches/{data['batch']}/")
    batch = IntakeBatch.objects.get(pk=data["batch"])
    assert batch.status == "running" and not Invoice.objects.exists()

    tasks.load_bulk_request(InboxItem.objects.get().pk)

    polled = api.get(data["url"]).json()
    assert polled["status"] == "completed"
    assert (polled["rows_read"], polled["created"], polled["rejected"]) == (2, 1, 1)
    assert Invoice.objects.get().source == "erp"
    assert "due_on" in Rejection.objects.get(batch=batch).errors


def test_a_nul_in_an_item_rejects_that_item_and_loads_the_rest(api):
    body = {"invoices": [item("N-1", customer_name="Acme\u0000"), item("N-2")]}

    data = api.post(URL, body, format="json", **ASYNC).json()
    tasks.sweep_inbox(older_than_seconds=0)

    batch = IntakeBatch.objects.get(pk=data["batch"])
    assert (batch.status, batch.created, batch.rejected) == ("completed", 1, 1)
    rejection = Rejection.objects.get(batch=batch)
    assert list(rejection.errors) == ["customer_name"]
    assert rejection.raw["customer_name"] == "Acme\\u0000"


def test_the_synchronous_answer_also_refuses_a_nul_naming_the_field(api):
    response = api.post(URL, {"invoices": [item("S\u00001")]}, format="json")

    assert response.status_code == 200
    assert response.json()["errors"] == [
        {"index": 0, "errors": {"number": ["The value contains a NUL character (\\u0000)."]}}
    ]


def test_a_retried_async_request_is_queued_once(api):
    body = {"invoices": [item("R-1")]}

    first = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1", **ASYNC)
    retry = api.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="k-1", **ASYNC)

    assert first.status_code == retry.status_code == 202
    assert retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"
    assert IntakeBatch.objects.count() == 1 and InboxItem.objects.count() == 1


def test_a_load_that_breaks_fails_its_batch_instead_of_leaving_it_running(api, monkeypatch):
    data = api.post(URL, {"invoices": [item("B-1")]}, format="json", **ASYNC).json()

    def broken(stored):
        raise ValueError("the parser fell over")

    monkeypatch.setitem(tasks.HANDLERS, InboxItem.Source.API_BULK, broken)
    tasks.sweep_inbox(older_than_seconds=0)

    batch = IntakeBatch.objects.get(pk=data["batch"])
    assert batch.status == "failed" and "the parser fell over" in batch.error
    assert InboxItem.objects.get().status == "failed"


def test_an_async_request_still_needs_the_finance_role(agent):
    client = APIClient()
    client.force_authenticate(agent)
    assert client.post(URL, {"invoices": [item("X")]}, format="json", **ASYNC).status_code == 403
    assert not InboxItem.objects.exists()
