"""Celery tasks of integrations: apply stored webhooks and bulk requests, sweep up leftovers.

Thin: each calls `intake.inbox` with the handler of each item's source. Safe to retry or
to deliver twice (items are claimed, and marked processed in the transaction that applies
them).
"""

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from . import api
from .email_events import webhooks as email_event_webhooks
from .fx import loading as fx_loading
from .gateways import autopay, generic
from .inbound import imap as inbound_imap
from .intake import inbox
from .models import InboxItem
from .twilio import webhooks as twilio_webhooks

HANDLERS: dict[str, inbox.Handler] = {
    # The payment pipeline, then automatic payment (mandates set up, charges settled).
    InboxItem.Source.STRIPE: autopay.apply_stored,
    InboxItem.Source.PAYMENTS_WEBHOOK: generic.apply_stored,
    InboxItem.Source.EMAIL_EVENTS: email_event_webhooks.apply_stored,
    InboxItem.Source.TWILIO_INBOUND: twilio_webhooks.apply_stored_reply,
    InboxItem.Source.TWILIO_STATUS: twilio_webhooks.apply_stored_status,
    InboxItem.Source.API_BULK: api.load_stored_bulk,
}
RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "max_retries": 5}


@shared_task(acks_late=True, **RETRY)
def drain_inbox() -> int:
    """Apply the waiting webhook events in chunks at INBOX_DRAIN_PER_SECOND for at most
    INBOX_DRAIN_BUDGET_SECONDS, then queue itself again if some are still waiting; returns
    how many it applied. Rung by `inbox.doorbell` when an event is stored."""
    applied, more_left = inbox.drain(
        handlers=HANDLERS,
        chunk=settings.INBOX_DRAIN_CHUNK,
        per_second=settings.INBOX_DRAIN_PER_SECOND,
        budget_seconds=settings.INBOX_DRAIN_BUDGET_SECONDS,
    )
    if more_left:
        drain_inbox.delay()
    return applied


@shared_task(acks_late=True, **RETRY)
def process_inbox_item(item_id: int) -> str | None:
    """Apply one stored webhook event; returns its status (None: done or taken already).
    Kept for messages queued before the drain existed, and for applying one item by hand."""
    item = inbox.process(item_id=item_id, handlers=HANDLERS)
    return item.status if item else None


@shared_task(acks_late=True, rate_limit=settings.INBOX_BULK_RATE_LIMIT, **RETRY)
def load_bulk_request(item_id: int) -> str | None:
    """Load one queued bulk invoice request into its batch."""
    item = inbox.process(item_id=item_id, handlers=HANDLERS)
    return item.status if item else None


@shared_task(acks_late=True, **RETRY)
def sweep_inbox(older_than_seconds: int | None = None, limit: int | None = None) -> int:
    """Apply items still waiting after INBOX_SWEEP_AFTER_SECONDS (their task message was
    lost, or the broker was down when they came); returns how many it applied."""
    return inbox.sweep(
        handlers=HANDLERS,
        older_than_seconds=settings.INBOX_SWEEP_AFTER_SECONDS
        if older_than_seconds is None
        else older_than_seconds,
        limit=settings.INBOX_SWEEP_LIMIT if limit is None else limit,
    )


@shared_task(acks_late=True, **RETRY)
def load_fx_rates() -> str:
    """Load the ECB's daily reference rates (setting FX_RATES_URL); returns what changed.

    A failed fetch raises, so the task shows as failed in the worker's log and results; the
    reports keep the latest rates they have and print their date."""
    return fx_loading.load_url().describe()


@shared_task(acks_late=True, **RETRY)
def charge_autopay() -> dict:
    """Charge today's invoices of customers with automatic payment (gateways/autopay.py);
    a retry charges nothing twice (one charge per invoice and attempt, Stripe idempotency
    keys)."""
    run = autopay.charge_due()
    return {"charged": run.charged, "processing": run.processing, "failed": run.failed}


def poll_inbound_imap() -> str:
    """Read the IMAP folder (INBOUND_IMAP_*) for replies not read before; off without a host.
    Two polls at once store each message once (unique source and Message-ID)."""
    result = inbound_imap.poll()
    if not result.configured:
        return "IMAP polling is off (INBOUND_IMAP_HOST is empty)"
    return f"read {result.read}, stored {result.stored}, last UID {result.last_uid}"
