"""Scheduled report e-mails: when they are due, what they carry, and that they go out once."""

import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.mail import EmailMessage
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from pypdf import PdfReader

from reporting import services, tasks
from reporting.models import ReportExport, ScheduledReport
from tests.factories import CustomerFactory, InvoiceFactory, ScheduledReportFactory, UserFactory

pytestmark = pytest.mark.django_db
MONDAY = dt.date(2026, 11, 23)


@pytest.fixture
def scheduled(manager, finance):
    finance.email = ""  # no address: cannot receive it
    finance.save()
    report = ScheduledReportFactory(
        name="Weekly aging", recipients=[manager, finance], filters={"group_by": "segment"}
    )
    # Created the week before, so this Monday is its first scheduled day.
    ScheduledReport.objects.filter(pk=report.pk).update(
        created_at=timezone.make_aware(dt.datetime(2026, 11, 18, 9))
    )
    report.refresh_from_db()
    customer = CustomerFactory()
    InvoiceFactory(customer=customer, due_on=dt.date(2026, 11, 1), amount=Decimal("777.77"))
    # Issued on the report's own day: after the as-of date (Sunday), so not in the report.
    InvoiceFactory(customer=customer, issued_on=MONDAY, due_on=MONDAY, amount=Decimal("5.00"))
    return report


def test_due_report_is_mailed_as_a_pdf_as_of_the_day_before(scheduled, manager):
    assert services.send_due_reports(today=MONDAY) == 1
    [message] = mail.outbox
    assert message.to == [manager.email]  # finance has no address
    assert message.subject == "Weekly aging: aging report as of 2026-11-22"
    assert "USD 777.77" in message.body
    [(filename, content, mimetype)] = message.attachments
    assert (filename, mimetype) == ("aging-2026-11-22.pdf", "application/pdf")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)
    assert "2026-11-22" in text and "777.77" in text and "782.77" not in text
    assert "page 1 of" in text
    scheduled.refresh_from_db()
    assert scheduled.last_sent_on == MONDAY
    record = ReportExport.objects.get()
    assert (record.user, record.via, record.as_of) == (None, "schedule", dt.date(2026, 11, 22))


def test_it_goes_out_once_per_period_and_catches_up_a_missed_day(scheduled):
    assert services.send_due_reports(today=MONDAY) == 1
    assert services.send_due_reports(today=MONDAY) == 0  # retried or second worker
    assert services.send_due_reports(today=MONDAY + dt.timedelta(days=1)) == 0
    # Next Monday's run is missed; Tuesday catches up, as of the Sunday before Monday.
    assert services.send_due_reports(today=MONDAY + dt.timedelta(days=8)) == 1
    assert mail.outbox[-1].subject.endswith("as of 2026-11-29")
    assert len(mail.outbox) == 2


def test_schedule_days_weekly_and_monthly():
    weekly = ScheduledReport(frequency="weekly", weekday=4)  # Friday
    assert weekly.scheduled_on(dt.date(2026, 11, 23)) == dt.date(2026, 11, 20)
    assert weekly.scheduled_on(dt.date(2026, 11, 27)) == dt.date(2026, 11, 27)
    monthly = ScheduledReport(frequency="monthly", day_of_month=28)
    assert monthly.scheduled_on(dt.date(2026, 11, 23)) == dt.date(2026, 10, 28)
    assert monthly.scheduled_on(dt.date(2026, 11, 28)) == dt.date(2026, 11, 28)
    assert monthly.scheduled_on(dt.date(2027, 1, 5)) == dt.date(2026, 12, 28)


def test_a_new_report_waits_for_its_first_scheduled_day(manager):
    report = ScheduledReportFactory(recipients=[manager], weekday=0)  # Mondays
    wednesday = dt.date(2026, 11, 25)
    report.created_at = timezone.make_aware(dt.datetime(2026, 11, 25, 12))
    assert not report.is_due(wednesday)  # this week's Monday was before it existed
    assert not report.is_due(wednesday + dt.timedelta(days=4))
    assert report.is_due(dt.date(2026, 11, 30))
    report.is_active = False
    assert not report.is_due(dt.date(2026, 11, 30))


def test_recipients_without_the_permission_get_nothing(scheduled, manager):
    outsider = UserFactory(username="outsider", email="outsider@example.com")
    scheduled.recipients.set([outsider])
    assert services.send_due_reports(today=MONDAY) == 0
    assert not mail.outbox
    scheduled.refresh_from_db()
    assert scheduled.last_sent_on is None  # still due once someone may receive it


def test_monthly_csv_report_is_attached_as_csv(scheduled):
    ScheduledReport.objects.filter(pk=scheduled.pk).update(
        frequency="monthly", day_of_month=1, format="csv"
    )
    assert services.send_due_reports(today=dt.date(2026, 12, 1)) == 1
    [(filename, content, mimetype)] = mail.outbox[0].attachments
    assert (filename, mimetype) == ("aging-2026-11-30.csv", "text/csv")
    assert "782.77" in (content.decode() if isinstance(content, bytes) else content)


def test_beat_runs_the_check_every_morning_and_the_task_fans_out(scheduled, monkeypatch):
    beat = PeriodicTask.objects.get(name="Send scheduled reports")
    assert beat.task == "reporting.tasks.send_scheduled_reports"
    assert (beat.crontab.hour, beat.crontab.minute) == ("6", "0")
    queued = []
    monkeypatch.setattr(tasks.send_scheduled_report, "delay", lambda *a: queued.append(a))
    monkeypatch.setattr(tasks, "timezone", SimpleNamespace(localdate=lambda: MONDAY))
    assert tasks.send_scheduled_reports() == 1
    assert queued == [(scheduled.pk, "2026-11-23")]
    assert tasks.send_scheduled_report(*queued[0]) is True
    assert tasks.send_scheduled_report(*queued[0]) is False  # a retry sends nothing
    assert len(mail.outbox) == 1


class Killed(BaseException):
    """What a SIGKILL does to the worker: no except clause sees it."""


def die_after_sending(monkeypatch):
    """The SMTP server takes the e-mail, then the worker dies before recording it."""
    real = EmailMessage.send

    def send_then_die(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise Killed

    monkeypatch.setattr(EmailMessage, "send", send_then_die)


def test_the_email_has_a_message_id_per_report_and_period(scheduled):
    assert services.send_due_reports(today=MONDAY) == 1
    assert mail.outbox[0].extra_headers["Message-ID"] == (
        f"<scheduled-report-{scheduled.pk}-2026-11-23@collections.example.com>"
    )
    scheduled.refresh_from_db()
    assert (scheduled.sending_on, scheduled.sending_at, scheduled.uncertain_on) == (
        None,
        None,
        None,
    )


def test_a_worker_dying_mid_send_makes_the_period_uncertain_never_resent(
    scheduled, monkeypatch, clock, settings
):
    settings.REPORT_SENDING_TIMEOUT_SECONDS = 900
    die_after_sending(monkeypatch)
    with pytest.raises(Killed):
        tasks.send_scheduled_report(scheduled.pk, MONDAY.isoformat())
    monkeypatch.undo()
    scheduled.refresh_from_db()
    assert scheduled.sending_on == MONDAY and scheduled.last_sent_on is None
    # acks_late: the task comes again at once; the send may still be under way.
    assert tasks.send_scheduled_report(scheduled.pk, MONDAY.isoformat()) is False
    clock.shift(dt.timedelta(seconds=901))
    assert services.send_due_reports(today=MONDAY) == 0
    scheduled.refresh_from_db()
    assert scheduled.uncertain_on == MONDAY and scheduled.sending_on is None
    assert services.send_due_reports(today=MONDAY) == 0
    assert len(mail.outbox) == 1  # never sent again blindly
    # Next week's report is a new period: it goes out as usual.
    assert services.send_due_reports(today=MONDAY + dt.timedelta(days=7)) == 1


@pytest.mark.parametrize("went_out", [True, False])
def test_a_manager_resolves_an_uncertain_report(scheduled, manager, agent, went_out):
    ScheduledReport.objects.filter(pk=scheduled.pk).update(uncertain_on=MONDAY)
    scheduled.refresh_from_db()
    with pytest.raises(PermissionDenied):
        services.resolve_uncertain_report(scheduled, by=agent, went_out=went_out)
    assert services.resolve_uncertain_report(scheduled, by=manager, went_out=went_out)
    scheduled.refresh_from_db()
    assert scheduled.uncertain_on is None
    assert scheduled.last_sent_on == (MONDAY if went_out else None)
    assert services.send_due_reports(today=MONDAY) == (0 if went_out else 1)
