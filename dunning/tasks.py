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


@shared_task(acks_late=True, autoretry_for=(OperationalError,), retry_backoff=True)
def send_notice(notice_id: int) -> str | None:
    """Send one notice a manager released ("Send now") at once, through the one sender.

    The same claim as every send: a notice another worker took, or already sent, is left
    alone (None), so a retry or a racing tick sends nothing twice.
    """
    return sender.send_next(now=timezone.now(), notice_id=notice_id)
