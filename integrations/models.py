"""Intake: where ledger data comes from, what was loaded, what was refused, and why; and
the debtors' inbound messages (InboundEmail) and automatic payments (AutopayMandate)."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.crypto import EncryptedCharField, LookupHashField
from accounts.models import MONEY, Contact, Customer, Invoice, Payment
from accounts.money import validate_currency

# Invoice-row fields whose bad value can be only a warning: they describe how to reach the
# customer, not the debt, so a malformed phone or e-mail need not keep a good invoice out.
WARNABLE_FIELDS = ("email", "phone", "contact_name")


def default_warn_only() -> list[str]:
    """A malformed e-mail or phone warns (the invoice loads without it) unless a profile
    says otherwise."""
    return ["email", "phone"]


class ImportProfile(models.Model):
    """How one kind of spreadsheet maps onto the ledger: headers, formats, defaults."""

    name = models.SlugField(_("name"), max_length=50, unique=True)
    label = models.CharField(_("label"), max_length=100)
    description = models.TextField(_("description"), blank=True)
    source = models.CharField(
        _("source"),
        max_length=40,
        help_text=_("Stored on every invoice and customer loaded with this profile."),
    )
    # {"number": ["Invoice Number", "InvoiceNumber"], ...}: ledger field -> header aliases.
    columns = models.JSONField(_("columns"), default=dict)
    date_formats = models.JSONField(
        _("date formats"),
        default=list,
        help_text=_('strftime patterns tried in order, e.g. ["%d/%m/%Y"]'),
    )
    decimal_separator = models.CharField(_("decimal separator"), max_length=1, default=".")
    thousands_separator = models.CharField(
        _("thousands separator"), max_length=1, blank=True, default=","
    )
    default_currency = models.CharField(
        _("default currency"), max_length=3, blank=True, validators=[validate_currency]
    )
    required = models.JSONField(_("required fields"), default=list)
    warn_only = models.JSONField(
        _("fields that only warn"),
        default=default_warn_only,
        blank=True,
        help_text=_(
            "A bad value in one of these fields is dropped and noted as a warning on the "
            "row; the invoice still loads. In any other field it rejects the row."
        ),
    )
    default_terms_days = models.PositiveSmallIntegerField(
        _("default payment terms (days)"),
        default=30,
        help_text=_("Used for the due date when a row has none."),
    )
    is_builtin = models.BooleanField(_("shipped with the product"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("import profile")
        ordering = ["label"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(decimal_separator=F("thousands_separator")),
                name="profile_separators_differ",
            ),
        ]

    def __str__(self):
        return self.label


class IntakeBatch(models.Model):
    """One load from one source: a file, an API request, a webhook, a bank statement.

    Invariant once finished: rows_read = created + updated + unchanged + rejected.
    """

    class Source(models.TextChoices):
        SPREADSHEET = "spreadsheet", _("Spreadsheet")
        API = "api", _("REST API")
        STRIPE = "stripe", _("Stripe")
        WEBHOOK = "webhook", _("Payment webhook")
        BANK_STATEMENT = "bank_statement", _("Bank statement")
        EMAIL_EVENTS = "email_events", _("E-mail events")
        TWILIO = "twilio", _("Twilio")

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        CONTACTS = "contacts", _("Contacts")
        INVOICES = "invoices", _("Invoices")
        PAYMENTS = "payments", _("Payments")

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        COMPLETED = "completed", _("Completed")
        FAILED = "failed", _("Failed")

    source = models.CharField(_("source"), max_length=20, choices=Source)
    kind = models.CharField(_("kind"), max_length=12, choices=Kind)
    profile = models.ForeignKey(
        ImportProfile, on_delete=models.PROTECT, null=True, blank=True, related_name="batches"
    )
    filename = models.CharField(_("file"), max_length=255, blank=True)
    file_sha256 = models.CharField(max_length=64, blank=True)
    is_dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.RUNNING)
    error = models.TextField(_("error"), blank=True, help_text=_("Why the whole load failed."))
    rows_read = models.PositiveIntegerField(_("read"), default=0)
    created = models.PositiveIntegerField(_("created"), default=0)
    updated = models.PositiveIntegerField(_("updated"), default=0)
    unchanged = models.PositiveIntegerField(_("unchanged"), default=0)
    rejected = models.PositiveIntegerField(_("rejected"), default=0)
    # Rows loaded (created, updated or unchanged) with a warning: counted within those.
    warned = models.PositiveIntegerField(_("loaded with warnings"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("intake batch")
        verbose_name_plural = _("intake batches")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="completed")
                | Q(rows_read=F("created") + F("updated") + F("unchanged") + F("rejected")),
                name="batch_rows_add_up",
            ),
        ]
        indexes = [models.Index(fields=["source", "-started_at"], name="batch_source_started")]

    def __str__(self):
        return f"{self.get_source_display()} {self.get_kind_display().lower()} #{self.pk}"

    def counts(self) -> dict:
        return {
            "read": self.rows_read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "warned": self.warned,
            "batch": self.pk,
        }


class Rejection(models.Model):
    """A row or event the intake refused: kept with its raw values and the reason per field."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        RETRIED = "retried", _("Corrected and loaded")
        DISMISSED = "dismissed", _("Dismissed")

    batch = models.ForeignKey(IntakeBatch, on_delete=models.CASCADE, related_name="rejections")
    row_number = models.PositiveIntegerField(_("row"))
    raw = models.JSONField(_("raw values"), default=dict)
    errors = models.JSONField(_("errors"), default=dict, help_text=_("{field: [messages]}"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.OPEN)
    # What the refusal holds up, for ranking the dead-letter list by impact: the row's
    # amount when it could be read (an invoice not loaded, cash not booked), and how many
    # invoices it keeps out of the ledger.
    amount = models.DecimalField(_("amount at stake"), **MONEY, null=True, blank=True)
    currency = models.CharField(
        _("currency"), max_length=3, blank=True, validators=[validate_currency]
    )
    invoices_blocked = models.PositiveIntegerField(_("invoices blocked"), default=0)
    resolution = models.CharField(_("resolution"), max_length=200, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("rejected row")
        ordering = ["batch", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_number"], name="rejection_row_once"),
            models.CheckConstraint(
                condition=Q(status="open") | ~Q(resolution=""),
                name="rejection_resolution_explained",
            ),
        ]
        indexes = [
            models.Index(fields=["status"], condition=Q(status="open"), name="rejection_open"),
            # The dead-letter list's order (most money at stake, then most invoices blocked)
            # has its index, rejection_open_by_impact, on PostgreSQL only: SQLite cannot
            # put NULLS LAST in an index (integrations/migrations/0009).
        ]
        permissions = [("resolve_rejection", "Can correct, retry or dismiss rejected rows")]

    def __str__(self):
        return f"row {self.row_number} of {self.batch}"

    @property
    def reason(self) -> str:
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in sorted(self.errors.items())
        )


class RowWarning(models.Model):
    """A row that loaded with a value dropped (a malformed phone, say): the reason per field,
    kept beside the batch so finance can fix the contact where it came from."""

    batch = models.ForeignKey(IntakeBatch, on_delete=models.CASCADE, related_name="warnings")
    row_number = models.PositiveIntegerField(_("row"))
    number = models.CharField(
        _("record"), max_length=100, blank=True, help_text=_("The invoice number, say.")
    )
    warnings = models.JSONField(_("warnings"), default=dict, help_text=_("{field: [messages]}"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("row loaded with a warning")
        verbose_name_plural = _("rows loaded with warnings")
        ordering = ["batch", "row_number"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "row_number"], name="row_warning_once"),
        ]

    def __str__(self):
        return f"row {self.row_number} of {self.batch}"

    @property
    def reason(self) -> str:
        return "; ".join(
            f"{field}: {' '.join(messages)}" for field, messages in sorted(self.warnings.items())
        )


class SourceHealth(models.Model):
    """Last success and consecutive failures per source, for the admin health view."""

    source = models.CharField(_("source"), max_length=60, unique=True)
    last_success_at = models.DateTimeField(_("last success"), null=True, blank=True)
    last_failure_at = models.DateTimeField(_("last failure"), null=True, blank=True)
    # The first failure of the current run of failures; cleared by the next success.
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(_("consecutive failures"), default=0)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("source health")
        verbose_name_plural = _("source health")
        ordering = ["source"]

    def __str__(self):
        return self.source

    @property
    def is_failing(self) -> bool:
        return self.consecutive_failures >= settings.INTAKE_FAILING_AFTER


class WebhookEvent(models.Model):
    """Every payment-provider event, stored once by its id: a replay changes nothing."""

    class Status(models.TextChoices):
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    provider = models.CharField(_("provider"), max_length=20)
    event_id = models.CharField(_("event id"), max_length=255)
    event_type = models.CharField(_("type"), max_length=100)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status)
    note = models.TextField(_("note"), blank=True)
    occurred_at = models.DateTimeField(_("occurred"), null=True, blank=True)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook event")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], name="webhook_event_once")
        ]

    def __str__(self):
        return f"{self.provider} {self.event_type} {self.event_id}"


class BankStatement(models.Model):
    """One account's imported statement (a file may hold several); the same statement
    imported again creates nothing."""

    class Format(models.TextChoices):
        CAMT053 = "camt053", _("ISO 20022 camt.053")
        CAMT052 = "camt052", _("ISO 20022 camt.052 (intraday report)")
        CAMT054 = "camt054", _("ISO 20022 camt.054 (debit/credit notification)")
        MT940 = "mt940", _("SWIFT MT940")
        MT942 = "mt942", _("SWIFT MT942 (interim report)")
        BAI2 = "bai2", _("BAI2")
        CSV = "csv", _("CSV")

    batch = models.ForeignKey(IntakeBatch, on_delete=models.PROTECT, related_name="statements")
    format = models.CharField(_("format"), max_length=8, choices=Format)
    account = models.CharField(_("account"), max_length=64, help_text=_("IBAN or account no."))
    statement_ref = models.CharField(_("statement reference"), max_length=100)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    opening_balance = models.DecimalField(**MONEY, null=True, blank=True)
    closing_balance = models.DecimalField(**MONEY, null=True, blank=True)
    from_on = models.DateField(null=True, blank=True)
    to_on = models.DateField(null=True, blank=True)

    class Meta:
        verbose_name = _("bank statement")
        ordering = ["-to_on", "-id"]

    def __str__(self):
        return f"{self.account} {self.statement_ref}"


class BankLine(models.Model):
    """One entry of a statement; credits become payments, debits are kept for the record."""

    statement = models.ForeignKey(BankStatement, on_delete=models.CASCADE, related_name="lines")
    line_number = models.PositiveIntegerField()
    # A stable identity across re-imports: the bank's own reference, or a hash of the line.
    fingerprint = models.CharField(max_length=64)
    account = models.CharField(max_length=64)
    booked_on = models.DateField()
    value_on = models.DateField(null=True, blank=True)
    amount = models.DecimalField(**MONEY, help_text=_("Positive for money in."))
    currency = models.CharField(max_length=3, validators=[validate_currency])
    counterparty_name = models.CharField(max_length=200, blank=True)
    counterparty_account = models.CharField(max_length=64, blank=True)
    remittance = models.TextField(blank=True)
    bank_reference = models.CharField(max_length=100, blank=True)
    payment = models.OneToOneField(
        Payment, on_delete=models.PROTECT, null=True, blank=True, related_name="bank_line"
    )

    class Meta:
        verbose_name = _("bank statement line")
        ordering = ["statement", "line_number"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "fingerprint"], name="bank_line_once_per_account"
            )
        ]
        indexes = [
            # The matcher's first evidence of who paid: earlier payments from the same
            # account (reconciliation.identify_payers, for every chunk of every import).
            models.Index(
                fields=["counterparty_account"],
                condition=~Q(counterparty_account=""),
                name="bank_line_counterparty",
            )
        ]

    def __str__(self):
        return f"{self.booked_on} {self.currency} {self.amount} {self.counterparty_name}"


class MatchProposal(models.Model):
    """A reconciliation match too uncertain to book by itself, waiting for finance."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Waiting for review")
        ACCEPTED = "accepted", _("Accepted")
        REJECTED = "rejected", _("Rejected")

    class Rule(models.TextChoices):
        """The matcher's rules (reconciliation/matching.py), in the words finance uses."""

        INVOICE_NUMBER = "invoice_number", _("Invoice number quoted")
        INVOICE_NUMBER_AMOUNT_DIFFERS = (
            "invoice_number_amount_differs",
            _("Invoice number quoted, amount differs"),
        )
        EXACT_AMOUNT = "exact_amount", _("Exact amount of one invoice")
        SUBSET_SUM = "subset_sum", _("Sum of several invoices")
        EXACT_AMOUNT_SEVERAL = "exact_amount_several", _("Exact amount of several invoices")
        OLDEST_FIRST = "oldest_first", _("Oldest invoices first")

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="proposals")
    rule = models.CharField(_("rule"), max_length=40, choices=Rule)
    confidence = models.DecimalField(_("confidence"), max_digits=4, decimal_places=3)
    # [{"invoice": id, "amount": "12.50"}, ...]
    lines = models.JSONField(_("allocations proposed"))
    explanation = models.CharField(_("why"), max_length=300, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("match proposal")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(confidence__gte=0) & Q(confidence__lte=1),
                name="proposal_confidence_0_to_1",
            ),
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(status="pending"),
                name="proposal_one_pending_per_payment",
            ),
        ]
        permissions = [("review_match", "Can accept or reject reconciliation proposals")]

    def __str__(self):
        return f"{self.get_rule_display()} for {self.payment} ({self.confidence})"

    def invoices(self):
        return Invoice.objects.filter(pk__in=[line["invoice"] for line in self.lines])


class InboxItem(models.Model):
    """A signed webhook or an accepted bulk request, stored as it came before any work.

    The endpoint verifies and validates, stores the item in one INSERT and answers; a
    Celery worker then applies it (`integrations.tasks`), and a sweep picks up any item a
    lost task message left behind. `key` is the sender's event id, or a digest of the
    payload when the sender gives none: the same delivery twice is stored once.
    """

    class Source(models.TextChoices):
        STRIPE = "stripe", _("Stripe")
        PAYMENTS_WEBHOOK = "generic", _("Payment webhook")
        EMAIL_EVENTS = "email_events", _("E-mail events")
        TWILIO_INBOUND = "twilio_inbound", _("Twilio inbound SMS")
        TWILIO_STATUS = "twilio_status", _("Twilio delivery status")
        API_BULK = "api_bulk", _("Bulk invoice API")

    class Status(models.TextChoices):
        RECEIVED = "received", _("Received, waiting for a worker")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed (in the dead-letter list)")

    source = models.CharField(_("source"), max_length=20, choices=Source)
    key = models.CharField(_("key"), max_length=255)
    payload = models.JSONField(_("payload"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.RECEIVED)
    note = models.TextField(_("note"), blank=True)
    batch = models.ForeignKey(
        IntakeBatch, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("received webhook or bulk request")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="inbox_item_once"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="received"),
                name="inbox_item_waiting",
            )
        ]

    def __str__(self):
        return f"{self.source} {self.key}"


class AutopayMandate(models.Model):
    """A payment method the debtor saved through Stripe (a SetupIntent) for us to charge
    their invoices on their due dates. At most one active mandate per customer: a new one
    replaces the old (which is cancelled, by the debtor, as "replaced")."""

    class MethodType(models.TextChoices):
        CARD = "card", _("Card")
        SEPA_DEBIT = "sepa_debit", _("SEPA Direct Debit")
        US_BANK_ACCOUNT = "us_bank_account", _("US bank account (ACH)")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        CANCELLED = "cancelled", _("Cancelled")

    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        related_name="autopay_mandates",
        verbose_name=_("customer"),
    )
    # Who set it up (the debtor, on the portal).
    contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="autopay_mandates",
        verbose_name=_("set up by"),
    )
    stripe_customer_id = models.CharField(_("Stripe customer"), max_length=255)
    payment_method_id = models.CharField(_("payment method"), max_length=255)
    # The SetupIntent that saved it: the webhook's events about it make one mandate.
    setup_intent_id = models.CharField(_("setup intent"), max_length=255, unique=True)
    method_type = models.CharField(_("method"), max_length=16, choices=MethodType)
    display = models.CharField(_("shown as"), max_length=100, help_text=_("Visa •••• 4242"))
    status = models.CharField(_("status"), max_length=10, choices=Status, default=Status.ACTIVE)
    created_at = models.DateTimeField(_("set up at"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by (staff)"),
    )
    cancelled_by_contact = models.ForeignKey(
        Contact,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancelled by (debtor)"),
    )
    cancel_reason = models.CharField(_("why cancelled"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("automatic payment mandate")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="active"),
                name="autopay_one_active_mandate_per_customer",
            ),
            models.CheckConstraint(
                condition=Q(status="active", cancelled_at__isnull=True)
                | Q(status="cancelled", cancelled_at__isnull=False),
                name="autopay_mandate_cancelled_has_date",
            ),
        ]
        permissions = [("cancel_mandate", "Can cancel a customer's automatic payment")]

    def __str__(self):
        return f"{self.display} ({self.get_status_display()})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class AutopayCharge(models.Model):
    """One attempt to charge one invoice to a mandate: an off-session PaymentIntent.

    Attempts are numbered per invoice (1, then the retries); the idempotency key sent to
    Stripe is (invoice, attempt), so a crashed run that tries again creates no second
    PaymentIntent. A failed attempt names the day of the next one, or none (given up: the
    agent has a task).
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Being charged")
        PROCESSING = "processing", _("Processing (bank debit)")
        SUCCEEDED = "succeeded", _("Paid")
        FAILED = "failed", _("Failed")

    mandate = models.ForeignKey(
        AutopayMandate, on_delete=models.PROTECT, related_name="charges", verbose_name=_("mandate")
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="autopay_charges", verbose_name=_("invoice")
    )
    amount = models.DecimalField(_("amount"), **MONEY)
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    attempt = models.PositiveSmallIntegerField(_("attempt"))
    status = models.CharField(_("status"), max_length=12, choices=Status, default=Status.PENDING)
    payment_intent_id = models.CharField(_("payment intent"), max_length=255, blank=True)
    next_retry_on = models.DateField(_("next try on"), null=True, blank=True)
    failure_reason = models.CharField(_("why it failed"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("charged at"), auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("automatic payment charge")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["invoice", "attempt"], name="autopay_charge_attempt_once"
            ),
            models.UniqueConstraint(
                fields=["payment_intent_id"],
                condition=~Q(payment_intent_id=""),
                name="autopay_charge_payment_intent_once",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="autopay_charge_positive"),
            models.CheckConstraint(
                condition=Q(attempt__gte=1), name="autopay_charge_attempt_from_1"
            ),
            models.CheckConstraint(
                condition=Q(next_retry_on__isnull=True) | Q(status="failed"),
                name="autopay_charge_retry_only_after_failure",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_retry_on"],
                condition=Q(status="failed", next_retry_on__isnull=False),
                name="autopay_charge_retry_due",
            )
        ]

    def __str__(self):
        return f"{self.invoice} #{self.attempt}: {self.currency} {self.amount} ({self.status})"


class InboundEmail(models.Model):
    """A message from a debtor to the collections team: an e-mail reply or a portal message.

    Stored once per source and Message-ID (a provider's retry, an IMAP folder read twice,
    a replayed webhook store nothing new), threaded to its notice and customer where it
    can be (`matched_by`), and kept even when it cannot: managers see the unmatched ones.
    Written only by `integrations.inbound.receive`.
    """

    class Source(models.TextChoices):
        MAILGUN = "mailgun", _("Mailgun")
        POSTMARK = "postmark", _("Postmark")
        IMAP = "imap", _("IMAP mailbox")
        OUTBOX = "outbox", _("Local outbox")
        PORTAL = "portal", _("Portal")

    class MatchedBy(models.TextChoices):
        UNMATCHED = "", _("Not matched")
        TOKEN = "token", _("Reply address token")
        REFERENCES = "references", _("In-Reply-To / References")
        SENDER = "sender", _("Sender's address")
        PORTAL = "portal", _("Portal sign-in")
        MANUAL = "manual", _("Filed by a person")

    source = models.CharField(_("source"), max_length=20, choices=Source)
    message_id = models.CharField(_("message id"), max_length=255)
    in_reply_to = models.CharField(_("in reply to"), max_length=500, blank=True)
    references = models.TextField(_("references"), blank=True)
    sender = EncryptedCharField(_("from"), max_length=254, blank=True)
    sender_hash = LookupHashField(source="sender", kind="email")  # finds a person's mail
    recipient = models.CharField(_("to"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    text = models.TextField(_("text"), blank=True)
    customer = models.ForeignKey(
        "accounts.Customer",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="inbound_emails",
    )
    contact = models.ForeignKey(
        "accounts.Contact", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    notice = models.ForeignKey(
        "dunning.Notice", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    matched_by = models.CharField(
        _("matched by"), max_length=12, choices=MatchedBy, blank=True, default=""
    )
    match_note = models.CharField(_("match note"), max_length=200, blank=True)
    is_automatic = models.BooleanField(_("automatic reply"), default=False)
    automatic_reason = models.CharField(_("why automatic"), max_length=100, blank=True)
    promised_on = models.DateField(_("promised date found"), null=True, blank=True)
    promised_amount = models.DecimalField(
        _("promised amount found"), **MONEY, null=True, blank=True
    )
    promised_currency = models.CharField(
        _("currency"), max_length=3, blank=True, validators=[validate_currency]
    )
    dispute_words = models.JSONField(_("dispute words found"), default=list, blank=True)
    paused_until = models.DateField(_("chasing paused until"), null=True, blank=True)
    task = models.ForeignKey(
        "cases.Task", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    promise = models.ForeignKey(
        "cases.PromiseToPay", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    dispute = models.ForeignKey(
        "cases.Dispute", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(_("received"))
    created_at = models.DateTimeField(_("stored"), auto_now_add=True)

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "message_id"], name="inbound_email_once"),
            models.CheckConstraint(
                condition=Q(promised_amount__isnull=True) | ~Q(promised_currency=""),
                name="inbound_email_promise_has_currency",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "-received_at"], name="inbound_email_customer"),
            models.Index(fields=["sender_hash"], name="inbound_email_sender_hash"),
            models.Index(
                fields=["-received_at"], condition=Q(customer=None), name="inbound_email_unmatched"
            ),
        ]

    def __str__(self):
        return f"{self.get_source_display()}: {self.subject or self.text[:40]}"

    @property
    def mentions_dispute(self) -> bool:
        return bool(self.dispute_words)


def inbound_attachment_path(attachment: "InboundAttachment", filename: str) -> str:
    return f"inbound/{timezone.now():%Y/%m}/{uuid.uuid4().hex}/{filename}"


class InboundAttachment(models.Model):
    """A file that came with an inbound message: kept in the default storage when it is
    within the bounds (INBOUND_MAX_ATTACHMENTS, _BYTES, _TYPES), else recorded as refused."""

    email = models.ForeignKey(InboundEmail, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(_("file name"), max_length=255)
    content_type = models.CharField(_("content type"), max_length=255, blank=True)
    size = models.PositiveBigIntegerField(_("size (bytes)"), default=0)
    file = models.FileField(_("file"), upload_to=inbound_attachment_path, blank=True)
    refused_reason = models.CharField(_("refused because"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("inbound attachment")
        ordering = ["email", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(file="") | ~Q(refused_reason=""),
                name="inbound_attachment_kept_or_refused",
            )
        ]

    def __str__(self):
        return self.filename


class ImapCursor(models.Model):
    """How far an IMAP folder has been read: the last UID taken, under its UIDVALIDITY."""

    mailbox = models.CharField(_("mailbox"), max_length=500, unique=True)
    uid_validity = models.BigIntegerField(_("UIDVALIDITY"), default=0)
    last_uid = models.BigIntegerField(_("last UID read"), default=0)
    polled_at = models.DateTimeField(_("polled"), null=True, blank=True)

    class Meta:
        verbose_name = _("IMAP mailbox read position")

    def __str__(self):
        return f"{self.mailbox} (UID {self.last_uid})"
