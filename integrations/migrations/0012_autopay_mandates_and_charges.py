"""Automatic payment: the mandate a debtor saves through Stripe (at most one active per
customer) and each charge of an invoice to it (integrations/models.py, used by integrations/gateways/autopay.py)."""

import accounts.money
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0032_portal_contact_fields"),
        ("integrations", "0011_import_profiles_paid_columns"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AutopayMandate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "stripe_customer_id",
                    models.CharField(max_length=255, verbose_name="Stripe customer"),
                ),
                (
                    "payment_method_id",
                    models.CharField(max_length=255, verbose_name="payment method"),
                ),
                (
                    "setup_intent_id",
                    models.CharField(max_length=255, unique=True, verbose_name="setup intent"),
                ),
                (
                    "method_type",
                    models.CharField(
                        choices=[
                            ("card", "Card"),
                            ("sepa_debit", "SEPA Direct Debit"),
                            ("us_bank_account", "US bank account (ACH)"),
                        ],
                        max_length=16,
                        verbose_name="method",
                    ),
                ),
                (
                    "display",
                    models.CharField(
                        help_text="Visa •••• 4242", max_length=100, verbose_name="shown as"
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[("active", "Active"), ("cancelled", "Cancelled")],
                        default="active",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="set up at")),
                (
                    "cancelled_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="cancelled at"),
                ),
                (
                    "cancel_reason",
                    models.CharField(blank=True, max_length=300, verbose_name="why cancelled"),
                ),
                (
                    "cancelled_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="cancelled by (staff)",
                    ),
                ),
                (
                    "cancelled_by_contact",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="accounts.contact",
                        verbose_name="cancelled by (debtor)",
                    ),
                ),
                (
                    "contact",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="autopay_mandates",
                        to="accounts.contact",
                        verbose_name="set up by",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="autopay_mandates",
                        to="accounts.customer",
                        verbose_name="customer",
                    ),
                ),
            ],
            options={
                "verbose_name": "automatic payment mandate",
                "ordering": ["-created_at", "-id"],
                "permissions": [("cancel_mandate", "Can cancel a customer's automatic payment")],
            },
        ),
        migrations.CreateModel(
            name="AutopayCharge",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "amount",
                    models.DecimalField(decimal_places=2, max_digits=14, verbose_name="amount"),
                ),
                (
                    "currency",
                    models.CharField(
                        max_length=3,
                        validators=[accounts.money.validate_currency],
                        verbose_name="currency",
                    ),
                ),
                ("attempt", models.PositiveSmallIntegerField(verbose_name="attempt")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Being charged"),
                            ("processing", "Processing (bank debit)"),
                            ("succeeded", "Paid"),
                            ("failed", "Failed"),
                        ],
                        default="pending",
                        max_length=12,
                        verbose_name="status",
                    ),
                ),
                (
                    "payment_intent_id",
                    models.CharField(blank=True, max_length=255, verbose_name="payment intent"),
                ),
                (
                    "next_retry_on",
                    models.DateField(blank=True, null=True, verbose_name="next try on"),
                ),
                (
                    "failure_reason",
                    models.CharField(blank=True, max_length=300, verbose_name="why it failed"),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="charged at")),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "invoice",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="autopay_charges",
                        to="accounts.invoice",
                        verbose_name="invoice",
                    ),
                ),
                (
                    "mandate",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="charges",
                        to="integrations.autopaymandate",
                        verbose_name="mandate",
                    ),
                ),
            ],
            options={
                "verbose_name": "automatic payment charge",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="autopaymandate",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "active")),
                fields=("customer",),
                name="autopay_one_active_mandate_per_customer",
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaymandate",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("cancelled_at__isnull", True), ("status", "active")),
                    models.Q(("cancelled_at__isnull", False), ("status", "cancelled")),
                    _connector="OR",
                ),
                name="autopay_mandate_cancelled_has_date",
            ),
        ),
        migrations.AddIndex(
            model_name="autopaycharge",
            index=models.Index(
                condition=models.Q(("next_retry_on__isnull", False), ("status", "failed")),
                fields=["next_retry_on"],
                name="autopay_charge_retry_due",
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaycharge",
            constraint=models.UniqueConstraint(
                fields=("invoice", "attempt"), name="autopay_charge_attempt_once"
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaycharge",
            constraint=models.UniqueConstraint(
                condition=models.Q(("payment_intent_id", ""), _negated=True),
                fields=("payment_intent_id",),
                name="autopay_charge_payment_intent_once",
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaycharge",
            constraint=models.CheckConstraint(
                condition=models.Q(("amount__gt", 0)), name="autopay_charge_positive"
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaycharge",
            constraint=models.CheckConstraint(
                condition=models.Q(("attempt__gte", 1)), name="autopay_charge_attempt_from_1"
            ),
        ),
        migrations.AddConstraint(
            model_name="autopaycharge",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("next_retry_on__isnull", True), ("status", "failed"), _connector="OR"
                ),
                name="autopay_charge_retry_only_after_failure",
            ),
        ),
    ]
