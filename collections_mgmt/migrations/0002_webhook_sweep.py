"""The sweep of the inbox (integrations.tasks.sweep_inbox, every minute) joins the schedule.

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

SWEEP = "Apply stored webhooks left waiting"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=SWEEP, task="integrations.tasks.sweep_inbox").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0001_one_schedule"),
    ]

    operations = [migrations.RunPython(forward, backward)]
