"""Tasks for people (call, e-mail, review, approval): raised, completed, cancelled, reassigned.

Every change is written to the account timeline in the same transaction, naming who made
it (None: the system) and why. The dunning sender, promises, plans and recoveries raise
their tasks through `create_task` (or `create_tasks` for a nightly batch) with a `source`
naming the cause, so a retried job never raises the same task twice.
"""

import datetime as dt
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts import bulk, permissions, timeline
from accounts.models import Activity, Customer

from . import next_actions
from .models import Task


class TaskOutcome(models.TextChoices):
    """The outcomes the console offers for tasks other than calls (calls take
    Activity.CallOutcome). Callers may record any other short outcome ("approved")."""

    DONE = "done", gettext_lazy("Done")
    ESCALATED = "escalated", gettext_lazy("Escalated")
    NOT_NEEDED = "not_needed", gettext_lazy("No longer needed")


def due_at_end_of(day: dt.date) -> dt.datetime:
    """A task due on a day is due by the end of it, in the console's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.max))


def _due_at(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    if isinstance(value, dt.date):
        return due_at_end_of(value)
    raise ValidationError({"due_at": _("A task needs a due date.")})


def _username(user) -> str:
    return user.get_username() if user is not None else _("the unassigned queue")


def _check_may_work(by, task: Task) -> None:
    """Agents work their own tasks and unassigned tasks of customers they may work;
    managers (work_all_customers) work every task. `by` None is the system."""
    if by is None:
        return
    if not by.has_perm("cases.change_task"):
        raise PermissionDenied(_("You do not have permission to do this."))
    if task.assignee_id == by.pk or by.has_perm("accounts.work_all_customers"):
        return
    if task.assignee_id is None and permissions.can_work(by, task.customer):
        return
    raise PermissionDenied(
        _("This task is assigned to %(name)s.") % {"name": _username(task.assignee)}
    )


def _check_assignee(assignee) -> None:
    if assignee is not None and not assignee.is_active:
        raise ValidationError(
            {"assignee": _("%(name)s is not an active user.") % {"name": assignee}}
        )


def _created_entry(task: Task, *, by) -> Activity:
    """The (unsaved) timeline entry for a new task."""
    return timeline.entry(
        Activity.Kind.TASK,
        customer=task.customer_id,
        by=by,
        text=_("%(kind)s task for %(who)s, due %(due)s: %(title)s")
        % {
            "kind": task.get_kind_display(),
            "who": _username(task.assignee),
            "due": timezone.localtime(task.due_at).strftime("%Y-%m-%d %H:%M"),
            "title": task.title,
        },
        details={
            "task": task.pk,
            "event": "created",
            "kind": task.kind,
            "source": task.source,
            "assignee": task.assignee_id,
            "due_at": task.due_at.isoformat(),
        },
    )


def _validate_new(task: Task) -> None:
    if task.kind not in Task.Kind.values:
        raise ValidationError({"kind": _("Unknown task kind %(value)s.") % {"value": task.kind}})
    task.title = (task.title or "").strip()
    if not task.title:
        raise ValidationError({"title": _("A task needs a title.")})
    if len(task.title) > Task._meta.get_field("title").max_length:
        task.title = task.title[: Task._meta.get_field("title").max_length]
    task.source = (task.source or "").strip()
    task.due_at = _due_at(task.due_at)
    _check_assignee(task.assignee)


@transaction.atomic
def create_task(
    *,
    customer: Customer,
    kind: str,
    title: str,
    due_at,
    assignee=None,
    source: str = "",
    details: dict | None = None,
    by=None,
) -> Task:
    """Raise a task for a person; with a `source`, at most one open task per cause.

    1. Check that `by` (None: the system) may add tasks and work this customer.
    2. If `source` names a cause that already has an open task, return that task unchanged:
       a retried planner, webhook or nightly job raises nothing twice.
    3. Insert it, for `assignee` or else the customer's assigned agent (nobody: the
       unassigned queue, which managers see); an approval task with no assignee goes to
       the unassigned queue, since managers approve. `due_at` is an aware datetime, or a date
       meaning the end of that day. Two callers racing on one source: the partial unique
       index task_one_open_per_source lets one insert win; the other's IntegrityError
       (inside a savepoint) is answered with the winner's task.
    4. Write the timeline entry (kind task) naming who raised it, for whom and why.
    """
    permissions.require(by, "cases.add_task", [customer])
    source = (source or "").strip()
    if source:
        existing = Task.objects.open().filter(source=source).first()
        if existing is not None:
            return existing
    if assignee is None and kind != Task.Kind.APPROVAL and customer.assigned_agent_id is not None:
        agent = customer.assigned_agent
        assignee = agent if agent.is_active else None
    task = Task(
        customer=customer,
        kind=kind,
        title=title,
        due_at=due_at,
        assignee=assignee,
        source=source,
        details=details or {},
        created_by=by,
    )
    _validate_new(task)
    try:
        with transaction.atomic():
            task.save(force_insert=True)
    except IntegrityError:
        winner = Task.objects.open().filter(source=source).first() if source else None
        if winner is None:
            raise
        return winner
    _created_entry(task, by=by).save()
    next_actions.refresh_next_actions(customer_ids=[task.customer_id])
    return task


@transaction.atomic
def create_tasks(tasks: Iterable[Task], *, by=None) -> list[Task]:
    """`create_task` for many unsaved tasks at once (the nightly jobs); returns the new ones.

    1. Drop tasks whose source already has an open task (and repeats within the batch).
    2. Fill the default assignee as create_task does, and validate each.
    3. One INSERT for the tasks, one for their timeline entries. A concurrent run raising
       the same source makes the unique index refuse the batch; the retry finds it open.
    """
    tasks = list(tasks)
    if by is not None:
        permissions.require(
            by, "cases.add_task", {t.customer_id: t.customer for t in tasks}.values()
        )
    sources = {t.source for t in tasks if t.source}
    taken = (
        set(
            Task.objects.open()
            .filter(bulk.one_of("source", sources))
            .values_list("source", flat=True)
        )
        if sources
        else set()
    )
    agent_ids = {
        t.customer.assigned_agent_id
        for t in tasks
        if t.assignee_id is None
        and t.kind != Task.Kind.APPROVAL
        and t.customer.assigned_agent_id is not None
    }
    active_agents = {
        user.pk: user for user in get_user_model().objects.filter(pk__in=agent_ids, is_active=True)
    }
    fresh = []
    for task in tasks:
        if task.source and task.source in taken:
            continue
        if task.source:
            taken.add(task.source)
        if task.assignee_id is None and task.kind != Task.Kind.APPROVAL:
            task.assignee = active_agents.get(task.customer.assigned_agent_id)
        task.created_by = by
        task.details = task.details or {}
        _validate_new(task)
        fresh.append(task)
    Task.objects.bulk_create(fresh, batch_size=1000)
    timeline.add_all(_created_entry(task, by=by) for task in fresh)
    next_actions.refresh_next_actions(customer_ids={task.customer_id for task in fresh})
    return fresh


def _outcome_label(task: Task, outcome: str) -> str:
    choices = Activity.CallOutcome if task.kind == Task.Kind.CALL else TaskOutcome
    return str(dict(choices.choices).get(outcome, outcome))


@transaction.atomic
def complete_task(*, task: Task, outcome: str, note: str = "", by) -> Task:
    """Mark an open task done with its outcome, and log that outcome on the timeline.

    A call task takes a call outcome (Activity.CallOutcome) and is logged as a call (kind
    call, channel phone), like a call logged by hand; any other task is logged as kind
    task with its outcome (empty: "done").
    """
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("customer", "assignee")
        .get(pk=task.pk)
    )
    _check_may_work(by, task)
    if task.status != Task.Status.OPEN:
        raise ValidationError(
            _("This task is already %(status)s.") % {"status": task.get_status_display().lower()}
        )
    outcome, note = (outcome or "").strip(), (note or "").strip()
    if task.kind == Task.Kind.CALL:
        if outcome not in Activity.CallOutcome.values:
            raise ValidationError(
                {"outcome": _("Unknown call outcome %(value)s.") % {"value": outcome or "—"}}
            )
    else:
        outcome = outcome or TaskOutcome.DONE
        if len(outcome) > Task._meta.get_field("outcome").max_length:
            raise ValidationError({"outcome": _("Say the outcome in a few words.")})
    task.status = Task.Status.DONE
    task.outcome = outcome
    task.outcome_note = note
    task.completed_at = timezone.now()
    task.completed_by = by
    task.save(update_fields=["status", "outcome", "outcome_note", "completed_at", "completed_by"])
    text = _("Task done: %(title)s — %(outcome)s") % {
        "title": task.title,
        "outcome": _outcome_label(task, outcome),
    }
    timeline.add(
        customer=task.customer,
        kind=Activity.Kind.CALL if task.kind == Task.Kind.CALL else Activity.Kind.TASK,
        channel=Activity.Channel.PHONE if task.kind == Task.Kind.CALL else "",
        outcome=outcome,
        text=text + (f"\n{note}" if note else ""),
        by=by,
        details={"task": task.pk, "event": "done", "source": task.source, "outcome": outcome},
    )
    next_actions.refresh_next_actions(customer_ids=[task.customer_id])
    return task


@transaction.atomic
def complete_for_source(source: str, *, outcome: str, by) -> None:
    """Mark the open task raised for this cause done, if there is one (the decision it
    asked for was taken elsewhere: a plan or write-off approved or rejected)."""
    task = Task.objects.open().filter(source=source).first()
    if task is not None:
        complete_task(task=task, outcome=outcome, note="", by=by)


@transaction.atomic
def close_fulfilled(
    *, customer: Customer, kinds: Iterable[str], by, outcome: str, cause: str, details: dict
) -> list[Task]:
    """Mark done the customer's open tasks of these kinds due by the end of today: an
    action on the customer page (a call logged, a promise recorded) did what they asked.

    1. Lock the customer's open tasks of `kinds` due by the end of today (the console's
       day), whoever they are assigned to: the work was done on the account, by `by`,
       whom the calling service has already checked may work this customer. A task due
       on a later day (call back on Friday) stays open.
    2. Mark each done with `outcome` and the note "Done by <cause>".
    3. One timeline entry (kind task) per task, naming the cause and its `details` (the
       call's or the promise's id): the call itself is already on the timeline, so the
       task is not logged as a second call.
    Returns the tasks closed (none: nothing was waiting).
    """
    end_of_today = due_at_end_of(timezone.localdate())
    tasks = list(
        Task.objects.select_for_update(of=("self",))
        .filter(
            customer=customer,
            status=Task.Status.OPEN,
            kind__in=list(kinds),
            due_at__lte=end_of_today,
        )
        .order_by("due_at", "id")
    )
    if not tasks:
        return []
    now = timezone.now()
    note = _("Done by %(cause)s") % {"cause": cause}
    for task in tasks:
        task.status = Task.Status.DONE
        task.outcome = outcome[: Task._meta.get_field("outcome").max_length]
        task.outcome_note = note
        task.completed_at = now
        task.completed_by = by
    Task.objects.bulk_update(
        tasks, ["status", "outcome", "outcome_note", "completed_at", "completed_by"]
    )
    timeline.add_all(
        timeline.entry(
            Activity.Kind.TASK,
            customer=customer,
            by=by,
            outcome=task.outcome,
            text=_("Task done: %(title)s — by %(cause)s") % {"title": task.title, "cause": cause},
            details={
                "task": task.pk,
                "event": "done",
                "source": task.source,
                "outcome": task.outcome,
                "fulfilled_by": details,
            },
        )
        for task in tasks
    )
    return tasks


def cancel_task(*, task: Task, by, reason: str) -> Task:
    """Close an open task without doing it (it no longer applies), saying why."""
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("customer", "assignee")
        .get(pk=task.pk)
    )
    _check_may_work(by, task)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the task is cancelled.")})
    if task.status != Task.Status.OPEN:
        raise ValidationError(
            _("This task is already %(status)s.") % {"status": task.get_status_display().lower()}
        )
    task.status = Task.Status.CANCELLED
    task.outcome_note = reason
    task.completed_at = timezone.now()
    task.completed_by = by
    task.save(update_fields=["status", "outcome_note", "completed_at", "completed_by"])
    timeline.add(
        customer=task.customer,
        kind=Activity.Kind.TASK,
        text=_("Task cancelled: %(title)s — %(reason)s") % {"title": task.title, "reason": reason},
        by=by,
        details={"task": task.pk, "event": "cancelled", "source": task.source, "reason": reason},
    )
    next_actions.refresh_next_actions(customer_ids=[task.customer_id])
    return task


@transaction.atomic
def reassign_task(*, task: Task, assignee, by, reason: str = "") -> Task:
    """Give an open task to another person, or to the unassigned queue (assignee None).

    Agents may pass on their own tasks and take unassigned ones of customers they work;
    managers move any task.
    """
    task = (
        Task.objects.select_for_update(of=("self",))
        .select_related("customer", "assignee")
        .get(pk=task.pk)
    )
    _check_may_work(by, task)
    if task.status != Task.Status.OPEN:
        raise ValidationError(
            _("This task is already %(status)s.") % {"status": task.get_status_display().lower()}
        )
    _check_assignee(assignee)
    new_id = assignee.pk if assignee is not None else None
    if new_id == task.assignee_id:
        return task
    previous = task.assignee
    task.assignee = assignee
    task.save(update_fields=["assignee"])
    reason = (reason or "").strip()
    timeline.add(
        customer=task.customer,
        kind=Activity.Kind.TASK,
        text=_("Task reassigned to %(new)s (was %(old)s): %(title)s")
        % {"new": _username(assignee), "old": _username(previous), "title": task.title}
        + (f" — {reason}" if reason else ""),
        by=by,
        details={
            "task": task.pk,
            "event": "reassigned",
            "from": previous.pk if previous is not None else None,
            "to": new_id,
            "reason": reason,
        },
    )
    return task
