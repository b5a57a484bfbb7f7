"""Case work on the ledger's accounts: tasks, promises to pay, disputes, payment plans and
their installments, write-offs and agency placements, routing rules.

These models moved here from `accounts` (migration cases 0001 and accounts 0019): they
keep their tables (`accounts_*`), so no row was copied, and their permissions moved with
them (the same rows, relabelled `cases.*`), so every role keeps exactly its rights.
"""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY, ZERO, Activity, Customer, Invoice, Payment, RiskBand
from accounts.money import format_money, validate_currency


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
        db_table = "accounts_task"  # moved from accounts: same table, no data copied
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
        db_table = "accounts_promisetopay"  # moved from accounts: same table, no data copied
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
        return f"{format_money(self.amount, self.currency)} by {self.promised_on}"


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
        db_table = "accounts_dispute"  # moved from accounts: same table, no data copied
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
        db_table = "accounts_paymentplan"  # moved from accounts: same table, no data copied
        verbose_name = _("payment plan")
        ordering = ["-created_at", "-id"]
        permissions = [("approve_paymentplan", "Can approve payment plans over the threshold")]
        constraints = [
            models.CheckConstraint(condition=Q(total_amount__gt=0), name="plan_total_positive"),
        ]
        indexes = [
            models.Index(fields=["customer", "status"], name="plan_customer_status"),
            # The console's "approvals waiting" count reads this small index only.
            models.Index(
                fields=["created_at"],
                condition=Q(status="proposed"),
                name="plan_awaiting_approval",
            ),
        ]

    def __str__(self):
        return f"Plan #{self.pk}: {format_money(self.total_amount, self.currency)}"


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
        db_table = "accounts_installment"  # moved from accounts: same table, no data copied
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
        db_table = "accounts_recovery"  # moved from accounts: same table, no data copied
        verbose_name = _("write-off or placement")
        verbose_name_plural = _("write-offs and placements")
        ordering = ["-created_at", "-id"]
        permissions = [("approve_recovery", "Can approve and reverse write-offs and placements")]
        indexes = [
            models.Index(fields=["customer", "status"], name="recovery_customer_status"),
            # The console's "approvals waiting" count (four eyes: by proposer).
            models.Index(
                fields=["proposed_by"],
                condition=Q(status="proposed"),
                name="recovery_awaiting_approval",
            ),
        ]

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
        db_table = "accounts_routingrule"  # moved from accounts: same table, no data copied
        verbose_name = _("routing rule")
        ordering = ["priority", "id"]

    def __str__(self):
        return self.name


class InvoicePrediction(models.Model):
    """The latest prediction for one open invoice: will it be paid late, and when.

    Written in bulk by the nightly scoring (predictions/scoring.py), one row per open
    invoice, replaced each night; read by the console (invoice list, customer page,
    worklist priority), the dunning planner (a step's predicted-lateness threshold) and the
    cash forecast. It lives in `cases` so that everything below the predictions app can
    read it without importing it. `reasons` are plain sentences, strongest first.
    """

    invoice = models.OneToOneField(
        Invoice,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="prediction",
        verbose_name=_("invoice"),
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="invoice_predictions", db_index=False
    )
    probability_late = models.DecimalField(
        _("probability of paying late"),
        max_digits=5,
        decimal_places=4,
        help_text=_("0 to 1: how likely the invoice is paid after its due date."),
    )
    expected_pay_on = models.DateField(_("expected pay date"))
    reasons = models.JSONField(_("reasons"), default=list, blank=True)
    model_version = models.CharField(_("model version"), max_length=40)
    as_of = models.DateField(_("as of"))
    scored_at = models.DateTimeField(_("scored at"))

    class Meta:
        db_table = "cases_invoiceprediction"
        verbose_name = _("invoice prediction")
        indexes = [
            models.Index(fields=["customer", "-probability_late"], name="prediction_customer"),
            models.Index(fields=["-probability_late"], name="prediction_probability"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(probability_late__gte=0) & Q(probability_late__lte=1),
                name="prediction_probability_0_1",
            )
        ]

    def __str__(self):
        return f"{self.invoice_id}: {self.probability_late:.0%}"

    @property
    def is_predicted_late(self) -> bool:
        return self.probability_late >= Decimal(str(settings.PREDICTED_LATE_THRESHOLD))
