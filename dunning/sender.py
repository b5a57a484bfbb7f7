"""The sender: claims planned notices, re-checks them at send time, and sends them.

Planning and sending are separate. The sender works one notice at a time:

1. Claim it: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, filtered by "sendable now"
   (planned, approved or deferred, and its not-before moment has come). A second worker
   skips a row the first holds; when the first commits, the row is no longer sendable.
   A retried task finds the notice sent and does nothing.
2. Re-check everything, because the world changed since planning: drop invoices paid,
   cancelled, written off or disputed since (none left: the notice is cancelled); holds,
   do-not-contact, opt-outs (skipped, with the reason); quiet hours in the customer's time
   zone and contact frequency caps (deferred to the next allowed moment, never dropped).
3. Render the exact text, send it, store the provider's message id, the text and the
   recipient, write the timeline entry, and commit: the row lock is held until then.

If a worker is killed mid-send, its transaction rolls back and the notice is sendable
again: a crash after the provider accepted the message but before the commit is the one
moment a message can go out twice, and the stored Message-ID lets the provider dedupe it.
"""

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import services as ledger
from accounts.holds import invoice_holds
from accounts.models import Activity, Contact, Invoice

from . import channels, letters, rendering
from .models import MESSAGE_CHANNELS, Channel, Notice
from .planner import customers_on_hold

logger = logging.getLogger(__name__)

SENDABLE = (Notice.Status.PLANNED, Notice.Status.APPROVED, Notice.Status.DEFERRED)
# Channels this sender delivers today; the others wait in the outbox for their channel.
DELIVERED_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER, Channel.LEGAL)
LETTER_CHANNELS = (Channel.LETTER, Channel.LEGAL)


@dataclass
class SendResult:
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    cancelled: int = 0
    failed: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


def sendable(now: dt.datetime):
    return Notice.objects.filter(
        Q(not_before_at__isnull=True) | Q(not_before_at__lte=now),
        status__in=SENDABLE,
        channel__in=DELIVERED_CHANNELS,
    )


def send_due(*, now: dt.datetime | None = None, limit: int = 1000) -> SendResult:
    """Send every notice that may go out now, one claimed row at a time."""
    now = now or timezone.now()
    result = SendResult()
    for _ in range(limit):
        outcome = send_next(now=now)
        if outcome is None:
            break
        result.add(outcome)
    return result


def send_next(*, now: dt.datetime, notice_id: int | None = None) -> str | None:
    """Claim one sendable notice (or the given one) and process it; None when none is left."""
    with transaction.atomic():
        claim = sendable(now).select_for_update(skip_locked=True, of=("self",)).order_by("id")
        if notice_id is not None:
            claim = claim.filter(pk=notice_id)
        notice = claim.select_related("customer", "step", "step__template").first()
        if notice is None:
            return None
        return _process(notice, now)


def _process(notice: Notice, now: dt.datetime) -> str:
    customer = notice.customer
    on = now.astimezone(zoneinfo.ZoneInfo(customer.timezone)).date()
    invoices = list(
        Invoice.objects.filter(
            notice_lines__notice=notice,
            status__in=(Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID),
        ).order_by("due_on", "number")
    )
    if not invoices:
        return _finish(
            notice, Notice.Status.CANCELLED, "cancelled", "paid or closed since planning"
        )
    holds = invoice_holds(invoices, on)
    held = [i for i in invoices if i.pk in holds]
    invoices = [i for i in invoices if i.pk not in holds]
    if not invoices:
        # Look again the morning after the first hold ends (tomorrow for open-ended ones).
        ends = [holds[i.pk][0] or on for i in held]
        reasons = "; ".join(f"{i.number}: {holds[i.pk][1]}" for i in held)
        return _defer(notice, _morning_after(customer, min(ends)), f"invoices held ({reasons})")
    held = (
        type(customer)
        .objects.filter(customers_on_hold(on, notice.channel), pk=customer.pk)
        .exists()
    )
    if held:
        if customer.do_not_contact or customer.cease_communication or customer.is_bankrupt:
            return _finish(notice, Notice.Status.SKIPPED, "suppressed", _hold_reason(customer, on))
        until = _morning_after(customer, max(on, customer.dunning_paused_until or on))
        return _defer(notice, until, _hold_reason(customer, on))
    contact = _contact_for(notice)
    is_letter = notice.channel in LETTER_CHANNELS
    if contact is None and not is_letter:
        return _finish(
            notice, Notice.Status.SKIPPED, "suppressed", f"no {notice.channel} contact allowed"
        )
    moment = now if is_letter else next_allowed_moment(customer, now)  # letters go by post
    if moment > now:
        zone = customer.timezone
        local = moment.astimezone(zoneinfo.ZoneInfo(zone))
        return _defer(notice, moment, f"quiet hours until {local:%H:%M} {zone}")
    capped = _cap_reached(notice, now)
    if capped:
        return _defer(notice, capped[0], capped[1])
    context = rendering.notice_context(customer=customer, invoices=invoices, contact=contact, on=on)
    try:
        content = rendering.render(notice.step.template, context)
    except rendering.RenderError as exc:
        return _finish(notice, Notice.Status.FAILED, "failed", str(exc))
    if is_letter:
        letters.store(notice, letters.render_pdf(notice=notice, content=content, context=context))
        recipient = customer.postal_address.replace("\n", ", ") or customer.name
        message_id = notice.document.name
        kind, channel = Activity.Kind.LETTER, Activity.Channel.LETTER
        summary = f"{notice.step.name}: letter ready to print"
    elif notice.channel == Channel.SMS:
        recipient = contact.phone
        message_id = channels.send_sms(recipient, content["body_text"].strip())
        kind, channel = Activity.Kind.SMS, Activity.Channel.SMS
        summary = f"{notice.step.name}: SMS to {recipient}"
    else:
        recipient = contact.email
        message_id = channels.send_email(recipient, content)
        kind, channel = Activity.Kind.EMAIL, Activity.Channel.EMAIL
        summary = f"{notice.step.name}: “{content['subject']}” to {recipient}"
    notice.contact = contact
    notice.recipient = recipient[:254]
    notice.subject, notice.body_text = content["subject"], content["body_text"]
    notice.body_html = content["body_html"]
    notice.provider_message_id = message_id
    notice.sent_at = now
    notice.attempts += 1
    notice.status = Notice.Status.SENT
    notice.reason = ""
    notice.save()
    for invoice in invoices:
        ledger.log(
            customer=customer,
            invoice=invoice,
            kind=kind,
            channel=channel,
            text=summary,
            details={"notice": notice.pk, "step": notice.step_id, "message_id": message_id},
            at=now,
        )
    return "sent"


def next_allowed_moment(customer, now: dt.datetime) -> dt.datetime:
    """`now` if the customer's local time is inside contact hours, else the next start."""
    zone = zoneinfo.ZoneInfo(customer.timezone)
    local = now.astimezone(zone)
    start, end = settings.DUNNING_CONTACT_HOURS
    day = local.date()
    for _ in range(8):
        opens = dt.datetime.combine(day, dt.time(start), tzinfo=zone)
        closes = dt.datetime.combine(day, dt.time(end), tzinfo=zone)
        allowed_day = day.weekday() not in settings.DUNNING_NO_CONTACT_WEEKDAYS
        if allowed_day and local < closes:
            return max(now, opens)
        day += dt.timedelta(days=1)
    raise AssertionError("no allowed contact day in a week: check DUNNING_NO_CONTACT_WEEKDAYS")


def _cap_reached(notice: Notice, now: dt.datetime) -> tuple[dt.datetime, str] | None:
    sent = Notice.objects.filter(
        customer=notice.customer,
        channel__in=MESSAGE_CHANNELS,
        status__in=(Notice.Status.SENT, Notice.Status.DELIVERED),
    )
    week = list(
        sent.filter(sent_at__gt=now - dt.timedelta(days=7))
        .order_by("sent_at")
        .values_list("sent_at", flat=True)
    )
    if len(week) >= settings.DUNNING_MAX_CONTACTS_PER_7_DAYS:
        until = week[len(week) - settings.DUNNING_MAX_CONTACTS_PER_7_DAYS] + dt.timedelta(days=7)
        return until, f"contact cap: {len(week)} contacts in the last 7 days"
    if notice.customer.kind == notice.customer.Kind.CONSUMER:
        zone = zoneinfo.ZoneInfo(notice.customer.timezone)
        local = now.astimezone(zone)
        month_start = dt.datetime.combine(local.date().replace(day=1), dt.time(0), tzinfo=zone)
        this_month = sent.filter(sent_at__gte=month_start).count()
        if this_month >= settings.DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH:
            next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
            return next_month, f"monthly cap: {this_month} contacts this month"
    return None


def _contact_for(notice: Notice) -> Contact | None:
    """The first contact reachable on the notice's channel who has not opted out of it."""
    contacts = notice.customer.contacts.all()
    if notice.channel == Channel.SMS:
        contacts = contacts.exclude(phone="").filter(sms_opted_out_at__isnull=True)
    else:
        contacts = contacts.exclude(email="").filter(email_opted_out_at__isnull=True)
    return contacts.order_by("-is_primary", "id").first()


def _hold_reason(customer, on: dt.date) -> str:
    if customer.dunning_paused_until and customer.dunning_paused_until >= on:
        return (
            f"dunning paused until {customer.dunning_paused_until}: {customer.dunning_pause_reason}"
        )
    return "on hold: " + ", ".join(customer.holds)


def _morning_after(customer, day: dt.date) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(customer.timezone)
    start = settings.DUNNING_CONTACT_HOURS[0]
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(start), tzinfo=zone)


def _defer(notice: Notice, until: dt.datetime, reason: str) -> str:
    notice.status = Notice.Status.DEFERRED
    notice.not_before_at = until
    notice.reason = f"deferred: {reason}"
    notice.save(update_fields=["status", "not_before_at", "reason", "updated_at"])
    return "deferred"


def _finish(notice: Notice, status: str, outcome: str, reason: str) -> str:
    notice.status = status
    notice.reason = reason
    notice.save(update_fields=["status", "reason", "updated_at"])
    return outcome
