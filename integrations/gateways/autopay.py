"""Automatic payment: the debtor saves a card or a bank-debit mandate through Stripe, and
each of their invoices is charged to it on its due date, with retries and an e-mail on
every charge, failure, set-up and cancellation.

Set-up (`start_setup`): a Stripe Checkout Session in setup mode (Stripe makes the
SetupIntent and shows the card or mandate form; no JavaScript of ours), for the payment
method types in AUTOPAY_PAYMENT_METHOD_TYPES. The signed Stripe webhook's events about it
(checkout.session.completed in setup mode, setup_intent.succeeded; either, both, or
replayed) make one active mandate (`activate`), replacing the customer's previous one.

Charging (`charge_due`, daily): see its docstring. A success is booked through the same
path as Stripe's payment_intent.succeeded (the PaymentIntent id is the payment's key), so
the webhook that follows finds it booked. SEPA and ACH debits answer *processing*: they
are neither retried nor booked until Stripe's payment_intent.succeeded or
payment_intent.payment_failed arrives (`on_stripe_event`).

Cancel (`cancel`): by a person in the console or by the debtor on the portal. It stops
our charges; the payment method stays saved at Stripe unless the debtor removes it there
(we detach nothing they did not ask us to).

Without STRIPE_API_KEY automatic payment is unavailable (`is_available`): nothing here
calls Stripe, the portal does not offer it and the daily run charges nothing.
"""

import datetime as dt
import logging
from dataclasses import dataclass, field

import stripe
from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts import timeline
from accounts.models import Activity, Contact, Customer, Invoice
from cases import case_tasks
from cases.models import Task
from dunning import rendering, transactional
from dunning.holds import held_invoices

from ..models import AutopayCharge, AutopayMandate
from . import events, stripe_events
from .minor_units import to_minor_units

logger = logging.getLogger(__name__)

CANCEL_PERMISSION = "integrations.cancel_mandate"
OPEN = (Invoice.Status.OPEN, Invoice.Status.PARTIALLY_PAID)
# What a bank debit can be charged in; a card takes any currency.
METHOD_CURRENCIES = {"sepa_debit": ("EUR",), "us_bank_account": ("USD",)}
SETUP_EVENTS = ("checkout.session.completed", "setup_intent.succeeded")
CHARGE_EVENTS = (
    "payment_intent.succeeded",
    "payment_intent.processing",
    "payment_intent.payment_failed",
)
# Stripe forgets an idempotency key after 24 hours; a charge is asked again only before.
STRIPE_KEY_LIFETIME = dt.timedelta(hours=23)
# Charges no run may start again: one is under way, or the invoice was paid by it.
BUSY = (
    AutopayCharge.Status.PENDING,
    AutopayCharge.Status.PROCESSING,
    AutopayCharge.Status.SUCCEEDED,
)


class AutopayUnavailable(Exception):
    """Automatic payment is not configured (no STRIPE_API_KEY)."""


def is_available() -> bool:
    return bool(settings.STRIPE_API_KEY)


def method_types() -> list[str]:
    allowed = set(AutopayMandate.MethodType.values)
    return [t for t in settings.AUTOPAY_PAYMENT_METHOD_TYPES if t in allowed]


def active_mandate(customer: Customer) -> AutopayMandate | None:
    return AutopayMandate.objects.filter(
        customer=customer, status=AutopayMandate.Status.ACTIVE
    ).first()


# --- set-up -------------------------------------------------------------------------------


def start_setup(customer: Customer, contact: Contact, return_url: str) -> str:
    """A Stripe Checkout page (setup mode) where the contact saves a payment method; its URL.

    1. Refuse when Stripe is not configured, the contact is not the customer's, or no
       payment method type is allowed.
    2. The Stripe customer: the one of this customer's earlier mandates, else a new one
       (an idempotency key per customer, so a double click makes one).
    3. The session, whose metadata (and its SetupIntent's) names our customer and contact,
       so the webhook knows whose mandate it is. It comes back to `return_url`.
    """
    if not is_available():
        raise AutopayUnavailable("STRIPE_API_KEY is not set")
    if contact.customer_id != customer.pk:
        raise ValidationError({"contact": _("This contact does not belong to the customer.")})
    types = method_types()
    if not types:
        raise ValidationError(
            {"AUTOPAY_PAYMENT_METHOD_TYPES": _("No payment method type is allowed.")}
        )
    if not return_url.startswith(("https://", "http://")):
        raise ValidationError({"return_url": _("An absolute URL is needed.")})
    stripe_customer = _stripe_customer(customer, contact)
    metadata = {
        "autopay_customer": str(customer.pk),
        "autopay_contact": str(contact.pk),
        "customer_ref": customer.external_ref,
    }
    separator = "&" if "?" in return_url else "?"
    session = stripe.checkout.Session.create(
        api_key=settings.STRIPE_API_KEY,
        mode="setup",
        customer=stripe_customer,
        payment_method_types=types,
        success_url=f"{return_url}{separator}autopay=done",
        cancel_url=return_url,
        metadata=metadata,
        setup_intent_data={"metadata": metadata},
        locale=_stripe_locale(customer.language),
    )
    timeline.add(
        Activity.Kind.PORTAL,
        customer=customer,
        text=_("%(contact)s began setting up automatic payment") % {"contact": contact.name},
        details={"autopay": "setup_started", "contact": contact.pk, "session": session.id},
    )
    return session.url


def _stripe_customer(customer: Customer, contact: Contact) -> str:
    earlier = (
        AutopayMandate.objects.filter(customer=customer)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if earlier:
        return earlier
    created = stripe.Customer.create(
        api_key=settings.STRIPE_API_KEY,
        idempotency_key=f"autopay-customer:{customer.pk}",
        name=customer.name,
        email=contact.email or None,
        metadata={"customer_ref": customer.external_ref, "autopay_customer": str(customer.pk)},
    )
    return created.id


def _stripe_locale(language: str) -> str:
    code = (language or "").split("-")[0].lower()
    return code if code in ("en", "de", "fr", "es") else "auto"


def activate(setup_intent: dict) -> tuple[AutopayMandate | None, str]:
    """Make the mandate a succeeded SetupIntent saved (with `payment_method` expanded or an
    id); (mandate, note). Idempotent: the same SetupIntent again returns its mandate.

    1. Read our customer and contact from the SetupIntent's metadata; anything else (not
       ours, not succeeded, no payment method) changes nothing and says why.
    2. Lock the customer, so two events about one SetupIntent, or two set-ups at once,
       are applied one after the other; a mandate for this SetupIntent already: done.
    3. Cancel the customer's active mandate ("replaced"), create the new one, and write
       the timeline, in one transaction; the `autopay_set_up` e-mail after the commit.
    """
    metadata = setup_intent.get("metadata") or {}
    customer_id = str(metadata.get("autopay_customer") or "")
    if not customer_id.isdigit():
        return None, "not an automatic payment set-up"
    if setup_intent.get("status") != "succeeded":
        return None, f"setup intent {setup_intent.get('status')}"
    method = setup_intent.get("payment_method")
    if isinstance(method, str) and method:
        method = _as_dict(stripe.PaymentMethod.retrieve(method, api_key=settings.STRIPE_API_KEY))
    if not isinstance(method, dict) or not method.get("id"):
        return None, "setup intent without a payment method"
    contact_id = str(metadata.get("autopay_contact") or "")
    with transaction.atomic():
        customer = Customer.objects.select_for_update().filter(pk=int(customer_id)).first()
        if customer is None:
            return None, "customer not found"
        existing = AutopayMandate.objects.filter(setup_intent_id=setup_intent["id"]).first()
        if existing is not None:
            return existing, "already set up"
        contact = (
            customer.contacts.filter(pk=int(contact_id)).first() if contact_id.isdigit() else None
        )
        method_type = method.get("type", "")
        if method_type not in AutopayMandate.MethodType.values:
            return None, f"payment method type {method_type} is not supported"
        display = describe(method)
        previous = active_mandate(customer)
        if previous is not None:
            _close(previous, by_contact=contact, reason=_("replaced by %(d)s") % {"d": display})
        mandate = AutopayMandate.objects.create(
            customer=customer,
            contact=contact,
            stripe_customer_id=_stripe_id(setup_intent.get("customer") or method.get("customer")),
            payment_method_id=method["id"],
            setup_intent_id=setup_intent["id"],
            method_type=method_type,
            display=display,
        )
        timeline.add(
            Activity.Kind.STATUS_CHANGE,
            customer=customer,
            text=_("Automatic payment set up with %(method)s by %(who)s")
            % {"method": display, "who": contact.name if contact else _("the debtor")},
            details={"autopay": "set_up", "mandate": mandate.pk, "contact": contact_id},
        )
        _notify(
            "autopay_set_up",
            mandate,
            key=f"autopay:set_up:{mandate.pk}",
            context={"charges_overdue": settings.AUTOPAY_CHARGE_OVERDUE},
        )
    return mandate, f"mandate #{mandate.pk} active"


def describe(method: dict) -> str:
    """How a payment method is shown: "Visa •••• 4242", "SEPA Direct Debit •••• 3000"."""
    kind = method.get("type")
    details = method.get(kind) or {}
    last4 = details.get("last4") or ""
    if kind == "card":
        brand = str(details.get("display_brand") or details.get("brand") or "card")
        name = brand.replace("_", " ").title() if brand != "amex" else "American Express"
    elif kind == "sepa_debit":
        name = "SEPA Direct Debit"
    elif kind == "us_bank_account":
        name = str(details.get("bank_name") or "US bank account")
    else:
        name = str(kind or "")
    return f"{name} •••• {last4}" if last4 else name


# --- charging -----------------------------------------------------------------------------


@dataclass
class ChargeRun:
    charged: int = 0
    processing: int = 0
    failed: int = 0
    skipped: int = 0
    charges: list[int] = field(default_factory=list)


def chargeable(on: dt.date):
    """The invoices to charge on `on`, each with its customer's active mandate
    (`autopay_mandate_id`) and whether this is a retry (`autopay_retry`). One query.

    Open with a balance, due on or before `on`; the customer active, not bankrupt, not in
    dispute and not excluded from automation; no invoice hold (a pause, an open promise,
    a payment plan, an open dispute: dunning/holds.py); a currency the method takes; no
    charge under way or paid; and either never charged to this mandate, or a failed
    charge's retry is due. With AUTOPAY_CHARGE_OVERDUE off, only invoices due on or after
    the day the mandate was set up.
    """
    mandates = AutopayMandate.objects.filter(
        customer=OuterRef("customer"), status=AutopayMandate.Status.ACTIVE
    )
    charges = AutopayCharge.objects.filter(invoice=OuterRef("pk"))
    this_mandate = charges.filter(mandate=OuterRef("autopay_mandate_id"))
    invoices = (
        Invoice.objects.filter(
            status__in=OPEN,
            open_balance__gt=0,
            due_on__lte=on,
            customer__status=Customer.Status.ACTIVE,
            customer__is_bankrupt=False,
            customer__is_in_dispute=False,
            customer__is_excluded_from_automation=False,
        )
        .annotate(
            autopay_mandate_id=Subquery(mandates.values("pk")[:1]),
            autopay_method=Subquery(mandates.values("method_type")[:1]),
            autopay_since=Subquery(mandates.values("created_at")[:1]),
            autopay_retry=Exists(
                this_mandate.filter(status=AutopayCharge.Status.FAILED, next_retry_on__lte=on)
            ),
        )
        .filter(autopay_mandate_id__isnull=False)
        .exclude(held_invoices(on))
        .exclude(Exists(charges.filter(status__in=BUSY)))
        .filter(Q(autopay_retry=True) | ~Exists(this_mandate))
    )
    for method, currencies in METHOD_CURRENCIES.items():
        invoices = invoices.exclude(Q(autopay_method=method) & ~Q(currency__in=currencies))
    if not settings.AUTOPAY_CHARGE_OVERDUE:
        invoices = invoices.filter(due_on__gte=TruncDate("autopay_since"))
    return invoices.select_related("customer").order_by("due_on", "pk")


def charge_due(*, on: dt.date | None = None) -> ChargeRun:
    """Charge every invoice due for automatic payment on `on` (the daily job).

    1. Charges left *pending* by a run that stopped during the Stripe call are sent again
       with the same idempotency key: Stripe answers with the PaymentIntent it made, or
       makes it now; never a second one.
       Stripe keeps idempotency keys for 24 hours: a charge pending longer than
       STRIPE_KEY_LIFETIME is not sent again (that could charge twice); it fails without a
       retry and the agent checks it in Stripe (`_unanswered`). Stripe's own events still
       settle it if a PaymentIntent was made (found by its metadata).
    2. Each invoice of `chargeable(on)`: its next attempt (`charge_invoice`).
    """
    on = on or timezone.localdate()
    run = ChargeRun()
    if not is_available():
        return run
    wall = timezone.now()
    for charge in AutopayCharge.objects.filter(
        status=AutopayCharge.Status.PENDING, created_at__lt=wall - dt.timedelta(minutes=5)
    ).select_related("mandate", "invoice__customer"):
        if charge.created_at < wall - STRIPE_KEY_LIFETIME:
            _count(run, _unanswered(charge, on=on))
        else:
            _count(run, _confirm(charge, on=on))
    for invoice in chargeable(on):
        mandate = AutopayMandate.objects.get(pk=invoice.autopay_mandate_id)
        _count(run, charge_invoice(invoice, mandate=mandate, on=on))
    return run


def _unanswered(charge: AutopayCharge, *, on: dt.date) -> AutopayCharge:
    """A charge Stripe never answered within its key's lifetime: failed, and a task."""
    invoice = charge.invoice
    with transaction.atomic():
        if _move(
            charge,
            (AutopayCharge.Status.PENDING,),
            AutopayCharge.Status.FAILED,
            failure_reason="no answer from Stripe: check for a PaymentIntent before charging again",
        ):
            case_tasks.create_task(
                customer=invoice.customer,
                kind=Task.Kind.REVIEW,
                title=(
                    _("Check in Stripe whether automatic payment #%(pk)s of %(n)s was charged")
                    % {"pk": charge.pk, "n": invoice.number}
                )[:200],
                due_at=case_tasks.due_at_end_of(on),
                source=f"autopay:unanswered:{charge.pk}",
                details={"invoice": invoice.number, "charge": charge.pk},
            )
    return charge


def _count(run: ChargeRun, charge: AutopayCharge | None) -> None:
    if charge is None:
        run.skipped += 1
        return
    run.charges.append(charge.pk)
    if charge.status == AutopayCharge.Status.SUCCEEDED:
        run.charged += 1
    elif charge.status == AutopayCharge.Status.PROCESSING:
        run.processing += 1
    elif charge.status == AutopayCharge.Status.FAILED:
        run.failed += 1


def charge_invoice(
    invoice: Invoice, *, mandate: AutopayMandate, on: dt.date
) -> AutopayCharge | None:
    """One attempt to charge the invoice's open balance to the mandate; the charge, or None
    when another worker got there first or nothing is left to charge.

    1. In one transaction: lock the invoice, check it still owes and that no charge is
       under way or paid, consume the due retry of the previous attempt, and insert this
       attempt (unique per invoice and attempt: a second worker's insert fails, it walks
       away).
    2. Outside any transaction: the off-session PaymentIntent, confirmed at once, with the
       idempotency key autopay:<invoice>:<attempt> (`_confirm`).
    """
    with transaction.atomic():
        locked = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if locked.status not in OPEN or locked.open_balance <= 0:
            return None
        if AutopayCharge.objects.filter(invoice=locked, status__in=BUSY).exists():
            return None
        last = AutopayCharge.objects.filter(invoice=locked).order_by("-attempt").first()
        AutopayCharge.objects.filter(invoice=locked, next_retry_on__isnull=False).update(
            next_retry_on=None, updated_at=timezone.now()
        )
        try:
            with transaction.atomic():
                charge = AutopayCharge.objects.create(
                    mandate=mandate,
                    invoice=locked,
                    amount=locked.open_balance,
                    currency=locked.currency,
                    attempt=(last.attempt + 1) if last else 1,
                )
        except IntegrityError:
            return None
    charge.invoice = locked
    locked.customer = invoice.customer
    return _confirm(charge, on=on)


def _confirm(charge: AutopayCharge, *, on: dt.date) -> AutopayCharge:
    """Create and confirm the charge's PaymentIntent (same key on every try) and record
    what Stripe answered."""
    invoice, mandate = charge.invoice, charge.mandate
    try:
        intent = stripe.PaymentIntent.create(
            api_key=settings.STRIPE_API_KEY,
            idempotency_key=f"autopay:{invoice.pk}:{charge.attempt}",
            amount=to_minor_units(charge.amount, charge.currency),
            currency=charge.currency.lower(),
            customer=mandate.stripe_customer_id,
            payment_method=mandate.payment_method_id,
            payment_method_types=[mandate.method_type],
            off_session=True,
            confirm=True,
            description=_("Invoice %(n)s") % {"n": invoice.number},
            metadata={
                "invoice_number": invoice.number,
                "customer_ref": invoice.customer.external_ref,
                "autopay_charge": str(charge.pk),
            },
        )
        intent = _as_dict(intent)
    except stripe.CardError as exc:  # declined: Stripe still made the PaymentIntent
        failed_intent = _as_dict(getattr(exc, "payment_intent", None) or {})
        if not failed_intent and getattr(exc, "error", None) is not None:
            failed_intent = _as_dict(getattr(exc.error, "payment_intent", None) or {})
        _set_intent(charge, _stripe_id(failed_intent.get("id")))
        reason = exc.user_message or str(exc.code or "") or _("declined")
        return record_failure(charge, reason=reason, on=on)
    except stripe.InvalidRequestError as exc:  # e.g. a detached method: not retried as is
        return record_failure(charge, reason=exc.user_message or str(exc), on=on)
    except stripe.StripeError:
        # Unknown whether Stripe made it: left pending, the next run asks with the same key.
        logger.exception("autopay: charge %s left pending", charge.pk)
        return charge
    _set_intent(charge, intent.get("id", ""))
    return apply_intent(charge, intent, on=on)


def _set_intent(charge: AutopayCharge, intent_id: str) -> None:
    if intent_id and charge.payment_intent_id != intent_id:
        AutopayCharge.objects.filter(pk=charge.pk).update(payment_intent_id=intent_id)
        charge.payment_intent_id = intent_id


def apply_intent(charge: AutopayCharge, intent: dict, *, on: dt.date) -> AutopayCharge:
    """Record a PaymentIntent's state on its charge: succeeded (booked), processing (bank
    debit: wait for the webhook) or failed (a retry, or the agent's task)."""
    status = intent.get("status")
    if status == "succeeded":
        return record_success(charge, intent, on=on)
    if status == "processing":
        with transaction.atomic():
            if _move(charge, (AutopayCharge.Status.PENDING,), AutopayCharge.Status.PROCESSING):
                timeline.add(
                    Activity.Kind.STATUS_CHANGE,
                    customer=charge.invoice.customer,
                    invoice=charge.invoice,
                    text=_(
                        "Automatic payment of %(currency)s %(amount)s: %(method)s debit under way"
                    )
                    % _words(charge),
                    details={"autopay": "processing", "charge": charge.pk},
                )
        return charge
    error = intent.get("last_payment_error") or {}
    if status == "requires_action":
        reason = _("the bank asks the debtor to confirm the payment")
    else:
        reason = error.get("message") or error.get("code") or str(status or _("declined"))
    return record_failure(charge, reason=reason, on=on)


def _move(charge: AutopayCharge, from_statuses, to_status, **fields) -> bool:
    """A conditional UPDATE of the charge's status; False if another process moved it."""
    moved = AutopayCharge.objects.filter(pk=charge.pk, status__in=from_statuses).update(
        status=to_status, updated_at=timezone.now(), **fields
    )
    if moved:
        charge.status = to_status
        for name, value in fields.items():
            setattr(charge, name, value)
    return bool(moved)


def record_success(charge: AutopayCharge, intent: dict, *, on: dt.date) -> AutopayCharge:
    """Paid: book it through Stripe's payment path (once per PaymentIntent, whichever of
    this and the webhook comes first), then the receipt."""
    with transaction.atomic():
        if not _move(
            charge,
            # Failed too: a charge we gave up on (no answer) that Stripe says was paid.
            (
                AutopayCharge.Status.PENDING,
                AutopayCharge.Status.PROCESSING,
                AutopayCharge.Status.FAILED,
            ),
            AutopayCharge.Status.SUCCEEDED,
            next_retry_on=None,
        ):
            return charge
        movement = stripe_events.translate_stripe_event(
            {"type": "payment_intent.succeeded", "data": {"object": intent}}
        )
        if isinstance(movement, events.MoneyMovement):
            events.apply_movement(
                provider=events.STRIPE,
                movement=movement,
                event_id=f"autopay:{intent.get('id')}",
                translate=stripe_events.translate_stripe_event,
            )
        _notify(
            "autopay_charged",
            charge.mandate,
            key=f"autopay:charge:{charge.pk}:charged",
            context=_words(charge),
            invoices=[charge.invoice],
        )
    return charge


def record_failure(charge: AutopayCharge, *, reason: str, on: dt.date) -> AutopayCharge:
    """Failed: the next try AUTOPAY_RETRY_DAYS after this one, or none left: the agent's
    task. The debtor gets the `autopay_failed` e-mail either way."""
    days = settings.AUTOPAY_RETRY_DAYS
    retry_on = (
        on + dt.timedelta(days=days[charge.attempt - 1]) if charge.attempt <= len(days) else None
    )
    if not charge.mandate.is_active:
        retry_on = None
    reason = (reason or "")[:300]
    with transaction.atomic():
        if not _move(
            charge,
            (AutopayCharge.Status.PENDING, AutopayCharge.Status.PROCESSING),
            AutopayCharge.Status.FAILED,
            failure_reason=reason,
            next_retry_on=retry_on,
        ):
            return charge
        invoice = charge.invoice
        words = _words(charge, reason=reason, retry_on=retry_on)
        timeline.add(
            Activity.Kind.ALERT,
            customer=invoice.customer,
            invoice=invoice,
            text=_(
                "Automatic payment of %(currency)s %(amount)s failed (%(reason)s), "
                "attempt %(attempt)s"
            )
            % {**words, "attempt": charge.attempt}
            + (
                _("; next try on %(date)s") % {"date": retry_on.isoformat()}
                if retry_on
                else _("; no more tries")
            ),
            details={
                "autopay": "failed",
                "charge": charge.pk,
                "attempt": charge.attempt,
                "next_retry_on": retry_on.isoformat() if retry_on else None,
            },
        )
        if retry_on is None:
            case_tasks.create_task(
                customer=invoice.customer,
                kind=Task.Kind.CALL,
                title=(
                    _("Automatic payment of %(n)s failed %(count)s times: %(reason)s")
                    % {"n": invoice.number, "count": charge.attempt, "reason": reason}
                )[:200],
                due_at=case_tasks.due_at_end_of(on + dt.timedelta(days=1)),
                source=f"autopay:gave-up:{invoice.pk}:{charge.mandate_id}",
                details={"invoice": invoice.number, "charge": charge.pk, "reason": reason},
            )
        _notify(
            "autopay_failed",
            charge.mandate,
            key=f"autopay:charge:{charge.pk}:failed",
            context=words,
            invoices=[invoice],
        )
    return charge


def _words(charge: AutopayCharge, *, reason: str = "", retry_on: dt.date | None = None) -> dict:
    """The variables of the charge's e-mails (and its timeline texts)."""
    invoice = charge.invoice
    with translation.override(invoice.customer.language or settings.LANGUAGE_CODE):
        amount_display = rendering.amount_display(charge.amount, charge.currency)
        retry_display = rendering.date_display(retry_on) if retry_on else ""
    return {
        "method": charge.mandate.display,
        "invoice_number": invoice.number,
        "amount": str(charge.amount),
        "amount_display": amount_display,
        "currency": charge.currency,
        "reason": reason,
        "next_retry_on_display": retry_display,
    }


# --- Stripe's events ----------------------------------------------------------------------


def apply_stored(item) -> str:
    """The worker's handler of a stored Stripe event: the payment pipeline
    (`stripe_events.apply_stored`), then what the event means for automatic payment."""
    note = stripe_events.apply_stored(item)
    autopay_note = on_stripe_event(item.payload)
    return f"{note} {autopay_note}".strip()


def on_stripe_event(event: dict) -> str:
    """What a (verified, stored) Stripe event means for automatic payment; "" for none.

    Called for every Stripe event after the payment pipeline applied it (so a
    payment_intent.succeeded is already booked). Idempotent: a mandate per SetupIntent,
    charges moved by conditional updates from the states they may leave.
    """
    event_type = event.get("type", "")
    obj = (event.get("data") or {}).get("object")
    if not isinstance(obj, dict) or event_type not in (*SETUP_EVENTS, *CHARGE_EVENTS):
        return ""
    if event_type == "checkout.session.completed":
        if obj.get("mode") != "setup" or not obj.get("setup_intent"):
            return ""
        intent = obj["setup_intent"]
        if isinstance(intent, str):
            if not is_available():
                return "autopay: Stripe not configured"
            intent = stripe.SetupIntent.retrieve(
                intent, expand=["payment_method"], api_key=settings.STRIPE_API_KEY
            )
        return "autopay: " + activate(_as_dict(intent))[1]
    if event_type == "setup_intent.succeeded":
        if not (obj.get("metadata") or {}).get("autopay_customer"):
            return ""
        return "autopay: " + activate(obj)[1]
    intent_id = _stripe_id(obj.get("id"))
    charge_id = str((obj.get("metadata") or {}).get("autopay_charge") or "")
    found = Q(payment_intent_id=intent_id) if intent_id else Q(pk__in=[])
    if charge_id.isdigit():  # a PaymentIntent whose creation we never heard back about
        found |= Q(pk=int(charge_id), payment_intent_id="")
    charge = (
        AutopayCharge.objects.filter(found).select_related("mandate", "invoice__customer").first()
    )
    if charge is None:
        return ""
    _set_intent(charge, intent_id)
    on = timezone.localdate()
    if event_type == "payment_intent.payment_failed" and obj.get("status") != "succeeded":
        charge = record_failure(charge, reason=_failure_reason(obj), on=on)
    else:
        charge = apply_intent(charge, obj, on=on)
    return f"autopay: charge #{charge.pk} {charge.status}"


def _failure_reason(intent: dict) -> str:
    error = intent.get("last_payment_error") or {}
    return str(error.get("message") or error.get("code") or _("declined"))


# --- cancelling ---------------------------------------------------------------------------


def cancel(mandate: AutopayMandate, by, reason: str) -> AutopayMandate:
    """Stop charging this mandate: `by` is a staff user (the console, with the
    integrations.cancel_mandate permission) or the debtor's Contact (the portal).

    The charges under way (a SEPA debit processing) finish as Stripe decides; no new ones
    and no retries. The payment method stays saved at Stripe. Timeline entry, and the
    `autopay_cancelled` e-mail to the contact who set it up.
    """
    reason = (reason or "").strip()
    by_contact = by if isinstance(by, Contact) else None
    by_user = None if by_contact is not None else by
    if by_contact is not None and by_contact.customer_id != mandate.customer_id:
        raise PermissionDenied(_("This is not your automatic payment."))
    if by_user is not None and not by_user.has_perm(CANCEL_PERMISSION):
        raise PermissionDenied(_("You do not have permission to do this."))
    if by_user is not None and not reason:
        raise ValidationError({"reason": _("Say why.")})
    with transaction.atomic():
        locked = (
            AutopayMandate.objects.select_for_update().select_related("customer").get(pk=mandate.pk)
        )
        if not locked.is_active:
            raise ValidationError({"mandate": _("This automatic payment is already cancelled.")})
        _close(locked, by_user=by_user, by_contact=by_contact, reason=reason)
    mandate.refresh_from_db()
    return mandate


def _close(mandate: AutopayMandate, *, by_user=None, by_contact=None, reason: str) -> None:
    """Cancel an active mandate (locked by the caller): its row, its due retries, the
    timeline and, after the commit, the e-mail."""
    now = timezone.now()
    mandate.status = AutopayMandate.Status.CANCELLED
    mandate.cancelled_at = now
    mandate.cancelled_by = by_user
    mandate.cancelled_by_contact = by_contact
    mandate.cancel_reason = reason[:300]
    mandate.save(
        update_fields=[
            "status",
            "cancelled_at",
            "cancelled_by",
            "cancelled_by_contact",
            "cancel_reason",
        ]
    )
    AutopayCharge.objects.filter(mandate=mandate, next_retry_on__isnull=False).update(
        next_retry_on=None, updated_at=now
    )
    who = by_contact.name if by_contact else (by_user.get_username() if by_user else _("system"))
    timeline.add(
        Activity.Kind.STATUS_CHANGE,
        customer=mandate.customer,
        by=by_user,
        text=_("Automatic payment with %(method)s cancelled by %(who)s%(why)s")
        % {"method": mandate.display, "who": who, "why": f": {reason}" if reason else ""},
        details={
            "autopay": "cancelled",
            "mandate": mandate.pk,
            "contact": by_contact.pk if by_contact else None,
            "reason": reason,
        },
        at=now,
    )
    _notify("autopay_cancelled", mandate, key=f"autopay:cancelled:{mandate.pk}", context={})


# --- e-mails ------------------------------------------------------------------------------


def _notify(kind: str, mandate: AutopayMandate, *, key: str, context: dict, invoices=()) -> None:
    """Send the kind's transactional e-mail to the contact who set the mandate up (else the
    customer's primary contact), once the current transaction has committed."""
    contact = mandate.contact or (
        mandate.customer.contacts.exclude(email="").order_by("-is_primary", "id").first()
    )
    if contact is None:
        logger.warning("autopay: no contact for %s of mandate %s", kind, mandate.pk)
        return
    full = {"method": mandate.display, **context}
    if kind == "autopay_failed":
        full["pay_link"] = next((i.pay_link for i in invoices if i.pay_link), "")
    customer = mandate.customer

    def send() -> None:
        transactional.send(
            kind, customer=customer, contact=contact, context=full, key=key, invoices=invoices
        )

    transaction.on_commit(send, robust=True)


def _as_dict(value) -> dict:
    if isinstance(value, dict):
        return value
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return {}


def _stripe_id(value) -> str:
    if isinstance(value, dict):
        return str(value.get("id") or "")
    if hasattr(value, "id"):
        return str(value.id or "")
    return value if isinstance(value, str) else ""
