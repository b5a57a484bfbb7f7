"""Celery tasks for the ledger: thin wrappers over its service modules."""

from celery import shared_task
from django.db import OperationalError

from . import summaries


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def refresh_past_due(customer_ids: list[int]) -> int:
    """Recompute these customers' past-due figures (queued by the bulk ledger paths)."""
    return summaries.refresh_past_due(customer_ids=customer_ids)
