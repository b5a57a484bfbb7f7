"""Human overrides of the automation, each recorded on the timeline with who, when and why."""

import datetime as dt
import zoneinfo

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import Activity, Customer

from . import rendering, sender, tasks
from .models import Channel, Notice, Policy

DECIDABLE = (Notice.Status.AWAITING_APPROVAL,)
OPEN = (
    Notice.Status.PLANNED,
    Notice.Status.APPROVED,
    Notice.Status.DEFERRED,
    Notice.Status.AWAITING_APPROVAL,
)


def _override(
    notices,
    *,
    by,
    perm: str,
    allowed: tuple,
    status: str,
    verb: str,
    reason: str,
    not_before_at=None,
) -> int:
    if not by.has_perm(perm):
        raise PermissionDenied(_("You do not have permission to do this."))
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why.")})
    done = 0
    with transaction.atomic():
        for notice in (
            Notice.objects.select_for_update()
            .filter(pk__in=[n.pk for n in notices], status__in=allowed)
            .select_related("customer", "step")
        ):
            notice.status = status
            notice.decided_by = by
            notice.reason = f"{verb}: {reason}"
            notice.not_before_at = not_before_at
            notice.save(
                update_fields=["status", "decided_by", "reason", "not_before_at", "updated_at"]
            )
            timeline.add(
                customer=notice.customer,
                kind=Activity.Kind.OVERRIDE,
                by=by,
                text=_("%(verb)s notice “%(step)s”: %(reason)s")
                % {"verb": verb, "step": notice.step.name, "reason": reason},
                details={"notice": notice.pk, "status": status, "reason": reason},
            )
            done += 1
    return done


def approve(notices, *, by, reason: str) -> int:
    return _override(
        notices,
        by=by,
        perm="dunning.approve_notice",
        allowed=DECIDABLE,
        status=Notice.Status.APPROVED,
        verb=_("Approved"),
        reason=reason,
    )


def reject(notices, *, by, reason: str) -> int:
    return _override(
        notices,
        by=by,
        perm="dunning.approve_notice",
        allowed=DECIDABLE,
        status=Notice.Status.REJECTED,
        verb=_("Rejected"),
        reason=reason,
    )


def skip(notices, *, by, reason: str) -> int:
    return _override(
        notices,
        by=by,
        perm="dunning.send_notice_now",
        allowed=OPEN,
        status=Notice.Status.SKIPPED,
        verb=_("Skipped"),
        reason=reason,
    )


def send_now(notices, *, by, reason: str) -> int:
    """Release notices to the sender and send them at once through the worker.

    Each released notice is queued (`tasks.send_notice`) when the release commits, so it
    goes out within seconds, not at the next 15-minute tick; the sender's checks still
    apply (contact hours defer it, a paid invoice cancels it). A notice the queue loses
    is still sendable and goes out with the next tick.
    """
    with transaction.atomic():
        done = _override(
            notices,
            by=by,
            perm="dunning.send_notice_now",
            allowed=OPEN,
            status=Notice.Status.APPROVED,
            verb=_("Released to send now"),
            reason=reason,
            not_before_at=timezone.now(),
        )
        released = list(
            Notice.objects.filter(
                pk__in=[n.pk for n in notices], status=Notice.Status.APPROVED, decided_by=by
            ).values_list("pk", flat=True)
        )
        for notice_id in released:
            transaction.on_commit(
                lambda notice_id=notice_id: tasks.send_notice.delay(notice_id), robust=True
            )
    return done


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": _("Say why.")})
    return reason


@transaction.atomic
def switch_policy(*, customers, policy: Policy | None, by, reason: str) -> int:
    """Put customers on another policy (None: back to their segment's default)."""
    if not by.has_perm("dunning.switch_policy"):
        raise PermissionDenied(_("You do not have permission to do this."))
    reason = _reason(reason)
    if policy is not None and policy.purpose != Policy.Purpose.DUNNING:
        raise ValidationError(
            {
                "policy": _("%(name)s reminds of installments; it is no policy for a customer.")
                % {"name": policy.name}
            }
        )
    customers = [c for c in customers if c.dunning_policy_id != (policy.pk if policy else None)]
    before = {c.pk: str(c.dunning_policy) if c.dunning_policy_id else "" for c in customers}
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        dunning_policy=policy, updated_at=timezone.now()
    )
    to = policy.name if policy else _("the segment's default policy")
    timeline.each(
        customers,
        kind=Activity.Kind.OVERRIDE,
        by=by,
        text=lambda c: (
            _("Dunning policy switched from %(old)s to %(new)s: %(reason)s")
            % {"old": before[c.pk] or _("the segment's default"), "new": to, "reason": reason}
        ),
        details=lambda c: {
            "override": "policy",
            "from": before[c.pk],
            "to": policy.pk if policy else None,
            "reason": reason,
        },
    )
    return len(customers)


@transaction.atomic
def set_automation(*, customers, is_excluded: bool, by, reason: str) -> int:
    """Take customers out of automatic dunning (agents work them by hand), or back in."""
    if not by.has_perm("dunning.switch_policy"):
        raise PermissionDenied(_("You do not have permission to do this."))
    reason = _reason(reason)
    customers = [c for c in customers if c.is_excluded_from_automation != is_excluded]
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        is_excluded_from_automation=is_excluded, updated_at=timezone.now()
    )
    text = _("Excluded from automatic dunning") if is_excluded else _("Back in automatic dunning")
    timeline.each(
        customers,
        kind=Activity.Kind.OVERRIDE,
        by=by,
        text=f"{text}: {reason}",
        details={"override": "automation", "excluded": is_excluded, "reason": reason},
    )
    return len(customers)


# Channels whose notices carry text a manager may rewrite; tasks have their own notes.
EDITABLE_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER, Channel.LEGAL)
MAX_SMS_SEGMENTS = 10  # Twilio's recommended ceiling for one message


def _still_listed(notice: Notice, now=None) -> tuple[dt.date, list, list]:
    """The customer's local day, the notice's invoices still to chase then, and those held."""
    now = now or timezone.now()
    on = timezone.localtime(now, zoneinfo.ZoneInfo(notice.customer.timezone)).date()
    invoices, held, _holds = sender.listed_invoices(notice, on)
    return on, invoices, held


def draft(notice: Notice, *, now=None) -> dict:
    """What the notice would say if it went out now, to start an edit from.

    The manager's edited text if there is one, else the step's template rendered for the
    invoices still to chase, with the disclosure and opt-out line already in place.
    """
    on, invoices, held = _still_listed(notice, now)
    contact = sender.contact_for(notice)
    error = ""
    try:
        _context, content = sender.render_content(notice, invoices=invoices, contact=contact, on=on)
    except rendering.RenderError as exc:
        content, error = {"subject": "", "body_text": ""}, str(exc)
    return {
        "subject": content["subject"],
        "body_text": content["body_text"].strip(),
        "invoices": invoices,
        "held": held,
        "contact": contact,
        "error": error,
    }


def edit_notice(
    notice: Notice, *, by, subject: str, body_text: str, reason: str, approve: bool = False
) -> Notice:
    """Replace a notice's wording with a manager's own, optionally approving it in one go.

    The text is kept literally (never rendered as a template) and written for the invoices
    listed now: if they change before sending, the notice comes back for approval. The
    required disclosure and the opt-out line are added again at sending if the edit lost
    them. Who, why and the new text go on the customer's timeline.
    """
    if not by.has_perm("dunning.approve_notice"):
        raise PermissionDenied(_("You do not have permission to do this."))
    reason = _reason(reason)
    subject, body_text = subject.strip(), body_text.strip()
    with transaction.atomic():
        notice = (
            Notice.objects.select_for_update(of=("self",))
            .select_related("customer", "step", "step__template")
            .get(pk=notice.pk)
        )
        if notice.status not in OPEN or notice.channel not in EDITABLE_CHANNELS:
            raise ValidationError(
                _("Only a notice not yet sent, on e-mail, SMS or letter, can be edited.")
            )
        errors = {}
        if not body_text:
            errors["body_text"] = _("Write the text.")
        if notice.channel != Channel.SMS and not subject:
            errors["subject"] = _("Write the subject.")
        if len(subject) > Notice._meta.get_field("subject").max_length:
            errors["subject"] = _("At most 200 characters.")
        if notice.channel == Channel.SMS:
            segments = rendering.sent_sms_segments(body_text, notice.customer.language)
            if segments > MAX_SMS_SEGMENTS:
                errors["body_text"] = _(
                    "%(n)d SMS segments with the opt-out line; at most %(max)d."
                ) % {"n": segments, "max": MAX_SMS_SEGMENTS}
        _on, invoices, _held = _still_listed(notice)
        if not invoices:
            errors["body_text"] = _("No invoice on this notice is left to chase.")
        if errors:
            raise ValidationError(errors)
        approved = approve and notice.status == Notice.Status.AWAITING_APPROVAL
        verb = _("Edited and approved") if approved else _("Edited")
        notice.subject = subject
        notice.body_text = body_text
        notice.body_html = ""
        notice.edited_at = timezone.now()
        notice.edited_by = by
        notice.edited_invoices = sorted(invoice.pk for invoice in invoices)
        notice.reason = f"{verb}: {reason}"[:300]
        if approved:
            notice.status = Notice.Status.APPROVED
            notice.decided_by = by
            notice.not_before_at = None
        notice.save()
        timeline.add(
            customer=notice.customer,
            kind=Activity.Kind.OVERRIDE,
            by=by,
            text=_("%(verb)s the text of notice “%(step)s”: %(reason)s")
            % {"verb": verb, "step": notice.step.name, "reason": reason},
            details={
                "notice": notice.pk,
                "override": "edit",
                "status": notice.status,
                "reason": reason,
                "subject": subject,
                "text": body_text,
                "invoices": [invoice.number for invoice in invoices],
            },
        )
    return notice
