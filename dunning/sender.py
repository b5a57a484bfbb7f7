"""The sender: claims planned notices, re-checks them at send time, and sends them.

Planning and sending are separate. The sender works one notice at a time:

1. Claim it: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL, filtered by "sendable now"
   (planned, approved or deferred, and its not-before moment has come). A second worker
   skips a row the first holds; when the first commits, the row is no longer sendable.
   A retried task finds the notice sent and does nothing.
2. Re-check everything, because the world changed since planning: drop invoices paid,
   cancelled, written off or disputed since (none left: the notice is cancelled); holds,
   do-not-contact, opt-outs (skipped, with the reason); the customer's contact rule
   (hours in their time zone, no-contact weekdays, public holidays, contact frequency
   caps: deferred to the next allowed moment, never dropped). An edited text whose
   invoices changed goes back to a manager.
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
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import ZERO, Activity, Contact, Invoice
from cases import case_tasks, recoveries
from cases.models import Installment, PaymentPlan, Task

from . import channels, contact_rules, letters, rendering
from .holds import customers_on_hold, hold_reason, invoice_holds
from .models import MESSAGE_CHANNELS, Channel, Notice

logger = logging.getLogger(__name__)

SENDABLE = (Notice.Status.PLANNED, Notice.Status.APPROVED, Notice.Status.DEFERRED)
# Steps that make work for people: the sender raises a task instead of a message.
TASK_CHANNELS = (Channel.CALL, Channel.ESCALATION, Channel.REVIEW)
DELIVERED_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER, Channel.LEGAL, *TASK_CHANNELS)
LETTER_CHANNELS = (Channel.LETTER, Channel.LEGAL)


@dataclass
class SendResult:
    sent: int = 0
    deferred: int = 0
    suppressed: int = 0
    cancelled: int = 0
    failed: int = 0
    awaiting_approval: int = 0  # an edited text whose invoices changed goes back to a manager

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
    for _attempt in range(limit):
        outcome = send_next(now=now)
        if outcome is None:
            break
        result.add(outcome)
    return result


def send_next(*, now: dt.datetime, notice_id: int | None = None) -> str | None:
    """Claim one sendable notice (or the given one) and process it; None when none is left."""
    with transaction.atomic():
        # Lock the notice row alone, found through the sendable index, oldest planned first.
        # Ordered by id alone, PostgreSQL walks the primary key past every notice ever sent
        # (0.65 s a claim with a year of outbox behind it, see bench/dunning.py); joined,
        # it reads every customer before sorting.
        claim = (
            sendable(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("planned_on", "id")
        )
        if notice_id is not None:
            claim = claim.filter(pk=notice_id)
        claimed = claim.values_list("pk", flat=True).first()
        if claimed is None:
            return None
        # The agent too: every notice's text names them (one query per notice otherwise).
        notice = Notice.objects.select_related(
            "customer", "customer__assigned_agent", "step", "step__template"
        ).get(pk=claimed)
        if notice.installment_id is not None:  # an installment reminder: one query more
            notice.installment = Installment.objects.select_related("plan").get(
                pk=notice.installment_id
            )
        return _process(notice, now)


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
    content = rendering.render_notice(
        notice.step.template,
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
        due_display = rendering.amount_display(due)
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


def _moot_reminder(installment: Installment) -> str:
    """Why an installment reminder has nothing left to say, or ""."""
    if installment.status != Installment.Status.PENDING:
        return f"installment {installment.get_status_display().lower()} since planning"
    if installment.paid_amount >= installment.amount:
        return "installment paid since planning"
    if installment.plan.status != PaymentPlan.Status.ACTIVE:
        return f"payment plan {installment.plan.get_status_display().lower()} since planning"
    return ""


def _process(notice: Notice, now: dt.datetime) -> str:
    customer = notice.customer
    on = now.astimezone(zoneinfo.ZoneInfo(customer.timezone)).date()
    is_reminder = notice.installment_id is not None
    if is_reminder and (moot := _moot_reminder(notice.installment)):
        return _finish(notice, Notice.Status.CANCELLED, "cancelled", moot)
    invoices, held, holds = listed_invoices(notice, on)
    if not invoices and not held:
        return _finish(
            notice, Notice.Status.CANCELLED, "cancelled", "paid or closed since planning"
        )
    if not invoices:
        # Look again the morning after the first hold ends (tomorrow for open-ended ones).
        ends = [holds[i.pk][0] or on for i in held]
        reasons = "; ".join(f"{i.number}: {holds[i.pk][1]}" for i in held)
        return _defer(notice, _morning_after(customer, min(ends)), f"invoices held ({reasons})")
    held = (
        type(customer)
        .objects.filter(
            customers_on_hold(on, notice.channel, is_installment_reminder=is_reminder),
            pk=customer.pk,
        )
        .exists()
    )
    if held:
        if customer.do_not_contact or customer.cease_communication or customer.is_bankrupt:
            return _finish(notice, Notice.Status.SKIPPED, "suppressed", hold_reason(customer, on))
        until = _morning_after(customer, max(on, customer.dunning_paused_until or on))
        return _defer(notice, until, hold_reason(customer, on))
    if notice.channel in TASK_CHANNELS:
        return _raise_task(notice, invoices, now)
    contact = contact_for(notice)
    is_letter = notice.channel in LETTER_CHANNELS
    if contact is None and not is_letter:
        return _finish(
            notice, Notice.Status.SKIPPED, "suppressed", f"no {notice.channel} contact allowed"
        )
    # The customer's contact rule (one query): hours, days and holidays, then the caps.
    rule = contact_rules.rule_for(customer)
    if not is_letter:  # letters go by post
        moment, why = contact_rules.next_contact(customer, now, rule)
        if moment > now:
            return _defer(notice, moment, why)
    capped = _cap_reached(notice, now, rule)
    if capped:
        return _defer(notice, capped[0], capped[1])
    if notice.edited_at and sorted(i.pk for i in invoices) != sorted(notice.edited_invoices):
        return _back_to_approval(notice, invoices)
    try:
        context, content = render_content(notice, invoices=invoices, contact=contact, on=on)
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
    if is_reminder:
        return _reminded(
            notice, content, count=context["installment_count"], kind=kind, channel=channel, now=now
        )
    # One timeline entry per invoice on the notice, in one INSERT.
    timeline.add_all(
        timeline.entry(
            kind,
            customer=customer,
            invoice=invoice,
            channel=channel,
            text=summary,
            details={"notice": notice.pk, "step": notice.step_id, "message_id": message_id},
            at=now,
        )
        for invoice in invoices
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


def _raise_task(notice: Notice, invoices: list[Invoice], now: dt.datetime) -> str:
    """A call, escalation or review step becomes a task in someone's worklist.

    Calls and reviews go to the customer's agent; escalations to the unassigned queue,
    which managers work. The task's source names the notice, so a retried send raises
    nothing twice; quiet hours and contact caps are for messages, not for our own people.
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
    # None: the customer's agent (create_task's default), else the unassigned queue.
    assignee = _least_busy_manager() if notice.channel == Channel.ESCALATION else None
    task = case_tasks.create_task(
        customer=customer,
        kind=kind,
        title=title % {"customer": customer.name, "owed": owed},
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
        },
    )
    notice.subject = task.title
    notice.body_text = _("Invoices: %(numbers)s") % {"numbers": numbers}
    notice.recipient = task.assignee.get_username() if task.assignee_id else ""
    notice.provider_message_id = f"task:{task.pk}"
    notice.sent_at = now
    notice.attempts += 1
    notice.status = Notice.Status.SENT
    notice.reason = ""
    notice.save()
    return "sent"


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


def _cap_reached(notice: Notice, now: dt.datetime, rule) -> tuple[dt.datetime, str] | None:
    """The contact caps of the customer's rule: (when the cap allows again, why) or None."""
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
    if len(week) >= rule.max_contacts_per_7_days:
        # Allowed again when the oldest send that keeps the count at the cap is 7 days old.
        until = week[len(week) - rule.max_contacts_per_7_days] + dt.timedelta(days=7)
        return until, f"contact cap: {len(week)} contacts in the last 7 days"
    if rule.max_contacts_per_month is not None:
        zone = zoneinfo.ZoneInfo(notice.customer.timezone)
        local = now.astimezone(zone)
        month_start = dt.datetime.combine(local.date().replace(day=1), dt.time(0), tzinfo=zone)
        this_month = sent.filter(sent_at__gte=month_start).count()
        if this_month >= rule.max_contacts_per_month:
            next_month = (month_start + dt.timedelta(days=32)).replace(day=1)
            return next_month, f"monthly cap: {this_month} contacts this month"
    return None


def contact_for(notice: Notice) -> Contact | None:
    """The first contact reachable on the notice's channel who has not opted out of it."""
    contacts = notice.customer.contacts.all()
    if notice.channel == Channel.SMS:
        contacts = contacts.exclude(phone="").filter(sms_opted_out_at__isnull=True)
    else:
        contacts = contacts.exclude(email="").filter(email_opted_out_at__isnull=True)
    return contacts.order_by("-is_primary", "id").first()


def _morning_after(customer, day: dt.date) -> dt.datetime:
    """When the customer's contact hours open the day after `day` (the sender then looks
    again, and defers once more if that day has no contact)."""
    zone = zoneinfo.ZoneInfo(customer.timezone)
    start = contact_rules.rule_for(customer).from_hour
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(start), tzinfo=zone)


def _defer(notice: Notice, until: dt.datetime, reason: str) -> str:
    notice.status = Notice.Status.DEFERRED
    notice.not_before_at = until
    notice.reason = f"deferred: {reason}"
    notice.save(update_fields=["status", "not_before_at", "reason", "updated_at"])
    return "deferred"


def _back_to_approval(notice: Notice, invoices: list[Invoice]) -> str:
    """An edited text names invoices; when they changed (one paid, one now held) since the
    edit, a manager looks again instead of the customer reading a wrong list."""
    now_listed = ", ".join(invoice.number for invoice in invoices)
    return _finish(
        notice,
        Notice.Status.AWAITING_APPROVAL,
        "awaiting_approval",
        f"invoices changed since the text was edited (now {now_listed}): check and approve again",
    )


def _finish(notice: Notice, status: str, outcome: str, reason: str) -> str:
    notice.status = status
    notice.reason = reason
    notice.save(update_fields=["status", "reason", "updated_at"])
    return outcome
