"""The collections ledger: customers, contacts, invoices, payments, allocations, timeline."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .aging import DaysBetween, aging_bucket, bucket_expression, days_past_due, due_on_range
from .money import validate_currency

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not an IANA time zone (e.g. Europe/Berlin)."),
            code="invalid_timezone",
            params={"value": value},
        )


def normalize_phone(raw: str, default_region: str = "") -> str:
    """Return the number in E.164 (+14155550123), or raise ValidationError naming the input."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _("%(value)s is not a phone number: %(reason)s"),
            code="invalid_phone",
            params={"value": raw, "reason": str(exc)},
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("%(value)s is not a valid phone number; use international form (+44 20 7946 0000)."),
            code="invalid_phone",
            params={"value": raw},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class RiskBand(models.TextChoices):
    LOW = "low", _("Low")
    MEDIUM = "medium", _("Medium")
    HIGH = "high", _("High")


class Customer(models.Model):
    """The debtor account."""

    class Kind(models.TextChoices):
        BUSINESS = "business", _("Business")
        CONSUMER = "consumer", _("Consumer")

    class Segment(models.TextChoices):
        STRATEGIC = "strategic", _("Strategic")
        STANDARD = "standard", _("Standard")
        HIGH_RISK = "high_risk", _("High risk")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        PLACED_WITH_AGENCY = "placed_with_agency", _("Placed with agency")
        WRITTEN_OFF = "written_off", _("Written off")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=200)
    source = models.CharField(_("source"), max_length=40, default="manual")
    external_ref = models.CharField(_("external reference"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind, default=Kind.BUSINESS)
    segment = models.CharField(
        _("segment"), max_length=12, choices=Segment, default=Segment.STANDARD
    )
    industry = models.CharField(_("industry"), max_length=80, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text="ISO 3166 code")
    # db_default too: bulk COPY writers that do not name a column get it from the database.
    postal_address = models.TextField(_("postal address"), blank=True, default="", db_default="")
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    language = models.CharField(_("language"), max_length=8, default="en")
    currency = models.CharField(
        _("default currency"), max_length=3, default="USD", validators=[validate_currency]
    )
    credit_limit = models.DecimalField(_("credit limit"), **MONEY, null=True, blank=True)
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assigned agent"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_customers",
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.ACTIVE)
    dunning_paused_until = models.DateField(_("dunning paused until"), null=True, blank=True)
    dunning_pause_reason = models.CharField(_("pause reason"), max_length=200, blank=True)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    cease_communication = models.BooleanField(_("cease communication"), default=False)
    is_in_dispute = models.BooleanField(_("in dispute"), default=False)
    is_in_payment_plan = models.BooleanField(_("in payment plan"), default=False)
    is_bankrupt = models.BooleanField(_("bankrupt"), default=False)
    dunning_policy = models.ForeignKey(
        "dunning.Policy",
        verbose_name=_("dunning policy"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="customers",
        help_text=_("Empty: the policy of the customer's segment."),
    )
    is_excluded_from_automation = models.BooleanField(
        _("excluded from automatic dunning"), default=False, db_default=False
    )
    # The risk score (accounts/risk.py): 0-100, higher is riskier, with the factors behind it.
    risk_score = models.PositiveSmallIntegerField(_("risk score"), null=True, blank=True)
    risk_band = models.CharField(
        _("risk band"), max_length=8, choices=RiskBand, blank=True, default="", db_default=""
    )
    risk_factors = models.JSONField(_("risk factors"), null=True, blank=True)
    risk_scored_at = models.DateTimeField(_("risk scored at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("customer")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_ref"],
                condition=~Q(external_ref=""),
                name="customer_external_ref_unique_per_source",
            ),
            models.CheckConstraint(
                condition=Q(credit_limit__isnull=True) | Q(credit_limit__gte=0),
                name="customer_credit_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(dunning_paused_until__isnull=True) | ~Q(dunning_pause_reason=""),
                name="customer_pause_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["assigned_agent", "name"]),
            models.Index(fields=["segment"]),
            models.Index(fields=["name", "id"], name="customer_name_id"),
            models.Index(Upper("name"), name="customer_name_upper"),
            models.Index(
                fields=["external_ref"],
                condition=~Q(external_ref=""),
                name="customer_external_ref",
            ),
        ]
        permissions = [
            ("log_activity", "Can add notes and log calls"),
            ("assign_customer", "Can assign customers to agents"),
            ("pause_dunning", "Can pause and resume dunning"),
            ("pause_dunning_unlimited", "Can pause dunning beyond the agent limit"),
            ("work_all_customers", "Can work customers assigned to other agents"),
        ]

    def __str__(self):
        return self.name

    def is_dunning_paused(self, on: dt.date) -> bool:
        return self.dunning_paused_until is not None and on <= self.dunning_paused_until

    @property
    def holds(self) -> list[str]:
        """The hold flags that are set, in words, for lists and notices."""
        flags = [
            (self.do_not_contact, _("do not contact")),
            (self.cease_communication, _("cease communication")),
            (self.is_in_dispute, _("in dispute")),
            (self.is_in_payment_plan, _("in payment plan")),
            (self.is_bankrupt, _("bankrupt")),
            (self.status != self.Status.ACTIVE, self.get_status_display()),
        ]
        return [str(label) for is_set, label in flags if is_set]


class Contact(models.Model):
    """A person at the customer; phone numbers are stored in E.164."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        CALL = "call", _("Call")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=200)
    role = models.CharField(_("role"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=16, blank=True, help_text="E.164")
    is_primary = models.BooleanField(_("primary"), default=False)
    email_opted_out_at = models.DateTimeField(null=True, blank=True)
    email_opt_out_source = models.CharField(max_length=100, blank=True)
    sms_opted_out_at = models.DateTimeField(null=True, blank=True)
    sms_opt_out_source = models.CharField(max_length=100, blank=True)
    call_opted_out_at = models.DateTimeField(null=True, blank=True)
    call_opt_out_source = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact")
        ordering = ["-is_primary", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_primary=True),
                name="contact_one_primary_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(phone="") | Q(phone__startswith="+"),
                name="contact_phone_e164",
            ),
        ]
        indexes = [
            models.Index(fields=["phone"]),
            models.Index(fields=["email"]),
            models.Index(Upper("email"), name="contact_email_upper"),
            models.Index(Upper("name"), name="contact_name_upper"),
        ]

    def __str__(self):
        return f"{self.name} ({self.customer})"

    def clean(self):
        super().clean()
        if self.phone:
            region = self.customer.country if self.customer_id else ""
            try:
                self.phone = normalize_phone(self.phone, region)
            except ValidationError as exc:
                raise ValidationError({"phone": exc.messages}) from exc

    def has_opted_out(self, channel: str) -> bool:
        return getattr(self, f"{channel}_opted_out_at") is not None


class InvoiceQuerySet(models.QuerySet):
    OPEN_STATUSES = ("open", "partially_paid", "disputed")

    def outstanding(self):
        return self.filter(status__in=self.OPEN_STATUSES)

    def in_bucket(self, bucket_key: str, as_of: dt.date):
        return self.outstanding().filter(due_on_range(bucket_key, as_of))

    def with_aging(self, as_of: dt.date):
        return self.annotate(
            days_past_due=DaysBetween("due_on", as_of),
            aging_bucket=bucket_expression(as_of),
        )


class Invoice(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        PARTIALLY_PAID = "partially_paid", _("Partially paid")
        PAID = "paid", _("Paid")
        DISPUTED = "disputed", _("Disputed")
        WRITTEN_OFF = "written_off", _("Written off")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="invoices", db_index=False
    )
    number = models.CharField(_("number"), max_length=64)
    source = models.CharField(_("source"), max_length=40, default="manual")
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    issued_on = models.DateField(_("issue date"))
    due_on = models.DateField(_("due date"))
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    amount = models.DecimalField(_("amount"), **MONEY)
    open_balance = models.DecimalField(_("open balance"), **MONEY)
    status = models.CharField(_("status"), max_length=16, choices=Status, default=Status.OPEN)
    reference = models.CharField(_("PO / reference"), max_length=100, blank=True)
    pay_link = models.URLField(_("pay link"), max_length=500, blank=True)
    dunning_paused_until = models.DateField(_("dunning paused until"), null=True, blank=True)
    dunning_pause_reason = models.CharField(
        _("pause reason"), max_length=200, blank=True, default="", db_default=""
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("invoice")
        ordering = ["due_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "number"], name="invoice_number_per_source"),
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="invoice_external_id_per_source",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="invoice_amount_positive"),
            models.CheckConstraint(
                condition=Q(open_balance__gte=0), name="invoice_open_balance_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(open_balance__lte=F("amount")),
                name="invoice_open_balance_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(due_on__gte=F("issued_on")), name="invoice_due_after_issue"
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(open_balance=0), name="invoice_paid_means_zero"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["open", "partially_paid"]) | Q(open_balance__gt=0),
                name="invoice_open_means_balance",
            ),
        ]
        indexes = [
            models.Index(fields=["due_on", "id"], name="invoice_due_on_id"),
            # Leads with customer_id, so it also serves the foreign key (db_index=False).
            models.Index(fields=["customer", "due_on", "id"], name="invoice_customer_due_on_id"),
            # No index may name status, open_balance or updated_at (not even in a partial
            # index's condition): then a payment's balance update is a HOT update that
            # touches none of the indexes (migration 0014, with the table's fillfactor).
            models.Index(fields=["number"], name="invoice_number"),
        ]

    def __str__(self):
        return f"{self.number} ({self.currency} {self.amount})"

    @property
    def is_outstanding(self) -> bool:
        return self.status in InvoiceQuerySet.OPEN_STATUSES

    def days_past_due(self, on: dt.date | None = None) -> int:
        return days_past_due(self.due_on, on or timezone.localdate())

    def aging_bucket(self, on: dt.date | None = None) -> str:
        return aging_bucket(self.days_past_due(on))

    def status_for_balance(self, balance: Decimal) -> str:
        """The status an invoice takes when its balance becomes `balance`."""
        if self.status in (self.Status.CANCELLED, self.Status.WRITTEN_OFF):
            return self.status
        if balance == 0:
            return self.Status.PAID
        if self.status == self.Status.DISPUTED:
            return self.status
        if balance < self.amount:
            return self.Status.PARTIALLY_PAID
        return self.Status.OPEN


class Payment(models.Model):
    """Money received (or a credit note), allocated to invoices through Allocation."""

    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Payment")
        CREDIT_NOTE = "credit_note", _("Credit note")
        WRITE_OFF = "write_off", _("Write-off adjustment")

    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", _("Bank transfer")
        CARD = "card", _("Card")
        DIRECT_DEBIT = "direct_debit", _("Direct debit")
        CHECK = "check", _("Check")
        CASH = "cash", _("Cash")
        CREDIT_NOTE = "credit_note", _("Credit note")
        ADJUSTMENT = "adjustment", _("Adjustment")
        OTHER = "other", _("Other")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="payments",
        null=True,
        blank=True,
        help_text=_("Empty while the payer is unknown."),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=Kind, default=Kind.PAYMENT)
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    unallocated_amount = models.DecimalField(_("unallocated"), **MONEY)
    refunded_amount = models.DecimalField(_("refunded"), **MONEY, default=ZERO)
    received_on = models.DateField(_("received on"))
    method = models.CharField(
        _("method"), max_length=16, choices=Method, default=Method.BANK_TRANSFER
    )
    remittance_reference = models.CharField(_("remittance reference"), max_length=255, blank=True)
    source = models.CharField(_("source"), max_length=40, default="manual")
    external_id = models.CharField(_("external id"), max_length=100, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("payment")
        ordering = ["-received_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["source", "external_id"],
                condition=~Q(external_id=""),
                name="payment_external_id_per_source",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=Q(unallocated_amount__gte=0), name="payment_unallocated_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(unallocated_amount__lte=F("amount")),
                name="payment_unallocated_within_amount",
            ),
            models.CheckConstraint(
                condition=Q(refunded_amount__gte=0)
                & Q(unallocated_amount__lte=F("amount") - F("refunded_amount")),
                name="payment_refund_within_amount",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "received_on"], name="payment_customer_received"),
            models.Index(
                fields=["received_on"],
                condition=Q(unallocated_amount__gt=0),
                name="payment_unapplied",
            ),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.currency} {self.amount} on {self.received_on}"


class Allocation(models.Model):
    """Part of a payment applied to an invoice; the only way a balance moves.

    A positive row applies money; a negative row (with `reverses` set) gives it back, when
    a payment is refunded or charged back. Rows are never edited, so any past balance can
    be rebuilt from them.
    """

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="allocations")
    # allocation_invoice_on leads with invoice_id, so no separate FK index.
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="allocations", db_index=False
    )
    amount = models.DecimalField(_("amount"), **MONEY)
    allocated_on = models.DateField(_("allocated on"))
    # 1 for the invoice's first allocation row, 2 for the next, ... (reversals included),
    # numbered under the invoice's row lock; unique per invoice (allocation_invoice_seq).
    # Reports as of a past date join the later rows numbered 1 without grouping them,
    # since there is at most one per invoice (reporting.ledger.balances_sql).
    seq = models.PositiveIntegerField(_("number on the invoice"))
    rule = models.CharField(_("rule"), max_length=40, default="manual")
    reverses = models.ForeignKey(
        "self",
        verbose_name=_("reverses"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
    )
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("allocation")
        ordering = ["-allocated_on", "-id"]
        constraints = [
            # Money applied is positive; a reversal is negative and names what it reverses.
            models.CheckConstraint(
                condition=(Q(amount__gt=0) & Q(reverses__isnull=True))
                | (Q(amount__lt=0) & Q(reverses__isnull=False)),
                name="allocation_sign_matches_reversal",
            ),
            models.UniqueConstraint(fields=["invoice", "seq"], name="allocation_invoice_seq"),
        ]
        indexes = [
            models.Index(fields=["invoice", "allocated_on"], name="allocation_invoice_on"),
            # Reports as of a past date read the allocations dated after it (reporting.ledger),
            # from these indexes alone; one probe tells whether there are any. The second
            # holds only the rows after an invoice's first: partial payments and reversals.
            models.Index(
                fields=["allocated_on"],
                include=["invoice", "amount", "seq"],
                name="allocation_allocated_on",
            ),
            models.Index(
                fields=["allocated_on"],
                include=["invoice", "amount"],
                condition=Q(seq__gt=1),
                name="allocation_later_on",
            ),
        ]

    def __str__(self):
        return f"{self.amount} of payment {self.payment_id} to {self.invoice_id}"


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove a timeline entry."""


class ActivityQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("the account timeline is append-only")

    def delete(self):
        raise AppendOnlyError("the account timeline is append-only")


class Activity(models.Model):
    """One touch on the account timeline. Append-only: never updated, never deleted."""

    class Kind(models.TextChoices):
        NOTE = "note", _("Note")
        CALL = "call", _("Call")
        EMAIL = "email", _("E-mail sent")
        SMS = "sms", _("SMS sent")
        LETTER = "letter", _("Letter sent")
        DELIVERY = "delivery", _("Delivery status")
        REPLY = "reply", _("Reply received")
        PAYMENT = "payment", _("Payment received")
        ALLOCATION = "allocation", _("Allocation")
        STATUS_CHANGE = "status_change", _("Status change")
        HOLD_CHANGE = "hold_change", _("Hold change")
        ASSIGNMENT = "assignment", _("Assignment")
        IMPORT = "import", _("Import")
        OVERRIDE = "override", _("Override")
        TASK = "task", _("Task")
        ALERT = "alert", _("Alert")
        PROMISE = "promise", _("Promise to pay")
        DISPUTE = "dispute", _("Dispute")
        PAYMENT_PLAN = "payment_plan", _("Payment plan")
        WRITE_OFF = "write_off", _("Write-off")
        PLACEMENT = "placement", _("Agency placement")
        RISK = "risk", _("Risk score")

    class Channel(models.TextChoices):
        NONE = "", _("—")
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone")
        LETTER = "letter", _("Letter")
        PORTAL = "portal", _("Portal")

    class CallOutcome(models.TextChoices):
        REACHED = "reached", _("Reached")
        NO_ANSWER = "no_answer", _("No answer")
        LEFT_VOICEMAIL = "left_voicemail", _("Left voicemail")
        PROMISE_TO_PAY = "promise_to_pay", _("Promise to pay")
        DISPUTE = "dispute", _("Dispute")
        WRONG_NUMBER = "wrong_number", _("Wrong number")

    # No single-column FK indexes: activity_customer_time and activity_invoice serve them,
    # and every timeline insert would maintain the duplicates.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="activities", db_index=False
    )
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="activities",
        db_index=False,
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel, blank=True)
    outcome = models.CharField(_("outcome"), max_length=20, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("Empty for the system."),
    )
    text = models.TextField(_("text"), blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)

    objects = ActivityQuerySet.as_manager()

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-occurred_at"], name="activity_customer_time"),
            models.Index(fields=["invoice"], name="activity_invoice"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.occurred_at:%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("the account timeline is append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("the account timeline is append-only")

    @property
    def actor_name(self) -> str:
        return self.actor.get_username() if self.actor_id else "system"


# --- Case work: tasks, promises to pay, disputes, payment plans, write-offs, routing ---


class TaskQuerySet(models.QuerySet):
    def open(self):
        return self.filter(status=Task.Status.OPEN)

    def overdue(self, now=None):
        return self.open().filter(due_at__lt=now or timezone.now())


class Task(models.Model):
    """Work for a person: call this customer, review that account, approve a plan."""

    class Kind(models.TextChoices):
        CALL = "call", _("Call")
        EMAIL = "email", _("E-mail")
        REVIEW = "review", _("Review")
        APPROVAL = "approval", _("Approval")
        ALERT = "alert", _("Alert")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        DONE = "done", _("Done")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="tasks", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind)
    title = models.CharField(_("title"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("assignee"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="collection_tasks",
        db_index=False,
        help_text=_("Empty: the unassigned queue."),
    )
    due_at = models.DateTimeField(_("due"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OPEN)
    outcome = models.CharField(_("outcome"), max_length=40, blank=True)
    outcome_note = models.TextField(_("outcome note"), blank=True)
    # What raised it, for de-duplication and links: "dunning:notice:12", "promise:7", ...
    source = models.CharField(_("source"), max_length=60, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(_("completed"), null=True, blank=True)
    completed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    objects = TaskQuerySet.as_manager()

    class Meta:
        verbose_name = _("task")
        ordering = ["due_at", "id"]
        constraints = [
            # One open task per cause: a retried planner or webhook never raises it twice.
            models.UniqueConstraint(
                fields=["source"],
                condition=Q(status="open") & ~Q(source=""),
                name="task_one_open_per_source",
            ),
            models.CheckConstraint(
                condition=Q(status="open") | Q(completed_at__isnull=False),
                name="task_closed_has_time",
            ),
        ]
        indexes = [
            models.Index(
                fields=["assignee", "due_at"],
                condition=Q(status="open"),
                name="task_open_by_assignee",
            ),
            models.Index(fields=["customer", "status"], name="task_customer_status"),
        ]

    def __str__(self):
        return self.title

    def is_overdue(self, now=None) -> bool:
        return self.status == self.Status.OPEN and self.due_at < (now or timezone.now())


class PromiseToPay(models.Model):
    """A customer's word: this amount by that date, for these invoices."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        KEPT = "kept", _("Kept")
        BROKEN = "broken", _("Broken")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="promises", db_index=False
    )
    invoices = models.ManyToManyField(Invoice, related_name="promises", verbose_name=_("invoices"))
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    promised_on = models.DateField(_("promised for"))
    # Dunning for the invoices holds until this day (promised_on + grace), inclusive.
    holds_until = models.DateField(_("dunning held until"))
    channel = models.CharField(
        _("channel"), max_length=8, choices=Activity.Channel, default=Activity.Channel.PHONE
    )
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OPEN)
    paid_amount = models.DecimalField(_("paid so far"), **MONEY, default=ZERO)
    note = models.TextField(_("note"), blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("promise to pay")
        verbose_name_plural = _("promises to pay")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="promise_amount_positive"),
            models.CheckConstraint(
                condition=Q(holds_until__gte=F("promised_on")), name="promise_hold_after_date"
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "status"], name="promise_customer_status"),
            models.Index(
                fields=["holds_until"], condition=Q(status="open"), name="promise_open_until"
            ),
        ]

    def __str__(self):
        return f"{self.currency} {self.amount} by {self.promised_on}"


class Dispute(models.Model):
    """A customer contests one or more invoices; dunning holds for those invoices only."""

    class Reason(models.TextChoices):
        PRICING = "pricing", _("Pricing")
        QUANTITY = "quantity", _("Quantity")
        QUALITY = "quality", _("Quality")
        NOT_RECEIVED = "not_received", _("Not received")
        DUPLICATE = "duplicate", _("Duplicate")
        OTHER = "other", _("Other")

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        UNDER_REVIEW = "under_review", _("Under review")
        RESOLVED_CUSTOMER = "resolved_customer", _("Resolved for the customer")
        RESOLVED_US = "resolved_us", _("Resolved for us")

    ACTIVE_STATUSES = (Status.OPEN, Status.UNDER_REVIEW)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="disputes", db_index=False
    )
    invoices = models.ManyToManyField(Invoice, related_name="disputes", verbose_name=_("invoices"))
    reason = models.CharField(_("reason"), max_length=16, choices=Reason)
    description = models.TextField(_("description"), blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="owned_disputes",
        db_index=False,
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.OPEN)
    resolution_note = models.TextField(_("resolution"), blank=True)
    credit_note = models.ForeignKey(
        Payment,
        verbose_name=_("credit note issued"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    source = models.CharField(_("source"), max_length=60, blank=True)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    opened_at = models.DateTimeField(_("opened"), auto_now_add=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )

    class Meta:
        verbose_name = _("dispute")
        ordering = ["-opened_at", "-id"]
        permissions = [("resolve_dispute", "Can resolve disputes (and issue credit notes)")]
        constraints = [
            models.UniqueConstraint(
                fields=["source"], condition=~Q(source=""), name="dispute_one_per_source"
            ),
        ]
        indexes = [models.Index(fields=["customer", "status"], name="dispute_customer_status")]

    def __str__(self):
        return f"{self.get_reason_display()} dispute #{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class PaymentPlan(models.Model):
    """A customer's balance on chosen invoices, split into dated installments."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed (awaiting approval)")
        ACTIVE = "active", _("Active")
        REJECTED = "rejected", _("Rejected")
        COMPLETED = "completed", _("Completed")
        BROKEN = "broken", _("Broken")
        CANCELLED = "cancelled", _("Cancelled")

    HOLDING_STATUSES = (Status.PROPOSED, Status.ACTIVE)

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="payment_plans", db_index=False
    )
    invoices = models.ManyToManyField(
        Invoice, related_name="payment_plans", verbose_name=_("invoices")
    )
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    total_amount = models.DecimalField(_("total"), **MONEY)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PROPOSED)
    grace_days = models.PositiveSmallIntegerField(_("grace days"), default=5)
    note = models.TextField(_("note"), blank=True)
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    approved_at = models.DateTimeField(_("approved"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment plan")
        ordering = ["-created_at", "-id"]
        permissions = [("approve_paymentplan", "Can approve payment plans over the threshold")]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="plan_total_positive"),
        ]
        indexes = [models.Index(fields=["customer", "status"], name="plan_customer_status")]

    def __str__(self):
        return f"Plan #{self.pk}: {self.currency} {self.total_amount}"


class Installment(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PAID = "paid", _("Paid")
        MISSED = "missed", _("Missed")

    plan = models.ForeignKey(PaymentPlan, on_delete=models.CASCADE, related_name="installments")
    sequence = models.PositiveSmallIntegerField(_("number"))
    due_on = models.DateField(_("due"))
    amount = models.DecimalField(_("amount"), **MONEY)
    paid_amount = models.DecimalField(_("paid"), **MONEY, default=ZERO)
    status = models.CharField(_("status"), max_length=8, choices=Status, default=Status.PENDING)
    paid_on = models.DateField(_("paid on"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminder sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("installment")
        ordering = ["plan", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "sequence"], name="installment_sequence"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="installment_amount_positive"),
            models.CheckConstraint(
                condition=Q(paid_amount__gte=0) & Q(paid_amount__lte=F("amount")),
                name="installment_paid_within_amount",
            ),
        ]
        indexes = [
            models.Index(
                fields=["due_on"], condition=Q(status="pending"), name="installment_pending_due"
            ),
        ]

    def __str__(self):
        return f"{self.sequence}: {self.amount} on {self.due_on}"


class Recovery(models.Model):
    """A write-off or an agency placement: proposed, approved by a manager, reversible."""

    class Kind(models.TextChoices):
        WRITE_OFF = "write_off", _("Write-off")
        AGENCY = "agency", _("Placement with a collections agency")

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        REVERSED = "reversed", _("Reversed")

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="recoveries", db_index=False
    )
    invoices = models.ManyToManyField(
        Invoice, related_name="recoveries", verbose_name=_("invoices")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PROPOSED)
    agency_name = models.CharField(_("agency"), max_length=200, blank=True)
    agency_reference = models.CharField(_("agency reference"), max_length=100, blank=True)
    reason = models.TextField(_("reason"), blank=True)
    # The write-off adjustment (a Payment of kind write_off allocated to the invoices).
    adjustment = models.ForeignKey(
        Payment,
        verbose_name=_("adjustment"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    reversed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    reversed_at = models.DateTimeField(_("reversed"), null=True, blank=True)
    reversal_reason = models.TextField(_("reversal reason"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("write-off or placement")
        verbose_name_plural = _("write-offs and placements")
        ordering = ["-created_at", "-id"]
        permissions = [("approve_recovery", "Can approve and reverse write-offs and placements")]
        indexes = [models.Index(fields=["customer", "status"], name="recovery_customer_status")]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.get_status_display()})"


class RoutingRule(models.Model):
    """Assigns customers to a pool of agents; the first matching rule by priority wins."""

    name = models.CharField(_("name"), max_length=100)
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=100, help_text=_("Lower runs first.")
    )
    segment = models.CharField(
        _("segment"),
        max_length=20,
        choices=Customer.Segment,
        blank=True,
        help_text=_("Any if empty."),
    )
    risk_band = models.CharField(
        _("risk band"), max_length=8, choices=RiskBand, blank=True, help_text=_("Any if empty.")
    )
    min_balance = models.DecimalField(
        _("minimum open balance"),
        **MONEY,
        null=True,
        blank=True,
        help_text=_("In the customer's currency; any if empty."),
    )
    language = models.CharField(_("language"), max_length=8, blank=True)
    countries = models.CharField(
        _("countries"), max_length=200, blank=True, help_text=_("ISO codes, comma-separated.")
    )
    agents = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="routing_rules", verbose_name=_("agents")
    )
    max_accounts_per_agent = models.PositiveIntegerField(
        _("accounts per agent at most"), default=1000
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("routing rule")
        ordering = ["priority", "id"]

    def __str__(self):
        return self.name
