"""The daily load of the ECB's FX reference rates (integrations.tasks.load_fx_rates) joins
the schedule (collections_mgmt/schedule.py).

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

FX_RATES = "Load the ECB's FX reference rates"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=FX_RATES, task="integrations.tasks.load_fx_rates").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0002_webhook_sweep"),
    ]

    operations = [migrations.RunPython(forward, backward)]
