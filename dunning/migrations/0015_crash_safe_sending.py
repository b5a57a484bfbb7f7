"""Crash-safe sending: the uncertain status, the sender's lease and sending columns, and
the index the sweep of dead workers' sends reads."""

from django.db import migrations, models
from django.db.models import Q


class Migration(migrations.Migration):
    dependencies = [("dunning", "0014_installment_reminder_policy")]

    operations = [
        migrations.AlterField(
            model_name="notice",
            name="status",
            field=models.CharField(
                choices=[
                    ("planned", "Planned"),
                    ("awaiting_approval", "Awaiting approval"),
                    ("approved", "Approved"),
                    ("deferred", "Deferred"),
                    ("sending", "Sending"),
                    ("uncertain", "Uncertain"),
                    ("sent", "Sent"),
                    ("delivered", "Delivered"),
                    ("failed", "Failed"),
                    ("cancelled", "Cancelled"),
                    ("rejected", "Rejected"),
                    ("skipped", "Skipped"),
                ],
                default="planned",
                max_length=20,
                verbose_name="status",
            ),
        ),
        migrations.AddField(
            model_name="notice",
            name="claim_token",
            field=models.CharField(blank=True, max_length=32, verbose_name="claimed by"),
        ),
        migrations.AddField(
            model_name="notice",
            name="claimed_until",
            field=models.DateTimeField(blank=True, null=True, verbose_name="claimed until"),
        ),
        migrations.AddField(
            model_name="notice",
            name="sending_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="sending since"),
        ),
        migrations.AddIndex(
            model_name="notice",
            index=models.Index(
                condition=Q(status="sending"), fields=["sending_at"], name="notice_sending"
            ),
        ),
    ]
