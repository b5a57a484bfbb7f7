"""Allocation numbers required and unique per invoice; the indexes reports as of a date read.

allocation_allocated_on now includes seq, so the later rows numbered 1 (at most one per
invoice) are read from it alone; allocation_later_on holds only the rows numbered 2 and
up (partial payments after the first, reversals), a small index. Plain CREATE INDEX: it
blocks allocation inserts while it builds (a few seconds per million allocations), so run
it outside reconciliation. Reversible: 0017's column becomes nullable again.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0017_allocation_seq"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="allocation",
            name="allocation_allocated_on",
        ),
        migrations.AlterField(
            model_name="allocation",
            name="seq",
            field=models.PositiveIntegerField(verbose_name="number on the invoice"),
        ),
        migrations.AddIndex(
            model_name="allocation",
            index=models.Index(
                fields=["allocated_on"],
                include=("invoice", "amount", "seq"),
                name="allocation_allocated_on",
            ),
        ),
        migrations.AddIndex(
            model_name="allocation",
            index=models.Index(
                condition=models.Q(("seq__gt", 1)),
                fields=["allocated_on"],
                include=("invoice", "amount"),
                name="allocation_later_on",
            ),
        ),
        migrations.AddConstraint(
            model_name="allocation",
            constraint=models.UniqueConstraint(
                fields=("invoice", "seq"), name="allocation_invoice_seq"
            ),
        ),
    ]
