"""Celery tasks for dunning: thin wrappers over the planner and the sender."""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from . import planner, sender


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def run_nightly() -> dict:
    """Plan today's notices, then fan sending out to the workers in chunks."""
    result = planner.plan(on=timezone.localdate())
    send_workers = max(1, -(-len(result.notices) // settings.DUNNING_SEND_CHUNK))
    for _ in range(send_workers):
        send_due.delay()
    return result.as_dict()


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def send_due() -> dict:
    """Send up to one chunk of due notices; several of these run side by side safely.

    acks_late: a worker that dies mid-chunk has its task delivered again. The redelivery
    sends nothing twice: notices already sent are no longer sendable, those it had leased
    wait for their lease to run out, and one it was sending becomes uncertain.
    """
    return vars(sender.send_due(limit=settings.DUNNING_SEND_CHUNK))
