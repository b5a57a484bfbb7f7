import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, OperationalError, transaction

from integrations.intake import batches
from integrations.models import ImportProfile, IntakeBatch, Rejection, SourceHealth

pytestmark = pytest.mark.django_db


def test_a_closed_batch_accounts_for_every_row():
    batch = batches.open_batch(source="spreadsheet", kind="invoices")
    tally = batches.Tally(created=5, updated=2, unchanged=1)
    batches.reject(tally, batch, row_number=9, raw={"Total": "ten"}, errors={"amount": ["bad"]})
    batches.close_batch(batch, tally)
    batch.refresh_from_db()
    assert batch.counts() == {
        "read": 9,
        "created": 5,
        "updated": 2,
        "unchanged": 1,
        "rejected": 1,
        "warned": 0,
        "batch": batch.pk,
    }
    rejection = Rejection.objects.get(batch=batch)
    assert (rejection.row_number, rejection.raw, rejection.reason) == (
        9,
        {"Total": "ten"},
        "amount: bad",
    )


def test_database_refuses_a_completed_batch_whose_counts_do_not_add_up():
    batch = batches.open_batch(source="api", kind="invoices")
    with pytest.raises(IntegrityError), transaction.atomic():
        IntakeBatch.objects.filter(pk=batch.pk).update(status="completed", rows_read=3, created=1)


def test_transient_failures_are_retried_with_backoff_and_health_recorded():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("database is busy")
        return "done"

    assert batches.with_retries(flaky, source="xero", sleep=sleeps.append) == "done"
    assert sleeps == [0.5, 1.0]
    health = SourceHealth.objects.get(source="xero")
    assert health.consecutive_failures == 0 and health.last_success_at is not None


def test_a_source_that_keeps_failing_is_flagged(settings):
    settings.INTAKE_FAILING_AFTER = 2

    def down():
        raise ConnectionError("provider down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            batches.with_retries(down, source="stripe", attempts=2, sleep=lambda s: None)
    health = SourceHealth.objects.get(source="stripe")
    assert health.consecutive_failures == 2 and health.is_failing
    assert "provider down" in health.last_error


def test_shipped_profiles_exist_with_real_headers():
    xero = ImportProfile.objects.get(name="xero")
    assert xero.columns["number"] == ["InvoiceNumber"]
    assert xero.columns["amount_due"] == ["InvoiceAmountDue"]
    assert ImportProfile.objects.get(name="quickbooks-online").columns["amount_due"][0] == (
        "Open Balance"
    )
    assert ImportProfile.objects.filter(is_builtin=True).count() == 3


def test_finance_dismisses_rejected_rows_with_a_reason(client, finance):
    batch = batches.open_batch(source="spreadsheet", kind="invoices")
    tally = batches.Tally()
    batches.reject(tally, batch, row_number=2, raw={"a": "1"}, errors={"amount": ["bad"]})
    batches.close_batch(batch, tally)
    rejection = Rejection.objects.get()
    client.force_login(finance)
    response = client.post(
        "/admin/integrations/rejection/",
        {
            "action": "dismiss",
            "_selected_action": [rejection.pk],
            "apply": "1",
            "reason": "duplicate of INV-9 already loaded",
        },
    )
    assert response.status_code == 302
    rejection.refresh_from_db()
    assert rejection.status == "dismissed" and rejection.resolved_by == finance


def test_a_row_resolved_meanwhile_is_not_dismissed_over_it(finance, agent):
    batch = batches.open_batch(source="spreadsheet", kind="invoices")
    tally = batches.Tally()
    batches.reject(tally, batch, row_number=2, raw={"a": "1"}, errors={"amount": ["bad"]})
    batches.close_batch(batch, tally)
    rejection = Rejection.objects.get()
    stale = Rejection.objects.get()
    batches.dismiss_rejection(rejection, by=finance, reason="loaded by hand")

    with pytest.raises(ValidationError, match="resolved in the meantime"):
        batches.dismiss_rejection(stale, by=finance, reason="again")
    with pytest.raises(PermissionDenied):
        batches.dismiss_rejection(stale, by=agent, reason="not mine")
    rejection.refresh_from_db()
    assert rejection.resolution == "loaded by hand"


def test_health_view_shows_failing_sources_to_managers(client, manager, settings):
    settings.INTAKE_FAILING_AFTER = 1
    SourceHealth.objects.create(source="xero", consecutive_failures=4, last_error="timeout")
    client.force_login(manager)
    page = client.get("/admin/integrations/sourcehealth/").content.decode()
    assert "failing" in page and "rejected rows waiting" in page


def test_agents_see_no_intake(client, agent):
    client.force_login(agent)
    assert client.get("/admin/integrations/intakebatch/").status_code == 403
