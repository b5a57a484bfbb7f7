"""The sender: claims planned notices, re-checks them at send time, and sends each exactly
once, even through a crash of the worker.

The protocol, per batch of notices (`send_due`):

0. Sweep (`sweep_stale_sending`): a notice still *sending* after
   DUNNING_SENDING_TIMEOUT_SECONDS belonged to a worker that died during the provider
   call. The provider may have taken the message, so it becomes *uncertain*: never sent
   again by the sender, counted against the contact caps, written on the timeline and
   listed for managers in the console, who mark it sent or send it again
   (`resolve_uncertain`). A letter left sending goes back to the queue instead: nothing
   left the building, and its retry overwrites the same file.
1. Claim (`claim`): lease up to DUNNING_CLAIM_BATCH sendable rows in one short
   transaction (SELECT ... FOR UPDATE SKIP LOCKED, then an UPDATE writing this batch's
   token and `claimed_until`). A second worker skips locked rows and, once committed,
   leased ones. A worker killed holding a lease leaves rows that nothing was sent for;
   they are sendable again when the lease runs out (DUNNING_CLAIM_LEASE_SECONDS).
2. Re-check everything for the whole batch in a few queries, because the world changed
   since planning: invoices paid, cancelled, written off or disputed since (none left:
   cancelled); holds, do-not-contact, opt-outs (skipped, with the reason); the contact
   rule (hours in the customer's time zone, weekdays, holidays, caps: deferred, never
   dropped). An edited text whose invoices changed goes back to a manager. Each such
   outcome is one conditional UPDATE on (id, token): a row whose lease was lost to
   another worker (count 0) is left to that worker.
3. Mark *sending* with the exact text and recipient, `sending_at` and one more attempt,
   in its own commit, again conditional on (id, token, still sendable).
4. Call the provider outside any transaction. E-mails carry a Message-ID derived from
   the notice, the same on every attempt, so a provider or MTA can drop a duplicate.
5. Record *sent* with the provider's id, the timeline entries (and an installment's
   reminded_at) in one commit. A crash between 3 and 5 is the uncertain case of step 0.

Task steps (call, escalation, review) touch only our database: the task and the sent
notice are one commit, and the task's source makes a retry raise nothing twice. A
retried Celery task (acks_late) finds its notices sent, uncertain or leased, and sends
nothing again.
"""

import datetime as dt
import logging
import smtplib
import socket
import uuid
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Case, Count, F, Q, When
from django.db.models.functions import Coalesce
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from accounts import portal_links, timeline
from accounts.models import ZERO, Activity, Contact, Customer, Invoice
from cases import case_tasks, recoveries
from cases.models import Installment, PaymentPlan, Task

from . import channels, contact_rules, letters, offers, rendering
from . import transactional_guard as transactional
from .holds import customers_on_hold, hold_reason, invoice_holds, paused_until
from .models import MESSAGE_CHANNELS, Channel, Notice, NoticeInvoice, Policy

logger = logging.getLogger(__name__)

SENDABLE = (Notice.Status.PLANNED, Notice.Status.APPROVED, Notice.Status.DEFERRED)
# Steps that make work for people: the sender raises a task instead of a message.
TASK_CHANNELS = (Channel.CALL, Channel.ESCALATION, Channel.REVIEW)
DELIVERED_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER, Channel.LEGAL, *TASK_CHANNELS)
LETTER_CHANNELS = (Channel.LETTER, Channel.LEGAL)
# What the contact caps count: a message that went out, or may have (sending, uncertain).
CONTACTED = (
    Notice.Status.SENT,
    Notice.Status.DELIVERED,
    Notice.Status.SENDING,
    Notice.Status.UNCERTAIN,
)
OPEN_INVOICE = (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID)
# Provider errors that prove the message was not taken (refused before any data was sent).
NOT_SENT_ERRORS = (
    ConnectionRefusedError,
    socket.gaierror,
    smtplib.SMTPConnectError,
    smtplib.SMTPHeloError,
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPRecipientsRefused,
)


@dataclass
class SendResult:
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    cancelled: int = 0
    failed: int = 0
    awaiting_approval: int = 0  # an edited text whose invoices changed goes back to a manager
    uncertain: int = 0  # left sending by a dead worker, found by this run's sweep

    def add(self, outcome: str | None) -> None:
        if outcome:
            setattr(self, outcome, getattr(self, outcome) + 1)


def sendable(now: dt.datetime):
    """Notices that may go out at `now` and no live worker holds (leases are wall clock)."""
    return Notice.objects.filter(
        Q(not_before_at__isnull=True) | Q(not_before_at__lte=now),
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=timezone.now()),
        status__in=SENDABLE,
        channel__in=DELIVERED_CHANNELS,
    )


def message_id_for(notice_id: int) -> str:
    """The e-mail Message-ID of a notice: the same on every attempt, so it can be deduped."""
    return f"<notice-{notice_id}@{settings.EMAIL_MESSAGE_ID_DOMAIN}>"


def reply_token_for(notice_id: int, *, secret: str | None = None) -> str:
    """The token of a notice's reply address: its id and a keyed digest (not guessable);
    `secret`: one of SECRET_KEY_FALLBACKS, to read tokens made before a key rotation."""
    digest = salted_hmac(
        "inbound-reply-token", str(notice_id), secret=secret, algorithm="sha256"
    ).hexdigest()
    return f"n{notice_id}-{digest[:20]}"


def reply_address_for(notice_id: int) -> str:
    """Where a reply to a notice goes (INBOUND_REPLY_ADDRESS with its token), or ""."""
    address = settings.INBOUND_REPLY_ADDRESS.strip()
    if not address or "@" not in address:
        return ""
    token = reply_token_for(notice_id)
    if "{token}" in address:
        return address.replace("{token}", token)
    local, _at, domain = address.rpartition("@")
    return f"{local}+{token}@{domain}"


def with_reply_to(content: dict, notice_id: int) -> dict:
    """The e-mail content with a Reply-To naming the notice, when inbound e-mail is set up."""
    address = reply_address_for(notice_id)
    if not address:
        return content
    return {**content, "headers": {**content.get("headers", {}), "Reply-To": address}}


def send_due(*, now: dt.datetime | None = None, limit: int = 1000) -> SendResult:
    """Sweep dead workers' sends, then send up to `limit` notices that may go out now."""
    now = now or timezone.now()
    result = SendResult()
    result.uncertain = sweep_stale_sending()
    done = 0
    while done < limit:
        batch = claim(now=now, size=min(settings.DUNNING_CLAIM_BATCH, limit - done))
        if not batch.notices:
            break
        for outcome in batch.process(now):
            result.add(outcome)
        done += len(batch.notices)
    return result


def send_next(*, now: dt.datetime, notice_id: int | None = None) -> str | None:
    """Claim one sendable notice (or the given one) and process it; None when none is left
    (or when another worker took it first)."""
    batch = claim(now=now, size=1, notice_id=notice_id)
    if not batch.notices:
        return None
    return batch.process(now)[0]


def claim(*, now: dt.datetime, size: int, notice_id: int | None = None) -> "Batch":
    """Lease up to `size` sendable notices for this worker, oldest planned first (step 1).

    Found through the sendable index: ordered by id alone, PostgreSQL walks the primary
    key past every notice ever sent; joined, it reads every customer before sorting.
    """
    token = uuid.uuid4().hex
    until = timezone.now() + dt.timedelta(seconds=settings.DUNNING_CLAIM_LEASE_SECONDS)
    with transaction.atomic():
        rows = (
            sendable(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("planned_on", "id")
        )
        if notice_id is not None:
            rows = rows.filter(pk=notice_id)
        ids = list(rows.values_list("pk", flat=True)[:size])
        if ids:
            Notice.objects.filter(pk__in=ids).update(claim_token=token, claimed_until=until)
    return Batch.load(token, ids, now)


def sweep_stale_sending() -> int:
    """Step 0: notices left sending longer than DUNNING_SENDING_TIMEOUT_SECONDS.

    Messages become uncertain (with a timeline entry); letters go back to the queue.
    Returns how many became uncertain. SKIP LOCKED: two sweeps never judge one row twice.
    """
    wall = timezone.now()
    cutoff = wall - dt.timedelta(seconds=settings.DUNNING_SENDING_TIMEOUT_SECONDS)
    uncertain = 0
    with transaction.atomic():
        stale = list(
            Notice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Notice.Status.SENDING, sending_at__lt=cutoff)
            .select_related("customer", "step")
        )
        entries = []
        for notice in stale:
            if notice.channel in LETTER_CHANNELS:
                notice.status = Notice.Status.DEFERRED
                notice.reason = "letter interrupted before it was stored: made again"
            else:
                notice.status = Notice.Status.UNCERTAIN
                notice.reason = (
                    "uncertain: the worker stopped while handing it to the provider; "
                    "a manager decides whether it went out"
                )
                uncertain += 1
                entries.append(
                    timeline.entry(
                        Activity.Kind.ALERT,
                        customer=notice.customer,
                        channel=_activity_channel(notice.channel),
                        text=_(
                            "%(step)s: %(channel)s to %(to)s may or may not have gone out "
                            "(the sender stopped during the send); not sent again until a "
                            "manager decides"
                        )
                        % {
                            "step": notice.step.name,
                            "channel": notice.get_channel_display(),
                            "to": notice.recipient,
                        },
                        details={
                            "notice": notice.pk,
                            "status": "uncertain",
                            "sending_at": notice.sending_at.isoformat(),
                            "message_id": notice.provider_message_id,
                        },
                        at=wall,
                    )
                )
            notice.claim_token, notice.claimed_until = "", None
            notice.save(
                update_fields=["status", "reason", "claim_token", "claimed_until", "updated_at"]
            )
        timeline.add_all(entries)
    if uncertain:
        logger.warning("%d notice(s) left sending by a dead worker are now uncertain", uncertain)
    return uncertain


def _activity_channel(channel: str) -> str:
    return {
        Channel.EMAIL: Activity.Channel.EMAIL,
        Channel.SMS: Activity.Channel.SMS,
        Channel.LETTER: Activity.Channel.LETTER,
        Channel.LEGAL: Activity.Channel.LETTER,
    }.get(channel, "")


@dataclass
class Batch:
    """The notices one claim leased, with what their re-checks read, looked up together:
    the listed invoices, their holds, the customers on hold, contacts, contact rules and
    recent contacts (the caps), a few queries for the batch instead of per notice."""

    token: str
    notices: list[Notice]
    now: dt.datetime | None = None
    invoices: dict[int, list[Invoice]] = field(default_factory=dict)
    holds: dict[int, tuple] = field(default_factory=dict)
    customers_held: set[tuple] = field(default_factory=set)
    contacts: dict[int, list[Contact]] = field(default_factory=dict)
    contacted: dict[int, list[dt.datetime]] = field(default_factory=dict)
    rules: dict[tuple, object] = field(default_factory=dict)
    # (notice id, invoice id) -> predicted probability of paying late when it was planned.
    probabilities: dict[tuple[int, int], Decimal] = field(default_factory=dict)

    @classmethod
    def load(cls, token: str, ids: list[int], now: dt.datetime | None = None) -> "Batch":
        if not ids:
            return cls(token, [])
        # The agent too: every notice's text names them (one query per notice otherwise).
        notices = list(
            Notice.objects.select_related(
                "customer",
                "customer__assigned_agent",
                "step",
                "step__policy",
                "step__template",
                "variant__template",
            )
            .filter(pk__in=ids, claim_token=token)
            .order_by("planned_on", "id")
        )
        batch = cls(token, notices, now=now)
        if now is not None:
            batch._read(now)
        return batch

    def _read(self, now: dt.datetime) -> None:
        notices = self.notices
        customer_ids = {n.customer_id for n in notices}
        reminders = [n for n in notices if n.installment_id is not None]
        if reminders:  # an installment reminder: its installment and plan
            installments = Installment.objects.select_related("plan").in_bulk(
                [n.installment_id for n in reminders]
            )
            for notice in reminders:
                notice.installment = installments[notice.installment_id]
                self.invoices[notice.pk] = list(_plan_invoices(notice.installment.plan_id))
        lines = (
            NoticeInvoice.objects.filter(
                notice__in=[n.pk for n in notices if n.installment_id is None],
                invoice__status__in=OPEN_INVOICE,
            )
            .select_related("invoice")
            .order_by("invoice__due_on", "invoice__number")
        )
        for line in lines:
            self.invoices.setdefault(line.notice_id, []).append(line.invoice)
            if line.probability_late is not None:
                self.probabilities[(line.notice_id, line.invoice_id)] = line.probability_late
        by_day: dict[dt.date, list[Invoice]] = defaultdict(list)
        groups: dict[tuple, set[int]] = defaultdict(set)
        for notice in notices:
            on = _local_day(notice.customer, now)
            if notice.installment_id is None:
                by_day[on] += self.invoices.get(notice.pk, [])
            groups[(on, notice.channel, notice.installment_id is not None)].add(notice.customer_id)
        for on, invoices in by_day.items():
            if invoices:
                self.holds.update({(on, pk): h for pk, h in invoice_holds(invoices, on).items()})
        for (on, channel, is_reminder), customers in groups.items():
            held = Customer.objects.filter(
                customers_on_hold(on, channel, is_installment_reminder=is_reminder),
                pk__in=customers,
            ).values_list("pk", flat=True)
            self.customers_held.update((on, channel, is_reminder, pk) for pk in held)
        for contact in Contact.objects.filter(customer__in=customer_ids).order_by(
            "-is_primary", "id"
        ):
            self.contacts.setdefault(contact.customer_id, []).append(contact)
        # The caps look back a week and to the start of the month: 32 days covers both.
        recent = (
            Notice.objects.filter(
                customer__in=customer_ids,
                channel__in=MESSAGE_CHANNELS,
                status__in=CONTACTED,
            )
            # Messages the debtor asked for (a portal code, receipts) are not chasing.
            .exclude(step__policy__purpose=Policy.Purpose.TRANSACTIONAL)
            .annotate(contacted_at=Coalesce("sent_at", "sending_at"))
            .filter(contacted_at__gt=now - dt.timedelta(days=32))
            .values_list("customer_id", "contacted_at")
        )
        for customer_id, at in recent:
            self.contacted.setdefault(customer_id, []).append(at)

    def rule_for(self, customer):
        """The customer's contact rule; looked up once per country and kind in a batch."""
        key = ((customer.country or "").upper(), customer.kind)
        if key not in self.rules:
            self.rules[key] = contact_rules.rule_for(customer)
        return self.rules[key]

    def contact_for(self, notice: Notice) -> Contact | None:
        """The first contact reachable on the notice's channel who has not opted out of it,
        one who asked for that channel (the portal's preferences) before the others."""
        reachable = []
        for contact in self.contacts.get(notice.customer_id, []):
            if notice.channel == Channel.SMS:
                if contact.phone and contact.sms_opted_out_at is None:
                    reachable.append(contact)
            elif contact.email and contact.email_opted_out_at is None:
                reachable.append(contact)
        preferring = [c for c in reachable if c.preferred_channel == notice.channel]
        return (preferring or reachable or [None])[0]

    def process(self, now: dt.datetime) -> list[str | None]:
        """Re-check and send each leased notice; its outcome, or None if its lease was lost."""
        if self.now != now:
            self.now = now
            self._read(now)
        outcomes = []
        for notice in self.notices:
            try:
                outcomes.append(self._process(notice, now))
            except Exception:
                # Release what this worker will not get to; the error goes to the caller.
                Notice.objects.filter(
                    pk__in=[n.pk for n in self.notices],
                    claim_token=self.token,
                    status__in=SENDABLE,
                ).update(claim_token="", claimed_until=None)
                raise
        return outcomes

    def _update(self, notice: Notice, *, statuses=SENDABLE, unedited=False, **fields) -> bool:
        """One conditional UPDATE on this worker's leased row; False if the lease was lost
        (or, with `unedited`, if a manager edited the text since the batch read it)."""
        fields.setdefault("claim_token", "")
        fields.setdefault("claimed_until", None)
        rows = Notice.objects.filter(pk=notice.pk, claim_token=self.token, status__in=statuses)
        if unedited:
            rows = (
                rows.filter(edited_at=notice.edited_at)
                if notice.edited_at
                else rows.filter(edited_at__isnull=True)
            )
        return bool(rows.update(updated_at=timezone.now(), **fields))

    def _finish(self, notice: Notice, status: str, outcome: str, reason: str) -> str | None:
        return outcome if self._update(notice, status=status, reason=reason) else None

    def _defer(self, notice: Notice, until: dt.datetime, reason: str) -> str | None:
        done = self._update(
            notice,
            status=Notice.Status.DEFERRED,
            not_before_at=until,
            reason=f"deferred: {reason}",
        )
        return "deferred" if done else None

    def _process(self, notice: Notice, now: dt.datetime) -> str | None:
        customer = notice.customer
        if transactional.is_transactional(notice):
            return self._process_transactional(notice, now)
        on = _local_day(customer, now)
        is_reminder = notice.installment_id is not None
        if is_reminder and (moot := _moot_reminder(notice)):
            return self._finish(notice, Notice.Status.CANCELLED, "cancelled", moot)
        listed = self.invoices.get(notice.pk, [])
        holds = {i.pk: self.holds[(on, i.pk)] for i in listed if (on, i.pk) in self.holds}
        invoices = [i for i in listed if i.pk not in holds]
        held = [i for i in listed if i.pk in holds]
        if not invoices and not held:
            return self._finish(
                notice, Notice.Status.CANCELLED, "cancelled", "paid or closed since planning"
            )
        rule = self.rule_for(customer)
        if not invoices:
            # Look again the morning after the first hold ends (tomorrow for open-ended ones).
            ends = [holds[i.pk][0] or on for i in held]
            reasons = "; ".join(f"{i.number}: {holds[i.pk][1]}" for i in held)
            return self._defer(
                notice, _morning_after(customer, min(ends), rule), f"invoices held ({reasons})"
            )
        if (on, notice.channel, is_reminder, customer.pk) in self.customers_held:
            if customer.do_not_contact or customer.cease_communication or customer.is_bankrupt:
                return self._finish(
                    notice, Notice.Status.SKIPPED, "suppressed", hold_reason(customer, on)
                )
            until = _morning_after(customer, paused_until(customer, on) or on, rule)
            return self._defer(notice, until, hold_reason(customer, on))
        if notice.channel in TASK_CHANNELS:
            return self._raise_task(notice, invoices, now)
        contact = self.contact_for(notice)
        is_letter = notice.channel in LETTER_CHANNELS
        if contact is None and not is_letter:
            return self._finish(
                notice, Notice.Status.SKIPPED, "suppressed", f"no {notice.channel} contact allowed"
            )
        if is_letter and not (customer.postal_address or "").strip():
            # A letter goes in a window envelope: without an address it cannot be posted.
            return self._finish(
                notice, Notice.Status.SKIPPED, "suppressed", "no postal address for a letter"
            )
        if not is_letter:  # letters go by post
            moment, why = contact_rules.next_contact(customer, now, rule)
            if moment > now:
                return self._defer(notice, moment, why)
        capped = _cap_reached(customer, self.contacted.get(customer.pk, []), now, rule)
        if capped:
            return self._defer(notice, capped[0], capped[1])
        if notice.edited_at and sorted(i.pk for i in invoices) != sorted(notice.edited_invoices):
            return self._back_to_approval(notice, invoices)
        try:
            context, content = render_content(notice, invoices=invoices, contact=contact, on=on)
        except rendering.RenderError as exc:
            return self._finish(notice, Notice.Status.FAILED, "failed", str(exc))
        return self._send(notice, invoices, contact, context, content, now)

    def _process_transactional(self, notice: Notice, now: dt.datetime) -> str | None:
        """A message the debtor asked for, or a receipt: its own guard (no contact hours,
        caps or holds; never to an erased, missing or bounced address), see
        dunning/transactional.py."""
        contact, why = transactional.recipient(notice, self.contacts.get(notice.customer_id, []))
        if contact is None:
            return self._finish(notice, Notice.Status.SKIPPED, "suppressed", why)
        try:
            context, content = transactional.render(
                notice, contact, on=_local_day(notice.customer, now)
            )
        except (rendering.RenderError, transactional.SecretGone) as exc:
            return self._finish(notice, Notice.Status.FAILED, "failed", str(exc)[:300])
        return self._send(notice, [], contact, context, content, now)

    def _send(self, notice, invoices, contact, context, content, now) -> str | None:
        """Steps 3 to 5: mark sending (own commit), call the provider, record sent."""
        customer = notice.customer
        if notice.channel in LETTER_CHANNELS:
            recipient = customer.postal_address.replace("\n", ", ") or customer.name
        elif notice.channel == Channel.SMS:
            recipient = contact.phone
        else:
            recipient = contact.email
        message_id = message_id_for(notice.pk) if notice.channel == Channel.EMAIL else ""
        notice.contact = contact
        notice.recipient = recipient[:254]
        # What is recorded: a transactional notice's secrets masked, and every notice's
        # portal link (the message sent has them; reading the notice must not sign in).
        stored = content.get("stored", content)
        stored = {
            key: portal_links.mask(stored[key]) for key in ("subject", "body_text", "body_html")
        }
        notice.subject, notice.body_text = stored["subject"], stored["body_text"]
        notice.body_html = stored["body_html"]
        if not self._update(
            notice,
            unedited=True,  # a text edited meanwhile is sent by the next run, as edited
            status=Notice.Status.SENDING,
            sending_at=timezone.now(),
            attempts=F("attempts") + 1,
            contact=contact,
            recipient=notice.recipient,
            subject=notice.subject,
            body_text=notice.body_text,
            body_html=notice.body_html,
            provider_message_id=message_id,
            claim_token=self.token,  # kept: step 5 records only this worker's send
        ):
            # Lost to another worker, or edited meanwhile: free it for the next run.
            Notice.objects.filter(pk=notice.pk, claim_token=self.token, status__in=SENDABLE).update(
                claim_token="", claimed_until=None
            )
            return None
        # The caps of the next notices in this batch count this one.
        self.contacted.setdefault(customer.pk, []).append(now)
        try:
            if notice.channel in LETTER_CHANNELS:
                pdf = letters.render_pdf(notice=notice, content=content, context=context)
                message_id = letters.store(notice, pdf)
                kind, channel = Activity.Kind.LETTER, Activity.Channel.LETTER
                summary = f"{notice.step.name}: letter ready to print"
            elif notice.channel == Channel.SMS:
                message_id = channels.send_sms(recipient, content["body_text"].strip())
                kind, channel = Activity.Kind.SMS, Activity.Channel.SMS
                summary = f"{notice.step.name}: SMS to {recipient}"
            else:
                channels.send_email(
                    recipient, with_reply_to(content, notice.pk), message_id=message_id
                )
                kind, channel = Activity.Kind.EMAIL, Activity.Channel.EMAIL
                summary = f"{notice.step.name}: “{content['subject']}” to {recipient}"
        except NOT_SENT_ERRORS as exc:
            # Refused before the message was handed over: it goes back to the queue.
            self._update(
                notice,
                statuses=(Notice.Status.SENDING,),
                status=Notice.Status.DEFERRED,
                reason=f"deferred: the provider refused it ({exc!r:.200})",
            )
            raise
        except Exception as exc:
            if notice.channel in LETTER_CHANNELS:  # nothing left the building
                self._update(
                    notice,
                    statuses=(Notice.Status.SENDING,),
                    status=Notice.Status.FAILED,
                    reason=f"letter not made: {exc!r:.200}",
                )
            else:
                self._update(
                    notice,
                    statuses=(Notice.Status.SENDING,),
                    status=Notice.Status.UNCERTAIN,
                    reason=f"uncertain: the provider call failed midway ({exc!r:.200})",
                )
            raise
        with transaction.atomic():
            recorded = self._update(
                notice,
                # Uncertain too: a send slower than the timeout was swept meanwhile; it
                # did go out, and this is the record of it.
                statuses=(Notice.Status.SENDING, Notice.Status.UNCERTAIN),
                status=Notice.Status.SENT,
                provider_message_id=message_id,
                document=notice.document.name or "",
                sent_at=now,
                reason="",
            )
            if not recorded:  # a manager resolved it meanwhile, with its own entry
                logger.warning("notice %s was resolved while it was being sent", notice.pk)
                return None
            notice.provider_message_id = message_id
            if transactional.is_transactional(notice):
                return transactional.recorded(notice, stored, kind=kind, channel=channel, now=now)
            if offers.is_offer(notice):
                return _offered(notice, content, kind=kind, channel=channel, now=now)
            if notice.installment_id is not None:
                return _reminded(
                    notice,
                    content,
                    count=context["installment_count"],
                    kind=kind,
                    channel=channel,
                    now=now,
                )
            # One timeline entry per invoice on the notice, in one INSERT; a step with a
            # predicted-lateness threshold says why it applied to the invoice.
            timeline.add_all(
                timeline.entry(
                    kind,
                    customer=customer,
                    invoice=invoice,
                    channel=channel,
                    text=summary + self._why_applied(notice, invoice),
                    details={
                        "notice": notice.pk,
                        "step": notice.step_id,
                        "message_id": message_id,
                        **self._prediction_details(notice, invoice),
                    },
                    at=now,
                )
                for invoice in invoices
            )
        return "sent"

    def _prediction_details(self, notice: Notice, invoice: Invoice) -> dict:
        """The invoice's probability of paying late when planned, and the step's threshold."""
        details = {}
        probability = self.probabilities.get((notice.pk, invoice.pk))
        if probability is not None:
            details["probability_late"] = str(probability)
        if notice.step.min_probability_late is not None:
            details["min_probability_late"] = str(notice.step.min_probability_late)
        return details

    def _why_applied(self, notice: Notice, invoice: Invoice) -> str:
        """ " (predicted 73% likely to be paid late; step from 50%)" for a step with a
        threshold, else nothing."""
        threshold = notice.step.min_probability_late
        probability = self.probabilities.get((notice.pk, invoice.pk))
        if threshold is None or probability is None:
            return ""
        return _(" (predicted %(probability)s likely to be paid late; step from %(threshold)s)") % {
            "probability": f"{probability:.0%}",
            "threshold": f"{threshold:.0%}",
        }

    def _back_to_approval(self, notice: Notice, invoices: list[Invoice]) -> str | None:
        """An edited text names invoices; when they changed (one paid, one now held) since
        the edit, a manager looks again instead of the customer reading a wrong list."""
        now_listed = ", ".join(invoice.number for invoice in invoices)
        return self._finish(
            notice,
            Notice.Status.AWAITING_APPROVAL,
            "awaiting_approval",
            f"invoices changed since the text was edited (now {now_listed}): "
            "check and approve again",
        )

    def _raise_task(self, notice: Notice, invoices: list[Invoice], now) -> str | None:
        """A call, escalation or review step becomes a task in someone's worklist.

        Calls and reviews go to the customer's agent; escalations to the unassigned queue,
        which managers work. Only our database is touched: the task and the sent notice
        are one commit (a crash leaves neither), and the task's source names the notice,
        so a retry raises nothing twice. Quiet hours and contact caps are for messages,
        not for our own people.
        """
        customer = notice.customer
        totals: dict[str, Decimal] = {}
        for invoice in invoices:
            totals[invoice.currency] = totals.get(invoice.currency, ZERO) + invoice.open_balance
        owed = ", ".join(f"{currency} {total}" for currency, total in sorted(totals.items()))
        numbers = ", ".join(invoice.number for invoice in invoices)
        kind, title = {
            Channel.CALL: (Task.Kind.CALL, _("Call %(customer)s: %(owed)s overdue")),
            Channel.ESCALATION: (Task.Kind.REVIEW, _("Escalation: %(customer)s owes %(owed)s")),
            Channel.REVIEW: (Task.Kind.REVIEW, _("Write-off or agency review: %(customer)s")),
        }[notice.channel]
        first_due_on = min(invoice.due_on for invoice in invoices)
        if notice.channel == Channel.CALL and first_due_on >= _local_day(customer, now):
            # A call before the due date (a white-glove call): nothing is overdue yet.
            title = _("Call %(customer)s: %(owed)s falls due on %(date)s")
        title %= {"customer": customer.name, "owed": owed, "date": first_due_on.isoformat()}
        # Why a step with a predicted-lateness threshold applied, for the agent to see.
        probabilities = {
            invoice.number: self.probabilities[(notice.pk, invoice.pk)]
            for invoice in invoices
            if (notice.pk, invoice.pk) in self.probabilities
        }
        prediction = {}
        if probabilities:
            prediction["probability_late"] = {n: str(p) for n, p in probabilities.items()}
        if notice.step.min_probability_late is not None:
            prediction["min_probability_late"] = str(notice.step.min_probability_late)
            if probabilities:
                title += _(" (predicted late: %(probability)s)") % {
                    "probability": f"{max(probabilities.values()):.0%}"
                }
        # None: the customer's agent (create_task's default), else the unassigned queue.
        assignee = _least_busy_manager() if notice.channel == Channel.ESCALATION else None
        with transaction.atomic():
            # Lock our leased row first: if the lease was lost, raise nothing.
            if (
                not Notice.objects.filter(pk=notice.pk, claim_token=self.token, status__in=SENDABLE)
                .select_for_update()
                .exists()
            ):
                return None
            task = case_tasks.create_task(
                customer=customer,
                kind=kind,
                title=title[:200],
                due_at=case_tasks.due_at_end_of(timezone.localdate(now)),
                assignee=assignee,
                # A review step and the nightly write-off review raise the same task, once.
                source=(
                    recoveries.review_source(customer.pk)
                    if notice.channel == Channel.REVIEW
                    else f"dunning:notice:{notice.pk}"
                ),
                details={
                    "notice": notice.pk,
                    "step": notice.step.name,
                    "invoices": [invoice.number for invoice in invoices],
                    "totals": {currency: str(total) for currency, total in totals.items()},
                    **prediction,
                },
            )
            self._update(
                notice,
                status=Notice.Status.SENT,
                subject=task.title,
                body_text=_("Invoices: %(numbers)s") % {"numbers": numbers},
                recipient=task.assignee.get_username() if task.assignee_id else "",
                provider_message_id=f"task:{task.pk}",
                sent_at=now,
                attempts=F("attempts") + 1,
                reason="",
            )
        return "sent"


def listed_invoices(notice: Notice, on: dt.date) -> tuple[list, list, dict]:
    """The notice's invoices still to chase on that day, those held, and the holds.

    An installment reminder lists its plan's open invoices, which the plan itself holds
    from dunning but not from the reminders of its installments.
    """
    if notice.installment_id is not None:
        return list(_plan_invoices(notice.installment.plan_id)), [], {}
    invoices = list(
        Invoice.objects.filter(
            notice_lines__notice=notice,
            status__in=(Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID),
        ).order_by("due_on", "number")
    )
    holds = invoice_holds(invoices, on) if invoices else {}
    held = [i for i in invoices if i.pk in holds]
    return [i for i in invoices if i.pk not in holds], held, holds


def render_content(notice: Notice, *, invoices: list, contact, on: dt.date) -> tuple[dict, dict]:
    """The notice's variables and its message: the customer's translation of the step's
    template (or a manager's edited text), plus the required disclosure and opt-out line."""
    context = rendering.notice_context(
        customer=notice.customer, invoices=invoices, contact=contact, on=on
    )
    if notice.installment_id is not None:
        context.update(_installment_context(notice.installment, notice.customer))
        if offers.is_offer(notice):
            context.update(_offer_context(notice.installment.plan, notice.customer))
    content = rendering.render_notice(
        notice.variant.template if notice.variant_id else notice.step.template,
        context,
        customer=notice.customer,
        contact=contact,
        channel=notice.channel,
        edited=(notice.subject, notice.body_text) if notice.edited_at else None,
    )
    return context, content


def _plan_invoices(plan_id: int):
    return Invoice.objects.filter(
        payment_plans=plan_id, status__in=(Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID)
    ).order_by("due_on", "number")


def _installment_context(installment: Installment, customer) -> dict:
    """The variables an installment reminder's template adds to the notice's."""
    plan = installment.plan
    due = installment.amount - installment.paid_amount
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        due_display = rendering.amount_display(due, plan.currency)
        due_on_display = rendering.date_display(installment.due_on)
    return {
        "plan_id": plan.pk,
        "plan_total": str(plan.total_amount),
        "currency": plan.currency,
        "installment_number": installment.sequence,
        "installment_count": plan.installments.count(),
        "installment_due_on": installment.due_on.isoformat(),
        "installment_due_on_display": due_on_display,
        "installment_amount": str(due),
        "installment_amount_display": due_display,
    }


def _offer_context(plan: PaymentPlan, customer) -> dict:
    """The variables a plan offer's template adds: the plan's installments, each with its
    number, due date and amount (plain and in the customer's language), and its total."""
    lines = []
    with translation.override(customer.language or settings.LANGUAGE_CODE):
        for installment in plan.installments.order_by("sequence"):
            lines.append(
                {
                    "number": installment.sequence,
                    "due_on": installment.due_on.isoformat(),
                    "due_on_display": rendering.date_display(installment.due_on),
                    "amount": str(installment.amount),
                    "amount_display": rendering.amount_display(installment.amount, plan.currency),
                }
            )
        total_display = rendering.amount_display(plan.total_amount, plan.currency)
    return {
        "plan_installments": lines,
        "plan_installment_count": len(lines),
        "plan_total_display": total_display,
    }


def _moot_reminder(notice: Notice) -> str:
    """Why an installment reminder (or a plan offer) has nothing left to say, or ""."""
    installment = notice.installment
    if offers.is_offer(notice):  # the offer is about the plan, whatever was paid already
        if installment.plan.status != PaymentPlan.Status.ACTIVE:
            return f"payment plan {installment.plan.get_status_display().lower()} since planning"
        return ""
    if installment.status != Installment.Status.PENDING:
        return f"installment {installment.get_status_display().lower()} since planning"
    if installment.paid_amount >= installment.amount:
        return "installment paid since planning"
    if installment.plan.status != PaymentPlan.Status.ACTIVE:
        return f"payment plan {installment.plan.get_status_display().lower()} since planning"
    return ""


def _least_busy_manager():
    """The active member of the escalation group with the fewest open tasks, or None."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name=settings.DUNNING_ESCALATION_GROUP)
        .annotate(open_tasks=Count("collection_tasks", filter=Q(collection_tasks__status="open")))
        .order_by("open_tasks", "pk")
        .first()
    )


def next_allowed_moment(customer, now: dt.datetime) -> dt.datetime:
    """`now` if the customer's contact rule allows contact now, else the next moment it does.

    Contact hours in the customer's time zone, no-contact weekdays and, when the rule
    observes them, the public holidays of the customer's country (dunning/contact_rules.py).
    """
    return contact_rules.next_contact(customer, now, contact_rules.rule_for(customer))[0]


def _local_day(customer, now: dt.datetime) -> dt.date:
    return now.astimezone(zoneinfo.ZoneInfo(customer.timezone)).date()


def _offered(notice: Notice, content: dict, *, kind: str, channel: str, now) -> str:
    """A plan offer went out: the timeline says which plan, to whom."""
    plan = notice.installment.plan
    timeline.add(
        kind,
        customer=notice.customer,
        channel=channel,
        text=_("Payment plan offer: plan #%(pk)s, %(currency)s %(total)s, “%(subject)s” to %(to)s")
        % {
            "pk": plan.pk,
            "currency": plan.currency,
            "total": plan.total_amount,
            "subject": content["subject"],
            "to": notice.recipient,
        },
        details={
            "notice": notice.pk,
            "step": notice.step_id,
            "plan": plan.pk,
            "message_id": notice.provider_message_id,
            "recipient": notice.recipient,
        },
        at=now,
    )
    return "sent"


def _reminded(notice: Notice, content: dict, *, count: int, kind: str, channel: str, now) -> str:
    """An installment reminder went out: the installment says when, the timeline says what.
    `count` is the plan's number of installments, as the message's context counted it."""
    installment = notice.installment
    Installment.objects.filter(pk=installment.pk).update(reminded_at=now)
    timeline.add(
        kind,
        customer=notice.customer,
        channel=channel,
        text=_(
            "Installment reminder: %(n)d of %(count)d of plan #%(pk)s, %(currency)s "
            "%(amount)s due %(date)s, “%(subject)s” to %(to)s"
        )
        % {
            "n": installment.sequence,
            "count": count,
            "pk": installment.plan_id,
            "currency": installment.plan.currency,
            "amount": installment.amount - installment.paid_amount,
            "date": installment.due_on.isoformat(),
            "subject": content["subject"],
            "to": notice.recipient,
        },
        details={
            "notice": notice.pk,
            "step": notice.step_id,
            "plan": installment.plan_id,
            "installment": installment.pk,
            "message_id": notice.provider_message_id,
            "recipient": notice.recipient,
        },
        at=now,
    )
    return "sent"


def _cap_reached(
    customer, contacted: list[dt.datetime], now: dt.datetime, rule
) -> tuple[dt.datetime, str] | None:
    """The contact caps of the customer's rule: (when the cap allows again, why) or None.

    `contacted` holds the customer's recent contacts: messages sent or delivered, and
    those that may have gone out (sending, uncertain), at when they were sent or begun.
    """
    week = sorted(at for at in contacted if at > now - dt.timedelta(days=7))
    if len(week) >= rule.max_contacts_per_7_days:
        # Allowed again when the oldest send that keeps the count at the cap is 7 days old.
        until = week[len(week) - rule.max_contacts_per_7_days] + dt.timedelta(days=7)
        return until, f"contact cap: {len(week)} contacts in the last 7 days"
    if rule.max_contacts_per_month is not None:
        zone = zoneinfo.ZoneInfo(customer.timezone)
        local = now.astimezone(zone)
        month_start = dt.datetime.combine(local.date().replace(day=1), dt.time(0), tzinfo=zone)
        this_month = sum(1 for at in contacted if at >= month_start)
        if this_month >= rule.max_contacts_per_month:
            next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
            return next_month, f"monthly cap: {this_month} contacts this month"
    return None


def contact_for(notice: Notice) -> Contact | None:
    """The first contact reachable on the notice's channel who has not opted out of it,
    one who asked for that channel (the portal's preferences) before the others."""
    contacts = notice.customer.contacts.all()
    if notice.channel == Channel.SMS:
        contacts = contacts.exclude(phone="").filter(sms_opted_out_at__isnull=True)
    else:
        contacts = contacts.exclude(email="").filter(email_opted_out_at__isnull=True)
    prefers = Case(When(preferred_channel=notice.channel, then=0), default=1)
    return contacts.order_by(prefers, "-is_primary", "id").first()


def _morning_after(customer, day: dt.date, rule=None) -> dt.datetime:
    """When the customer's contact hours open the day after `day` (the sender then looks
    again, and defers once more if that day has no contact)."""
    zone = zoneinfo.ZoneInfo(customer.timezone)
    start = (rule or contact_rules.rule_for(customer)).from_hour
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(start), tzinfo=zone)


# --- Uncertain notices: a manager's decision ---------------------------------------------

RESOLVE_PERMISSION = "dunning.approve_notice"


def mark_sent(notices, *, by, reason: str) -> int:
    """Uncertain notices that did go out (the customer or the provider says so): sent."""
    return _resolve(notices, by=by, reason=reason, went_out=True)


def send_again(notices, *, by, reason: str) -> int:
    """Uncertain notices that did not go out: back to the sender, with the same Message-ID."""
    return _resolve(notices, by=by, reason=reason, went_out=False)


def _resolve(notices, *, by, reason: str, went_out: bool) -> int:
    if not by.has_perm(RESOLVE_PERMISSION):
        raise PermissionDenied(_("You do not have permission to do this."))
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why.")})
    verb = _("Marked as sent") if went_out else _("Sent again")
    now = timezone.now()
    done = 0
    with transaction.atomic():
        for notice in (
            Notice.objects.select_for_update(of=("self",))
            .filter(pk__in=[n.pk for n in notices], status=Notice.Status.UNCERTAIN)
            .select_related("customer", "step")
        ):
            entries = [
                timeline.entry(
                    Activity.Kind.OVERRIDE,
                    customer=notice.customer,
                    by=by,
                    text=_("%(verb)s: uncertain notice “%(step)s” to %(to)s: %(reason)s")
                    % {
                        "verb": verb,
                        "step": notice.step.name,
                        "to": notice.recipient,
                        "reason": reason,
                    },
                    details={
                        "notice": notice.pk,
                        "status": "sent" if went_out else "approved",
                        "reason": reason,
                        "message_id": notice.provider_message_id,
                    },
                    at=now,
                )
            ]
            if went_out:
                notice.status = Notice.Status.SENT
                notice.sent_at = notice.sending_at or now
                kind = {Channel.SMS: Activity.Kind.SMS}.get(notice.channel, Activity.Kind.EMAIL)
                entries += [
                    timeline.entry(
                        kind,
                        customer=notice.customer,
                        invoice=line.invoice_id,
                        channel=_activity_channel(notice.channel),
                        text=f"{notice.step.name}: {notice.subject or notice.channel} to "
                        f"{notice.recipient} (confirmed by {by.get_username()})",
                        details={
                            "notice": notice.pk,
                            "step": notice.step_id,
                            "message_id": notice.provider_message_id,
                        },
                        at=notice.sent_at,
                    )
                    for line in notice.lines.all()
                ]
            else:
                notice.status = Notice.Status.APPROVED
                notice.not_before_at = None
            notice.decided_by = by
            notice.reason = f"{verb}: {reason}"[:300]
            notice.save(
                update_fields=[
                    "status",
                    "sent_at",
                    "not_before_at",
                    "decided_by",
                    "reason",
                    "updated_at",
                ]
            )
            timeline.add_all(entries)
            done += 1
    return done


def uncertain_count() -> int:
    return Notice.objects.filter(status=Notice.Status.UNCERTAIN).count()
