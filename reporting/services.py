"""Every report that leaves the system: recorded exports, customer statements, scheduled e-mails.

The admin, the management command and the Celery task all call these functions; each
checks the caller's permission (None is the system itself) and records a ReportExport.
"""

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from dunning.sender import NOT_SENT_ERRORS

from . import exports, statements
from .aging import AgingReport, summary
from .models import ReportExport, ReportFormat, ScheduledReport

logger = logging.getLogger(__name__)

VIEW_PERMISSION = "reporting.view_aging_report"
EXPORT_PERMISSION = "reporting.export_aging_report"
STATEMENT_PERMISSION = "reporting.view_statement"


def require(user, perm: str) -> None:
    """Refuse a user without `perm`; None is the system (command line, schedule)."""
    if user is not None and not user.has_perm(perm):
        raise PermissionDenied(_("You do not have permission to do this."))


@dataclass
class ExportFile:
    """A report file: bytes in `content`, or a stream of byte chunks in `chunks` (CSV)."""

    filename: str
    content_type: str
    record: ReportExport
    content: bytes | None = None
    chunks: Iterator[bytes] | None = None

    def read(self) -> bytes:
        return self.content if self.content is not None else b"".join(self.chunks)


def _name(user) -> str:
    return user.get_username() if user is not None else _("system")


def export_aging(
    *,
    report: AgingReport,
    fmt: str,
    by,
    via: str = ReportExport.Via.ADMIN,
    limit: int | None = exports.PDF_CUSTOMER_LIMIT,
) -> ExportFile:
    """The aging report as CSV, XLSX or PDF, recorded as a ReportExport.

    The record is written first, with its row count filled in once the file is complete:
    a CSV is streamed, so its count arrives after the last row (and stays empty if the
    download is interrupted). `limit` caps the customers listed in the PDF (largest first).
    """
    require(by, EXPORT_PERMISSION)
    if fmt not in ReportFormat.values:
        raise ValidationError(_("Unknown format %(format)s.") % {"format": fmt})
    record = ReportExport.objects.create(
        user=by,
        kind=ReportExport.Kind.AGING,
        format=fmt,
        via=via,
        as_of=report.as_of,
        filters={**report.options(), **({"limit": limit} if fmt == "pdf" else {})},
    )
    file = ExportFile(
        filename=exports.filename(report, fmt),
        content_type=exports.CONTENT_TYPES[fmt],
        record=record,
    )
    if fmt == ReportFormat.CSV:
        file.chunks = exports.csv_chunks(report, on_finish=_count_setter(record))
        return file
    if fmt == ReportFormat.XLSX:
        file.content, count = exports.xlsx_content(report)
    else:
        file.content, count = exports.pdf_content(report, generated_by=_name(by), limit=limit)
    _count_setter(record)(count)
    return file


def _count_setter(record: ReportExport) -> Callable[[int], None]:
    def set_count(count: int) -> None:
        record.row_count = count
        ReportExport.objects.filter(pk=record.pk).update(row_count=count)

    return set_count


def customer_statement(
    *, customer: Customer, as_of: dt.date, by, via: str = ReportExport.Via.ADMIN
) -> ExportFile:
    """The customer's statement PDF as of a date (open items, aging, pay links), recorded."""
    require(by, STATEMENT_PERMISSION)
    statement = statements.build(customer, as_of=as_of)
    content = statements.render_pdf(statement)
    record = ReportExport.objects.create(
        user=by,
        kind=ReportExport.Kind.STATEMENT,
        format=ReportFormat.PDF,
        via=via,
        as_of=as_of,
        filters={"customer_id": customer.pk},
        row_count=statement.item_count,
    )
    reference = customer.external_ref or str(customer.pk)
    return ExportFile(
        filename=f"statement-{reference}-{as_of.isoformat()}.pdf",
        content_type=exports.CONTENT_TYPES["pdf"],
        record=record,
        content=content,
    )


# --- Scheduled report e-mails --------------------------------------------------------------


def due_report_ids(*, today: dt.date) -> list[int]:
    """Scheduled reports due today (a short table: checked row by row in Python)."""
    return [
        report.pk
        for report in ScheduledReport.objects.filter(is_active=True).order_by("pk")
        if report.is_due(today)
    ]


def recipients_of(scheduled: ScheduledReport) -> list[str]:
    """E-mail addresses of the active recipients who may see the report."""
    return sorted(
        user.email
        for user in scheduled.recipients.filter(is_active=True).exclude(email="")
        if user.has_perm(VIEW_PERMISSION)
    )


def send_scheduled_report(*, report_id: int, today: dt.date) -> bool:
    """E-mail one scheduled report if it is still due; True when sent. Crash-safe:

    1. Lock the row (SELECT ... FOR UPDATE) and look at it. A send still marked
       *sending* after REPORT_SENDING_TIMEOUT_SECONDS belonged to a worker that died
       during it: that period becomes *uncertain* (the e-mail may have gone out) and is
       never sent again until a manager decides (`resolve_uncertain_report`); a fresh one
       is another worker's, so walk away. Otherwise re-check it is due for this period.
    2. Mark it *sending* (the period and the moment) and commit.
    3. Build the report as of the day before its scheduled day (the last complete day), so
       a report sent late, after a missed morning, says what it would have said, and send
       one e-mail with the file attached to the recipients allowed to see it, outside any
       transaction. Its Message-ID is derived from the report and the period, the same on
       every attempt, so a provider that keeps Message-IDs drops a second copy.
    4. Record it sent: last_sent_on moves to the scheduled day, the mark is cleared.
    A failure before the e-mail was handed over clears the mark (a retry sends it).
    """
    with transaction.atomic():
        scheduled = (
            ScheduledReport.objects.select_for_update()
            .filter(Q(pk=report_id) & Q(is_active=True))
            .first()
        )
        if scheduled is None or _in_doubt(scheduled) or not scheduled.is_due(today):
            return False
        recipients = recipients_of(scheduled)
        if not recipients:
            logger.warning("scheduled report %s has no recipient who may see it", scheduled.pk)
            return False
        day = scheduled.scheduled_on(today)
        scheduled.sending_on, scheduled.sending_at = day, timezone.now()
        scheduled.save(update_fields=["sending_on", "sending_at", "updated_at"])
    try:
        report = AgingReport.from_options(scheduled.filters, as_of=day - dt.timedelta(days=1))
        file = export_aging(
            report=report, fmt=scheduled.format, by=None, via=ReportExport.Via.SCHEDULE
        )
        content = file.read()
        message = EmailMessage(
            subject=_("%(name)s: aging report as of %(date)s")
            % {"name": scheduled.name, "date": report.as_of.isoformat()},
            body=_email_body(scheduled, report),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=recipients,
            headers={"Message-ID": report_message_id(scheduled.pk, day)},
        )
        message.attach(file.filename, content, file.content_type.split(";")[0])
    except Exception:
        _clear_sending(scheduled.pk, day)  # nothing was handed over: a retry sends it
        raise
    try:
        message.send()
    except NOT_SENT_ERRORS:
        _clear_sending(scheduled.pk, day)  # refused before the e-mail was handed over
        raise
    ScheduledReport.objects.filter(pk=scheduled.pk, sending_on=day).update(
        last_sent_on=day, sending_on=None, sending_at=None, updated_at=timezone.now()
    )
    return True


def report_message_id(report_id: int, day: dt.date) -> str:
    """The Message-ID of a scheduled report's e-mail for one period."""
    return f"<scheduled-report-{report_id}-{day.isoformat()}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def _in_doubt(scheduled: ScheduledReport) -> bool:
    """Step 1 on a locked row: True when a send is under way, or was left by a dead worker
    (then its period becomes uncertain)."""
    if scheduled.sending_on is None:
        return False
    timeout = dt.timedelta(seconds=settings.REPORT_SENDING_TIMEOUT_SECONDS)
    if scheduled.sending_at and scheduled.sending_at >= timezone.now() - timeout:
        return True  # another worker is sending it now
    logger.warning(
        "scheduled report %s of %s was left sending: now uncertain",
        scheduled.pk,
        scheduled.sending_on,
    )
    scheduled.uncertain_on = scheduled.sending_on
    scheduled.sending_on = scheduled.sending_at = None
    scheduled.save(update_fields=["uncertain_on", "sending_on", "sending_at", "updated_at"])
    return True


def _clear_sending(report_id: int, day: dt.date) -> None:
    ScheduledReport.objects.filter(pk=report_id, sending_on=day).update(
        sending_on=None, sending_at=None
    )


def resolve_uncertain_report(scheduled: ScheduledReport, *, by, went_out: bool) -> bool:
    """A manager's call on an uncertain period: it went out (recorded as sent), or it did
    not (due again, sent by the next run). False if it was not uncertain."""
    require(by, "reporting.change_scheduledreport")
    with transaction.atomic():
        row = ScheduledReport.objects.select_for_update().get(pk=scheduled.pk)
        if row.uncertain_on is None:
            return False
        if went_out:
            row.last_sent_on = max(row.last_sent_on or row.uncertain_on, row.uncertain_on)
        logger.info(
            "scheduled report %s of %s: %s by %s",
            row.pk,
            row.uncertain_on,
            "marked as sent" if went_out else "to be sent again",
            by,
        )
        row.uncertain_on = None
        row.save(update_fields=["last_sent_on", "uncertain_on", "updated_at"])
    return True


def _email_body(scheduled: ScheduledReport, report: AgingReport) -> str:
    lines = [
        _("The aging report as of %(date)s is attached (%(format)s).")
        % {"date": report.as_of.isoformat(), "format": scheduled.get_format_display()},
        "",
        _("Open balance per currency:"),
    ]
    totals = summary(report).totals
    for currency, amounts in totals.items():
        lines.append(f"  {currency} {amounts.total:,.2f}")
    if not totals:
        lines.append("  " + _("nothing open"))
    lines += [
        "",
        _("Sent every %(period)s by %(site)s.")
        % {"period": scheduled.get_frequency_display().lower(), "site": settings.SITE_URL},
        _("Change or stop it in the console under Reporting > Scheduled reports."),
    ]
    return "\n".join(lines)


def send_due_reports(*, today: dt.date | None = None) -> int:
    """Send every scheduled report due today, one after the other; returns how many went."""
    today = today or timezone.localdate()
    return sum(
        send_scheduled_report(report_id=pk, today=today) for pk in due_report_ids(today=today)
    )
