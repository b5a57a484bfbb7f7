"""Installment reminders become notices: a purpose for policies, an installment on notices."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0019_case_work_moves_to_cases"),
        ("cases", "0002_content_types_and_schedule"),
        ("dunning", "0012_outbox_headers_attachments"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="notice",
            name="installment",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="reminders",
                to="cases.installment",
                verbose_name="installment",
            ),
        ),
        migrations.AddField(
            model_name="policy",
            name="purpose",
            field=models.CharField(
                choices=[
                    ("dunning", "Overdue invoices"),
                    ("installments", "Payment plan installments"),
                ],
                db_default="dunning",
                default="dunning",
                help_text="Installment reminders follow payment plans, not the due date.",
                max_length=12,
                verbose_name="purpose",
            ),
        ),
        migrations.AddConstraint(
            model_name="notice",
            constraint=models.UniqueConstraint(
                condition=models.Q(("installment__isnull", False)),
                fields=("installment", "step"),
                name="notice_once_per_installment_step",
            ),
        ),
        migrations.AddConstraint(
            model_name="policy",
            constraint=models.CheckConstraint(
                condition=models.Q(("purpose", "dunning"), ("segment", ""), _connector="OR"),
                name="policy_installments_not_by_segment",
            ),
        ),
    ]
