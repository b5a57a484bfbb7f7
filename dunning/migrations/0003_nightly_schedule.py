"""Schedule the nightly dunning run and the regular sending of due notices (celery beat).

Both are ordinary django-celery-beat periodic tasks: edit their times in the admin under
Periodic tasks. Exactly one celery beat process may run in a deployment.
"""

from django.db import migrations

NIGHTLY = "Nightly dunning run"
SENDING = "Send due dunning notices"


def forward(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    every_15, _ = IntervalSchedule.objects.get_or_create(every=15, period="minutes")
    PeriodicTask.objects.update_or_create(
        name=NIGHTLY, defaults={"task": "dunning.tasks.run_nightly", "crontab": nightly}
    )
    PeriodicTask.objects.update_or_create(
        name=SENDING, defaults={"task": "dunning.tasks.send_due", "interval": every_15}
    )


def backward(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[NIGHTLY, SENDING]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0002_default_policies"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
