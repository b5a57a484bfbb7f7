"""What a debtor does in the portal besides paying: promise, dispute, ask for a plan, set
their contact preferences, and send attachments along.

Plain functions taking the customer, the contact (None when the debtor came through an
old customer-level statement link) and cleaned values. Each one:

1. checks what the debtor asked for against the portal's own limits (settings PORTAL_*)
   and against what the case services will refuse, in the debtor's language, raising
   ValidationError with the refusals keyed by form field;
2. only ever looks at the customer's own invoices: an invoice id of another customer is
   answered exactly like an id that does not exist;
3. writes through the same case services an agent's console uses (`record_promise`,
   `open_dispute`, `propose_plan`), as the system (by=None), with the timeline text in the
   console's language (LANGUAGE_CODE), not the debtor's;
4. records on the timeline what the services do not (Activity.Kind.PORTAL: who acted in
   the portal, the attachments, the preferences changed), and raises the agent's task
   where a person must act.
"""

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.validators import validate_email
from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from accounts import services, timeline
from accounts.models import Activity, Contact, Customer, Invoice, normalize_phone
from accounts.money import format_money
from cases import case_tasks, disputes, plans, promises
from cases.models import Dispute, PaymentPlan, PromiseToPay, Task

PORTAL = Activity.Channel.PORTAL
# Where a dispute's attachments are kept (default storage, not served to the public).
ATTACHMENT_DIR = "portal/attachments"
# A request for more installments than this is no plan: refused, not sent to a manager.
MOST_INSTALLMENTS_ASKED = 36
MESSAGE_MAX_CHARS = 5000
PORTAL_SOURCE = "portal"


class Refusals(promises.FieldErrors):
    """The refusals of one portal action, by form field, raised all at once."""


def _console_language():
    """Timeline texts and tasks are read by agents: written in the console's language."""
    return translation.override(settings.LANGUAGE_CODE)


def _who(contact: Contact | None) -> str:
    return contact.name if contact is not None else _("the customer (statement link)")


def _portal_entry(*, customer, contact, text: str, details: dict, invoice=None) -> Activity:
    return timeline.add(
        Activity.Kind.PORTAL,
        customer=customer,
        invoice=invoice,
        channel=PORTAL,
        text=text,
        details={"contact_id": contact.pk if contact is not None else None} | details,
    )


def _own_invoices(
    customer: Customer,
    invoice_ids: Iterable,
    *,
    statuses: Sequence[str],
    errors: Refusals,
) -> list[Invoice]:
    """The customer's invoices among `invoice_ids`, in one of `statuses`, one currency.

    An id that is not an integer, not an invoice, or another customer's invoice gets the
    same answer: the debtor learns nothing about what exists beyond their own account.
    """
    try:
        ids = sorted({int(pk) for pk in invoice_ids})
    except (TypeError, ValueError):
        ids = None
    if not ids:
        errors.add(
            "invoices",
            _("Choose at least one invoice.") if ids == [] else _("Choose among your invoices."),
        )
        return []
    rows = list(Invoice.objects.filter(customer=customer, pk__in=ids).order_by("due_on", "pk"))
    if len(rows) != len(ids):
        errors.add("invoices", _("Choose among your invoices."))
        return []
    for invoice in rows:
        if invoice.status not in statuses:
            errors.add(
                "invoices",
                _("Invoice %(n)s is %(status)s.")
                % {"n": invoice.number, "status": invoice.get_status_display().lower()},
            )
    currencies = sorted({invoice.currency for invoice in rows})
    if len(currencies) > 1:
        errors.add(
            "invoices",
            _("These invoices are in %(currencies)s; choose invoices in one currency.")
            % {"currencies": ", ".join(currencies)},
        )
    return rows


def _open_total(rows: list[Invoice]) -> Decimal:
    return sum((invoice.open_balance for invoice in rows), Decimal("0.00"))


def _setting_decimal(name: str) -> Decimal:
    try:
        return Decimal(str(getattr(settings, name)))
    except InvalidOperation as exc:
        raise ValueError(f"{name} must be a number") from exc


# --- What the debtor already has under way (reads for the pages) ----------------------------


def open_promises(customer: Customer):
    return (
        PromiseToPay.objects.filter(customer=customer, status=PromiseToPay.Status.OPEN)
        .prefetch_related("invoices")
        .order_by("promised_on", "pk")
    )


def active_disputes(customer: Customer):
    return (
        Dispute.objects.filter(customer=customer, status__in=Dispute.ACTIVE_STATUSES)
        .prefetch_related("invoices")
        .order_by("-opened_at", "-pk")
    )


def current_plans(customer: Customer):
    return (
        PaymentPlan.objects.filter(customer=customer, status__in=PaymentPlan.HOLDING_STATUSES)
        .prefetch_related("invoices", "installments")
        .order_by("pk")
    )


# --- 1. Promise to pay -------------------------------------------------------------------


def promise_limits(rows: list[Invoice], *, today: dt.date) -> dict:
    """The dates and amounts a promise on these invoices may take (for the form's hints)."""
    total = _open_total(rows)
    share = _setting_decimal("PORTAL_PROMISE_MIN_SHARE")
    least = (total * share).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    return {
        "first_on": today,
        "last_on": today + dt.timedelta(days=settings.PORTAL_PROMISE_MAX_DAYS),
        "least": max(least, Decimal("0.01")),
        "most": total,
        "currency": rows[0].currency if rows else "",
    }


def promise_to_pay(
    *,
    customer: Customer,
    contact: Contact | None,
    invoice_ids: Iterable,
    amount: Decimal | None,
    promised_on: dt.date | None,
    today: dt.date | None = None,
) -> PromiseToPay:
    """Record the debtor's promise to pay `amount` by `promised_on` for these invoices.

    Refused: invoices not outstanding or already under an open promise, a date in the
    past or more than PORTAL_PROMISE_MAX_DAYS ahead, an amount below
    PORTAL_PROMISE_MIN_SHARE of their open balance or above it. Recorded by
    `cases.promises.record_promise` exactly as an agent's promise (channel portal): it
    holds dunning for these invoices until the date plus PROMISE_GRACE_DAYS, and a broken
    one gives the agent a call task.
    """
    today = today or timezone.localdate()
    errors = Refusals()
    rows = _own_invoices(customer, invoice_ids, statuses=promises.OUTSTANDING, errors=errors)
    if rows and "invoices" not in errors:
        promised = (
            PromiseToPay.invoices.through.objects.filter(
                invoice_id__in=[invoice.pk for invoice in rows],
                promisetopay__status=PromiseToPay.Status.OPEN,
            )
            .values_list("invoice__number", flat=True)
            .order_by("invoice__number")
        )
        for number in promised:
            errors.add("invoices", _("You have already promised to pay %(n)s.") % {"n": number})
    limits = promise_limits(rows, today=today) if rows else None
    if promised_on is None:
        errors.add("promised_on", _("Say by when you will pay."))
    elif promised_on < today:
        errors.add("promised_on", _("The date is in the past; choose today or later."))
    elif promised_on > today + dt.timedelta(days=settings.PORTAL_PROMISE_MAX_DAYS):
        errors.add(
            "promised_on",
            _("Choose a date at most %(days)d days ahead (by %(date)s).")
            % {
                "days": settings.PORTAL_PROMISE_MAX_DAYS,
                "date": (today + dt.timedelta(days=settings.PORTAL_PROMISE_MAX_DAYS)).isoformat(),
            },
        )
    if amount is None:
        errors.add("amount", _("Say how much you will pay."))
    elif amount <= 0:
        errors.add("amount", _("The amount must be more than zero."))
    elif limits is not None and "invoices" not in errors:
        if amount > limits["most"]:
            errors.add(
                "amount",
                _("The amount is more than the %(open)s open on these invoices.")
                % {"open": format_money(limits["most"], limits["currency"])},
            )
        elif amount < limits["least"]:
            errors.add(
                "amount",
                _("Promise at least %(least)s (part of the %(open)s open on these invoices).")
                % {
                    "least": format_money(limits["least"], limits["currency"]),
                    "open": format_money(limits["most"], limits["currency"]),
                },
            )
    errors.raise_any()
    with _console_language():
        return promises.record_promise(
            customer=customer,
            invoices=rows,
            amount=amount,
            promised_on=promised_on,
            channel=PORTAL,
            by=None,
            note=_("Made in the portal by %(who)s") % {"who": _who(contact)},
            today=today,
        )


# --- Attachments ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """An uploaded file that passed the checks: its bytes, a safe name and its real type."""

    name: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


# Accepted types: what the first bytes must be, and the names' endings that go with them.
TYPES = {
    "application/pdf": ((b"%PDF-",), (".pdf",)),
    "image/png": ((b"\x89PNG\r\n\x1a\n",), (".png",)),
    "image/jpeg": ((b"\xff\xd8\xff",), (".jpg", ".jpeg")),
    "text/plain": ((), (".txt", ".text", ".csv", ".log")),
}


def _sniff(head: bytes, content: bytes) -> str | None:
    """The type the bytes themselves show (never the name or the browser's word)."""
    for content_type, (magics, _ends) in TYPES.items():
        if any(head.startswith(magic) for magic in magics):
            return content_type
    if b"\x00" in content:
        return None
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return "text/plain"


def _safe_name(name: str) -> str:
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = "".join(c for c in base if c.isprintable() and c not in '<>:"/\\|?*')
    return base[-100:] or "attachment"


def check_attachments(files: Sequence) -> list[Attachment]:
    """Read and check uploaded files (Django UploadedFile or anything with name and read).

    At most PORTAL_UPLOAD_MAX_FILES files of at most PORTAL_UPLOAD_MAX_BYTES each, each a
    PDF, PNG, JPEG or plain text (UTF-8) file by its content, named with an ending that
    fits that content. Every refusal names the file; ValidationError under "attachments".
    """
    errors = Refusals()
    files = [f for f in files if f is not None]
    most = settings.PORTAL_UPLOAD_MAX_FILES
    if len(files) > most:
        errors.add(
            "attachments",
            _("Attach at most %(n)d files; you chose %(count)d.")
            % {"n": most, "count": len(files)},
        )
        errors.raise_any()
    limit = settings.PORTAL_UPLOAD_MAX_BYTES
    checked = []
    for upload in files:
        name = _safe_name(getattr(upload, "name", ""))
        size = getattr(upload, "size", None)
        if size is not None and size > limit:
            errors.add(
                "attachments",
                _("%(name)s is %(size)s; files of up to %(limit)s are accepted.")
                % {"name": name, "size": filesizeformat(size), "limit": filesizeformat(limit)},
            )
            continue
        if hasattr(upload, "seek"):
            upload.seek(0)
        content = upload.read(limit + 1)
        if len(content) > limit:
            errors.add(
                "attachments",
                _("%(name)s is larger than %(limit)s, the most a file may be.")
                % {"name": name, "limit": filesizeformat(limit)},
            )
            continue
        if not content:
            errors.add("attachments", _("%(name)s is empty.") % {"name": name})
            continue
        content_type = _sniff(content[:16], content)
        if content_type is None:
            errors.add(
                "attachments",
                _("%(name)s is not a PDF, PNG, JPEG or plain text file.") % {"name": name},
            )
            continue
        if not name.lower().endswith(TYPES[content_type][1]):
            errors.add(
                "attachments",
                _("%(name)s holds a %(kind)s file; name it %(ending)s.")
                % {
                    "name": name,
                    "kind": content_type.split("/")[1].upper(),
                    "ending": " / ".join(TYPES[content_type][1]),
                },
            )
            continue
        checked.append(Attachment(name=name, content_type=content_type, content=content))
    errors.raise_any()
    return checked


def _store(customer: Customer, attachments: list[Attachment]) -> list[dict]:
    """Keep the files in the default storage under a random name; what to record of each."""
    stored = []
    for attachment in attachments:
        ending = os.path.splitext(attachment.name)[1].lower()
        path = default_storage.save(
            f"{ATTACHMENT_DIR}/{customer.pk}/{uuid.uuid4().hex}{ending}",
            ContentFile(attachment.content),
        )
        stored.append(
            {
                "name": attachment.name,
                "path": path,
                "size": attachment.size,
                "content_type": attachment.content_type,
                "sha256": attachment.sha256,
            }
        )
    return stored


def _delete_on_rollback(stored: list[dict]) -> None:
    """Files saved inside a transaction that rolls back are removed again."""
    for row in stored:
        with contextlib.suppress(OSError):
            default_storage.delete(row["path"])


# --- 2. Dispute ----------------------------------------------------------------------------


def open_dispute(
    *,
    customer: Customer,
    contact: Contact | None,
    invoice_ids: Iterable,
    reason: str,
    message: str,
    attachments: Sequence = (),
) -> Dispute:
    """Dispute these invoices with a reason code, a message and attachments.

    Through `cases.disputes.open_dispute` (the invoices become disputed: dunning holds for
    them and only them; the customer's agent owns it), plus a portal entry naming who
    disputed and the files, and a review task for the customer's agent due by the end of
    tomorrow. Refused: an unknown reason, an empty or too long message, invoices not
    disputable or already under an open dispute, attachments failing `check_attachments`.
    """
    errors = Refusals()
    rows = _own_invoices(customer, invoice_ids, statuses=disputes.DISPUTABLE, errors=errors)
    if rows and "invoices" not in errors:
        active = (
            Dispute.invoices.through.objects.filter(
                invoice_id__in=[invoice.pk for invoice in rows],
                dispute__status__in=Dispute.ACTIVE_STATUSES,
            )
            .values_list("invoice__number", flat=True)
            .order_by("invoice__number")
        )
        for number in active:
            errors.add(
                "invoices",
                _("%(n)s is already under dispute; send us a message to add to it.")
                % {"n": number},
            )
    if reason not in Dispute.Reason.values:
        errors.add("reason", _("Choose a reason."))
    message = (message or "").strip()
    if not message:
        errors.add("message", _("Tell us what is wrong."))
    elif len(message) > MESSAGE_MAX_CHARS:
        errors.add(
            "message", _("Keep the message under %(n)d characters.") % {"n": MESSAGE_MAX_CHARS}
        )
    try:
        checked = check_attachments(attachments)
    except ValidationError as exc:
        for text in exc.message_dict.get("attachments", []):
            errors.add("attachments", text)
        checked = []
    errors.raise_any()
    stored = _store(customer, checked)
    try:
        with transaction.atomic(), _console_language():
            dispute = disputes.open_dispute(
                customer=customer,
                invoices=rows,
                reason=reason,
                description=message,
                by=None,
            )
            files = ", ".join(row["name"] for row in stored)
            _portal_entry(
                customer=customer,
                contact=contact,
                invoice=rows[0] if len(rows) == 1 else None,
                text=_("%(who)s disputed %(invoices)s in the portal (dispute #%(pk)s)")
                % {"who": _who(contact), "invoices": promises.numbers(rows), "pk": dispute.pk}
                + (_("; attached: %(files)s") % {"files": files} if stored else ""),
                details={
                    "action": "dispute",
                    "dispute": dispute.pk,
                    "invoices": [invoice.pk for invoice in rows],
                    "attachments": stored,
                },
            )
            case_tasks.create_task(
                customer=customer,
                kind=Task.Kind.REVIEW,
                title=_("Review dispute #%(pk)s from the portal (%(reason)s): %(invoices)s")
                % {
                    "pk": dispute.pk,
                    "reason": dispute.get_reason_display(),
                    "invoices": promises.numbers(rows),
                },
                due_at=case_tasks.due_at_end_of(timezone.localdate() + dt.timedelta(days=1)),
                source=f"portal:dispute:{dispute.pk}",
                details={"dispute": dispute.pk, "attachments": stored},
            )
    except BaseException:
        _delete_on_rollback(stored)
        raise
    return dispute


# --- 3. Payment plan -----------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRequest:
    """What the portal made of a request for a plan: the plan, and whether it waits."""

    plan: PaymentPlan
    is_accepted: bool
    reasons: list[str]


def plannable_invoices(customer: Customer):
    """The customer's invoices a plan may cover: open or partially paid, in no plan."""
    in_plan = PaymentPlan.invoices.through.objects.filter(
        paymentplan__status__in=PaymentPlan.HOLDING_STATUSES
    ).values("invoice_id")
    return (
        Invoice.objects.filter(customer=customer, status__in=plans.PLANNABLE)
        .exclude(pk__in=in_plan)
        .order_by("currency", "due_on", "pk")
    )


def plan_schedule(rows: list[Invoice], *, count: int, first_due_on: dt.date):
    return plans.monthly_installments(
        total=_open_total(rows), count=count, first_due_on=first_due_on
    )


def why_a_manager_decides(*, total: Decimal, currency: str, schedule: list) -> list[str]:
    """The portal's rules a plan breaks (in the current language); empty: accepted at once."""
    reasons = []
    most = settings.PORTAL_PLAN_MAX_INSTALLMENTS
    if len(schedule) > most:
        reasons.append(_("more than %(n)d installments") % {"n": most})
    least = _setting_decimal("PORTAL_PLAN_MIN_INSTALLMENT")
    if min(amount for _d, amount in schedule) < least:
        reasons.append(_("installments under %(least)s") % {"least": format_money(least, currency)})
    if total > plans.approval_threshold():
        reasons.append(
            _("a total above %(limit)s")
            % {"limit": format_money(plans.approval_threshold(), currency)}
        )
    return reasons


def ask_for_plan(
    *,
    customer: Customer,
    contact: Contact | None,
    invoice_ids: Iterable,
    installments: int | None,
    first_due_on: dt.date | None,
    today: dt.date | None = None,
) -> PlanRequest:
    """Ask to pay these invoices' open balance in monthly installments from `first_due_on`.

    Accepted at once (an active plan) when it has at most PORTAL_PLAN_MAX_INSTALLMENTS
    installments, none under PORTAL_PLAN_MIN_INSTALLMENT, and a total at or under
    PAYMENT_PLAN_APPROVAL_THRESHOLD; otherwise proposed, waiting for a manager (the
    approval task of `cases.plans.propose_plan`). Either way dunning holds for the
    invoices. Refused: invoices not plannable or already in a plan, no installments or
    more than MOST_INSTALLMENTS_ASKED, a first date in the past or more than
    PORTAL_PLAN_FIRST_DUE_MAX_DAYS ahead.
    """
    today = today or timezone.localdate()
    errors = Refusals()
    rows = _own_invoices(customer, invoice_ids, statuses=plans.PLANNABLE, errors=errors)
    if rows and "invoices" not in errors:
        planned = (
            PaymentPlan.invoices.through.objects.filter(
                invoice_id__in=[invoice.pk for invoice in rows],
                paymentplan__status__in=PaymentPlan.HOLDING_STATUSES,
            )
            .values_list("invoice__number", flat=True)
            .order_by("invoice__number")
        )
        for number in planned:
            errors.add("invoices", _("%(n)s is already in a payment plan.") % {"n": number})
    if installments is None or installments < 1:
        errors.add("installments", _("Choose at least one installment."))
    elif installments > MOST_INSTALLMENTS_ASKED:
        errors.add(
            "installments",
            _("Choose at most %(n)d installments.") % {"n": MOST_INSTALLMENTS_ASKED},
        )
    last_first = today + dt.timedelta(days=settings.PORTAL_PLAN_FIRST_DUE_MAX_DAYS)
    if first_due_on is None:
        errors.add("first_due_on", _("Choose the date of the first installment."))
    elif first_due_on < today:
        errors.add("first_due_on", _("The date is in the past; choose today or later."))
    elif first_due_on > last_first:
        errors.add(
            "first_due_on",
            _("The first installment must be due by %(date)s.") % {"date": last_first.isoformat()},
        )
    errors.raise_any()
    if _open_total(rows) <= 0:
        raise ValidationError({"invoices": [_("Nothing is open on these invoices.")]})
    schedule = plan_schedule(rows, count=installments, first_due_on=first_due_on)
    currency = rows[0].currency
    total = _open_total(rows)
    with _console_language():
        reasons = why_a_manager_decides(total=total, currency=currency, schedule=schedule)
        with transaction.atomic():
            plan = plans.propose_plan(
                customer=customer,
                invoices=rows,
                installments=schedule,
                by=None,
                note=_("Asked for in the portal by %(who)s") % {"who": _who(contact)},
                today=today,
                approval_reason=_("asked for in the portal with %(reasons)s")
                % {"reasons": ", ".join(reasons)}
                if reasons
                else "",
            )
            accepted = plan.status == PaymentPlan.Status.ACTIVE
            _portal_entry(
                customer=customer,
                contact=contact,
                invoice=rows[0] if len(rows) == 1 else None,
                text=(
                    _("%(who)s asked for a plan of %(n)d installment(s) from %(date)s: accepted")
                    if accepted
                    else _(
                        "%(who)s asked for a plan of %(n)d installment(s) from %(date)s: "
                        "sent to a manager"
                    )
                )
                % {"who": _who(contact), "n": len(schedule), "date": first_due_on.isoformat()},
                details={
                    "action": "plan",
                    "plan": plan.pk,
                    "status": plan.status,
                    "reasons": reasons,
                },
            )
    # The reasons again in the debtor's language, for the page.
    reasons = (
        [] if accepted else why_a_manager_decides(total=total, currency=currency, schedule=schedule)
    )
    return PlanRequest(plan=plan, is_accepted=accepted, reasons=reasons)


# --- 4. Contact preferences ----------------------------------------------------------------

OPT_OUT_CHANNELS = ("email", "sms", "call")
# How the timeline names each channel ("opted out of SMS"); translated when written.
CHANNEL_WORDS = {
    "email": gettext_noop("e-mail"),
    "sms": gettext_noop("SMS"),
    "call": gettext_noop("calls"),
}


def mask_email(email: str) -> str:
    name, _at, domain = (email or "").partition("@")
    return f"{name[:1]}***@{domain}" if domain else ""


def mask_phone(phone: str) -> str:
    return f"***{phone[-3:]}" if phone else ""


def language_choices() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)


@transaction.atomic
def update_preferences(
    *,
    customer: Customer,
    contact: Contact | None,
    language: str,
    preferred_channel: str = "",
    email: str | None = None,
    phone: str | None = None,
    opted_out: Iterable[str] = (),
) -> list[str]:
    """Save the debtor's preferences; returns the names of what changed (may be empty).

    The customer's language (one of LANGUAGES) changes for every contact of the customer.
    The rest belongs to the contact and is refused without one (an old customer-level
    link): the preferred channel (e-mail, SMS, call or none; not one opted out of, and SMS
    or call only with a phone), the e-mail address (required: links and codes go there),
    the phone (E.164, in the customer's country unless given with +), and the opt-outs per
    channel: a channel in `opted_out` is opted out now (source "portal", the first date
    kept if already out), one not in it is opted back in.

    One portal entry lists what changed, with the new e-mail and phone masked.
    """
    errors = Refusals()
    opted_out = set(opted_out)
    if language not in dict(settings.LANGUAGES):
        errors.add("language", _("Choose one of the languages offered."))
    unknown = opted_out - set(OPT_OUT_CHANNELS)
    if unknown:
        errors.add("opted_out", _("Choose among e-mail, SMS and calls."))
    if contact is None:
        errors.raise_any()
        old = _set_language(customer, language)
        if old is None:
            return []
        with _console_language():
            _portal_entry(
                customer=customer,
                contact=None,
                text=_("%(who)s changed their preferences in the portal: %(changes)s")
                % {"who": _who(None), "changes": _language_line(old, language)},
                details={"action": "preferences", "language": language, "changed": ["language"]},
            )
        return ["language"]
    contact = Contact.objects.select_for_update().get(pk=contact.pk, customer=customer)
    if preferred_channel not in ("", *Contact.Channel.values):
        errors.add("preferred_channel", _("Choose one of the channels offered."))
    email = (contact.email if email is None else email).strip()
    if not email and contact.email:
        errors.add("email", _("Give an e-mail address: your links and codes are sent there."))
    elif email:
        try:
            validate_email(email)
        except ValidationError:
            errors.add("email", _("%(value)s is not an e-mail address.") % {"value": email})
    phone = (contact.phone if phone is None else phone).strip()
    if phone:
        try:
            phone = normalize_phone(phone, customer.country)
        except ValidationError as exc:
            for message in exc.messages:
                errors.add("phone", message)
    if preferred_channel in (Contact.Channel.SMS, Contact.Channel.CALL) and not phone:
        errors.add(
            "preferred_channel",
            _("Give a phone number to be reached by %(channel)s.")
            % {"channel": Contact.Channel(preferred_channel).label},
        )
    if preferred_channel == Contact.Channel.EMAIL and not email:
        errors.add("preferred_channel", _("Give an e-mail address to be reached by e-mail."))
    if preferred_channel and preferred_channel in opted_out:
        errors.add(
            "preferred_channel",
            _("You opted out of %(channel)s; choose another channel or opt back in.")
            % {"channel": Contact.Channel(preferred_channel).label},
        )
    errors.raise_any()
    changed, lines = [], []
    details: dict = {"action": "preferences"}
    old = _set_language(customer, language)
    if old is not None:
        changed.append("language")
        lines.append(_language_line(old, language))
        details["language"] = language
    if contact.preferred_channel != preferred_channel:
        changed.append("preferred_channel")
        details["preferred_channel"] = {"from": contact.preferred_channel, "to": preferred_channel}
        contact.preferred_channel = preferred_channel
        with _console_language():
            lines.append(
                _("preferred channel: %(channel)s")
                % {
                    "channel": Contact.Channel(preferred_channel).label
                    if preferred_channel
                    else _("none")
                }
            )
    if email.lower() != (contact.email or "").lower():
        changed.append("email")
        details["email"] = mask_email(email)
        contact.email = email
        with _console_language():
            lines.append(_("e-mail changed to %(masked)s") % {"masked": mask_email(email)})
    if phone != (contact.phone or ""):
        changed.append("phone")
        details["phone"] = mask_phone(phone)
        contact.phone = phone
        with _console_language():
            lines.append(
                _("phone changed to %(masked)s") % {"masked": mask_phone(phone)}
                if phone
                else _("phone removed")
            )
    now = timezone.now()
    for channel in OPT_OUT_CHANNELS:
        is_out = getattr(contact, f"{channel}_opted_out_at") is not None
        wants_out = channel in opted_out
        if is_out == wants_out:
            continue
        changed.append(f"{channel}_opted_out")
        details[f"{channel}_opted_out"] = wants_out
        setattr(contact, f"{channel}_opted_out_at", now if wants_out else None)
        setattr(contact, f"{channel}_opt_out_source", PORTAL_SOURCE if wants_out else "")
        with _console_language():
            lines.append(
                (_("opted out of %(channel)s") if wants_out else _("opted back in to %(channel)s"))
                % {"channel": _(CHANNEL_WORDS[channel])}
            )
    if not changed:
        return []
    services.save_contact(contact=contact, by=None)
    details["changed"] = changed
    with _console_language():
        entry = _portal_entry(
            customer=customer,
            contact=contact,
            text=_("%(who)s changed their preferences in the portal: %(changes)s")
            % {"who": _who(contact), "changes": "; ".join(lines)},
            details=details,
        )
        if {"email", "phone"} & set(changed):
            # Where links, codes and reminders go has changed: a person confirms it is the
            # debtor (a forwarded link in the wrong hands could redirect them).
            case_tasks.create_task(
                customer=customer,
                kind=Task.Kind.REVIEW,
                title=_("Check the contact details %(who)s changed in the portal: %(changes)s")
                % {"who": _who(contact), "changes": "; ".join(lines)},
                due_at=case_tasks.due_at_end_of(timezone.localdate() + dt.timedelta(days=1)),
                source=f"portal:contact-details:{contact.pk}:{entry.pk}",
                details={"contact_id": contact.pk, "changed": changed},
            )
    return changed


def _language_line(old: str, new: str) -> str:
    with _console_language():
        return _("language %(old)s → %(new)s") % {"old": old, "new": new}


def _set_language(customer: Customer, language: str) -> str | None:
    """Set the customer's language; the language it had, or None when unchanged."""
    stored = Customer.objects.select_for_update().get(pk=customer.pk)
    old = stored.language
    if old == language:
        return None
    stored.language = language
    services.save_customer(customer=stored, by=None)
    customer.language = language
    return old
