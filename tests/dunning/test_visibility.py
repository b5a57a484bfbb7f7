"""The console's view of dunning: tonight's forecast, Send now, a notice's page, letters."""

import datetime as dt
import io
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.urls import reverse
from pypdf import PdfReader

from dunning import planner, sender, tasks
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
TONIGHT = reverse("admin:dunning_notice_tonight")
MM = 72 / 25.4  # PDF points per millimetre


@pytest.fixture
def waiting(settings):
    """A letter awaiting approval (a high balance at the final-notice step)."""
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "1000"
    customer = CustomerFactory(name="Big Spender", postal_address="Hauptstraße 5\n10115 Berlin")
    ContactFactory(customer=customer, is_primary=True)
    InvoiceFactory(
        customer=customer, number="BIG-1", due_on=ON - dt.timedelta(days=30), amount=Decimal("5000")
    )
    planner.plan(on=ON)
    return Notice.objects.get(customer=customer, channel="letter")


def test_tonight_forecasts_what_the_run_will_plan_and_writes_nothing(client, manager):
    # Due 29 days before today: tomorrow's run (the night's run plans for its own date)
    # reaches the 30-day letter step, which nothing has planned yet.
    customer = CustomerFactory(name="Tomorrow Ltd")
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=29), amount=Decimal("50"))
    client.force_login(manager)
    response = client.get(TONIGHT)
    assert response.context["on"] == ON + dt.timedelta(days=1)  # 16:00 now, run at 01:30
    forecast = response.context["forecast"]
    assert [(row["step__name"], row["notices"]) for row in forecast] == [("Final notice letter", 1)]
    assert forecast[0]["status_label"] == "Planned" and "awaiting_approval" not in str(forecast)
    assert not Notice.objects.exists()  # a forecast, not a run
    # Already planned notices are not the forecast: they are listed apart.
    planner.plan(on=ON + dt.timedelta(days=1))
    response = client.get(TONIGHT)
    assert response.context["forecast"] == []
    assert [row["notices"] for row in response.context["rows"]] == [1]


def test_tonight_can_forecast_another_day(client, manager):
    InvoiceFactory(due_on=ON - dt.timedelta(days=30))
    client.force_login(manager)
    response = client.get(TONIGHT, {"on": ON.isoformat()})
    assert response.context["on"] == ON
    assert sum(row["notices"] for row in response.context["forecast"]) == 1
    assert Notice.objects.count() == 0


def test_next_run_day_follows_the_night_time():
    afternoon = dt.datetime(2026, 11, 23, 16, 0, tzinfo=dt.UTC)
    assert planner.next_run_on(afternoon) == dt.date(2026, 11, 24)
    assert planner.next_run_on(afternoon, hour=23, minute=0) == dt.date(2026, 11, 23)


def test_send_now_queues_the_notice_for_the_worker_at_once(
    client, manager, waiting, monkeypatch, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    queued = []
    monkeypatch.setattr(tasks.send_notice, "delay", lambda notice_id: queued.append(notice_id))
    client.force_login(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:dunning_notice_send-now", args=[waiting.pk]),
            {"apply": "1", "reason": "customer asked for it in writing"},
        )
    assert response.status_code == 302
    assert queued == [waiting.pk]  # not left for the next 15-minute tick
    assert tasks.send_notice(waiting.pk) == "sent"  # what the worker runs
    waiting.refresh_from_db()
    assert waiting.status == "sent" and waiting.document.name.endswith(".pdf")
    assert tasks.send_notice(waiting.pk) is None  # a redelivery sends nothing twice


def test_notice_page_shows_the_text_and_approve_and_reject_buttons(client, manager, waiting):
    client.force_login(manager)
    page = client.get(reverse("admin:dunning_notice_change", args=[waiting.pk])).content.decode()
    assert "Text as it would go out now" in page
    assert "BIG-1" in page and "final notice" in page.lower()
    approve = reverse("admin:dunning_notice_approve", args=[waiting.pk])
    reject = reverse("admin:dunning_notice_reject", args=[waiting.pk])
    assert f'formaction="{approve}"' in page and f'formaction="{reject}"' in page
    response = client.post(approve, {"apply": "1", "reason": "checked the balance"})
    assert response.status_code == 302
    waiting.refresh_from_db()
    assert waiting.status == "approved"
    page = client.get(reverse("admin:dunning_notice_change", args=[waiting.pk])).content.decode()
    assert "formaction" not in page  # decided: no buttons left


def test_agents_see_no_approve_buttons(client, agent, waiting):
    client.force_login(agent)
    page = client.get(reverse("admin:dunning_notice_change", args=[waiting.pk])).content.decode()
    assert "formaction" not in page


def test_letter_link_on_the_notice_page_is_served_by_the_permission_checked_view(
    client, manager, waiting, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    Notice.objects.filter(pk=waiting.pk).update(status="approved")
    sender.send_next(now=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC), notice_id=waiting.pk)
    client.force_login(manager)
    page = client.get(reverse("admin:dunning_notice_change", args=[waiting.pk])).content.decode()
    letter_url = reverse("admin:dunning_notice_letter", args=[waiting.pk])
    assert letter_url in page and "/media/letters/" not in page
    response = client.get(letter_url)
    assert response.status_code == 200
    client.logout()
    assert client.get(letter_url).status_code == 302  # to the login page


def _text_positions(pdf: bytes) -> dict[str, tuple[float, float]]:
    """Each line of text on the first page and where it starts (x, y in points)."""
    positions = {}
    page = PdfReader(io.BytesIO(pdf)).pages[0]

    def visit(text, cm, tm, font, size):
        if text.strip():
            positions.setdefault(text.strip(), (cm[4] + tm[4] * cm[0], cm[5] + tm[5] * cm[3]))

    page.extract_text(visitor_text=visit)
    return positions


def test_letter_puts_the_postal_address_in_the_envelope_window(waiting, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    Notice.objects.filter(pk=waiting.pk).update(status="approved")
    sender.send_next(now=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC), notice_id=waiting.pk)
    waiting.refresh_from_db()
    positions = _text_positions(waiting.document.read())
    (x, y) = next(pos for text, pos in positions.items() if "10115 Berlin" in text)
    page_height = 297 * MM
    from_top = (page_height - y) / MM
    # The window of a DL/C5 envelope: 20 mm from the left, 45 to 85 mm from the top.
    assert 19.5 <= x / MM <= 105 and 45 <= from_top <= 85, (x / MM, from_top)


def test_a_letter_without_a_postal_address_is_not_made(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(postal_address="")
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=30), amount=Decimal("50"))
    planner.plan(on=ON)
    letter = Notice.objects.get(customer=customer, channel="letter")
    sender.send_next(now=dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC), notice_id=letter.pk)
    letter.refresh_from_db()
    assert letter.status == "skipped" and letter.reason == "no postal address for a letter"
    assert not letter.document


@pytest.mark.postgresql
def test_a_forecast_does_not_wait_for_a_run_in_progress(client, manager):
    """While a run holds the planner lock (here: another session), the page says so at
    once instead of queueing behind the run."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [planner.PLANNER_LOCK_ID])
        with pytest.raises(planner.PlannerBusy):
            planner.forecast(on=ON)
        client.force_login(manager)
        response = client.get(TONIGHT)
        assert response.status_code == 200 and response.context["forecast"] == []
        assert "The planner is running right now" in response.content.decode()
