"""Celery tasks for the predictor: thin wrappers over its services."""

import datetime as dt
import logging

from celery import shared_task
from django.db import IntegrityError, OperationalError
from django.utils import timezone

from . import forecast, registry, scoring
from .training import NotEnoughHistory

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def score_invoices() -> dict:
    """Nightly, in the night's chain before the dunning run (whose steps may read the
    predictions). A failure is logged and the night goes on with yesterday's predictions:
    a broken model must not stop the reminders."""
    try:
        return scoring.score_open_invoices()
    except Exception:  # logged with its traceback: the dunning run must still happen
        log.exception("Scoring open invoices failed; yesterday's predictions stay")
        return {"scored": 0, "error": True}


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def train_predictor() -> dict:
    """Weekly: a new version from the outcomes known yesterday, activated only if better."""
    try:
        record, activated, why = registry.train()
    except NotEnoughHistory as exc:
        log.warning("No predictor trained: %s", exc)
        return {"version": None, "why": str(exc)}
    return {"version": record.version, "activated": activated, "why": why}


@shared_task(acks_late=True, autoretry_for=(OperationalError, IntegrityError), retry_backoff=True)
def snapshot_cash_forecast(as_of: str | None = None) -> int:
    """Every Monday morning (celery beat): store the 13-week cash forecast made today.

    Idempotent (it replaces the day's rows); an IntegrityError means a second run of the
    same day committed first, and the retry replaces its rows with the same figures."""
    day = dt.date.fromisoformat(as_of) if as_of else timezone.localdate()
    return forecast.snapshot_forecast(day)
