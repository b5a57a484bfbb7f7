"""The inbox: signed webhooks and accepted bulk requests, stored before any work is done.

An endpoint verifies its sender, validates what it can without the database, and then
either stores the payload (`accept`: one INSERT) and answers at once, or keeps the refused
payload in the dead-letter list (`dead_letter`) and answers 4xx naming the field. Nothing
is applied in the request, so a spike of deliveries is acknowledged quickly and worked
through at the workers' pace:

- webhook events are not sent to the broker one by one: storing one rings a doorbell
  (`Doorbell`, at most two task messages a second per web process) and a worker drains
  every waiting event in chunks, one transaction a chunk, at a set rate (`drain`);
- a bulk request, which is heavy, gets its own task message (`process`);
- a periodic sweep applies whatever a lost message or a broker that was down left
  waiting (`sweep`).
"""

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

from celery import current_app
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import InboxItem, IntakeBatch
from . import batches

logger = logging.getLogger(__name__)

PROCESS_TASK = "integrations.tasks.process_inbox_item"
# Webhook events are applied in chunks by this task, rung by the doorbell.
DRAIN_TASK = "integrations.tasks.drain_inbox"
# Bulk requests have their own task, so that its rate limit paces them apart from events.
BULK_TASK = "integrations.tasks.load_bulk_request"
# Dead-lettered raw text is cut to this many characters (the full payload is not needed to
# see why it was refused, and a hostile body should not fill the table).
RAW_LIMIT = 20000


# --- what PostgreSQL cannot store --------------------------------------------------------


def unstorable_fields(value, path: str = "") -> dict[str, list[str]]:
    """{field path: [why]} for every string PostgreSQL refuses (NUL, lone surrogates) and
    every number JSON cannot hold (NaN, Infinity), in keys and values, at any depth."""
    found: dict[str, list[str]] = {}
    stack = [(path, value)]
    while stack:
        here, item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                name = f"{here}.{key}" if here else str(key)
                problem = _text_problem(str(key))
                if problem:
                    found[_visible(name)] = [_("The field name %(why)s.") % {"why": problem}]
                stack.append((name, child))
        elif isinstance(item, list):
            stack.extend((f"{here}[{i}]", child) for i, child in enumerate(item))
        elif isinstance(item, str):
            problem = _text_problem(item)
            if problem:
                found[_visible(here or "body")] = [_("The value %(why)s.") % {"why": problem}]
        elif isinstance(item, float) and not math.isfinite(item):
            found[_visible(here or "body")] = [_("%(value)s is not a number.") % {"value": item}]
    return dict(sorted(found.items()))


def _text_problem(text: str) -> str:
    if "\x00" in text:
        return _("contains a NUL character (\\u0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _("is not valid Unicode (a lone surrogate)")
    return ""


def storable(value):
    """`value` with NUL shown as the six characters \\u0000, lone surrogates as U+FFFD and
    non-finite numbers as text: fit for a JSON column, and still readable by a person."""
    if isinstance(value, dict):
        return {_visible(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    if isinstance(value, str):
        return _visible(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _visible(text: str) -> str:
    text = text.replace("\x00", "\\u0000")
    return text.encode("utf-8", "replace").decode("utf-8")


def body_text(body: bytes) -> str:
    """A raw request body as text for the dead-letter list (cut, made storable)."""
    return _visible(body[:RAW_LIMIT].decode("utf-8", "replace"))


# --- accepting and refusing ----------------------------------------------------------------


def accept(
    *,
    source: str,
    key: str,
    payload,
    batch: IntakeBatch | None = None,
    by=None,
) -> tuple[InboxItem, bool]:
    """Store one item and queue it for a worker; (item, False) if that key is stored already.

    1. INSERT the item (in a savepoint, so this also works inside a caller's transaction).
       The unique (source, key) constraint makes a replay, or a second delivery arriving at
       the same moment, fail the insert: the first item is returned and nothing is queued.
    2. When the transaction commits (so a worker never looks for a row it cannot see
       yet), queue a bulk request's own task, or ring the doorbell for an event. If the
       broker is down, or the message is lost, the sweep finds the item.
    """
    try:
        with transaction.atomic():
            item = InboxItem.objects.create(
                source=source, key=key[:255], payload=payload, batch=batch, created_by=by
            )
    except IntegrityError:
        return InboxItem.objects.get(source=source, key=key[:255]), False
    if source == InboxItem.Source.API_BULK:
        transaction.on_commit(lambda: enqueue(item.pk, task=BULK_TASK))
    else:
        transaction.on_commit(doorbell.ring)
    return item, True


class Doorbell:
    """Tells the workers that events are waiting, without a broker message per event.

    A burst of 10,000 webhooks a minute would otherwise cost 10,000 task messages: a
    broker round trip in every request, and a task's overhead in the worker for every
    event. Instead the first event in a second sends one `drain_inbox` message at once,
    and the events after it in that second schedule at most one more, due when the second
    is over: so every stored event is followed, within about a second, by a drain that
    starts after it was stored, and a web process sends at most two messages a second.
    Per process and thread-safe (gunicorn's threads share it).
    """

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._lock = threading.Lock()
        self._quiet_until = 0.0  # no immediate message before this moment
        self._delayed_until = 0.0  # a delayed message is already due at this moment

    def ring(self) -> None:
        now = time.monotonic()
        with self._lock:
            if now >= self._quiet_until:
                self._quiet_until = now + self.interval
                countdown = None
            elif self._delayed_until < self._quiet_until:
                countdown = self._quiet_until - now
                self._delayed_until = self._quiet_until
            else:
                return
        try:
            current_app.send_task(DRAIN_TASK, countdown=countdown)
        except Exception:
            logger.exception("events stored but the workers not told; the sweep will apply them")


doorbell = Doorbell()


def enqueue(item_id: int, *, task: str = PROCESS_TASK) -> None:
    """Send the item to a worker, naming the task (the tasks module imports every provider,
    which import this module; and a web process need not load the tasks). A broker that
    cannot be reached is logged, not raised: the item is stored, so the sweep applies it."""
    try:
        current_app.send_task(task, args=[item_id])
    except Exception:
        logger.exception("inbox item %s stored but not queued; the sweep will process it", item_id)


def dead_letter(*, source: str, kind: str, raw: dict, errors: dict) -> IntakeBatch:
    """A signed payload refused at the door: a batch with one rejected row, kept for
    review in the dead-letter list (raw values and errors made storable first)."""

    def operation() -> IntakeBatch:
        with transaction.atomic():
            batch = batches.open_batch(source=source, kind=kind)
            tally = batches.Tally()
            batches.reject(
                tally,
                batch,
                row_number=1,
                raw=storable(raw),
                errors=storable(errors),
                at_stake=batches.amount_at_stake(raw.get("amount"), raw.get("currency"))
                if isinstance(raw, dict)
                else None,
            )
            return batches.close_batch(batch, tally)

    return batches.with_retries(operation, source=str(source))


# --- the worker's side ---------------------------------------------------------------------


# A handler applies one item and returns its note; it raises batches.RowRejected for a
# payload that cannot be applied (the item fails and waits in the dead-letter list).
Handler = Callable[[InboxItem], str]


def process(*, item_id: int, handlers: dict[str, Handler]) -> InboxItem | None:
    """Apply one stored item, at most once; None if it is done or another worker has it.

    1. Claim the row: SELECT ... FOR UPDATE SKIP LOCKED where it is still *received*. A
       second worker given the same id (a redelivered message, the sweep) skips it rather
       than waiting, and finds it processed if it looks again later.
    2. Apply it with its source's handler, in the same transaction, and mark it
       *processed* in that transaction: the effects and the mark commit together, so a
       worker killed half-way leaves the item *received* with nothing applied.
    3. A payload the handler refuses, or a bug, marks it *failed* and keeps it in the
       dead-letter list with the reason; a lost database connection raises, so the task
       retries and the sweep comes back to it.
    """
    with transaction.atomic():
        item = (
            InboxItem.objects.select_for_update(skip_locked=True)
            .filter(pk=item_id, status=InboxItem.Status.RECEIVED)
            .first()
        )
        if item is None:
            return None
        _apply(item, handlers)
        item.save(update_fields=["status", "note", "processed_at"])
        return item


def _apply(item: InboxItem, handlers: dict[str, Handler]) -> None:
    """Apply one claimed item in a savepoint and set its status, note and time (unsaved)."""
    try:
        with transaction.atomic():
            item.note = handlers[item.source](item)
            item.status = InboxItem.Status.PROCESSED
    except batches.RowRejected as exc:
        _fail(item, exc.errors)
    except OperationalError:
        raise
    except Exception as exc:
        logger.exception("inbox item %s (%s) failed", item.pk, item.source)
        _fail(item, {"processing": [f"{exc.__class__.__name__}: {exc}"[:2000]]})
    item.processed_at = timezone.now()


def drain(
    *,
    handlers: dict[str, Handler],
    chunk: int,
    per_second: float,
    budget_seconds: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, bool]:
    """Apply waiting webhook events, oldest first, in chunks; returns (applied, more_left).

    - One drain at a time (a PostgreSQL advisory lock): a drain rung while another runs
      returns at once, so a spike's many rings cost a query each and the other worker
      slots stay free for bulk requests and the nightly work. After letting the lock go,
      a drain looks once more and goes on if events came in meanwhile: an event stored
      after the running drain's last look rings a drain that finds the lock free.
    - Each chunk is one transaction: claim up to `chunk` events with SELECT ... FOR
      UPDATE SKIP LOCKED (a drain and the sweep take different rows), apply each in its
      own savepoint (an event that fails is marked failed and dead-lettered; the others
      stand), mark them all in one UPDATE and commit. A worker killed mid-chunk leaves the
      whole chunk waiting with nothing applied, and a spike costs a commit per chunk
      rather than per event.
    - Paced to `per_second` events (the database and the web nodes keep their share
      during a spike) and stopped after `budget_seconds` with `more_left` True, so that
      the task can queue itself again behind the work that came in meanwhile.

    Bulk requests are left to their own task.
    """
    begun = clock()
    applied = 0
    while True:
        with _drain_lock() as mine:
            if not mine:
                return applied, False
            while True:
                items = _apply_chunk(handlers, chunk)
                applied += items
                if items < chunk:
                    break
                ahead = applied / per_second - (clock() - begun)
                if ahead > 0:
                    sleep(ahead)
                if clock() - begun >= budget_seconds:
                    return applied, True
        if not _events_waiting().exists():
            return applied, False


def _events_waiting():
    return InboxItem.objects.filter(status=InboxItem.Status.RECEIVED).exclude(
        source=InboxItem.Source.API_BULK
    )


def _apply_chunk(handlers: dict[str, Handler], chunk: int) -> int:
    with transaction.atomic():
        items = list(
            _events_waiting()
            .select_for_update(skip_locked=True)
            .order_by("received_at", "id")[:chunk]
        )
        for item in items:
            _apply(item, handlers)
        InboxItem.objects.bulk_update(items, ["status", "note", "processed_at"])
    return len(items)


# pg_advisory_lock key of the drain: any constant no other code uses ("INBOXDRN" in hex).
DRAIN_LOCK_KEY = 0x494E424F5844524E


@contextmanager
def _drain_lock():
    """True if this connection now holds the drain's lock (released on leaving, or by
    PostgreSQL when a killed worker's connection drops). Elsewhere (SQLite, one writer
    at a time anyway) drains may overlap and SKIP LOCKED keeps them apart."""
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [DRAIN_LOCK_KEY])
        mine = cursor.fetchone()[0]
    try:
        yield mine
    finally:
        if mine:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [DRAIN_LOCK_KEY])


def _fail(item: InboxItem, errors: dict) -> None:
    item.status = InboxItem.Status.FAILED
    item.note = "; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items())[:5000]
    if item.batch is not None:
        # A bulk request: its batch says why it could not be loaded (never left running).
        batches.fail_batch(item.batch, item.note)
        return
    source, kind = DEAD_LETTER[item.source]
    batch = batches.open_batch(source=source, kind=kind)
    tally = batches.Tally()
    raw = {"key": item.key, "source": item.source, "payload": storable(item.payload)}
    batches.reject(tally, batch, row_number=1, raw=raw, errors=storable(errors))
    batches.close_batch(batch, tally)


DEAD_LETTER = {
    InboxItem.Source.STRIPE: (IntakeBatch.Source.STRIPE, IntakeBatch.Kind.PAYMENTS),
    InboxItem.Source.PAYMENTS_WEBHOOK: (IntakeBatch.Source.WEBHOOK, IntakeBatch.Kind.PAYMENTS),
    InboxItem.Source.EMAIL_EVENTS: (IntakeBatch.Source.EMAIL_EVENTS, IntakeBatch.Kind.CONTACTS),
    InboxItem.Source.TWILIO_INBOUND: (IntakeBatch.Source.TWILIO, IntakeBatch.Kind.CONTACTS),
    InboxItem.Source.TWILIO_STATUS: (IntakeBatch.Source.TWILIO, IntakeBatch.Kind.CONTACTS),
    InboxItem.Source.API_BULK: (IntakeBatch.Source.API, IntakeBatch.Kind.INVOICES),
}


def sweep(*, handlers: dict[str, Handler], older_than_seconds: int, limit: int) -> int:
    """Apply up to `limit` items still *received* after `older_than_seconds`, oldest first
    (their task message was lost, or the broker was down when they came); returns how many
    this call applied. Items a worker holds are skipped, not waited for."""
    cutoff = timezone.now() - dt.timedelta(seconds=older_than_seconds)
    waiting = list(
        InboxItem.objects.filter(status=InboxItem.Status.RECEIVED, received_at__lte=cutoff)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(process(item_id=pk, handlers=handlers) is not None for pk in waiting)
