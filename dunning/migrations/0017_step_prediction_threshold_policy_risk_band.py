"""Steps that apply only to invoices predicted late; policies chosen by risk band too.

- Step.min_probability_late: the step reaches only invoices whose prediction
  (cases.InvoicePrediction) says at least this probability of paying late.
- NoticeInvoice.probability_late: that probability when the invoice was planned.
- Policy.risk_band: empty for any band; one active dunning policy per (segment, band)
  replaces one per segment. Going back restores one per segment, which fails while two
  active policies share a segment with different bands: deactivate one first.
"""

import django.core.validators
from decimal import Decimal
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0016_notice_awaiting_approval_index"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="policy",
            name="policy_one_active_per_segment",
        ),
        migrations.AddField(
            model_name="noticeinvoice",
            name="probability_late",
            field=models.DecimalField(
                blank=True,
                decimal_places=4,
                max_digits=5,
                null=True,
                verbose_name="predicted late when planned",
            ),
        ),
        migrations.AddField(
            model_name="policy",
            name="risk_band",
            field=models.CharField(
                blank=True,
                choices=[("low", "Low"), ("medium", "Medium"), ("high", "High")],
                db_default="",
                default="",
                help_text="Empty: any band. With a band, customers of the segment in that risk band follow this policy instead of the segment's any-band policy.",
                max_length=8,
                verbose_name="for risk band",
            ),
        ),
        migrations.AddField(
            model_name="step",
            name="min_probability_late",
            field=models.DecimalField(
                blank=True,
                decimal_places=4,
                help_text="0 to 1, e.g. 0.5: the step applies only to invoices whose predicted probability of paying late is at least this, and never to an invoice without a prediction. Empty: every invoice.",
                max_digits=5,
                null=True,
                validators=[
                    django.core.validators.MinValueValidator(Decimal("0")),
                    django.core.validators.MaxValueValidator(Decimal("1")),
                ],
                verbose_name="only if predicted late from",
            ),
        ),
        migrations.AddConstraint(
            model_name="policy",
            constraint=models.UniqueConstraint(
                condition=models.Q(
                    models.Q(("segment", ""), _negated=True),
                    ("is_active", True),
                    ("purpose", "dunning"),
                ),
                fields=("segment", "risk_band"),
                name="policy_one_active_per_segment_and_band",
                violation_error_message="Another active policy already applies to this segment and risk band.",
            ),
        ),
        migrations.AddConstraint(
            model_name="policy",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("risk_band", ""), models.Q(("segment", ""), _negated=True), _connector="OR"
                ),
                name="policy_band_needs_segment",
                violation_error_message="A risk band applies only with a segment.",
            ),
        ),
        migrations.AddConstraint(
            model_name="step",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("min_probability_late__isnull", True),
                    models.Q(("min_probability_late__gte", 0), ("min_probability_late__lte", 1)),
                    _connector="OR",
                ),
                name="step_min_probability_late_0_1",
            ),
        ),
    ]
