"""Celery tasks for case work: thin wrappers over accounts.nightly."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from . import nightly, plans


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def run_case_work() -> dict:
    return nightly.run_case_work(on=timezone.localdate(), now=timezone.now())


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def send_installment_reminders() -> dict:
    return vars(plans.send_installment_reminders(today=timezone.localdate(), now=timezone.now()))
