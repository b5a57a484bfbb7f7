"""Merging a duplicate customer into the customer it duplicates, in one transaction.

An import once created "Transports Summit SA" a second time; invoices, payments, a
promise and notices then went to the copy. `merge_customers` gives everything of the
duplicate to the surviving customer:

- every row that points at the duplicate moves to the survivor: invoices, payments
  (their allocations and bank lines follow them, unchanged), contacts, tasks, promises,
  disputes, plans, agency placements, notices; found through the ledger's own relations
  (`Customer._meta.related_objects`), so a model a later app adds with a foreign key to
  the customer moves too, without this module importing it;
- the timeline moves through its sanctioned path (`timeline.move_entries`: the entries
  are kept as written, only their customer changes); the access log stays where it is,
  a record of what was shown under which customer; one-to-one rows (a summary of the
  customer itself) stay with the duplicate;
- the survivor keeps its own values; a blank one (country, industry, postal address,
  agent) takes the duplicate's, and every hold either had stays set (a do-not-contact
  of the duplicate is not lost by merging it);
- the duplicate stays as an empty row, marked merged, pointing at the survivor
  (`merged_into`), so an import that still names it reaches the survivor
  (`survivors`), and customers merged into it earlier now point at the survivor;
- both timelines say who merged, when, why and what moved.

Who may merge: managers and finance (`accounts.merge_customers`), on customers they may
work (`permissions.require`), whoever calls (console, API, a command).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from . import summaries, timeline
from .models import AccessLog, Activity, Allocation, AppendOnlyModel, Contact, Customer
from .permissions import MERGE_PERMISSION, require

# Blank on the survivor: filled from the duplicate.
FILLED_FIELDS = ("country", "industry", "postal_address", "assigned_agent")
# Set on either: set on the survivor.
HOLD_FIELDS = (
    "do_not_contact",
    "cease_communication",
    "is_in_dispute",
    "is_in_payment_plan",
    "is_bankrupt",
)


@dataclass
class Move:
    """One kind of row that moves (or stays), for the confirmation page and the timeline."""

    key: str  # app_label.model
    label: str
    count: int
    stays: bool = False
    note: str = ""


@dataclass
class MergePlan:
    """What a merge would do, read without writing: the confirmation page shows it."""

    survivor: Customer
    duplicate: Customer
    moves: list[Move] = field(default_factory=list)
    filled: dict[str, tuple] = field(default_factory=dict)  # field -> (label, value)
    problems: list[str] = field(default_factory=list)

    @property
    def is_possible(self) -> bool:
        return not self.problems


def _relations() -> list[models.ManyToOneRel]:
    """The foreign keys that point at a customer, from any app (hidden ones too: the
    access log's has no reverse name). One-to-one rows describe the customer itself and
    are not among them."""
    return [
        rel
        for rel in Customer._meta.get_fields(include_hidden=True)
        if rel.auto_created
        and not rel.concrete
        and rel.one_to_many
        and rel.related_model is not Customer
    ]


def _label(model) -> str:
    return str(capfirst(model._meta.verbose_name_plural))


def problems(survivor: Customer, duplicate: Customer) -> list[str]:
    """Why these two cannot be merged, in words; empty when they can."""
    found = []
    if survivor.pk == duplicate.pk:
        found.append(_("A customer cannot be merged into itself."))
    for customer in (survivor, duplicate):
        if customer.merged_into_id is not None:
            found.append(
                _("%(name)s was already merged into customer #%(id)s.")
                % {"name": customer.name, "id": customer.merged_into_id}
            )
        if customer.erased_at is not None:
            found.append(
                _("%(name)s had its personal data erased; it cannot be merged.")
                % {"name": customer.name}
            )
    return found


def plan_merge(*, survivor: Customer, duplicate: Customer) -> MergePlan:
    """What `merge_customers` would move and fill in, counted in a few queries."""
    plan = MergePlan(survivor, duplicate, problems=problems(survivor, duplicate))
    for rel in _relations():
        model = rel.related_model
        count = model._base_manager.filter(**{rel.field.name: duplicate}).count()
        if model is AccessLog:
            plan.moves.append(
                Move(
                    model._meta.label_lower,
                    _label(model),
                    count,
                    stays=True,
                    note=_("stays with the merged customer: what was shown under it"),
                )
            )
            continue
        if count:
            plan.moves.append(Move(model._meta.label_lower, _label(model), count))
    allocations = Allocation.objects.filter(
        Q(invoice__customer=duplicate) | Q(payment__customer=duplicate)
    ).aggregate(n=Count("pk", distinct=True))["n"]
    if allocations:
        plan.moves.append(
            Move(
                Allocation._meta.label_lower,
                _label(Allocation),
                allocations,
                note=_("follow their invoices and payments, unchanged"),
            )
        )
    plan.filled = _filled(survivor, duplicate)
    return plan


def _filled(survivor: Customer, duplicate: Customer) -> dict[str, tuple]:
    filled = {}
    for name in FILLED_FIELDS:
        field_ = Customer._meta.get_field(name)
        if getattr(survivor, field_.attname) in (None, "") and getattr(
            duplicate, field_.attname
        ) not in (None, ""):
            filled[name] = (str(capfirst(field_.verbose_name)), getattr(duplicate, name))
    for name in HOLD_FIELDS:
        if getattr(duplicate, name) and not getattr(survivor, name):
            label = str(capfirst(Customer._meta.get_field(name).verbose_name))
            filled[name] = (label, True)
    if duplicate.dunning_paused_until and (
        survivor.dunning_paused_until is None
        or survivor.dunning_paused_until < duplicate.dunning_paused_until
    ):
        label = str(capfirst(Customer._meta.get_field("dunning_paused_until").verbose_name))
        filled["dunning_paused_until"] = (label, duplicate.dunning_paused_until)
    return filled


def _plain(value):
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@transaction.atomic
def merge_customers(*, survivor: Customer, duplicate: Customer, by, reason: str) -> dict:
    """Merge `duplicate` into `survivor` (see the module's docstring); returns how many
    rows of each kind moved ({"accounts.invoice": 3, ...}).

    1. Lock both customers (in id order, so two merges of the same pair cannot deadlock)
       and re-check them as stored: not the same, neither merged nor erased already.
    2. Check the right (`accounts.merge_customers`) on both customers.
    3. Contacts: the duplicate's primary contact stops being primary when the survivor
       has one (one primary per customer, a database constraint).
    4. Move every row pointing at the duplicate, the timeline through its sanctioned path.
    5. Fill the survivor's blanks and holds; mark the duplicate merged; repoint customers
       merged into the duplicate earlier.
    6. Write both timeline entries.

    Raises ValidationError naming the field (`reason`, `survivor`, `duplicate`) or
    PermissionDenied; nothing is written then.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why these customers are merged.")})
    locked = {
        c.pk: c
        for c in Customer.objects.select_for_update()
        .filter(pk__in=[survivor.pk, duplicate.pk])
        .order_by("pk")
    }
    if survivor.pk not in locked or duplicate.pk not in locked:
        raise ValidationError({"duplicate": _("This customer no longer exists.")})
    survivor, duplicate = locked[survivor.pk], locked[duplicate.pk]
    found = problems(survivor, duplicate)
    if found:
        raise ValidationError({"duplicate": found})
    require(by, MERGE_PERMISSION, [survivor, duplicate])

    if Contact.objects.filter(customer=survivor, is_primary=True).exists():
        Contact.objects.filter(customer=duplicate, is_primary=True).update(is_primary=False)
    moved: dict[str, int] = {}
    for rel in _relations():
        model = rel.related_model
        key = model._meta.label_lower
        if model is Activity:
            moved[key] = timeline.move_entries(
                from_customer_id=duplicate.pk, to_customer_id=survivor.pk
            )
        elif issubclass(model, AppendOnlyModel):
            continue  # the access log: what was shown under the duplicate stays so
        else:
            moved[key] = model._base_manager.filter(**{rel.field.name: duplicate}).update(
                **{rel.field.name: survivor}
            )
    moved = {key: n for key, n in moved.items() if n}
    # The customer list's past-due figures follow the invoices (the next action follows
    # the tasks at the nightly refresh).
    summaries.refresh_past_due(customer_ids=[survivor.pk, duplicate.pk])

    filled = _filled(survivor, duplicate)
    now = timezone.now()
    if filled:
        for name in filled:
            setattr(survivor, name, getattr(duplicate, name))
        if "dunning_paused_until" in filled:
            survivor.dunning_pause_reason = duplicate.dunning_pause_reason
            filled["dunning_pause_reason"] = (
                str(capfirst(Customer._meta.get_field("dunning_pause_reason").verbose_name)),
                duplicate.dunning_pause_reason,
            )
        survivor.updated_at = now
        survivor.save(update_fields=[*filled, "updated_at"])
    Customer.objects.filter(merged_into=duplicate).update(merged_into=survivor, updated_at=now)
    Customer.objects.filter(pk=duplicate.pk).update(
        status=Customer.Status.MERGED, merged_into=survivor, merged_at=now, updated_at=now
    )
    duplicate.status, duplicate.merged_into, duplicate.merged_at = (
        Customer.Status.MERGED,
        survivor,
        now,
    )
    timeline.merged(
        survivor,
        duplicate=duplicate,
        by=by,
        reason=reason,
        moved=moved,
        filled={name: _plain(value) for name, (_label_, value) in filled.items()},
    )
    timeline.merged_away(duplicate, survivor=survivor, by=by, reason=reason)
    return moved


def survivors(customer_ids: Iterable[int]) -> dict[int, int]:
    """For each of these ids that names a merged customer, the id of its survivor (one
    query; a merge repoints earlier merges, so one step always reaches the survivor)."""
    ids = list(customer_ids)
    if not ids:
        return {}
    return dict(
        Customer.objects.filter(pk__in=ids, merged_into__isnull=False).values_list(
            "pk", "merged_into_id"
        )
    )
