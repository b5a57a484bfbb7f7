"""Contact rows: read, keyed by the customer's reference + e-mail, validated and saved.

Columns (each header as named here, any case): customer_ref, email, name, role, phone,
is_primary, and customer_source when two sources share a customer reference. customer_ref
and email are required; the e-mail matches a stored contact of that customer whatever its
case (a change of case is no change). Phones are stored in E.164, read with the
customer's country; is_primary is yes/no (1, true, yes, y, x / 0, false, no, n, empty).

A contact has no service of its own in the ledger and no timeline entry: like the
customer page's contact form, a row is validated by the model (`full_clean`, which also
keeps one primary contact per customer) and saved.
"""

import copy
from collections.abc import Iterable, Mapping

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.crypto import lookup_hash
from accounts.models import Contact, Customer

from ..models import IntakeBatch
from . import parsing, records
from .batches import RowRejected, Tally
from .parsing import Cells, whole_text, yes_no
from .records import KEY_REQUIRED, Record, RecordUpserter

FIELDS = ("customer_ref", "customer_source", "email", "name", "role", "phone", "is_primary")
COLUMNS = {name: [name] for name in FIELDS}
REQUIRED = ("customer_ref", "email")


class ContactParser:
    """One contact row into a Record, or RowRejected with the reasons per column."""

    def __init__(self, profile=None):
        self.cells = Cells()

    def parse(self, values: dict, *, row_number: int = 0, raw: Mapping | None = None) -> Record:
        errors: dict[str, list[str]] = {}
        customer_ref = whole_text(values.get("customer_ref"))
        customer_source = whole_text(values.get("customer_source"))
        if not customer_ref:
            errors["customer_ref"] = [_("Required: the customer's reference.")]
        email = whole_text(values.get("email"))
        if not email:
            errors["email"] = [KEY_REQUIRED]
        else:
            try:
                self.cells.email(email)
            except ValueError as exc:
                errors["email"] = [str(exc)]
        cleaned = {"email": email}
        for name in ("name", "role", "phone"):
            if name in values:
                cleaned[name] = whole_text(values[name])
        if "is_primary" in values:
            try:
                cleaned["is_primary"] = yes_no(values["is_primary"])
            except ValueError as exc:
                errors["is_primary"] = [str(exc)]
        # The phone is checked once it is in E.164, which needs the customer's country.
        records.check_fields(
            Contact, {k: v for k, v in cleaned.items() if k != "phone"}, errors, {}
        )
        if errors:
            raise RowRejected(errors)
        return Record(
            key=(customer_ref, customer_source, email.lower()),
            values=cleaned,
            label=email,
            row_number=row_number,
            raw=raw if raw is not None else values,
        )


def customers_by_reference(refs: Iterable[str]) -> dict[str, list[Customer]]:
    """The customers with each external reference (several sources may share one); a
    merged customer comes with the customer it was merged into (`merged_into`)."""
    found: dict[str, list[Customer]] = {}
    customers = Customer.objects.filter(external_ref__in=set(refs)).select_related("merged_into")
    for customer in customers.order_by("pk"):
        found.setdefault(customer.external_ref, []).append(customer)
    return found


def the_customer(customers: dict[str, list[Customer]], ref: str, source: str) -> Customer:
    """The one customer `ref` (and `source`, when given) names, or RowRejected saying why.
    A reference of a merged customer names the customer it was merged into."""
    named = [c for c in customers.get(ref, []) if not source or c.source == source]
    matches = list({(c.merged_into or c).pk: c.merged_into or c for c in named}.values())
    if not matches:
        raise RowRejected(
            {"customer_ref": [_("No customer has the reference %(ref)r.") % {"ref": ref}]}
        )
    if len(matches) > 1:
        raise RowRejected(
            {
                "customer_ref": [
                    _("Several customers have the reference %(ref)r; add a customer_source column.")
                    % {"ref": ref}
                ]
            }
        )
    return matches[0]


class ContactUpserter(RecordUpserter):
    """Creates and updates contacts, each validated by the model before it is saved."""

    COLUMNS = {"customer": "customer_ref"}

    def load(self, batch_records: list[Record]) -> tuple[dict, dict]:
        customers = customers_by_reference(record.key[0] for record in batch_records)
        ids = [c.pk for matches in customers.values() for c in matches]
        contacts: dict[tuple[int, str], Contact] = {}
        # Keyed by the e-mail's lookup hash (lower-cased, as the record's key).
        for contact in Contact.objects.filter(customer_id__in=ids).order_by("pk"):
            contacts.setdefault((contact.customer_id, contact.email_hash), contact)
        return customers, contacts

    def apply(self, record: Record, found: tuple[dict, dict]) -> tuple[str, dict]:
        customers, contacts = found
        customer_ref, customer_source, email_key = record.key
        customer = the_customer(customers, customer_ref, customer_source)
        values = dict(record.values)
        errors: dict[str, list[str]] = {}
        if values.get("phone"):
            values["phone"], phone_errors = parsing.phone(values["phone"], customer.country)
            if phone_errors:
                errors["phone"] = list(phone_errors)
        stored = contacts.get((customer.pk, lookup_hash("email", email_key)))
        if stored is not None and not errors:
            values["email"] = stored.email  # the key matched: a change of case is no change
            changes = records.changes_of(stored, values)
            if not changes:
                return "unchanged", {}
        if stored is None:
            contact, outcome, changes = Contact(customer=customer), "created", {}
        else:
            contact, outcome = copy.copy(stored), "updated"
            changes = records.changes_of(stored, values)
        for name, value in values.items():
            setattr(contact, name, value)
        try:
            contact.full_clean(exclude=list(errors))
        except ValidationError as exc:
            errors.update(records.refused(exc, self.COLUMNS))
        if errors:
            raise RowRejected(errors)
        contact.save()
        contacts[(customer.pk, contact.email_hash)] = contact
        return outcome, changes


def upsert_contacts(
    contact_records: Iterable[Record],
    *,
    batch: IntakeBatch,
    by=None,
    tally: Tally | None = None,
    chunk_size: int = records.CHUNK_SIZE,
) -> Tally:
    """Apply contact records (from `ContactParser`) to the ledger; returns the counts."""
    return records.upsert(
        ContactUpserter, contact_records, batch=batch, by=by, tally=tally, chunk_size=chunk_size
    )
