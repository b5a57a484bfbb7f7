"""The collections ledger: customers, contacts, invoices, payments, allocations, timeline."""

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from decimal import Decimal

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .aging import DaysBetween, aging_bucket, bucket_expression, days_past_due, due_on_range
from .crypto import (
    EncryptedCharField,
    EncryptedEmailField,
    EncryptedTextField,
    LookupHashField,
    lookup_hash,
    normal_phone,
)
from .customer_names import NormalizedNameField
from .money import format_money, validate_currency

MONEY = {"max_digits": 14, "decimal_places": 2}
ZERO = Decimal("0.00")


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not an IANA time zone (e.g. Europe/Berlin)."),
            code="invalid_timezone",
            params={"value": value},
        )


# phonenumbers' own messages ("(0) Missing or invalid default region.") in words a
# person can act on.
_PARSE = phonenumbers.NumberParseException
PHONE_PARSE_ERRORS = {
    _PARSE.INVALID_COUNTRY_CODE: _(
        "%(value)s has no country code: write it in international form, starting with + "
        "(+44 20 7946 0000), or set the customer's country first."
    ),
    _PARSE.NOT_A_NUMBER: _("%(value)s is not a phone number."),
    _PARSE.TOO_SHORT_AFTER_IDD: _("%(value)s is too short to be a phone number."),
    _PARSE.TOO_SHORT_NSN: _("%(value)s is too short to be a phone number."),
    _PARSE.TOO_LONG: _("%(value)s is too long to be a phone number."),
    None: _("%(value)s is not a phone number."),
}


def normalize_phone(raw: str, default_region: str = "") -> str:
    """Return the number in E.164 (+14155550123), or raise ValidationError naming the input."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        reason = PHONE_PARSE_ERRORS.get(exc.error_type, PHONE_PARSE_ERRORS[None])
        raise ValidationError(reason, code="invalid_phone", params={"value": raw}) from exc
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


SUMMARY_FIELDS = (
    "past_due_amount",
    "past_due_currency",
    "past_due_currencies",
    "oldest_due_on",
    "past_due_changed_on",
    "next_action_at",
    "next_action",
)


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
        MERGED = "merged", _("Merged into another customer")

    name = models.CharField(_("name"), max_length=200)
    # The name as imports match it (accounts/customer_names.py), kept in step with `name`.
    normalized_name = NormalizedNameField(_("normalised name"), source="name", db_default="")
    source = models.CharField(_("source"), max_length=40, default="manual")
    external_ref = models.CharField(_("external reference"), max_length=100, blank=True)
    kind = models.CharField(_("kind"), max_length=10, choices=Kind, default=Kind.BUSINESS)
    segment = models.CharField(
        _("segment"), max_length=12, choices=Segment, default=Segment.STANDARD
    )
    industry = models.CharField(_("industry"), max_length=80, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text="ISO 3166 code")
    # db_default too: bulk COPY writers that do not name a column get it from the database.
    # Encrypted at rest (accounts/crypto.py).
    postal_address = EncryptedTextField(_("postal address"), blank=True, default="", db_default="")
    timezone = models.CharField(
        _("time zone"), max_length=64, default="UTC", validators=[validate_timezone]
    )
    language = models.CharField(_("language"), max_length=8, default="en")
    currency = models.CharField(
        _("default currency"), max_length=3, default="USD", validators=[validate_currency]
    )
    credit_limit = models.DecimalField(
        _("credit limit"), **MONEY, null=True, blank=True, validators=[MinValueValidator(0)]
    )
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
    # Issue #18, inbound e-mail: a debtor's human reply pauses chasing for a few days
    # (INBOUND_REPLY_PAUSE_DAYS), apart from a person's pause above, which it never changes.
    reply_paused_until = models.DateField(_("chasing paused until (reply)"), null=True, blank=True)
    reply_pause_reason = models.CharField(
        _("reply pause reason"), max_length=200, blank=True, default=""
    )
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
    # The risk score (cases/risk.py): 0-100, higher is riskier, with the factors behind it.
    risk_score = models.PositiveSmallIntegerField(_("risk score"), null=True, blank=True)
    risk_band = models.CharField(
        _("risk band"), max_length=8, choices=RiskBand, blank=True, default="", db_default=""
    )
    risk_factors = models.JSONField(_("risk factors"), null=True, blank=True)
    risk_scored_at = models.DateTimeField(_("risk scored at"), null=True, blank=True)

    # Where the time zone came from (accounts/timezones.py): given, or inferred when the
    # row had none; an ambiguous one makes the contact hours of every candidate zone apply.
    class TimezoneSource(models.TextChoices):
        GIVEN = "given", _("given")
        REGION = "region", _("inferred from region or postal code")
        COUNTRY = "country", _("inferred from country")
        AMBIGUOUS = "ambiguous", _("ambiguous: hours allowed in every zone of the place")
        DEFAULT = "default", _("UTC by default: no country")

    timezone_source = models.CharField(
        _("time zone source"),
        max_length=10,
        choices=TimezoneSource,
        default=TimezoneSource.GIVEN,
        db_default=TimezoneSource.GIVEN,
    )
    timezone_region = models.CharField(
        _("time zone region"),
        max_length=10,
        blank=True,
        default="",
        db_default="",
        help_text=_("The region the zone was inferred from, e.g. US-TX."),
    )

    # Set when this customer was merged into another (accounts/merging.py): the duplicate
    # row stays, empty, pointing at the customer that took over its invoices and history.
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="merged_customers",
    )
    merged_at = models.DateTimeField(_("merged at"), null=True, blank=True)

    # The collection summary (accounts/summaries.py): what the customer list sorts and
    # filters on, kept on the row so the list stays one index scan at 200,000 customers.
    # Written only by summaries.refresh_* (raw UPDATEs: never by an edit, see save()).
    past_due_amount = models.DecimalField(
        _("amount past due"),
        max_digits=14,
        decimal_places=2,
        default=Decimal("0.00"),
        db_default=Decimal("0.00"),
        help_text=_("The largest past-due total in any one currency (never added across)."),
    )
    past_due_currency = models.CharField(
        _("past-due currency"), max_length=3, blank=True, default="", db_default=""
    )
    past_due_currencies = models.PositiveSmallIntegerField(
        _("currencies past due"), default=0, db_default=0
    )
    oldest_due_on = models.DateField(
        _("oldest open invoice due on"),
        null=True,
        blank=True,
        help_text=_("Days past due are counted from it."),
    )
    past_due_changed_on = models.DateField(_("past due changed on"), null=True, blank=True)
    next_action_at = models.DateTimeField(_("next action due"), null=True, blank=True)
    next_action = models.CharField(
        _("next action"), max_length=200, blank=True, default="", db_default=""
    )

    # Set when the customer's personal data was erased (privacy/erasure.py).
    erased_at = models.DateTimeField(_("personal data erased at"), null=True, blank=True)
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
            # A merged customer says into which customer and when, and is marked merged.
            models.CheckConstraint(
                condition=(
                    Q(merged_into__isnull=True, merged_at__isnull=True) & ~Q(status="merged")
                )
                | Q(merged_into__isnull=False, merged_at__isnull=False, status="merged"),
                name="customer_merged_has_survivor",
            ),
            models.CheckConstraint(
                condition=~Q(merged_into=F("pk")), name="customer_not_merged_into_itself"
            ),
        ]
        indexes = [
            models.Index(fields=["assigned_agent", "name"]),
            models.Index(fields=["segment"]),
            models.Index(fields=["name", "id"], name="customer_name_id"),
            models.Index(Upper("name"), name="customer_name_upper"),
            # Imports find a customer by its normalised name (accounts/customer_names.py).
            models.Index(fields=["normalized_name"], name="customer_normalized_name"),
            models.Index(
                fields=["external_ref"],
                condition=~Q(external_ref=""),
                name="customer_external_ref",
            ),
            # The customer list's sorts (accounts/admin.py SummaryChangeList breaks ties on
            # the id in the key's direction, so each index serves both directions).
            models.Index(fields=["past_due_amount", "id"], name="customer_past_due_amount"),
            models.Index(fields=["oldest_due_on", "id"], name="customer_oldest_due_on"),
            models.Index(fields=["next_action_at", "id"], name="customer_next_action_at"),
            # The risk sort's index (risk_score DESC NULLS LAST, id DESC) is PostgreSQL
            # only (SQLite has no NULLS LAST in an index): migration 0028 makes it.
        ]
        permissions = [
            ("log_activity", "Can add notes and log calls"),
            ("assign_customer", "Can assign customers to agents"),
            ("pause_dunning", "Can pause and resume dunning"),
            ("pause_dunning_unlimited", "Can pause dunning beyond the agent limit"),
            ("work_all_customers", "Can work customers assigned to other agents"),
            ("erase_customer", "Can erase a customer's personal data"),
            (
                "change_customer_terms",
                "Can change a customer's segment, credit limit, status and source",
            ),
            ("merge_customers", "Can merge a duplicate customer into another"),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        """Save, leaving the summary columns alone unless named in update_fields (an edit
        made on a copy loaded before a payment must not write an old balance back), and
        keeping the normalised name in step with the name."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None and not self._state.adding and self.pk:
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in SUMMARY_FIELDS
            ]
        elif update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "normalized_name"}
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        # The status "merged" belongs to the merge (accounts/merging.py), which also says
        # into which customer; an edit neither sets nor clears it.
        if (self.status == self.Status.MERGED) != (self.merged_into_id is not None):
            raise ValidationError(
                {
                    "status": _(
                        "Only a merge of two customers sets or clears the status "
                        "'Merged into another customer'."
                    )
                }
            )

    @property
    def days_past_due(self) -> int:
        """Days past due of the oldest open invoice today (0 when none is past due)."""
        if self.oldest_due_on is None:
            return 0
        return max(0, (timezone.localdate() - self.oldest_due_on).days)

    def is_dunning_paused(self, on: dt.date) -> bool:
        return self.dunning_paused_until is not None and on <= self.dunning_paused_until

    @property
    def holds(self) -> list[str]:
        """The holds in words, for lists and notices: the flags that are set, and a pause
        after the debtor's own reply still running today."""
        held = self.hold_flags
        if self.reply_paused_until and self.reply_paused_until >= timezone.localdate():
            held.append(
                str(_("chasing paused until %(day)s (%(reason)s)"))
                % {"day": self.reply_paused_until.isoformat(), "reason": self.reply_pause_reason}
            )
        return held

    @property
    def hold_flags(self) -> list[str]:
        """The hold flags that are set, in words."""
        flags = [
            (self.do_not_contact, _("do not contact")),
            (self.cease_communication, _("cease communication")),
            (self.is_in_dispute, _("in dispute")),
            (self.is_in_payment_plan, _("in payment plan")),
            (self.is_bankrupt, _("bankrupt")),
            (self.status != self.Status.ACTIVE, self.get_status_display()),
        ]
        return [str(label) for is_set, label in flags if is_set]


class ContactQuerySet(models.QuerySet):
    def matching(self, *, email: str = "", phone: str = "", regions: Iterable[str] = ()):
        """Contacts whose e-mail (any case) or phone (any written form that parses; a
        national one read in each of `regions`) is exactly this: the one lookup by e-mail
        or phone, through the keyed hashes beside the encrypted columns (accounts/crypto.py).
        """
        wanted = Q(pk__in=[])
        if email_hash := lookup_hash("email", email):
            wanted |= Q(email_hash=email_hash)
        phone_hashes = {lookup_hash("phone", normal_phone(phone, r)) for r in ("", *regions)}
        phone_hashes.discard("")
        if len(phone_hashes) == 1:
            wanted |= Q(phone_hash=phone_hashes.pop())
        elif phone_hashes:
            wanted |= Q(phone_hash__in=sorted(phone_hashes))
        return self.filter(wanted)


class Contact(models.Model):
    """A person at the customer; phone numbers are stored in E.164.

    E-mail and phone are encrypted at rest; `email_hash` and `phone_hash` find them
    (`Contact.objects.matching`).
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("E-mail")
        SMS = "sms", _("SMS")
        CALL = "call", _("Call")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=200)
    role = models.CharField(_("role"), max_length=100, blank=True)
    email = EncryptedEmailField(_("e-mail"), blank=True)
    phone = EncryptedCharField(_("phone"), max_length=16, blank=True, help_text="E.164")
    email_hash = LookupHashField(source="email", kind="email")
    phone_hash = LookupHashField(source="phone", kind="phone")
    is_primary = models.BooleanField(_("primary"), default=False)
    email_opted_out_at = models.DateTimeField(null=True, blank=True)
    email_opt_out_source = models.CharField(max_length=100, blank=True)
    sms_opted_out_at = models.DateTimeField(null=True, blank=True)
    sms_opt_out_source = models.CharField(max_length=100, blank=True)
    call_opted_out_at = models.DateTimeField(null=True, blank=True)
    call_opt_out_source = models.CharField(max_length=100, blank=True)
    # The channel the contact asked to be reached on (the debtor portal's preferences);
    # empty: no preference, the policy's channels apply.
    preferred_channel = models.CharField(
        _("preferred channel"),
        max_length=8,
        choices=Channel,
        blank=True,
        default="",
        db_default="",
    )
    # A random key every portal link of this contact is signed with (accounts/portal_links.py);
    # a new key revokes every link and session the contact had (console: "revoke portal
    # access"). Empty until the contact's first link.
    portal_key = models.CharField(
        _("portal key"), max_length=32, blank=True, default="", db_default="", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ContactQuerySet.as_manager()

    class Meta:
        verbose_name = _("contact")
        ordering = ["-is_primary", "name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(is_primary=True),
                name="contact_one_primary_per_customer",
            ),
        ]
        indexes = [
            models.Index(Upper("name"), name="contact_name_upper"),
            # Exact lookups by e-mail and phone (Contact.objects.matching).
            models.Index(fields=["email_hash"], name="contact_email_hash"),
            models.Index(fields=["phone_hash"], name="contact_phone_hash"),
        ]

    def __str__(self):
        return f"{self.name} ({self.customer})"

    def save(self, *args, **kwargs):
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            # A save of the e-mail or phone alone keeps its hash in step.
            named = set(update_fields)
            named |= {f"{name}_hash" for name in ("email", "phone") if name in named}
            kwargs["update_fields"] = named
        super().save(*args, **kwargs)

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
    # The invoice as the customer received it (a PDF uploaded in the console); the debtor
    # portal offers it, or a copy generated from the ledger when there is none.
    original = models.FileField(
        _("original (PDF)"),
        upload_to="invoices/%Y/%m/",
        blank=True,
        default="",
        db_default="",
        validators=[FileExtensionValidator(["pdf"])],
    )
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
        return f"{self.number} ({format_money(self.amount, self.currency)})"

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
    # Who sent the money, as the bank or the provider named them: kept even while the
    # payer is unknown, so unapplied cash can be found and applied by the name it came with.
    payer_name = models.CharField(
        _("payer name"),
        max_length=200,
        blank=True,
        help_text=_("The name the bank or payment provider gave for the sender."),
    )
    payer_account = models.CharField(
        _("payer account"),
        max_length=64,
        blank=True,
        help_text=_("The IBAN or account number the money came from."),
    )
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
        return (
            f"{self.get_kind_display()} {format_money(self.amount, self.currency)}"
            f" on {self.received_on}"
        )

    @property
    def sender(self) -> str:
        """Who the money came from as the bank or provider named them: "Mystery Corp
        (DE89…)", the name or the account alone, or "" when the source named nobody."""
        if self.payer_name and self.payer_account:
            return f"{self.payer_name} ({self.payer_account})"
        return self.payer_name or self.payer_account

    def clean(self):
        """The amount and date checks, naming their field (the database constraint behind
        the amount would only say `Constraint "payment_amount_positive" is violated.`)."""
        super().clean()
        errors = {}
        if self.amount is not None and self.amount <= 0:
            errors["amount"] = _("A payment must be more than zero.")
        try:
            check_received_on(self.received_on)
        except ValidationError as exc:
            errors.update(exc.message_dict)
        if errors:
            raise ValidationError(errors)


def check_received_on(received_on: dt.date | None, *, today: dt.date | None = None) -> None:
    """Refuse a payment dated further in the future than PAYMENT_FUTURE_DAYS_ALLOWED
    (ValidationError on `received_on`). Money is received on or before today."""
    if not isinstance(received_on, dt.date):
        return  # a missing or unparsed date has its own error
    latest = (today or timezone.localdate()) + dt.timedelta(
        days=settings.PAYMENT_FUTURE_DAYS_ALLOWED
    )
    if received_on > latest:
        raise ValidationError(
            {
                "received_on": _(
                    "%(date)s is in the future: a payment is dated on or before the day it "
                    "was received (at the latest %(latest)s)."
                )
                % {"date": received_on.isoformat(), "latest": latest.isoformat()}
            }
        )


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
    """Raised when code tries to change or remove a timeline entry or an access record."""


class AppendOnlyQuerySet(models.QuerySet):
    """Rows are added, never updated nor deleted; `what` names them in the refusal."""

    what = "this table"

    def update(self, **kwargs):
        raise AppendOnlyError(f"{self.what} is append-only")

    def delete(self):
        raise AppendOnlyError(f"{self.what} is append-only")


class AppendOnlyModel(models.Model):
    """A row is saved once and never changed nor deleted (on PostgreSQL a trigger refuses
    it too); the manager's queryset refuses bulk updates and deletes."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError(f"{type(self).objects.all().what} is append-only")
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError(f"{type(self).objects.all().what} is append-only")


class ActivityQuerySet(AppendOnlyQuerySet):
    what = "the account timeline"


class Activity(AppendOnlyModel):
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
        ERASURE = "erasure", _("Personal data erased")
        MERGE = "merge", _("Customers merged")
        PORTAL = "portal", _("Portal activity")

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

    @property
    def actor_name(self) -> str:
        return self.actor.get_username() if self.actor_id else "system"

    def get_outcome_display(self) -> str:
        return outcome_label(self.outcome)


def outcome_label(value: str) -> str:
    """An outcome code in words for a person: a call outcome's label ("No answer"), else
    the code made readable ("write_off_proposed" -> "Write off proposed")."""
    if value in Activity.CallOutcome.values:
        return str(Activity.CallOutcome(value).label)
    return value.replace("_", " ").capitalize()


class FxRate(models.Model):
    """One ECB euro reference rate: how many units of `currency` one euro was worth on
    `rate_on`. Loaded by integrations.fx (the ECB's files); read by accounts.fx."""

    rate_on = models.DateField(_("date"))
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    rate = models.DecimalField(
        _("units per euro"),
        max_digits=18,
        decimal_places=6,
        validators=[MinValueValidator(Decimal("0.000001"))],
    )
    source = models.CharField(_("source"), max_length=200, blank=True)
    loaded_at = models.DateTimeField(_("loaded at"), auto_now=True)

    class Meta:
        verbose_name = _("FX rate")
        verbose_name_plural = _("FX rates")
        ordering = ["-rate_on", "currency"]
        constraints = [
            # Also the index "the latest rate on or before a date" walks backwards.
            models.UniqueConstraint(fields=["currency", "rate_on"], name="fx_rate_once_a_day"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
            models.CheckConstraint(condition=~Q(currency="EUR"), name="fx_rate_not_euro"),
        ]
        indexes = [models.Index(fields=["-rate_on"], name="fx_rate_latest_day")]

    def __str__(self):
        return f"1 EUR = {self.rate} {self.currency} ({self.rate_on:%Y-%m-%d})"


class IdempotencyRecord(models.Model):
    """The first answer to a request with an Idempotency-Key, replayed for its retries."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=200)
    request_sha256 = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField()
    response_body = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integrations_idempotencyrecord"  # moved from integrations: same table
        verbose_name = _("idempotency record")
        constraints = [
            models.UniqueConstraint(fields=["user", "endpoint", "key"], name="idempotency_key_once")
        ]

    def __str__(self):
        return f"{self.endpoint} {self.key}"


# --- Access log (who looked at which debtor) ------------------------------------------------


class AccessLogQuerySet(AppendOnlyQuerySet):
    what = "the access log"


class AccessLog(AppendOnlyModel):
    """One customer's personal data shown to one user: which page or API call, and when.

    One row per customer shown (a list page of 50 customers writes 50 rows, in one INSERT
    per request, see accounts/access_log.py); `request_id` groups the rows of one request.
    A portfolio export, which may cover every customer, is one row without a customer
    that names its ReportExport. Append-only: never updated, never deleted (the model,
    the queryset, the admin and, on PostgreSQL, a trigger refuse it).
    """

    class Surface(models.TextChoices):
        CUSTOMER_PAGE = "customer_page", _("Customer page")
        CUSTOMER_LIST = "customer_list", _("Customer list")
        CONTACT_PAGE = "contact_page", _("Contact page")
        CONTACT_LIST = "contact_list", _("Contact list")
        TIMELINE = "timeline", _("Timeline list")
        WORKLIST = "worklist", _("Worklist")
        API_CUSTOMER = "api_customer", _("API: customer")
        API_CUSTOMER_LIST = "api_customer_list", _("API: customer list")
        API_CONTACT = "api_contact", _("API: contact")
        API_CONTACT_LIST = "api_contact_list", _("API: contact list")
        STATEMENT = "statement", _("Statement download")
        REPORT = "report", _("Aging report on screen")
        EXPORT = "export", _("Portfolio export download")
        LIST_EXPORT = "list_export", _("Console list export")

    at = models.DateTimeField(_("when"), default=timezone.now)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # accesslog_user_at leads with it
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # accesslog_customer_at leads with it
        help_text=_("Empty for a portfolio export (see its details)."),
    )
    surface = models.CharField(_("where"), max_length=20, choices=Surface)
    # The path only: a query string can hold what was searched for (an e-mail address).
    path = models.CharField(_("path"), max_length=200, blank=True)
    request_id = models.UUIDField(_("request"))
    details = models.JSONField(_("details"), default=dict, blank=True)

    objects = AccessLogQuerySet.as_manager()

    class Meta:
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["customer", "-at"], name="accesslog_customer_at"),
            models.Index(fields=["user", "-at"], name="accesslog_user_at"),
            models.Index(fields=["-at"], name="accesslog_at"),
        ]

    def __str__(self):
        return f"{self.get_surface_display()} at {self.at:%Y-%m-%d %H:%M}"
