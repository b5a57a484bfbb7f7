"""Every periodic job of the product, declared once, and the order of the night.

celery beat (exactly one per deployment) starts these, from django-celery-beat's rows in
the database, which managers may retime under *Periodic tasks*. `sync` writes this
declaration to those rows: the migration collections_mgmt 0001 runs it, and so does
`manage.py setup_periodic_tasks` (to add a job a release declares, or to put back one
that was deleted). It never moves a time someone changed in the console.

The night is one job, a chain: the case work (broken promises, missed installments, risk,
routing, alerts), the scoring of every open invoice by the late-payment model (a failure
there is logged and the night goes on), and then, when it has finished, the dunning run,
which plans on what the case work changed and fans sending out to the workers; last, the
retention (privacy: accounts closed longer than RETENTION_CLOSED_ACCOUNT_YEARS are erased;
off by default).
If the case work fails after its retries the chain stops there, and that night nobody is
dunned on stale promises; the dunning run's catch-up window picks the notices up the
next night.
"""

from dataclasses import dataclass

from celery import chain

from cases.tasks import run_case_work
from dunning.tasks import run_nightly
from predictions.tasks import score_invoices
from privacy.tasks import apply_retention


@dataclass(frozen=True)
class Job:
    name: str
    task: str
    crontab: str = ""  # "minute hour day-of-month month day-of-week", in TIME_ZONE
    every_minutes: int = 0


NIGHT = "Nightly run: case work, then dunning"
FX_RATES = "Load the ECB's FX reference rates"
RETRAIN = "Retrain the late-payment model"
CASH_FORECAST = "Snapshot the cash forecast"
AUTOPAY = "Charge automatic payments due today"
INBOUND_IMAP = "Read replies from the IMAP mailbox"
JOBS = (
    Job(NIGHT, "collections_mgmt.tasks.run_night", crontab="30 1 * * *"),
    Job("Send due dunning notices", "dunning.tasks.send_due", every_minutes=15),
    Job("Send scheduled reports", "reporting.tasks.send_scheduled_reports", crontab="0 6 * * *"),
    # Webhooks and bulk requests whose task message was lost: stored, so applied here.
    Job("Apply stored webhooks left waiting", "integrations.tasks.sweep_inbox", every_minutes=1),
    # The ECB publishes around 16:00 CET on TARGET working days; an extra run changes nothing.
    Job(FX_RATES, "integrations.tasks.load_fx_rates", crontab="30 17 * * *"),
    # A new late-payment model from last week's outcomes, activated only if it is better.
    Job(RETRAIN, "predictions.tasks.train_predictor", crontab="0 3 * * 0"),
    # Debtors' replies in an IMAP folder (off, a no-op, while INBOUND_IMAP_HOST is empty).
    Job(INBOUND_IMAP, "integrations.tasks.poll_inbound_imap", every_minutes=5),
    # Monday before the working day, after the night's run: the forecasts' track record.
    Job(CASH_FORECAST, "predictions.tasks.snapshot_cash_forecast", crontab="0 5 * * 1"),
    # After the night (promises and plans it changed hold invoices), in the morning, so the
    # debtor reads the receipt or the failure during the day.
    Job(AUTOPAY, "integrations.tasks.charge_autopay", crontab="0 7 * * *"),
)
# Rows earlier releases seeded, replaced by the jobs above: the two halves of the night
# (each on its own clock) and the hourly installment e-mails (now dunning notices).
RETIRED = {
    "Nightly case work (promises, plans, risk, routing, alerts)": "cases.tasks.run_case_work",
    "Nightly dunning run": "dunning.tasks.run_nightly",
    "Send installment reminders": "cases.tasks.send_installment_reminders",
}


def night():
    """The night's chain: case work, the scoring of open invoices (the dunning steps with a
    predicted-lateness threshold read it), the dunning run, then the retention (immutable:
    each takes no input)."""
    return chain(run_case_work.si(), score_invoices.si(), run_nightly.si(), apply_retention.si())


def sync(apps) -> list[str]:
    """Make the beat rows match JOBS (with the app registry given, historical or live);
    returns what it changed, a line each."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    changes = []
    # The night keeps the time a team gave the case work (it used to start the night).
    retired_night = PeriodicTask.objects.filter(
        name__in=list(RETIRED), task="cases.tasks.run_case_work", crontab__isnull=False
    ).first()
    for job in JOBS:
        row = PeriodicTask.objects.filter(name=job.name).first()
        if row is not None:
            if row.task != job.task:
                row.task = job.task
                row.save(update_fields=["task"])
                changes.append(f"{job.name}: now runs {job.task}")
            continue
        if job.crontab:
            if job.name == NIGHT and retired_night is not None:
                schedule = {"crontab": retired_night.crontab}
            else:
                minute, hour, day_of_month, month_of_year, day_of_week = job.crontab.split()
                crontab, _ = CrontabSchedule.objects.get_or_create(
                    minute=minute,
                    hour=hour,
                    day_of_month=day_of_month,
                    month_of_year=month_of_year,
                    day_of_week=day_of_week,
                )
                schedule = {"crontab": crontab}
        else:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=job.every_minutes, period="minutes"
            )
            schedule = {"interval": interval}
        PeriodicTask.objects.create(name=job.name, task=job.task, **schedule)
        changes.append(f"{job.name}: scheduled ({job.task})")
    for name, task in RETIRED.items():
        if PeriodicTask.objects.filter(name=name, task=task).delete()[0]:
            changes.append(f"{name}: retired")
    return changes
