"""Celery tasks for case work: thin wrappers over cases.nightly."""

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from . import nightly


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def run_case_work() -> dict:
    return nightly.run_case_work(on=timezone.localdate(), now=timezone.now())
