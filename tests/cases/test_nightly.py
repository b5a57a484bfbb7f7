"""The nightly case-work run: every job runs, in order, and one failure spares the others."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cases import nightly
from cases.models import PromiseToPay, Task
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


def broken_promise_and_bucket_alert(agent):
    customer = CustomerFactory(assigned_agent=agent)
    invoice = InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=31))
    promise = PromiseToPay.objects.create(
        customer=customer,
        amount=Decimal("100.00"),
        currency="USD",
        promised_on=ON - dt.timedelta(days=5),
        holds_until=ON - dt.timedelta(days=2),
    )
    promise.invoices.set([invoice])
    return customer, promise


def test_the_run_breaks_promises_scores_risk_and_raises_alerts(agent):
    customer, promise = broken_promise_and_bucket_alert(agent)
    out = StringIO()
    call_command("run_case_work", "--date", ON.isoformat(), stdout=out)
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["errors"] == {}
    assert summary["broken_promises"] == 1 and summary["aging_alerts"] == 1
    promise.refresh_from_db()
    assert promise.status == "broken"
    assert set(Task.objects.filter(customer=customer).values_list("kind", flat=True)) == {
        "call",
        "alert",
    }
    customer.refresh_from_db()
    assert customer.risk_score is not None and customer.risk_band


def test_one_failing_job_does_not_stop_the_others(agent, monkeypatch):
    broken_promise_and_bucket_alert(agent)

    def boom(**kwargs):
        raise RuntimeError("scoring service down")

    monkeypatch.setattr("cases.risk.score_customers", boom)
    summary = nightly.run_case_work(on=ON, now=dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC))
    assert summary["errors"] == {"risk_scores": "RuntimeError: scoring service down"}
    assert summary["broken_promises"] == 1 and summary["aging_alerts"] == 1
    with pytest.raises(CommandError):
        call_command("run_case_work", "--date", ON.isoformat(), stdout=StringIO())
