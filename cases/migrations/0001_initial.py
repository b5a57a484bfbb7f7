"""Case work moves from `accounts` to this app: the models only, in the migration state.

The tables keep their names (`accounts_task`, `accounts_promisetopay`, ...; each model's
Meta says so), so nothing is created, copied or dropped: SeparateDatabaseAndState with no
database operations. accounts 0019 removes the same models from the `accounts` state, and
cases 0002 moves their content types and permissions (and the periodic tasks' names).
Reversible: unapplying these puts the state back where it was; the tables never moved.
"""

import accounts.money
import django.db.models.deletion
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0018_allocation_seq_required"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="PaymentPlan",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(
                                max_length=3,
                                validators=[accounts.money.validate_currency],
                                verbose_name="currency",
                            ),
                        ),
                        (
                            "total_amount",
                            models.DecimalField(
                                decimal_places=2, max_digits=14, verbose_name="total"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("proposed", "Proposed (awaiting approval)"),
                                    ("active", "Active"),
                                    ("rejected", "Rejected"),
                                    ("completed", "Completed"),
                                    ("broken", "Broken"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="proposed",
                                max_length=10,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "grace_days",
                            models.PositiveSmallIntegerField(default=5, verbose_name="grace days"),
                        ),
                        ("note", models.TextField(blank=True, verbose_name="note")),
                        (
                            "approved_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="approved"),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "closed_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="closed"),
                        ),
                        (
                            "approved_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="payment_plans",
                                to="accounts.customer",
                            ),
                        ),
                        (
                            "invoices",
                            models.ManyToManyField(
                                related_name="payment_plans",
                                to="accounts.invoice",
                                verbose_name="invoices",
                            ),
                        ),
                        (
                            "proposed_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "payment plan",
                        "db_table": "accounts_paymentplan",
                        "ordering": ["-created_at", "-id"],
                        "permissions": [
                            ("approve_paymentplan", "Can approve payment plans over the threshold")
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="Installment",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("sequence", models.PositiveSmallIntegerField(verbose_name="number")),
                        ("due_on", models.DateField(verbose_name="due")),
                        (
                            "amount",
                            models.DecimalField(
                                decimal_places=2, max_digits=14, verbose_name="amount"
                            ),
                        ),
                        (
                            "paid_amount",
                            models.DecimalField(
                                decimal_places=2,
                                default=Decimal("0.00"),
                                max_digits=14,
                                verbose_name="paid",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("pending", "Pending"),
                                    ("paid", "Paid"),
                                    ("missed", "Missed"),
                                ],
                                default="pending",
                                max_length=8,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "paid_on",
                            models.DateField(blank=True, null=True, verbose_name="paid on"),
                        ),
                        (
                            "reminded_at",
                            models.DateTimeField(
                                blank=True, null=True, verbose_name="reminder sent"
                            ),
                        ),
                        (
                            "plan",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="installments",
                                to="cases.paymentplan",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "installment",
                        "db_table": "accounts_installment",
                        "ordering": ["plan", "sequence"],
                    },
                ),
                migrations.CreateModel(
                    name="PromiseToPay",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "amount",
                            models.DecimalField(
                                decimal_places=2, max_digits=14, verbose_name="amount"
                            ),
                        ),
                        (
                            "currency",
                            models.CharField(
                                max_length=3,
                                validators=[accounts.money.validate_currency],
                                verbose_name="currency",
                            ),
                        ),
                        ("promised_on", models.DateField(verbose_name="promised for")),
                        ("holds_until", models.DateField(verbose_name="dunning held until")),
                        (
                            "channel",
                            models.CharField(
                                choices=[
                                    ("", "—"),
                                    ("email", "E-mail"),
                                    ("sms", "SMS"),
                                    ("phone", "Phone"),
                                    ("letter", "Letter"),
                                    ("portal", "Portal"),
                                ],
                                default="phone",
                                max_length=8,
                                verbose_name="channel",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("kept", "Kept"),
                                    ("broken", "Broken"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="open",
                                max_length=10,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "paid_amount",
                            models.DecimalField(
                                decimal_places=2,
                                default=Decimal("0.00"),
                                max_digits=14,
                                verbose_name="paid so far",
                            ),
                        ),
                        ("note", models.TextField(blank=True, verbose_name="note")),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "resolved_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="resolved"),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="promises",
                                to="accounts.customer",
                            ),
                        ),
                        (
                            "invoices",
                            models.ManyToManyField(
                                related_name="promises",
                                to="accounts.invoice",
                                verbose_name="invoices",
                            ),
                        ),
                        (
                            "recorded_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "promise to pay",
                        "verbose_name_plural": "promises to pay",
                        "db_table": "accounts_promisetopay",
                        "ordering": ["-created_at", "-id"],
                    },
                ),
                migrations.CreateModel(
                    name="Recovery",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("write_off", "Write-off"),
                                    ("agency", "Placement with a collections agency"),
                                ],
                                max_length=10,
                                verbose_name="kind",
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("proposed", "Proposed"),
                                    ("approved", "Approved"),
                                    ("rejected", "Rejected"),
                                    ("reversed", "Reversed"),
                                ],
                                default="proposed",
                                max_length=10,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "agency_name",
                            models.CharField(blank=True, max_length=200, verbose_name="agency"),
                        ),
                        (
                            "agency_reference",
                            models.CharField(
                                blank=True, max_length=100, verbose_name="agency reference"
                            ),
                        ),
                        ("reason", models.TextField(blank=True, verbose_name="reason")),
                        (
                            "decided_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="decided"),
                        ),
                        (
                            "reversed_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="reversed"),
                        ),
                        (
                            "reversal_reason",
                            models.TextField(blank=True, verbose_name="reversal reason"),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "adjustment",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="accounts.payment",
                                verbose_name="adjustment",
                            ),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="recoveries",
                                to="accounts.customer",
                            ),
                        ),
                        (
                            "decided_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "invoices",
                            models.ManyToManyField(
                                related_name="recoveries",
                                to="accounts.invoice",
                                verbose_name="invoices",
                            ),
                        ),
                        (
                            "proposed_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "reversed_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "write-off or placement",
                        "verbose_name_plural": "write-offs and placements",
                        "db_table": "accounts_recovery",
                        "ordering": ["-created_at", "-id"],
                        "permissions": [
                            (
                                "approve_recovery",
                                "Can approve and reverse write-offs and placements",
                            )
                        ],
                    },
                ),
                migrations.CreateModel(
                    name="RoutingRule",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("name", models.CharField(max_length=100, verbose_name="name")),
                        (
                            "priority",
                            models.PositiveSmallIntegerField(
                                default=100, help_text="Lower runs first.", verbose_name="priority"
                            ),
                        ),
                        (
                            "segment",
                            models.CharField(
                                blank=True,
                                choices=[
                                    ("strategic", "Strategic"),
                                    ("standard", "Standard"),
                                    ("high_risk", "High risk"),
                                ],
                                help_text="Any if empty.",
                                max_length=20,
                                verbose_name="segment",
                            ),
                        ),
                        (
                            "risk_band",
                            models.CharField(
                                blank=True,
                                choices=[("low", "Low"), ("medium", "Medium"), ("high", "High")],
                                help_text="Any if empty.",
                                max_length=8,
                                verbose_name="risk band",
                            ),
                        ),
                        (
                            "min_balance",
                            models.DecimalField(
                                blank=True,
                                decimal_places=2,
                                help_text="In the customer's currency; any if empty.",
                                max_digits=14,
                                null=True,
                                verbose_name="minimum open balance",
                            ),
                        ),
                        (
                            "language",
                            models.CharField(blank=True, max_length=8, verbose_name="language"),
                        ),
                        (
                            "countries",
                            models.CharField(
                                blank=True,
                                help_text="ISO codes, comma-separated.",
                                max_length=200,
                                verbose_name="countries",
                            ),
                        ),
                        (
                            "max_accounts_per_agent",
                            models.PositiveIntegerField(
                                default=1000, verbose_name="accounts per agent at most"
                            ),
                        ),
                        ("is_active", models.BooleanField(default=True, verbose_name="active")),
                        (
                            "agents",
                            models.ManyToManyField(
                                related_name="routing_rules",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="agents",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "routing rule",
                        "db_table": "accounts_routingrule",
                        "ordering": ["priority", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="Task",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "kind",
                            models.CharField(
                                choices=[
                                    ("call", "Call"),
                                    ("email", "E-mail"),
                                    ("review", "Review"),
                                    ("approval", "Approval"),
                                    ("alert", "Alert"),
                                ],
                                max_length=10,
                                verbose_name="kind",
                            ),
                        ),
                        ("title", models.CharField(max_length=200, verbose_name="title")),
                        ("description", models.TextField(blank=True, verbose_name="description")),
                        ("due_at", models.DateTimeField(verbose_name="due")),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("done", "Done"),
                                    ("cancelled", "Cancelled"),
                                ],
                                default="open",
                                max_length=10,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "outcome",
                            models.CharField(blank=True, max_length=40, verbose_name="outcome"),
                        ),
                        ("outcome_note", models.TextField(blank=True, verbose_name="outcome note")),
                        (
                            "source",
                            models.CharField(blank=True, max_length=60, verbose_name="source"),
                        ),
                        (
                            "details",
                            models.JSONField(blank=True, default=dict, verbose_name="details"),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "completed_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="completed"),
                        ),
                        (
                            "assignee",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                help_text="Empty: the unassigned queue.",
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="collection_tasks",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="assignee",
                            ),
                        ),
                        (
                            "completed_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "created_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="tasks",
                                to="accounts.customer",
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "task",
                        "db_table": "accounts_task",
                        "ordering": ["due_at", "id"],
                    },
                ),
                migrations.CreateModel(
                    name="Dispute",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        (
                            "reason",
                            models.CharField(
                                choices=[
                                    ("pricing", "Pricing"),
                                    ("quantity", "Quantity"),
                                    ("quality", "Quality"),
                                    ("not_received", "Not received"),
                                    ("duplicate", "Duplicate"),
                                    ("other", "Other"),
                                ],
                                max_length=16,
                                verbose_name="reason",
                            ),
                        ),
                        ("description", models.TextField(blank=True, verbose_name="description")),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("open", "Open"),
                                    ("under_review", "Under review"),
                                    ("resolved_customer", "Resolved for the customer"),
                                    ("resolved_us", "Resolved for us"),
                                ],
                                default="open",
                                max_length=20,
                                verbose_name="status",
                            ),
                        ),
                        (
                            "resolution_note",
                            models.TextField(blank=True, verbose_name="resolution"),
                        ),
                        (
                            "source",
                            models.CharField(blank=True, max_length=60, verbose_name="source"),
                        ),
                        (
                            "opened_at",
                            models.DateTimeField(auto_now_add=True, verbose_name="opened"),
                        ),
                        (
                            "resolved_at",
                            models.DateTimeField(blank=True, null=True, verbose_name="resolved"),
                        ),
                        (
                            "credit_note",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="accounts.payment",
                                verbose_name="credit note issued",
                            ),
                        ),
                        (
                            "customer",
                            models.ForeignKey(
                                db_index=False,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="disputes",
                                to="accounts.customer",
                            ),
                        ),
                        (
                            "invoices",
                            models.ManyToManyField(
                                related_name="disputes",
                                to="accounts.invoice",
                                verbose_name="invoices",
                            ),
                        ),
                        (
                            "opened_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "owner",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="owned_disputes",
                                to=settings.AUTH_USER_MODEL,
                                verbose_name="owner",
                            ),
                        ),
                        (
                            "resolved_by",
                            models.ForeignKey(
                                blank=True,
                                db_index=False,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name": "dispute",
                        "db_table": "accounts_dispute",
                        "ordering": ["-opened_at", "-id"],
                        "permissions": [
                            ("resolve_dispute", "Can resolve disputes (and issue credit notes)")
                        ],
                        "indexes": [
                            models.Index(
                                fields=["customer", "status"], name="dispute_customer_status"
                            )
                        ],
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("source", ""), _negated=True),
                                fields=("source",),
                                name="dispute_one_per_source",
                            )
                        ],
                    },
                ),
                migrations.AddIndex(
                    model_name="paymentplan",
                    index=models.Index(fields=["customer", "status"], name="plan_customer_status"),
                ),
                migrations.AddConstraint(
                    model_name="paymentplan",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("total_amount__gt", 0)), name="plan_total_positive"
                    ),
                ),
                migrations.AddIndex(
                    model_name="installment",
                    index=models.Index(
                        condition=models.Q(("status", "pending")),
                        fields=["due_on"],
                        name="installment_pending_due",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="installment",
                    constraint=models.UniqueConstraint(
                        fields=("plan", "sequence"), name="installment_sequence"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="installment",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("amount__gt", 0)), name="installment_amount_positive"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="installment",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("paid_amount__gte", 0), ("paid_amount__lte", models.F("amount"))
                        ),
                        name="installment_paid_within_amount",
                    ),
                ),
                migrations.AddIndex(
                    model_name="promisetopay",
                    index=models.Index(
                        fields=["customer", "status"], name="promise_customer_status"
                    ),
                ),
                migrations.AddIndex(
                    model_name="promisetopay",
                    index=models.Index(
                        condition=models.Q(("status", "open")),
                        fields=["holds_until"],
                        name="promise_open_until",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="promisetopay",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("amount__gt", 0)), name="promise_amount_positive"
                    ),
                ),
                migrations.AddConstraint(
                    model_name="promisetopay",
                    constraint=models.CheckConstraint(
                        condition=models.Q(("holds_until__gte", models.F("promised_on"))),
                        name="promise_hold_after_date",
                    ),
                ),
                migrations.AddIndex(
                    model_name="recovery",
                    index=models.Index(
                        fields=["customer", "status"], name="recovery_customer_status"
                    ),
                ),
                migrations.AddIndex(
                    model_name="task",
                    index=models.Index(
                        condition=models.Q(("status", "open")),
                        fields=["assignee", "due_at"],
                        name="task_open_by_assignee",
                    ),
                ),
                migrations.AddIndex(
                    model_name="task",
                    index=models.Index(fields=["customer", "status"], name="task_customer_status"),
                ),
                migrations.AddConstraint(
                    model_name="task",
                    constraint=models.UniqueConstraint(
                        condition=models.Q(
                            ("status", "open"), models.Q(("source", ""), _negated=True)
                        ),
                        fields=("source",),
                        name="task_one_open_per_source",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="task",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            ("status", "open"), ("completed_at__isnull", False), _connector="OR"
                        ),
                        name="task_closed_has_time",
                    ),
                ),
            ],
        ),
    ]
