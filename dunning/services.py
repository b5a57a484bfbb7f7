"""Human overrides of the automation, each recorded on the timeline with who, when and why."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as ledger
from accounts.models import Activity, Customer

from .models import Notice, Policy

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
            ledger.log(
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
    """Release notices to the sender at once (still subject to the send-time checks)."""
    return _override(
        notices,
        by=by,
        perm="dunning.send_notice_now",
        allowed=OPEN,
        status=Notice.Status.APPROVED,
        verb=_("Released to send now"),
        reason=reason,
        not_before_at=timezone.now(),
    )


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
    customers = [c for c in customers if c.dunning_policy_id != (policy.pk if policy else None)]
    before = {c.pk: str(c.dunning_policy) if c.dunning_policy_id else "" for c in customers}
    Customer.objects.filter(pk__in=[c.pk for c in customers]).update(
        dunning_policy=policy, updated_at=timezone.now()
    )
    to = policy.name if policy else _("the segment's default policy")
    ledger.log_each(
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
    ledger.log_each(
        customers,
        kind=Activity.Kind.OVERRIDE,
        by=by,
        text=f"{text}: {reason}",
        details={"override": "automation", "excluded": is_excluded, "reason": reason},
    )
    return len(customers)
