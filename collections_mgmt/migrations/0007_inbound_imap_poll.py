"""Reading debtors' replies from an IMAP folder (integrations.tasks.poll_inbound_imap, every
five minutes; a no-op while INBOUND_IMAP_HOST is empty) joins the schedule
(collections_mgmt/schedule.py).

Backward removes its row; the other jobs are untouched.
"""

from django.db import migrations

from collections_mgmt import schedule

INBOUND_IMAP = "Read replies from the IMAP mailbox"


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(
        name=INBOUND_IMAP, task="integrations.tasks.poll_inbound_imap"
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("collections_mgmt", "0006_autopay_daily"),
    ]

    operations = [migrations.RunPython(forward, backward)]
