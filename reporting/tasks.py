"""Celery tasks for reporting: thin wrappers over reporting.services."""

import datetime as dt

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from . import services


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def send_scheduled_reports() -> int:
    """Every morning (celery beat): fan the scheduled reports due today out to the workers."""
    today = timezone.localdate()
    report_ids = services.due_report_ids(today=today)
    for report_id in report_ids:
        send_scheduled_report.delay(report_id, today.isoformat())
    return len(report_ids)


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def send_scheduled_report(report_id: int, today: str) -> bool:
    """E-mail one report. acks_late: a redelivered task or a second worker finds it sent,
    being sent, or (its worker died mid-send) uncertain, and sends nothing again."""
    return services.send_scheduled_report(report_id=report_id, today=dt.date.fromisoformat(today))
