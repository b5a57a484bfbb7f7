"""Human overrides of the automation, each recorded on the timeline with who, when and why."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import services as ledger
from accounts.models import Activity

from .models import Notice

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
