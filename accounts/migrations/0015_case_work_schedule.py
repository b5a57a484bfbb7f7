"""Schedule the nightly case-work run half an hour before the dunning run, and the hourly
installment reminders (celery beat).

An ordinary django-celery-beat periodic task: edit its time in the admin under Periodic
tasks. Exactly one celery beat process may run in a deployment.
"""

from django.db import migrations

NAME = "Nightly case work (promises, plans, risk, routing, alerts)"
REMINDERS = "Send installment reminders"


def forward(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    at_0130, _ = CrontabSchedule.objects.get_or_create(
        minute="30", hour="1", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.update_or_create(
        name=NAME, defaults={"task": "accounts.tasks.run_case_work", "crontab": at_0130}
    )
    # Hourly: each customer gets the reminder within contact hours in their own time zone.
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.update_or_create(
        name=REMINDERS,
        defaults={"task": "accounts.tasks.send_installment_reminders", "interval": hourly},
    )


def backward(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[NAME, REMINDERS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0014_invoice_hot_balance_updates"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
