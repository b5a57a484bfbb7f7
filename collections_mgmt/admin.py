"""Admin fixes for third-party models the console shows."""

from django.contrib import admin
from django_celery_beat.admin import CrontabScheduleAdmin
from django_celery_beat.models import CrontabSchedule


class SafeCrontabScheduleAdmin(CrontabScheduleAdmin):
    """django-celery-beat's crontab page, without its 500 on an impossible schedule.

    Re-rendering a refused form (minute "-1") computes the schedule's description from the
    refused values, and celery's parser raises an exception the model's description does
    not catch. The form's own errors already say what is wrong.
    """

    @admin.display(description="human readable")
    def human_readable(self, schedule):
        try:
            return schedule.human_readable
        except Exception:  # celery's ParseException and friends: the form names the field
            return "—"


admin.site.unregister(CrontabSchedule)
admin.site.register(CrontabSchedule, SafeCrontabScheduleAdmin)
