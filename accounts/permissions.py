"""Who may do what to which customer: the one rule set the console, the API and the
services all apply.

Rights are Django permissions held through the role groups (seeded by migration; see the
README's permission matrix). On top of a right, agents work only their own and
unassigned customers; anyone with `accounts.work_all_customers` works everyone's.
Services call `require(by, perm, customers)` first thing; `by=None` is the system itself
(a nightly run, a webhook), which the services trust.

Some fields of a customer need more than the right to edit it (`CUSTOMER_FIELD_RIGHTS`),
and some change only through their own service (`CUSTOMER_FIELDS_BY_SERVICE`; the merge
of a duplicate, `accounts.merging`, sets `merged_into`). The console makes them read-only
(`locked_customer_fields`), the API refuses them, and `services.save_customer` checks
them (`require_customer_edit`) whoever calls it.
"""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from .models import SUMMARY_FIELDS, Customer

TERMS_PERMISSION = "accounts.change_customer_terms"

# Fields of a customer whose change needs a right beyond `change_customer`: the terms
# managers and finance decide (the README: "change segment, credit limit, status"), and
# the intake key (source and external reference) that imports match customers on.
CUSTOMER_FIELD_RIGHTS: dict[str, str] = {
    "segment": TERMS_PERMISSION,
    "credit_limit": TERMS_PERMISSION,
    "status": TERMS_PERMISSION,
    "source": TERMS_PERMISSION,
    "external_ref": TERMS_PERMISSION,
}
# Fields no edit changes: each has its own service, which checks its own right and limits
# and writes the timeline (assign, pause, switch policy, exclude from automation, scoring).
CUSTOMER_FIELDS_BY_SERVICE: tuple[str, ...] = (
    "assigned_agent",
    "dunning_paused_until",
    "dunning_pause_reason",
    "dunning_policy",
    "is_excluded_from_automation",
    "risk_score",
    "risk_band",
    "risk_factors",
    "risk_scored_at",
    "merged_into",
    "merged_at",
    *SUMMARY_FIELDS,
)
# Merging a duplicate customer into another (accounts/merging.py): managers and finance.
MERGE_PERMISSION = "accounts.merge_customers"


def can_work(user, customer: Customer) -> bool:
    """Agents work their own and unassigned customers; managers work everyone's."""
    if user.has_perm("accounts.work_all_customers"):
        return True
    return customer.assigned_agent_id in (None, user.pk)


def require(user, perm: str, customers: Iterable[Customer] = ()) -> None:
    """Refuse (PermissionDenied) a user without `perm`, or one who may not work one of
    these customers. `user=None` is the system and is never refused."""
    if user is None:
        return  # the system itself
    if not user.has_perm(perm):
        raise PermissionDenied(_("You do not have permission to do this."))
    refused = [c.name for c in customers if not can_work(user, c)]
    if refused:
        raise PermissionDenied(
            _("These customers are assigned to another agent: %(names)s")
            % {"names": ", ".join(refused[:5])}
        )


def locked_customer_fields(user) -> list[str]:
    """The customer fields `user` may not change by editing a customer they may edit."""
    locked = list(CUSTOMER_FIELDS_BY_SERVICE)
    locked += [name for name, perm in CUSTOMER_FIELD_RIGHTS.items() if not user.has_perm(perm)]
    return locked


def require_customer_edit(user, *, before: Customer | None, fields: Iterable[str]) -> None:
    """Refuse (PermissionDenied) an edit of these fields of a customer as stored
    (`before`; None for a new customer) that `user` may not make. `user=None` is the
    system. The message names the fields refused."""
    if user is None:
        return
    if before is None:
        require(user, "accounts.add_customer")
    else:
        require(user, "accounts.change_customer", [before])
    refused = sorted(set(fields) & set(locked_customer_fields(user)))
    if refused:
        names = ", ".join(
            str(capfirst(Customer._meta.get_field(name).verbose_name)) for name in refused
        )
        raise PermissionDenied(
            _("You may not change these fields of a customer: %(fields)s.") % {"fields": names}
        )
