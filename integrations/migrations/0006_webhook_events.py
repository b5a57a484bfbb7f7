"""The inbox: every signed webhook and queued bulk request stored as it came (InboxItem);
intake batches from e-mail events and Twilio.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0005_bank_formats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterField(
            model_name="intakebatch",
            name="source",
            field=models.CharField(
                choices=[
                    ("spreadsheet", "Spreadsheet"),
                    ("api", "REST API"),
                    ("stripe", "Stripe"),
                    ("webhook", "Payment webhook"),
                    ("bank_statement", "Bank statement"),
                    ("email_events", "E-mail events"),
                    ("twilio", "Twilio"),
                ],
                max_length=20,
                verbose_name="source",
            ),
        ),
        migrations.CreateModel(
            name="InboxItem",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "source",
                    models.CharField(
                        choices=[
                            ("stripe", "Stripe"),
                            ("generic", "Payment webhook"),
                            ("email_events", "E-mail events"),
                            ("twilio_inbound", "Twilio inbound SMS"),
                            ("twilio_status", "Twilio delivery status"),
                            ("api_bulk", "Bulk invoice API"),
                        ],
                        max_length=20,
                        verbose_name="source",
                    ),
                ),
                ("key", models.CharField(max_length=255, verbose_name="key")),
                ("payload", models.JSONField(verbose_name="payload")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("received", "Received, waiting for a worker"),
                            ("processed", "Processed"),
                            ("failed", "Failed (in the dead-letter list)"),
                        ],
                        default="received",
                        max_length=10,
                        verbose_name="status",
                    ),
                ),
                ("note", models.TextField(blank=True, verbose_name="note")),
                ("received_at", models.DateTimeField(auto_now_add=True, verbose_name="received")),
                (
                    "processed_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="processed"),
                ),
                (
                    "batch",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="integrations.intakebatch",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "received webhook or bulk request",
                "ordering": ["-received_at", "-id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("status", "received")),
                        fields=["received_at"],
                        name="inbox_item_waiting",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("source", "key"), name="inbox_item_once")
                ],
            },
        ),
    ]
