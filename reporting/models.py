"""Report exports (who downloaded what), scheduled report e-mails, and report permissions."""

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ReportFormat(models.TextChoices):
    PDF = "pdf", "PDF"
    CSV = "csv", "CSV"
    XLSX = "xlsx", "XLSX"


class Aging(models.Model):
    """No table: the admin's aging report page, and the permissions that guard it."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("aging report")
        verbose_name_plural = _("aging report")
        permissions = [
            ("view_aging_report", "Can view the aging report"),
            ("export_aging_report", "Can download the aging report (CSV, XLSX, PDF)"),
        ]

    def __str__(self):
        return str(self._meta.verbose_name)


class Statement(models.Model):
    """No table: the customer statement PDF served in the admin, and its permission."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("customer statement")
        permissions = [("view_statement", "Can download customer statements")]

    def __str__(self):
        return str(self._meta.verbose_name)


class Dashboard(models.Model):
    """No table: the managers' dashboard page in the admin, and its permission."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("managers' dashboard")
        verbose_name_plural = _("managers' dashboard")
        permissions = [("view_dashboard", "Can view the managers' dashboard")]

    def __str__(self):
        return str(self._meta.verbose_name)


class ReportExport(models.Model):
    """One download or e-mail of a report: who, when, which report, format and filters."""

    class Kind(models.TextChoices):
        AGING = "aging", _("Aging report")
        STATEMENT = "statement", _("Customer statement")

    class Via(models.TextChoices):
        ADMIN = "admin", _("Console")
        COMMAND = "command", _("Management command")
        SCHEDULE = "schedule", _("Scheduled e-mail")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty for the system (command line, schedule)."),
    )
    created_at = models.DateTimeField(_("when"), auto_now_add=True)
    kind = models.CharField(_("report"), max_length=10, choices=Kind)
    format = models.CharField(_("format"), max_length=4, choices=ReportFormat)
    via = models.CharField(_("via"), max_length=8, choices=Via, default=Via.ADMIN)
    as_of = models.DateField(_("as of"))
    filters = models.JSONField(
        _("filters"), default=dict, blank=True, help_text=_("Everything that defines the report.")
    )
    row_count = models.PositiveIntegerField(
        _("rows"), null=True, blank=True, help_text=_("Empty while streaming or if interrupted.")
    )

    class Meta:
        verbose_name = _("report export")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["-created_at"], name="reportexport_created")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.format} as of {self.as_of}"


class ScheduledReport(models.Model):
    """An aging report e-mailed to chosen users every week or month (see reporting.services)."""

    class Frequency(models.TextChoices):
        WEEKLY = "weekly", _("Weekly")
        MONTHLY = "monthly", _("Monthly")

    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    name = models.CharField(_("name"), max_length=200)
    recipients = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipients"),
        related_name="scheduled_reports",
        help_text=_("Users with an e-mail address who may view the aging report."),
    )
    frequency = models.CharField(
        _("frequency"), max_length=8, choices=Frequency, default=Frequency.WEEKLY
    )
    weekday = models.PositiveSmallIntegerField(
        _("weekday"), choices=Weekday, default=Weekday.MONDAY, help_text=_("For weekly reports.")
    )
    day_of_month = models.PositiveSmallIntegerField(
        _("day of month"), default=1, help_text=_("1-28, for monthly reports.")
    )
    format = models.CharField(
        _("format"), max_length=4, choices=ReportFormat, default=ReportFormat.PDF
    )
    filters = models.JSONField(
        _("filters"),
        default=dict,
        blank=True,
        help_text=_(
            'Optional: {"group_by": "segment", "segment": "strategic", "agent_id": 3, '
            '"currency": "EUR", "min_balance": "1000", "edges": [30, 60, 90], "detail": false}'
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    last_sent_on = models.DateField(_("last sent on"), null=True, blank=True)
    # Crash-safe sending (reporting.services.send_scheduled_report): the period being sent
    # and since when; a send left this way by a dead worker makes its period uncertain,
    # never sent again until a manager says whether it went out.
    sending_on = models.DateField(_("sending the report of"), null=True, blank=True)
    sending_at = models.DateTimeField(_("sending since"), null=True, blank=True)
    uncertain_on = models.DateField(
        _("uncertain since"),
        null=True,
        blank=True,
        help_text=_("The report of this day may or may not have gone out: check, then decide."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("scheduled report")
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(day_of_month__gte=1) & Q(day_of_month__lte=28),
                name="scheduledreport_day_of_month_1_28",
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0) & Q(weekday__lte=6), name="scheduledreport_weekday"
            ),
        ]

    def __str__(self):
        return self.name

    def scheduled_on(self, today: dt.date) -> dt.date:
        """The latest day on or before `today` this report is due (its weekday or day)."""
        if self.frequency == self.Frequency.WEEKLY:
            return today - dt.timedelta(days=(today.weekday() - self.weekday) % 7)
        this_month = today.replace(day=self.day_of_month)
        if this_month <= today:
            return this_month
        previous = today.replace(day=1) - dt.timedelta(days=1)
        return previous.replace(day=self.day_of_month)

    def is_due(self, today: dt.date) -> bool:
        """Due once per period, from its first scheduled day after it was created."""
        scheduled = self.scheduled_on(today)
        created_on = timezone.localdate(self.created_at) if self.created_at else today
        return (
            self.is_active
            and scheduled >= created_on
            and (self.last_sent_on is None or self.last_sent_on < scheduled)
            and (self.uncertain_on is None or self.uncertain_on < scheduled)
        )


class Effectiveness(models.Model):
    """No table: the "which messages get paid" report page (reporting.effectiveness)."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("message effectiveness")
        verbose_name_plural = _("message effectiveness")
        permissions = [("view_effectiveness_report", "Can view the message effectiveness report")]

    def __str__(self):
        return str(self._meta.verbose_name)
