"""Who may do what to which customer: the one rule set the console, the API and the
services all apply.

Rights are Django permissions held through the role groups (seeded by migration; see the
README's permission matrix). On top of a right, agents work only their own and
unassigned customers; anyone with `accounts.work_all_customers` works everyone's.
Services call `require(by, perm, customers)` first thing; `by=None` is the system itself
(a nightly run, a webhook), which the services trust.
"""

from collections.abc import Iterable

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

from .models import Customer


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
