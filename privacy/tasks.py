"""Celery tasks of privacy: the nightly retention (collections_mgmt.schedule's night)."""

from celery import shared_task

from . import retention


@shared_task(acks_late=True)
def apply_retention() -> int:
    """Erase the accounts closed longer than RETENTION_CLOSED_ACCOUNT_YEARS (0: off)."""
    return len(retention.apply_retention())
