"""All periodic jobs from one declaration (collections_mgmt/schedule.py): the night becomes
one chain, case work then dunning, instead of two crontabs half an hour apart.

Backward puts the rows of the three earlier migrations back as they seeded them.
"""

from django.db import migrations

from collections_mgmt import schedule


def forward(apps, schema_editor):
    schedule.sync(apps)


def backward(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    night = PeriodicTask.objects.filter(name=schedule.NIGHT).first()

    def at(hour, minute="0"):
        return CrontabSchedule.objects.get_or_create(
            minute=minute, hour=hour, day_of_week="*", day_of_month="*", month_of_year="*"
        )[0]

    PeriodicTask.objects.update_or_create(
        name="Nightly case work (promises, plans, risk, routing, alerts)",
        defaults={
            "task": "cases.tasks.run_case_work",
            "crontab": night.crontab if night and night.crontab else at("1", "30"),
        },
    )
    PeriodicTask.objects.update_or_create(
        name="Nightly dunning run",
        defaults={"task": "dunning.tasks.run_nightly", "crontab": at("2")},
    )
    if night is not None:
        night.delete()


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0002_content_types_and_schedule"),
        ("dunning", "0014_installment_reminder_policy"),
        ("reporting", "0003_dashboard"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
