"""Give the roles their reporting rights, and schedule the daily check for report e-mails.

Agents may view the aging report on screen and download customer statements (they work
those customers); managers and finance may also download the report and see who exported
what; managers keep the scheduled report e-mails. The README's matrix mirrors ROLES.

The beat entry runs every morning and sends each scheduled report that is due (weekly or
monthly, see ScheduledReport.is_due); edit its time in the admin under Periodic tasks.
"""

from django.db import migrations

from accounts import roles

VIEW = ["reporting.view_aging_report", "reporting.view_statement"]
EXPORT = [*VIEW, "reporting.export_aging_report", "reporting.view_reportexport"]
ROLES = {
    "Collections agent": VIEW,
    "Collections manager": [
        *EXPORT,
        "reporting.view_scheduledreport",
        "reporting.add_scheduledreport",
        "reporting.change_scheduledreport",
        "reporting.delete_scheduledreport",
    ],
    "Finance": [*EXPORT, "reporting.view_scheduledreport"],
}
SCHEDULE = "Send scheduled reports"


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


def schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    morning, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="6", day_of_week="*", day_of_month="*", month_of_year="*"
    )
    PeriodicTask.objects.update_or_create(
        name=SCHEDULE,
        defaults={"task": "reporting.tasks.send_scheduled_reports", "crontab": morning},
    )


def unschedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SCHEDULE).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reporting", "0001_initial"),
        ("accounts", "0003_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RunPython(grant, revoke),
        migrations.RunPython(schedule, unschedule),
    ]
