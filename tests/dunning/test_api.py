import datetime as dt

import pytest
from rest_framework.test import APIClient

from dunning import planner
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def test_notices_are_listed_read_only_with_filters(finance, agent):
    customer = CustomerFactory()
    invoice = InvoiceFactory(customer=customer, number="API-N1", due_on=ON - dt.timedelta(days=7))
    InvoiceFactory(due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    api = APIClient()
    api.force_authenticate(finance)
    rows = api.get("/api/v1/notices/", {"customer": customer.pk, "channel": "email"}).json()
    assert [(n["channel"], n["invoices"]) for n in rows["results"]] == [("email", ["API-N1"])]
    by_invoice = api.get("/api/v1/notices/", {"invoice": invoice.pk}).json()["results"]
    assert {n["channel"] for n in by_invoice} == {"email", "sms"}
    notice_id = by_invoice[0]["id"]
    assert api.delete(f"/api/v1/notices/{notice_id}/").status_code in (403, 405)
    assert api.post("/api/v1/notices/", {}).status_code in (403, 405)
    agent_api = APIClient()
    agent_api.force_authenticate(agent)
    assert agent_api.get("/api/v1/notices/").status_code == 200
