"""Erasure: one customer's personal data pseudonymised everywhere it lives; money kept.

What is personal: the customer's name and postal address, and each contact's name,
e-mail address and phone number (the forms people write a number in too). Where it lives:

- the customer (name -> "Erased customer #<id>", postal address, free-text reasons) and
  its contacts (names, e-mails, phones, their lookup hashes, role); so too the names and
  addresses of the duplicates merged into it (accounts/merging.py), whose entries and
  contacts are its own since the merge;
- the timeline (accounts.Activity text and details), through the one sanctioned path past
  its append-only guard (`accounts.timeline.erase_personal_data`);
- case work (tasks, promises, disputes, plans, agency placements): their free text;
- the ledger's free text (invoice references and pause reasons, payment remittance
  references and payers' names and accounts, allocation reasons) and the bank lines and
  match proposals of its payments;
- notices (subject, bodies, recipient; letters' PDF files are deleted), the outbox (the
  messages to its addresses or with its notices' Message-IDs, and their attachments),
  e-mail events (bounces and complaints) for its notices or addresses;
- intake rejections, webhook events and API idempotency records whose stored payload
  carries one of its e-mail addresses, phone numbers or its name;
- the admin's change log for the customer and its contacts.

Ids, amounts, currencies, dates, statuses and counts stay, so the ledger, the aging and
the KPIs add up exactly as before. The erasure is itself an entry on the timeline (who,
when, why, how many rows), without the erased data. Each string is replaced wherever it
appears, in any case; the replacement is the same placeholder everywhere, so a text
still reads ("Call with Erased contact #12 ([erased])").
"""

import re
from collections.abc import Iterable

import phonenumbers
from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import permissions, timeline
from accounts.models import (
    Allocation,
    Contact,
    Customer,
    IdempotencyRecord,
    Invoice,
    Payment,
)
from cases.models import Dispute, PaymentPlan, PromiseToPay, Recovery, Task
from dunning.models import EmailEvent, Notice, OutboxMessage
from integrations.inbound import erasure as inbound_erasure
from integrations.models import AutopayMandate, BankLine, MatchProposal, Rejection, WebhookEvent
from portal import actions as portal_actions
from portal.models import AccessCode

PERMISSION = "accounts.erase_customer"
ERASED = "[erased]"
# Shorter strings (initials, a two-letter name) would replace parts of ordinary words.
MIN_LENGTH = 3


class Scrubber:
    """Replaces every personal string of one customer, in text and inside JSON values."""

    def __init__(self, replacements: dict[str, str]):
        wanted = {k.strip(): v for k, v in replacements.items() if len(k.strip()) >= MIN_LENGTH}
        # Longest first, so "Jo Smith" is replaced whole before "Smith" could be.
        self.by_lower = {
            k.lower(): v for k, v in sorted(wanted.items(), key=lambda kv: -len(kv[0]))
        }
        self.strings = list(self.by_lower)
        self.pattern = (
            re.compile("|".join(re.escape(s) for s in self.strings), re.IGNORECASE)
            if self.strings
            else None
        )

    def text(self, value):
        if not value or self.pattern is None or not isinstance(value, str):
            return value
        return self.pattern.sub(lambda m: self.by_lower[m.group(0).lower()], value)

    def json(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json(v) for v in value]
        return value

    def mentions(self, field: str) -> Q:
        """Rows whose `field` (text, or JSON read as text) holds one of the strings."""
        found = Q(pk__in=[])
        for string in self.strings:
            found |= Q(**{f"{field}__icontains": string})
        return found


def _phone_forms(e164: str) -> list[str]:
    """The number as stored and as people write it (national and international)."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return [e164]
    formats = (
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
    )
    return [e164, *(phonenumbers.format_number(number, f) for f in formats)]


def personal_strings(customer: Customer, contacts: Iterable[Contact]) -> dict[str, str]:
    """Each personal string of the customer, and what replaces it."""
    replacements = {}
    address = customer.postal_address or ""
    for line in [address, address.replace("\n", ", "), *address.splitlines()]:
        replacements[line] = ERASED
    for contact in contacts:
        replacements[contact.email] = ERASED
        for form in _phone_forms(contact.phone) if contact.phone else ():
            replacements[form] = ERASED
        replacements[contact.name] = _("Erased contact #%(id)s") % {"id": contact.pk}
    # Customers merged into this one (accounts/merging.py): their entries are its entries
    # now, and their names and addresses are its personal data too.
    for merged in customer.merged_customers.all():
        address = merged.postal_address or ""
        for line in [address, address.replace("\n", ", "), *address.splitlines()]:
            replacements[line] = ERASED
        replacements[merged.name] = erased_name(merged.pk)
    # The customer's name last: a contact named like the company reads as the company.
    replacements[customer.name] = erased_name(customer.pk)
    replacements.pop("", None)
    return replacements


def erased_name(customer_id: int) -> str:
    return _("Erased customer #%(id)s") % {"id": customer_id}


def _scrub_rows(queryset, scrubber: Scrubber, text_fields=(), json_fields=(), **fixed) -> int:
    """Rewrite these fields of each row where they change; returns the rows written."""
    names = [*text_fields, *json_fields, *fixed]
    changed = []
    for row in queryset.only("pk", *names):
        before = [getattr(row, name) for name in names]
        for name in text_fields:
            setattr(row, name, scrubber.text(getattr(row, name)))
        for name in json_fields:
            setattr(row, name, scrubber.json(getattr(row, name)))
        for name, value in fixed.items():
            if getattr(row, name):  # an empty value stays empty
                setattr(row, name, value)
        if [getattr(row, name) for name in names] != before:
            changed.append(row)
    if changed:
        queryset.model.objects.bulk_update(changed, names, batch_size=500)
    return len(changed)


def _delete_files(paths: Iterable[str]) -> int:
    deleted = 0
    for path in paths:
        if path and default_storage.exists(path):
            default_storage.delete(path)
            deleted += 1
    return deleted


def _delete_portal_files(customer_id: int) -> int:
    """The files a debtor attached in the portal (portal/actions.py keeps them per customer)."""
    folder = f"{portal_actions.ATTACHMENT_DIR}/{customer_id}"
    try:
        _folders, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError):
        return 0
    return _delete_files(f"{folder}/{name}" for name in files)


@transaction.atomic
def erase_customer(*, customer: Customer | int, reason: str, by=None) -> dict[str, int]:
    """Pseudonymise one customer's personal data everywhere (see the module's docstring);
    returns how many rows of each kind were rewritten. Managers (`accounts.erase_customer`)
    or the system (`by=None`: retention). Erasing twice is refused."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why the personal data is erased.")})
    customer_id = customer.pk if isinstance(customer, Customer) else customer
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    permissions.require(by, PERMISSION, [customer])
    if customer.erased_at is not None:
        raise ValidationError(
            _("%(name)s was already erased on %(on)s.")
            % {"name": customer.name, "on": timezone.localdate(customer.erased_at)}
        )
    contacts = list(Contact.objects.filter(customer=customer))
    scrubber = Scrubber(personal_strings(customer, contacts))
    emails = [c.email for c in contacts if c.email]
    phones = [c.phone for c in contacts if c.phone]
    counts: dict[str, int] = {}

    # The timeline first: its rewrite reads nothing else. The duplicates merged into the
    # customer keep one entry each, naming it.
    def rewrite(text, details):
        return scrubber.text(text), scrubber.json(details)

    counts["timeline"] = sum(
        timeline.erase_personal_data(customer_id, rewrite)
        for customer_id in (
            customer.pk,
            *customer.merged_customers.values_list("pk", flat=True),
        )
    )
    counts["cases"] = sum(
        (
            _scrub_rows(
                Task.objects.filter(customer=customer),
                scrubber,
                ("title", "description", "outcome_note"),
                ("details",),
            ),
            _scrub_rows(PromiseToPay.objects.filter(customer=customer), scrubber, ("note",)),
            _scrub_rows(
                Dispute.objects.filter(customer=customer),
                scrubber,
                ("description", "resolution_note"),
            ),
            _scrub_rows(PaymentPlan.objects.filter(customer=customer), scrubber, ("note",)),
            _scrub_rows(
                Recovery.objects.filter(customer=customer),
                scrubber,
                ("agency_reference", "reason", "reversal_reason"),
            ),
        )
    )
    counts["ledger"] = sum(
        (
            _scrub_rows(
                Invoice.objects.filter(customer=customer),
                scrubber,
                ("reference", "dunning_pause_reason"),
            ),
            _scrub_rows(
                Payment.objects.filter(customer=customer),
                scrubber,
                ("remittance_reference",),
                payer_name=ERASED,
                payer_account=ERASED,
            ),
            _scrub_rows(
                Allocation.objects.filter(invoice__customer=customer), scrubber, ("reason",)
            ),
            _scrub_rows(
                BankLine.objects.filter(payment__customer=customer),
                scrubber,
                ("remittance",),
                counterparty_name=ERASED,
                counterparty_account=ERASED,
            ),
            _scrub_rows(
                MatchProposal.objects.filter(payment__customer=customer),
                scrubber,
                ("explanation",),
                ("lines",),
            ),
        )
    )
    counts.update(_erase_messages(customer, scrubber, emails=emails, phones=phones))
    # The debtor's side: replies and portal messages with their files, the files attached
    # to disputes in the portal, sign-in codes, and what a saved payment method shows.
    counts.update(inbound_erasure.erase_messages(customer=customer, emails=emails))
    counts["portal_files"] = _delete_portal_files(customer.pk)
    AccessCode.objects.filter(contact__in=contacts).delete()
    counts["autopay"] = _scrub_rows(
        AutopayMandate.objects.filter(customer=customer),
        scrubber,
        ("cancel_reason",),
        display=ERASED,
    )
    counts["stored_payloads"] = sum(
        _scrub_rows(
            model.objects.annotate(_as_text=Cast(field, TextField())).filter(
                scrubber.mentions("_as_text")
            ),
            scrubber,
            text_fields,
            (field,),
        )
        for model, field, text_fields in (
            (Rejection, "raw", ("resolution",)),
            (WebhookEvent, "payload", ("note",)),
            (IdempotencyRecord, "response_body", ()),
        )
    ) + _scrub_rows(
        Rejection.objects.annotate(_as_text=Cast("errors", TextField())).filter(
            scrubber.mentions("_as_text")
        ),
        scrubber,
        (),
        ("errors",),
    )
    counts["admin_log"] = _scrub_rows(
        LogEntry.objects.filter(
            Q(content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk))
            | Q(
                content_type=ContentType.objects.get_for_model(Contact),
                object_id__in=[str(c.pk) for c in contacts],
            )
        ),
        scrubber,
        ("object_repr", "change_message"),
    )

    counts["contacts"] = len(contacts)
    for contact in contacts:
        contact.name = _("Erased contact #%(id)s") % {"id": contact.pk}
        contact.role, contact.email, contact.phone = "", "", ""
        for field in ("email_opt_out_source", "sms_opt_out_source", "call_opt_out_source"):
            setattr(contact, field, scrubber.text(getattr(contact, field)))
        contact.save()  # the lookup hashes follow the emptied e-mail and phone
    for merged in customer.merged_customers.filter(erased_at__isnull=True):
        merged.name, merged.postal_address = erased_name(merged.pk), ""
        merged.erased_at = timezone.now()
        merged.save(update_fields=["name", "postal_address", "erased_at", "updated_at"])
        counts["merged_customers"] = counts.get("merged_customers", 0) + 1
    customer.name = erased_name(customer.pk)
    customer.postal_address = ""
    customer.dunning_pause_reason = scrubber.text(customer.dunning_pause_reason)
    customer.risk_factors = scrubber.json(customer.risk_factors)
    customer.do_not_contact = True  # nothing left to reach them by, and no one should try
    customer.erased_at = timezone.now()
    customer.save()
    timeline.erased(customer, by=by, reason=reason, counts=counts)
    return counts


def _erase_messages(customer, scrubber: Scrubber, *, emails, phones) -> dict[str, int]:
    """Notices, letters' files, the outbox and e-mail events of the customer."""
    notices = Notice.objects.filter(customer=customer)
    message_ids = list(
        notices.exclude(provider_message_id="").values_list("provider_message_id", flat=True)
    )
    documents = list(notices.exclude(document="").values_list("document", flat=True))
    counts = {
        "notices": _scrub_rows(
            notices,
            scrubber,
            ("subject", "body_text", "body_html", "reason"),
            ("edited_invoices",),
            recipient=ERASED,
        ),
        "files": _delete_files(documents),
    }
    notices.exclude(document="").update(document="")
    bare_ids = {m.strip("<>") for m in message_ids}
    addressed = Q(pk__in=[])
    for address in [*emails, *phones]:
        addressed |= Q(recipient__iexact=address)
    # Messages to its addresses, with its notices' Message-IDs, or naming it (a report).
    outbox = OutboxMessage.objects.filter(
        addressed
        | Q(message_id__in=[*bare_ids, *(f"<{m}>" for m in bare_ids)])
        | scrubber.mentions("subject")
        | scrubber.mentions("body_text")
    )
    attachments = [
        item.get("path", "")
        for message in outbox.only("attachments")
        for item in message.attachments or ()
        if isinstance(item, dict)
    ]
    counts["files"] += _delete_files(attachments)
    outbox.exclude(attachments=[]).update(attachments=[])
    counts["outbox"] = _scrub_rows(
        outbox, scrubber, ("subject", "body_text", "body_html"), ("headers",), recipient=ERASED
    )
    by_address = Q(pk__in=[])
    for address in emails:
        by_address |= Q(email__iexact=address)
    counts["email_events"] = _scrub_rows(
        EmailEvent.objects.filter(Q(notice__customer=customer) | by_address),
        scrubber,
        ("reason",),
        ("payload",),
        email=ERASED,
    )
    return counts
