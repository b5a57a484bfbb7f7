"""The console's notifications: what waits for the signed-in user, counted for the index.

A manager sees the approvals waiting for them (payment plans, write-offs and placements,
notices awaiting approval), each only with the right to decide it, and an agent (anyone
who works tasks) their overdue tasks and the tasks due today, each as a count with a
link to the list that shows them. Cheap by construction: one COUNT per kind, each served
by a partial index on the waiting rows only (plan_awaiting_approval,
recovery_awaiting_approval, notice_awaiting_approval, task_open_by_assignee), so the
index page costs the same at a million notices as at ten.
"""

import datetime as dt
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from cases.models import PaymentPlan, Recovery, Task
from dunning.models import Notice


@dataclass(frozen=True)
class Notification:
    key: str  # a stable name for the page and the tests: "plans", "overdue_tasks", ...
    count: int
    text: str
    url: str
    is_urgent: bool = False


def _url(name: str, **query) -> str:
    url = reverse(f"admin:{name}")
    return f"{url}?{urlencode(query)}" if query else url


def approvals(user) -> list[Notification]:
    """The decisions waiting for `user`, one notification per kind they may decide."""
    found = []
    if user.has_perm("cases.approve_paymentplan"):
        count = PaymentPlan.objects.filter(status=PaymentPlan.Status.PROPOSED).count()
        found.append(
            Notification(
                "plans",
                count,
                ngettext(
                    "%(n)d payment plan awaits approval",
                    "%(n)d payment plans await approval",
                    count,
                )
                % {"n": count},
                _url("cases_paymentplan_changelist", status__exact=PaymentPlan.Status.PROPOSED),
            )
        )
    if user.has_perm("cases.approve_recovery"):
        # Four eyes: nobody approves their own proposal, so it does not wait for them.
        count = (
            Recovery.objects.filter(status=Recovery.Status.PROPOSED)
            .exclude(proposed_by=user)
            .count()
        )
        found.append(
            Notification(
                "recoveries",
                count,
                ngettext(
                    "%(n)d write-off or placement awaits approval",
                    "%(n)d write-offs or placements await approval",
                    count,
                )
                % {"n": count},
                _url("cases_recovery_changelist", status__exact=Recovery.Status.PROPOSED),
            )
        )
    if user.has_perm("dunning.approve_notice"):
        count = Notice.objects.filter(status=Notice.Status.AWAITING_APPROVAL).count()
        found.append(
            Notification(
                "notices",
                count,
                ngettext(
                    "%(n)d notice awaits approval",
                    "%(n)d notices await approval",
                    count,
                )
                % {"n": count},
                _url("dunning_notice_changelist", status__exact=Notice.Status.AWAITING_APPROVAL),
            )
        )
    return found


def my_tasks(user, *, now: dt.datetime | None = None) -> list[Notification]:
    """The user's overdue tasks and their tasks due by the end of today (one query)."""
    if not user.has_perm("cases.view_task"):
        return []
    now = now or timezone.now()
    tomorrow = timezone.make_aware(
        dt.datetime.combine(timezone.localdate(now) + dt.timedelta(days=1), dt.time())
    )
    counts = (
        Task.objects.open()
        .filter(assignee=user, due_at__lt=tomorrow)
        .aggregate(due=Count("id"), overdue=Count("id", filter=Q(due_at__lt=now)))
    )
    overdue, due = counts["overdue"], counts["due"]
    return [
        Notification(
            "overdue_tasks",
            overdue,
            ngettext("%(n)d of your tasks is overdue", "%(n)d of your tasks are overdue", overdue)
            % {"n": overdue},
            _url("cases_task_changelist", agent="me", overdue="yes"),
            is_urgent=overdue > 0,
        ),
        Notification(
            "due_today",
            due,
            ngettext(
                "%(n)d task due today on your worklist",
                "%(n)d tasks due today on your worklist",
                due,
            )
            % {"n": due},
            _url("cases_task_worklist"),
        ),
    ]


def for_user(user, *, now: dt.datetime | None = None) -> list[Notification]:
    """Everything waiting for `user`: approvals first, then their own tasks."""
    if not user.is_authenticated or not user.is_active:
        return []
    return approvals(user) + my_tasks(user, now=now)
