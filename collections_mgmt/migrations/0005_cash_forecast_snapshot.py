"""The weekly snapshot of the cash forecast (predictions.tasks.snapshot_cash_forecast,
Mondays at 05:00) joins the schedule (collections_mgmt/schedule.py).

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

CASH_FORECAST = "Snapshot the cash forecast"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(
        name=CASH_FORECAST, task="predictions.tasks.snapshot_cash_forecast"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0004_predictor_weekly"),
        ("predictions", "0002_forecast_snapshots"),
    ]

    operations = [migrations.RunPython(forward, backward)]
