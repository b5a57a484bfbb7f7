"""The daily automatic-payment run (integrations.tasks.charge_autopay, 07:00) joins the
schedule (collections_mgmt/schedule.py).

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

AUTOPAY = "Charge automatic payments due today"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=AUTOPAY, task="integrations.tasks.charge_autopay").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0005_cash_forecast_snapshot"),
    ]

    operations = [migrations.RunPython(forward, backward)]
