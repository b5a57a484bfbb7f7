"""Celery tasks of the predictions app: thin wrappers over its service functions."""

import datetime as dt

from celery import shared_task
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from . import forecast


@shared_task(acks_late=True, autoretry_for=(OperationalError, IntegrityError), retry_backoff=True)
def snapshot_cash_forecast(as_of: str | None = None) -> int:
    """Every Monday morning (celery beat): store the 13-week cash forecast made today.

    Idempotent (it replaces the day's rows); an IntegrityError means a second run of the
    same day committed first, and the retry replaces its rows with the same figures."""
    day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
    return forecast.snapshot_forecast(day)
