import datetime as dt
import io
import json

import pytest
from django.core import mail
from django.core.management import call_command

from dunning import planner, tasks
from dunning.models import Notice, OutboxMessage
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def overdue(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    customer = CustomerFactory()
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    return customer


def run(*args) -> dict:
    out = io.StringIO()
    call_command("run_dunning", *args, stdout=out)
    return json.loads(out.getvalue().strip().splitlines()[-1])


def test_run_dunning_prints_one_json_summary(overdue):
    summary = run("--date", ON.isoformat(), "--at", "2026-11-23T16:00:00+00:00")
    assert summary == {
        "evaluated": 2,
        "planned": 2,
        "sent": 2,
        "deferred": 0,
        "awaiting_approval": 0,
        "suppressed": 0,
        "failed": 0,
        "uncertain": 0,
    }
    assert len(mail.outbox) == 1
    assert OutboxMessage.objects.filter(channel="sms").count() == 1  # no Twilio configured


def test_dry_run_changes_nothing(overdue):
    summary = run("--date", ON.isoformat(), "--dry-run")
    assert summary["planned"] == 2 and summary["sent"] == 0
    assert not Notice.objects.exists() and not mail.outbox


def test_plan_only_fills_the_outbox_sends_nothing_and_repeats_safely(overdue):
    """`make run` plans the demo's first run this way, after seeding, every time it starts."""
    first = run("--date", ON.isoformat(), "--plan-only")
    assert first["planned"] == 2 and first["sent"] == 0
    assert set(Notice.objects.values_list("status", flat=True)) == {"planned"}
    assert not mail.outbox and not OutboxMessage.objects.exists()
    again = run("--date", ON.isoformat(), "--plan-only")
    assert again["planned"] == 0 and Notice.objects.count() == 2


def test_nightly_task_plans_and_fans_out_sending(overdue, settings, monkeypatch):
    settings.DUNNING_SEND_CHUNK = 1
    queued = []
    monkeypatch.setattr(tasks.send_due, "delay", lambda: queued.append(1))
    monkeypatch.setattr(tasks.timezone, "localdate", lambda: ON)
    result = tasks.run_nightly()
    assert result["planned"] == 2
    assert len(queued) == 2  # two notices, one per chunk


def test_send_due_and_sweep_sending_commands(overdue):
    planner.plan(on=ON)
    out = io.StringIO()
    call_command("send_due", "--at", "2026-11-23T16:00:00+00:00", stdout=out)
    assert json.loads(out.getvalue())["sent"] == 2
    assert Notice.objects.filter(status="sent").count() == 2
    Notice.objects.filter(channel="email").update(
        status="sending", sending_at=dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    )
    out = io.StringIO()
    call_command("sweep_sending", stdout=out)
    assert json.loads(out.getvalue()) == {"uncertain": 1, "waiting_for_a_manager": 1}
