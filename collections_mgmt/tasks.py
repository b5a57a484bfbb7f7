"""Celery tasks of the whole product: the night (see collections_mgmt.schedule)."""

from celery import shared_task

from . import schedule


@shared_task(acks_late=True)
def run_night() -> str:
    """Start the night's chain (case work, then dunning); returns the chain's id."""
    return schedule.night().apply_async().id
