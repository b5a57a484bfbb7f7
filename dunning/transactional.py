"""Transactional notices: messages the debtor asked for, and receipts, sent at once.

A portal link and one-time code (`portal_access`), and the automatic-payment e-mails
(`autopay_set_up`, `autopay_charged`, `autopay_failed`, `autopay_cancelled`) are notices
like any other: each kind is a step of the seeded "Messages the debtor asked for" policy
(purpose transactional, dunning 0021; the step's name is the kind), its text is that
step's template in the customer's language, and the one sender claims, re-checks, sends
and records it (`sender.send_next` with the notice's id).

`send` does it in the caller's request:

1. Plan one notice for the kind's step, for the contact given, under the caller's `key`
   (a unique column): a second call with the same key returns the first notice and sends
   nothing, even when two requests race (the loser's INSERT fails, it reads the winner's).
2. The variables are stored on the notice with the values of the `secrets` keys masked;
   the clear values are kept in this process only, for this send.
3. Send at once through the sender. The guard for these notices (`transactional_guard`),
   not the dunning one: no contact hours, no caps and no holds (the debtor asked, or it is a
   receipt of money moved), but never to an erased customer, a deleted contact, an empty
   address or one that hard-bounced. An e-mail opt-out stops the autopay receipts (they
   are also on the portal and the timeline) but not `portal_access`, which the contact
   has just asked for. These notices do not count against the dunning contact caps.
4. What is stored (the notice's text and HTML, its timeline entry) has the secrets masked;
   only the message handed to the e-mail system carries them. A notice with secrets that
   cannot be sent now (the provider refused it) fails on its next try instead of going out
   with masked values: the debtor asks for a new code.
"""

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Contact, Customer

from . import sender
from .models import Notice, Policy, Step
from .transactional_guard import MASK, clear_values, is_transactional, mask  # noqa: F401 (API)

KINDS = (
    "portal_access",
    "autopay_set_up",
    "autopay_charged",
    "autopay_failed",
    "autopay_cancelled",
)


class TransactionalError(Exception):
    """A kind without an active step, or a call the API does not accept."""


def send(
    kind: str,
    *,
    customer: Customer,
    contact: Contact,
    context: dict,
    key: str,
    invoices=(),
    secrets: tuple[str, ...] = (),
) -> Notice:
    """Plan the kind's notice under `key` and send it now; returns the notice (its status
    says what happened: sent, or skipped/failed with the reason)."""
    key = (key or "").strip()
    if not key or len(key) > 200:
        raise TransactionalError("key: 1 to 200 characters")
    if contact.customer_id != customer.pk:
        raise TransactionalError("contact: not a contact of this customer")
    missing = [name for name in secrets if name not in context]
    if missing:
        raise TransactionalError(f"secrets: not in the context: {', '.join(missing)}")
    existing = Notice.objects.filter(key=key).first()
    if existing is not None:
        return existing
    step = step_for(kind)
    stored = {name: _plain(value) for name, value in context.items()}
    for name in secrets:
        stored[name] = mask(str(context[name]))
    stored["_secrets"] = sorted(secrets)
    stored["_invoices"] = [invoice.pk for invoice in invoices]
    try:
        with transaction.atomic():
            notice = Notice.objects.create(
                customer=customer,
                step=step,
                channel=step.channel,
                contact=contact,
                planned_on=timezone.localdate(),
                status=Notice.Status.PLANNED,
                key=key,
                context=stored,
            )
    except IntegrityError:  # another request planned it first under this key
        return Notice.objects.get(key=key)
    clear = clear_values()
    clear[notice.pk] = {name: _plain(context[name]) for name in secrets}
    try:
        sender.send_next(now=timezone.now(), notice_id=notice.pk)
    finally:
        clear.pop(notice.pk, None)
    notice.refresh_from_db()
    return notice


def step_for(kind: str) -> Step:
    if kind not in KINDS:
        raise TransactionalError(f"kind: one of {', '.join(KINDS)}")
    step = (
        Step.objects.filter(
            name=kind,
            is_active=True,
            policy__is_active=True,
            policy__purpose=Policy.Purpose.TRANSACTIONAL,
        )
        .select_related("policy", "template")
        .first()
    )
    if step is None:
        raise TransactionalError(f"kind: no active transactional step named {kind}")
    return step


def _plain(value):
    """A JSON-safe value for the stored variables (dates and amounts as text)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, int | float | bool | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
