"""Every periodic job is declared once (collections_mgmt/schedule.py), and the night runs
case work before dunning."""

import io

import pytest
from django.apps import apps
from django.core.management import call_command
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from cases import nightly
from collections_mgmt import schedule, tasks
from collections_mgmt.celery import app
from dunning import planner
from predictions import scoring
from privacy import retention as privacy_retention

pytestmark = pytest.mark.django_db


def rows() -> set[tuple[str, str]]:
    return set(PeriodicTask.objects.values_list("name", "task"))


def test_the_migrations_leave_exactly_the_declared_jobs():
    assert rows() == {(job.name, job.task) for job in schedule.JOBS}
    night = PeriodicTask.objects.get(name=schedule.NIGHT)
    assert (night.crontab.hour, night.crontab.minute) == ("1", "30")
    sending = PeriodicTask.objects.get(task="dunning.tasks.send_due")
    assert (sending.interval.every, sending.interval.period) == (15, "minutes")


def test_sync_restores_a_deleted_job_and_keeps_a_time_changed_in_the_console():
    three = CrontabSchedule.objects.create(minute="0", hour="3")
    PeriodicTask.objects.filter(name=schedule.NIGHT).update(crontab=three)
    PeriodicTask.objects.filter(task="dunning.tasks.send_due").delete()
    out = io.StringIO()

    call_command("setup_periodic_tasks", stdout=out)

    assert "Send due dunning notices: scheduled" in out.getvalue()
    assert rows() == {(job.name, job.task) for job in schedule.JOBS}
    assert PeriodicTask.objects.get(name=schedule.NIGHT).crontab == three
    out = io.StringIO()
    call_command("setup_periodic_tasks", stdout=out)
    assert "nothing changed" in out.getvalue()


def test_sync_retires_the_old_rows_and_the_night_keeps_the_case_works_time():
    PeriodicTask.objects.filter(name=schedule.NIGHT).delete()
    half_past_midnight = CrontabSchedule.objects.create(minute="30", hour="0")
    PeriodicTask.objects.create(
        name="Nightly case work (promises, plans, risk, routing, alerts)",
        task="cases.tasks.run_case_work",
        crontab=half_past_midnight,
    )

    changes = schedule.sync(apps)

    assert rows() == {(job.name, job.task) for job in schedule.JOBS}
    assert PeriodicTask.objects.get(name=schedule.NIGHT).crontab == half_past_midnight
    assert any("retired" in line for line in changes)


@pytest.fixture
def eager():
    """Tasks run in this process, one after the other, as a worker would run them."""
    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_the_night_runs_the_case_work_then_the_dunning_run(monkeypatch, eager):
    ran = []

    def case_work(**kwargs):
        ran.append("case work")
        return {"errors": {}}

    def plan(**kwargs):
        ran.append("dunning")
        return planner.PlanResult()

    def retention(**kwargs):
        ran.append("retention")
        return []

    def score(**kwargs):
        ran.append("scoring")
        return {"scored": 0}

    monkeypatch.setattr(nightly, "run_case_work", case_work)
    monkeypatch.setattr(scoring, "score_open_invoices", score)
    monkeypatch.setattr(planner, "plan", plan)
    monkeypatch.setattr(privacy_retention, "apply_retention", retention)

    tasks.run_night()

    assert ran == ["case work", "scoring", "dunning", "retention"]


def test_a_night_whose_scoring_fails_still_duns_on_yesterdays_predictions(monkeypatch, eager):
    planned = []

    def score(**kwargs):
        raise RuntimeError("model file unreadable")

    monkeypatch.setattr(nightly, "run_case_work", lambda **kwargs: {"errors": {}})
    monkeypatch.setattr(scoring, "score_open_invoices", score)
    monkeypatch.setattr(planner, "plan", lambda **kwargs: planned.append(1) or planner.PlanResult())
    monkeypatch.setattr(privacy_retention, "apply_retention", lambda **kwargs: [])

    tasks.run_night()

    assert planned == [1]


def test_a_night_whose_case_work_fails_duns_nobody(monkeypatch, eager):
    planned = []

    def case_work(**kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(nightly, "run_case_work", case_work)
    monkeypatch.setattr(planner, "plan", lambda **kwargs: planned.append(1))

    with pytest.raises(RuntimeError, match="database gone"):  # the worker logs it
        tasks.run_night()

    assert planned == []
