"""Dunning: policies and steps, templates, disclosures, thresholds, the outbox and e-mail events."""

from collections import defaultdict
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Contact, Customer, Invoice, RiskBand
from accounts.money import format_money, validate_currency
from cases.models import Installment

from . import template_engine


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    CALL = "call", _("Call task")
    LETTER = "letter", _("Letter (PDF)")
    LEGAL = "legal", _("Legal notice (PDF)")
    ESCALATION = "escalation", _("Escalation to a manager")
    REVIEW = "review", _("Write-off / agency review task")


# Channels that send a message to the customer (the others create work for people).
MESSAGE_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.LETTER, Channel.LEGAL)


class Tone(models.TextChoices):
    FRIENDLY = "friendly", _("Friendly")
    REMINDER = "reminder", _("Reminder")
    URGENT = "urgent", _("Urgent")
    FIRM = "firm", _("Firm")
    FINAL = "final", _("Final")
    LEGAL = "legal", _("Legal")


class Policy(models.Model):
    """A named sequence of steps, chosen per customer by segment and risk band (or set on
    the customer).

    The planner picks a customer's policy in this order (dunning/planner.py,
    `policy_condition`): the customer's own policy; else the active policy of the
    customer's segment for the customer's risk band; else the active policy of the segment
    for any band (risk band empty). At most one active policy per (segment, band).

    A policy for installments is not chosen by anyone: its steps remind customers in an
    active payment plan of each installment, days before it is due, through the same
    outbox and sender as any dunning notice (seeded by dunning 0014).

    A policy for plan offers is not chosen by anyone either: when a payment plan becomes
    active (proposed by an agent at or under the approval threshold, or approved by a
    manager), its active steps each send the customer the plan once (dunning/offers.py,
    seeded by dunning 0020).

    A transactional policy is not chosen by anyone either: each of its e-mail steps is one
    kind of message the debtor asked for or a receipt (a portal code, autopay set up,
    charged, failed, cancelled), sent at once by dunning/transactional.py through the one
    sender, with its own guard (no contact hours, caps or holds).
    """

    class Purpose(models.TextChoices):
        DUNNING = "dunning", _("Overdue invoices")
        INSTALLMENTS = "installments", _("Payment plan installments")
        PLAN_OFFER = "plan_offer", _("Payment plan offers")
        TRANSACTIONAL = "transactional", _("Messages the debtor asked for")

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    segment = models.CharField(
        _("default for segment"),
        max_length=12,
        choices=Customer.Segment,
        blank=True,
        help_text=_("Customers of this segment follow this policy unless they have their own."),
    )
    risk_band = models.CharField(
        _("for risk band"),
        max_length=8,
        choices=RiskBand,
        blank=True,
        default="",
        db_default="",
        help_text=_(
            "Empty: any band. With a band, customers of the segment in that risk band follow "
            "this policy instead of the segment's any-band policy."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    purpose = models.CharField(
        _("purpose"),
        max_length=16,
        choices=Purpose,
        default=Purpose.DUNNING,
        db_default=Purpose.DUNNING,
        help_text=_(
            "Installment reminders and plan offers follow payment plans, not the due date."
        ),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("dunning policy")
        verbose_name_plural = _("dunning policies")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "risk_band"],
                condition=~Q(segment="") & Q(is_active=True) & Q(purpose="dunning"),
                name="policy_one_active_per_segment_and_band",
                violation_error_message=_(
                    "Another active policy already applies to this segment and risk band."
                ),
            ),
            models.CheckConstraint(
                condition=Q(purpose="dunning") | Q(segment=""),
                name="policy_installments_not_by_segment",
            ),
            models.CheckConstraint(
                condition=Q(risk_band="") | ~Q(segment=""),
                name="policy_band_needs_segment",
                violation_error_message=_("A risk band applies only with a segment."),
            ),
        ]
        permissions = [("switch_policy", "Can switch a customer's dunning policy")]

    def __str__(self):
        return self.name


class Template(models.Model):
    """What a step says, per channel and language; rendered with a sandboxed context."""

    name = models.CharField(_("name"), max_length=100)
    channel = models.CharField(_("channel"), max_length=12, choices=Channel)
    language = models.CharField(_("language"), max_length=8, default="en")
    tone = models.CharField(_("tone"), max_length=10, choices=Tone, default=Tone.REMINDER)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_text = models.TextField(_("plain-text body"))
    body_html = models.TextField(_("HTML body"), blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("message template")
        ordering = ["name", "language"]
        constraints = [
            models.UniqueConstraint(fields=["name", "language"], name="template_name_language")
        ]

    def __str__(self):
        return f"{self.name} ({self.language})"

    def clean(self):
        """Refuse a template that does not compile or asks a filter for too wide a result."""
        super().clean()
        errors = {}
        for field in ("subject", "body_text", "body_html"):
            try:
                template_engine.validate_source(getattr(self, field), html=field == "body_html")
            except ValidationError as exc:
                errors[field] = exc.messages
        if errors:
            raise ValidationError(errors)


class Step(models.Model):
    """One action of a policy, a number of days from the due date (negative: before it)."""

    class Approval(models.TextChoices):
        NONE = "none", _("Sent automatically")
        HIGH_VALUE = "high_value", _("Manager approves above the high-value threshold")
        ALWAYS = "always", _("Manager always approves")

    policy = models.ForeignKey(Policy, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(_("name"), max_length=100)
    offset_days = models.SmallIntegerField(
        _("days from due date"), help_text=_("Negative: before the due date.")
    )
    channel = models.CharField(_("channel"), max_length=12, choices=Channel)
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, null=True, blank=True, related_name="steps"
    )
    tone = models.CharField(_("tone"), max_length=10, choices=Tone)
    approval = models.CharField(
        _("approval"), max_length=12, choices=Approval, default=Approval.NONE
    )
    # A condition on the prediction (cases.InvoicePrediction): the step reaches only the
    # invoices predicted likely to be paid late, so good payers are spared it.
    min_probability_late = models.DecimalField(
        _("only if predicted late from"),
        max_digits=5,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text=_(
            "0 to 1, e.g. 0.5: the step applies only to invoices whose predicted probability "
            "of paying late is at least this, and never to an invoice without a prediction. "
            "Empty: every invoice."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    # Experiments (dunning/variants.py): with active variants, each customer is given one
    # of them; adaptive steps move traffic to the better one by Thompson sampling.
    adaptive_variants = models.BooleanField(
        _("adaptive variants"),
        default=False,
        db_default=False,
        help_text=_(
            "Once every active variant has EXPERIMENT_MIN_SAMPLE notices with a known 14-day "
            "outcome, new customers get the variant most likely to be paid (Thompson "
            "sampling) instead of one drawn by weight."
        ),
    )

    class Meta:
        verbose_name = _("dunning step")
        ordering = ["policy", "offset_days", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["policy", "offset_days", "channel"], name="step_once_per_day_and_channel"
            ),
            models.CheckConstraint(
                condition=~Q(channel__in=["email", "sms", "letter", "legal"])
                | Q(template__isnull=False),
                name="step_message_has_template",
            ),
            models.CheckConstraint(
                condition=Q(min_probability_late__isnull=True)
                | Q(min_probability_late__gte=0, min_probability_late__lte=1),
                name="step_min_probability_late_0_1",
            ),
        ]

    def __str__(self):
        sign = "+" if self.offset_days >= 0 else ""
        return (
            f"{self.policy}: {self.name} ({sign}{self.offset_days}d, {self.get_channel_display()})"
        )


class StepVariant(models.Model):
    """One template a step may send instead of its own, in an experiment (dunning/variants.py).

    A step with active variants gives each customer one of them, drawn by weight (or, on
    an adaptive step, by Thompson sampling), and keeps giving that customer the same one.
    """

    class DrawnBy(models.TextChoices):
        WEIGHTS = "weights", _("Weights")
        THOMPSON = "thompson", _("Thompson sampling")

    step = models.ForeignKey(Step, on_delete=models.CASCADE, related_name="variants")
    label = models.CharField(_("label"), max_length=60, help_text=_("A, B, short and firm..."))
    template = models.ForeignKey(
        Template, on_delete=models.PROTECT, related_name="step_variants", verbose_name=_("template")
    )
    weight = models.PositiveIntegerField(
        _("weight"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("Share of new customers: weight / sum of weights."),
    )
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("template variant")
        ordering = ["step", "label"]
        # Who may change a step may change its variants (dunning/admin.py): no rights of its own.
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["step", "label"], name="step_variant_label_once"),
            models.CheckConstraint(condition=Q(weight__gte=1), name="step_variant_weight_positive"),
        ]

    def __str__(self):
        return f"{self.label} ({self.template})"


class Notice(models.Model):
    """The outbox: one message (or task) for one customer at one step, with its invoices.

    Planned by the nightly run, sent by the sender, which claims rows with
    SELECT ... FOR UPDATE SKIP LOCKED and re-checks everything before it sends.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        DEFERRED = "deferred", _("Deferred")
        SENDING = "sending", _("Sending")
        # Left sending by a worker that died: the provider may or may not have taken it.
        # Never re-sent blindly; a manager decides (dunning/admin.py), the caps count it.
        UNCERTAIN = "uncertain", _("Uncertain")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        REJECTED = "rejected", _("Rejected")
        SKIPPED = "skipped", _("Skipped")

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notices")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="notices")
    channel = models.CharField(_("channel"), max_length=12, choices=Channel)
    contact = models.ForeignKey(
        Contact, on_delete=models.SET_NULL, null=True, blank=True, related_name="notices"
    )
    status = models.CharField(_("status"), max_length=20, choices=Status, default=Status.PLANNED)
    # Set for an installment reminder (its step belongs to an installments policy), and for
    # a plan offer (a plan-offer policy's step; the plan's first installment names the
    # plan); its invoices are then the plan's, and it lists none of its own.
    installment = models.ForeignKey(
        Installment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reminders",
        verbose_name=_("installment"),
    )
    # The step's template variant this customer was given (empty: the step has none), and
    # how it was first drawn for the customer: by weight or by Thompson sampling.
    variant = models.ForeignKey(
        StepVariant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="notices",
        verbose_name=_("variant"),
    )
    variant_drawn_by = models.CharField(
        _("variant drawn by"),
        max_length=8,
        choices=StepVariant.DrawnBy,
        blank=True,
        default="",
        db_default="",
    )
    planned_on = models.DateField(_("planned for"))
    not_before_at = models.DateTimeField(_("not before"), null=True, blank=True)
    reason = models.CharField(
        _("reason"), max_length=300, blank=True, help_text=_("Why deferred, skipped or failed.")
    )
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_text = models.TextField(_("text sent"), blank=True)
    body_html = models.TextField(_("HTML sent"), blank=True)
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    provider_message_id = models.CharField(_("provider message id"), max_length=255, blank=True)
    document = models.FileField(
        _("letter (PDF)"), upload_to="letters/%Y/%m/", blank=True, help_text=_("For printing.")
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    # The sender's lease (dunning/sender.py): a worker claims a batch of rows until
    # `claimed_until` (wall clock) under its `claim_token`; a dead worker's lease runs out
    # and the row is sendable again. `sending_at` is when the provider call began.
    claim_token = models.CharField(_("claimed by"), max_length=32, blank=True)
    claimed_until = models.DateTimeField(_("claimed until"), null=True, blank=True)
    sending_at = models.DateTimeField(_("sending since"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # A manager's own wording (subject and text) replaces the template's for this notice; it
    # was written for these invoices, so the notice waits for approval again if they change.
    edited_at = models.DateTimeField(_("text edited"), null=True, blank=True)
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    edited_invoices = models.JSONField(_("invoices the edited text is for"), default=list)
    # A transactional notice (dunning/transactional.py): the caller's key, which makes it
    # idempotent (empty for every other notice), and the variables it was planned with,
    # secrets masked (the clear values live only in the request that sends it).
    key = models.CharField(
        _("idempotency key"), max_length=200, blank=True, default="", db_default=""
    )
    context = models.JSONField(_("variables"), default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("notice")
        ordering = ["-planned_on", "-id"]
        indexes = [
            models.Index(
                fields=["status", "not_before_at"],
                condition=Q(status__in=["planned", "approved", "deferred"]),
                name="notice_sendable",
            ),
            models.Index(fields=["customer", "-planned_on"], name="notice_customer"),
            # The sweep that turns a dead worker's sending rows into uncertain ones.
            models.Index(
                fields=["sending_at"],
                condition=Q(status="sending"),
                name="notice_sending",
            ),
            # The console's "notices await approval" count on the index page.
            models.Index(
                fields=["planned_on"],
                condition=Q(status="awaiting_approval"),
                name="notice_awaiting_approval",
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["installment", "step"],
                condition=Q(installment__isnull=False),
                name="notice_once_per_installment_step",
            ),
            models.UniqueConstraint(
                fields=["key"], condition=~Q(key=""), name="notice_transactional_key_once"
            ),
        ]
        permissions = [
            ("approve_notice", "Can approve, edit or reject notices waiting for approval"),
            ("send_notice_now", "Can send a step now or skip it"),
        ]

    def __str__(self):
        return f"{self.step.name} to {self.customer} on {self.planned_on}"


class NoticeInvoice(models.Model):
    """An invoice listed on a notice. At most one notice per invoice per step, ever."""

    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="lines")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="notice_lines")
    step = models.ForeignKey(Step, on_delete=models.PROTECT, related_name="+")
    # The invoice's predicted probability of paying late when the planner listed it (empty:
    # no prediction then): why a step with a threshold applied, kept as it was that night.
    probability_late = models.DecimalField(
        _("predicted late when planned"), max_digits=5, decimal_places=4, null=True, blank=True
    )

    class Meta:
        verbose_name = _("invoice on a notice")
        constraints = [
            models.UniqueConstraint(fields=["invoice", "step"], name="notice_once_per_invoice_step")
        ]

    def __str__(self):
        return f"{self.invoice} on notice {self.notice_id}"


class OutboxMessage(models.Model):
    """A message kept locally instead of being handed to a provider (e-mail or SMS).

    Used when no SMTP server or Twilio account is configured, as on `make run`, so every
    message the system would have sent can be read in the admin.
    """

    channel = models.CharField(
        _("channel"), max_length=8, choices=[("email", "E-mail"), ("sms", "SMS")]
    )
    recipient = models.CharField(_("to"), max_length=254)
    sender = models.CharField(_("from"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body_text = models.TextField(_("text"))
    body_html = models.TextField(_("HTML"), blank=True)
    message_id = models.CharField(_("message id"), max_length=255, blank=True)
    # What a provider would also have received: the extra headers (List-Unsubscribe...) and
    # the attachments, each {"filename", "mimetype", "size", "path"} in the default storage.
    headers = models.JSONField(_("headers"), default=dict, blank=True)
    attachments = models.JSONField(_("attachments"), default=list, blank=True)
    created_at = models.DateTimeField(_("kept at"), auto_now_add=True)

    class Meta:
        verbose_name = _("outbox message")
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.channel} to {self.recipient}: {self.subject or self.body_text[:40]}"


def _message_channels() -> list[str]:
    return [str(channel) for channel in MESSAGE_CHANNELS]


# Regions a disclosure's jurisdiction may name besides an ISO 3166 country code.
REGIONS = {
    "EU": frozenset(
        "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()
    ),
}


class Disclosure(models.Model):
    """A required block of text added to every message for the customers it matches.

    Consumer-debt notices, debt-advice signposting and the like. Matched on the customer's
    kind, country and language and on the message's channel; the most specific active match
    wins: a country over a region (EU) over any country, then the customer's kind over
    "any", then the customer's language over "any". The rendering appends it (see
    dunning/rendering.py) unless the template places `{{ disclosure }}` itself.
    """

    class CustomerKind(models.TextChoices):
        CONSUMER = "consumer", _("Consumer")
        BUSINESS = "business", _("Business")
        ANY = "any", _("Any")

    name = models.CharField(_("name"), max_length=120, unique=True)
    customer_kind = models.CharField(
        _("customer kind"), max_length=10, choices=CustomerKind, default=CustomerKind.CONSUMER
    )
    jurisdiction = models.CharField(
        _("jurisdiction"),
        max_length=2,
        blank=True,
        help_text=_("ISO 3166 country code (US, GB, DE), or EU for any EU member; empty: any."),
    )
    language = models.CharField(
        _("language"),
        max_length=8,
        blank=True,
        help_text=_("Only for customers with this language (de, fr); empty: any language."),
    )
    channels = models.JSONField(
        _("channels"), default=_message_channels, help_text=_("Messages it is added to.")
    )
    body_text = models.TextField(
        _("text"), help_text=_("May use the template variables, e.g. {{ company_name }}.")
    )
    body_html = models.TextField(
        _("HTML"), blank=True, help_text=_("For HTML e-mails; empty: the text, with line breaks.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("required disclosure")
        ordering = ["jurisdiction", "customer_kind", "language", "name"]

    def __str__(self):
        return self.name

    def clean(self):
        super().clean()
        self.jurisdiction = self.jurisdiction.strip().upper()
        self.language = self.language.strip().lower()
        if self.jurisdiction and not (
            self.jurisdiction in REGIONS
            or (len(self.jurisdiction) == 2 and self.jurisdiction.isalpha())
        ):
            raise ValidationError({"jurisdiction": _("A two-letter country code, EU, or empty.")})
        unknown = set(self.channels or []) - set(_message_channels())
        if not self.channels or unknown:
            raise ValidationError({"channels": _("Choose one or more message channels.")})
        if not self.is_active:
            return
        # Two active disclosures at the same level would make the choice arbitrary.
        for other in Disclosure.objects.filter(
            is_active=True,
            customer_kind=self.customer_kind,
            jurisdiction=self.jurisdiction,
            language__iexact=self.language,
        ).exclude(pk=self.pk):
            shared = set(other.channels) & set(self.channels)
            if shared:
                raise ValidationError(
                    _("“%(other)s” already applies here on %(channels)s: deactivate one.")
                    % {"other": other, "channels": ", ".join(sorted(shared))}
                )

    def specificity(self) -> tuple[bool, bool, bool, bool]:
        """How closely it fits, most important first: a country, a region, a kind, a language."""
        is_region = self.jurisdiction in REGIONS
        return (
            bool(self.jurisdiction) and not is_region,
            is_region,
            self.customer_kind != self.CustomerKind.ANY,
            bool(self.language),
        )


class HighValueThreshold(models.Model):
    """The balance in one currency from which "high value" steps wait for a manager.

    Currencies without a row use the DUNNING_HIGH_VALUE_THRESHOLD setting.
    """

    currency = models.CharField(
        _("currency"), max_length=3, unique=True, validators=[validate_currency]
    )
    amount = models.DecimalField(_("amount"), max_digits=14, decimal_places=2)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("high-value threshold")
        ordering = ["currency"]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount__gte=0), name="high_value_threshold_not_negative"
            )
        ]

    def __str__(self):
        return format_money(self.amount, self.currency)

    @classmethod
    def by_currency(cls) -> defaultdict[str, Decimal]:
        """Each currency's threshold: its row, else DUNNING_HIGH_VALUE_THRESHOLD."""
        fallback = Decimal(settings.DUNNING_HIGH_VALUE_THRESHOLD)
        return defaultdict(lambda: fallback, cls.objects.values_list("currency", "amount"))


class EmailEvent(models.Model):
    """A bounce, complaint or delivery report from the e-mail provider, applied once.

    Posted to the signed /dunning/email-events/ webhook; an event id is stored at most
    once, so a provider's retry or a replayed request changes nothing.
    """

    class Kind(models.TextChoices):
        BOUNCE = "bounce", _("Bounce")
        COMPLAINT = "complaint", _("Complaint")
        DELIVERED = "delivered", _("Delivered")

    event_id = models.CharField(_("event id"), max_length=255, blank=True)
    kind = models.CharField(_("type"), max_length=10, choices=Kind)
    is_permanent = models.BooleanField(
        _("hard bounce"), default=True, help_text=_("A soft bounce changes nothing.")
    )
    message_id = models.CharField(_("message id"), max_length=255, blank=True)
    email = models.CharField(_("e-mail"), max_length=254, blank=True)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    notice = models.ForeignKey(
        Notice, on_delete=models.SET_NULL, null=True, blank=True, related_name="email_events"
    )
    opted_out = models.PositiveIntegerField(_("contacts opted out"), default=0)
    payload = models.JSONField(_("payload"), default=dict)
    received_at = models.DateTimeField(_("received"), auto_now_add=True)

    class Meta:
        verbose_name = _("e-mail event")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["event_id"], condition=~Q(event_id=""), name="email_event_once"
            )
        ]

    def __str__(self):
        return f"{self.kind} {self.email or self.message_id}"


# Weekdays as date.weekday() numbers them, for the contact rules (and their deferral reasons).
WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def validate_weekdays(value) -> None:
    """Distinct weekday numbers, 0 = Monday ... 6 = Sunday, leaving at least one day to contact."""
    if not isinstance(value, list) or not all(type(day) is int and 0 <= day <= 6 for day in value):
        raise ValidationError(_("Weekdays are numbers from 0 (Monday) to 6 (Sunday)."))
    if len(set(value)) != len(value):
        raise ValidationError(_("A weekday is listed twice."))
    if len(value) == 7:
        raise ValidationError(_("At least one weekday must allow contact."))


def validate_hour(value: int) -> None:
    if not 0 <= value <= 24:
        raise ValidationError(_("An hour from 0 to 24."))


def validate_cap(value: int) -> None:
    if value < 1:
        raise ValidationError(_("At least 1 (make the rule inactive to stop contact instead)."))


class ContactRule(models.Model):
    """When and how often the sender may contact a customer: hours, days, holidays, caps.

    Chosen per customer at send time (dunning/contact_rules.py): the most specific active
    rule wins, country and kind over country over kind over any. A customer no active rule
    matches falls back to the DUNNING_CONTACT_* and DUNNING_MAX_* settings.
    """

    country = models.CharField(
        _("country"),
        max_length=2,
        blank=True,
        help_text=_("ISO 3166 code of the customer's country (US, GB, DE); empty: any country."),
    )
    customer_kind = models.CharField(
        _("customer kind"),
        max_length=10,
        choices=Customer.Kind,
        blank=True,
        help_text=_("Empty: any kind."),
    )
    from_hour = models.PositiveSmallIntegerField(
        _("contact from"),
        default=8,
        validators=[validate_hour],
        help_text=_("Hour in the customer's time zone, 0 to 23."),
    )
    until_hour = models.PositiveSmallIntegerField(
        _("contact until"),
        default=21,
        validators=[validate_hour],
        help_text=_("Hour in the customer's time zone, 1 to 24 (midnight)."),
    )
    no_contact_weekdays = models.JSONField(
        _("no contact on"),
        default=list,
        blank=True,
        validators=[validate_weekdays],
        help_text=_("Weekdays as numbers, 0 = Monday ... 6 = Sunday."),
    )
    observe_public_holidays = models.BooleanField(
        _("no contact on public holidays"),
        default=False,
        help_text=_("The customer's country's days under Dunning → Public holidays."),
    )
    max_contacts_per_7_days = models.PositiveSmallIntegerField(
        _("at most contacts in any 7 days"),
        default=7,
        validators=[validate_cap],
        help_text=_("7 is the Regulation F presumption for consumer debt in the US."),
    )
    max_contacts_per_month = models.PositiveSmallIntegerField(
        _("at most contacts a month"),
        null=True,
        blank=True,
        validators=[validate_cap],
        help_text=_("Per calendar month in the customer's time zone; empty: no monthly cap."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("contact rule")
        ordering = ["country", "customer_kind"]
        constraints = [
            models.UniqueConstraint(
                fields=["country", "customer_kind"], name="contact_rule_one_per_scope"
            ),
            models.CheckConstraint(
                condition=Q(from_hour__lt=models.F("until_hour")) & Q(until_hour__lte=24),
                name="contact_rule_hours_within_a_day",
            ),
            models.CheckConstraint(
                condition=Q(max_contacts_per_7_days__gte=1)
                & (Q(max_contacts_per_month__isnull=True) | Q(max_contacts_per_month__gte=1)),
                name="contact_rule_caps_allow_contact",
            ),
        ]

    def __str__(self):
        country = self.country or _("any country")
        kind = self.get_customer_kind_display() if self.customer_kind else _("any kind")
        return f"{country}, {kind}"

    def clean(self):
        super().clean()
        self.country = self.country.strip().upper()
        if self.country and not (len(self.country) == 2 and self.country.isalpha()):
            raise ValidationError({"country": _("A two-letter country code, or empty.")})
        if isinstance(self.no_contact_weekdays, list):
            self.no_contact_weekdays = sorted(self.no_contact_weekdays)
        if (
            self.from_hour is not None
            and self.until_hour is not None
            and self.from_hour >= self.until_hour
        ):
            raise ValidationError({"until_hour": _("Contact must end after it starts.")})

    def specificity(self) -> tuple[bool, bool]:
        """How closely it fits, most important first: a country, then a customer kind."""
        return bool(self.country), bool(self.customer_kind)


class PublicHoliday(models.Model):
    """A public holiday in one country: no contact that day under rules that observe them."""

    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 code (US, GB)."))
    date = models.DateField(_("date"))
    name = models.CharField(_("name"), max_length=200)

    class Meta:
        verbose_name = _("public holiday")
        ordering = ["country", "date"]
        constraints = [
            models.UniqueConstraint(fields=["country", "date"], name="public_holiday_once_a_day")
        ]

    def __str__(self):
        return f"{self.country} {self.date}: {self.name}"

    def clean(self):
        super().clean()
        self.country = self.country.strip().upper()
        if not (len(self.country) == 2 and self.country.isalpha()):
            raise ValidationError({"country": _("A two-letter country code.")})
