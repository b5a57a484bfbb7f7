"""The account timeline: the one module in the product that writes Activity rows.

Every touch on an account (a payment, a call, a notice, a promise, a hold) is an entry.
Entries are append-only: the model refuses updates and deletes, and so does a trigger on
PostgreSQL. Two narrow exceptions, each saying so in an entry of its own:
`erase_personal_data`, the erasure of a customer's personal data (privacy/erasure.py),
rewrites the text and details of that customer's entries, nothing else (`erased`); and
`move_entries`, the merge of a duplicate customer (accounts/merging.py), moves the
duplicate's entries to the surviving customer, changing nothing else. Three ways in, for
three kinds of caller, all writing the same rows:

- `add(kind, ...)`: one entry, now (or `at`), for a service handling one thing;
- `entry(kind, ...)` then `add_all(entries)`: several entries in one INSERT;
- `copy_rows(rows)`: plain tuples of `COLUMNS` streamed through COPY, for the set-based
  writers that hold ids, not instances (reconciliation, the nightly runs, scoring).

The ledger's own events are worded here, once, whichever path writes them:
`payment_received` / `payments_received`, `allocation_applied` / `allocations_applied`,
`refund`, `field_changes`, `each` (one wording across many customers). The case work, the
dunning and the integrations word their own entries and write them through the functions
above; `tests/project/test_layout.py` checks that no other module constructs an Activity.
"""

import datetime as dt
from collections.abc import Callable, Iterable
from decimal import Decimal

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from . import bulk
from .models import Activity, Customer, Invoice, Payment

Kind = Activity.Kind
Channel = Activity.Channel

# The columns of `copy_rows`; channel and outcome take their default ("").
COLUMNS = ("customer_id", "invoice_id", "kind", "actor_id", "text", "details", "occurred_at")

# Translated when written (gettext at call time), marked here for makemessages.
ALLOCATION_TEXT = gettext_noop(
    "%(currency)s %(amount)s of %(kind)s applied to %(n)s; %(left)s open"
)
PAYMENT_TEXT = gettext_noop("%(kind)s of %(currency)s %(amount)s received")


def _related(name: str, value) -> dict:
    """`customer=instance` keeps the instance on the entry; an id (or None) goes to `_id`."""
    if isinstance(value, models.Model):
        return {name: value}
    return {f"{name}_id": value}


def entry(
    kind: str,
    *,
    customer: Customer | int,
    text: str = "",
    by=None,
    invoice: Invoice | int | None = None,
    channel: str = "",
    outcome: str = "",
    details: dict | None = None,
    at: dt.datetime | None = None,
) -> Activity:
    """One unsaved entry. `customer`, `invoice` and `by` are instances or ids."""
    return Activity(
        **_related("customer", customer),
        **_related("invoice", invoice),
        **_related("actor", by),
        kind=kind,
        channel=channel,
        outcome=outcome,
        text=text,
        details=details or {},
        occurred_at=at or timezone.now(),
    )


def add(kind: str, **fields) -> Activity:
    """Append one entry (the arguments of `entry`) and return it."""
    new = entry(kind, **fields)
    new.save()
    return new


def add_all(entries: Iterable[Activity]) -> list[Activity]:
    """Append entries made by `entry`, in one INSERT per thousand."""
    return Activity.objects.bulk_create(entries, batch_size=1000)


def copy_rows(rows: Iterable[tuple]) -> None:
    """Append plain rows of `COLUMNS` (ids, JSON as dicts, aware datetimes), streamed
    through COPY on PostgreSQL in constant memory; bulk_create elsewhere."""
    bulk.insert_rows(Activity, COLUMNS, rows, returning=False)


def each(
    customers: Iterable[Customer],
    *,
    kind: str,
    by,
    text: str | Callable[[Customer], str],
    details: dict | Callable[[Customer], dict],
) -> None:
    """The same kind of entry on many customers' timelines, in one INSERT, at one moment."""
    now = timezone.now()
    add_all(
        entry(
            kind,
            customer=customer,
            by=by,
            at=now,
            text=text(customer) if callable(text) else text,
            details=details(customer) if callable(details) else details,
        )
        for customer in customers
    )


def field_changes(
    *, before, after, kinds: dict[str, str], by, customer: Customer, invoice=None
) -> None:
    """One entry per tracked field whose value differs between two versions of a row."""
    prefix = f"{invoice.number} " if invoice is not None else ""
    for field, kind in kinds.items():
        old, new = getattr(before, field), getattr(after, field)
        if old == new:
            continue
        label = after._meta.get_field(field).verbose_name
        add(
            kind,
            customer=customer,
            invoice=invoice,
            by=by,
            text=prefix
            + _("%(field)s: %(old)s → %(new)s")
            % {"field": label, "old": "—" if old in (None, "") else old, "new": new},
            details={"field": field, "from": _plain(old), "to": _plain(new)},
        )


def _plain(value):
    if hasattr(value, "pk"):
        return value.pk
    if isinstance(value, dt.date | Decimal):
        return str(value)
    return value


def payment_received(payment: Payment, *, by=None) -> Activity:
    """Append the entry for money received (or a credit note) from a known customer."""
    return add(
        Kind.PAYMENT,
        customer=payment.customer_id,
        by=by,
        text=_(PAYMENT_TEXT)
        % {
            "kind": payment.get_kind_display(),
            "currency": payment.currency,
            "amount": payment.amount,
        },
        details=_payment_details(payment),
    )


def payments_received(payments: Iterable[Payment], *, by=None) -> None:
    """`payment_received` for many payments, through COPY; unknown payers get no entry."""
    now = timezone.now()
    by_id = by.pk if by is not None else None
    labels = {kind: str(label) for kind, label in Payment.Kind.choices}
    copy_rows(
        (
            p.customer_id,
            None,
            Kind.PAYMENT,
            by_id,
            _(PAYMENT_TEXT)
            % {"kind": labels.get(p.kind, p.kind), "currency": p.currency, "amount": p.amount},
            _payment_details(p),
            now,
        )
        for p in payments
        if p.customer_id is not None
    )


def _payment_details(payment: Payment) -> dict:
    return {"payment": payment.pk, "amount": str(payment.amount), "currency": payment.currency}


def allocation_applied(
    *, payment: Payment, invoice: Invoice, allocation, new_balance: Decimal, by=None
) -> Activity:
    """Append the entry for money applied to an invoice."""
    return add(
        Kind.ALLOCATION,
        customer=invoice.customer_id,
        invoice=invoice,
        by=by,
        text=_(ALLOCATION_TEXT)
        % {
            "currency": invoice.currency,
            "amount": allocation.amount,
            "kind": payment.get_kind_display().lower(),
            "n": invoice.number,
            "left": new_balance,
        },
        details={
            "payment": payment.pk,
            "allocation": allocation.pk,
            "amount": str(allocation.amount),
            "rule": allocation.rule,
            "status": invoice.status_for_balance(new_balance),
        },
    )


def allocations_applied(
    applied: Iterable[tuple], *, by=None, at: dt.datetime | None = None
) -> None:
    """`allocation_applied` for many allocations, through COPY.

    Each item is (payment, invoice, allocation id, amount, new balance, new status, rule),
    where payment and invoice need only the attributes the wording reads (`pk`, `kind`;
    `pk`, `customer_id`, `currency`, `number`).
    """
    now = at or timezone.now()
    by_id = by.pk if by is not None else None
    labels = {kind: str(label).lower() for kind, label in Payment.Kind.choices}
    copy_rows(
        (
            invoice.customer_id,
            invoice.pk,
            Kind.ALLOCATION,
            by_id,
            _(ALLOCATION_TEXT)
            % {
                "currency": invoice.currency,
                "amount": amount,
                "kind": labels.get(payment.kind, payment.kind.lower()),
                "n": invoice.number,
                "left": new_balance,
            },
            {
                "payment": payment.pk,
                "allocation": allocation_id,
                "amount": str(amount),
                "rule": rule,
                "status": status,
            },
            now,
        )
        for payment, invoice, allocation_id, amount, new_balance, status, rule in applied
    )


# The transaction-local setting the append-only trigger checks (migration 0024).
ERASURE_SETTING = "accounts.timeline_erasure"


def erase_personal_data(customer_id: int, rewrite: Callable[[str, dict], tuple[str, dict]]) -> int:
    """The one sanctioned change to written entries: `rewrite(text, details)` gives each
    of the customer's entries its new text and details (personal data replaced); returns
    how many entries changed.

    1. Inside the caller's transaction (one is opened if there is none), set the setting
       the append-only trigger checks, for this transaction only (set_config ..., true).
    2. Rewrite only text and details, by id; the trigger refuses any other column, and
       DELETE whatever the setting.
    3. Turn the setting off again before returning, so nothing else in the transaction
       gets past the guard.
    """
    details_field = Activity._meta.get_field("details")
    changed = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config(%s, 'on', true)", [ERASURE_SETTING])
        try:
            entries = Activity.objects.filter(customer_id=customer_id).values_list(
                "pk", "text", "details"
            )
            for pk, text, details in entries.iterator(chunk_size=1000):
                new_text, new_details = rewrite(text, details)
                if (new_text, new_details) == (text, details):
                    continue
                cursor.execute(
                    "UPDATE accounts_activity SET text = %s, details = %s WHERE id = %s",
                    [new_text, details_field.get_db_prep_save(new_details, connection), pk],
                )
                changed += cursor.rowcount
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config(%s, 'off', true)", [ERASURE_SETTING])
    return changed


def erased(customer: Customer | int, *, by, reason: str, counts: dict) -> Activity:
    """The entry saying that a customer's personal data was erased: who, when, why, and
    how many rows of each kind; none of the erased data."""
    return add(
        Kind.ERASURE,
        customer=customer,
        by=by,
        text=_("Personal data erased: %(reason)s") % {"reason": reason},
        details={"reason": reason, "rows": counts},
    )


# The transaction-local setting the append-only trigger checks for a merge (migration 0028).
MERGE_SETTING = "accounts.timeline_merge"


def move_entries(*, from_customer_id: int, to_customer_id: int) -> int:
    """The other sanctioned change to written entries: every entry of one customer moves,
    unchanged, to another (a duplicate merged into the customer it duplicates); returns
    how many moved.

    1. Inside the caller's transaction (one is opened if there is none), set the setting
       the append-only trigger checks, for this transaction only (set_config ..., true).
    2. Change only the customer, in one UPDATE; the trigger refuses any other column, and
       DELETE whatever the setting.
    3. Turn the setting off again before returning, so nothing else in the transaction
       gets past the guard.
    """
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT set_config(%s, 'on', true)", [MERGE_SETTING])
        try:
            cursor.execute(
                "UPDATE accounts_activity SET customer_id = %s WHERE customer_id = %s",
                [to_customer_id, from_customer_id],
            )
            return cursor.rowcount
        finally:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT set_config(%s, 'off', true)", [MERGE_SETTING])


def merged(
    survivor: Customer, *, duplicate: Customer, by, reason: str, moved: dict, filled: dict
) -> Activity:
    """The entry saying that a duplicate customer was merged into this one: who, when,
    why, what moved (rows per kind) and which blank fields the duplicate filled in."""
    return add(
        Kind.MERGE,
        customer=survivor,
        by=by,
        text=_("Merged %(name)s (#%(id)s) into this customer: %(reason)s")
        % {"name": duplicate.name, "id": duplicate.pk, "reason": reason},
        details={
            "merged": duplicate.pk,
            "merged_name": duplicate.name,
            "merged_source": duplicate.source,
            "merged_ref": duplicate.external_ref,
            "reason": reason,
            "moved": moved,
            "filled": filled,
        },
    )


def merged_away(duplicate: Customer, *, survivor: Customer, by, reason: str) -> Activity:
    """The entry left on the emptied duplicate, pointing at the survivor."""
    return add(
        Kind.MERGE,
        customer=duplicate,
        by=by,
        text=_("Merged into %(name)s (#%(id)s): %(reason)s")
        % {"name": survivor.name, "id": survivor.pk, "reason": reason},
        details={"survivor": survivor.pk, "reason": reason},
    )
