"""The ECB's euro reference rates (FxRate), which every role may read in the console."""

import accounts.money
import django.core.validators
from decimal import Decimal
from django.db import migrations, models

from accounts import roles

ROLES = {
    group: ["accounts.view_fxrate"]
    for group in ("Collections agent", "Collections manager", "Finance")
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0028_payment_payer"),
    ]

    operations = [
        migrations.CreateModel(
            name="FxRate",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("rate_on", models.DateField(verbose_name="date")),
                (
                    "currency",
                    models.CharField(
                        max_length=3,
                        validators=[accounts.money.validate_currency],
                        verbose_name="currency",
                    ),
                ),
                (
                    "rate",
                    models.DecimalField(
                        decimal_places=6,
                        max_digits=18,
                        validators=[django.core.validators.MinValueValidator(Decimal("0.000001"))],
                        verbose_name="units per euro",
                    ),
                ),
                ("source", models.CharField(blank=True, max_length=200, verbose_name="source")),
                ("loaded_at", models.DateTimeField(auto_now=True, verbose_name="loaded at")),
            ],
            options={
                "verbose_name": "FX rate",
                "verbose_name_plural": "FX rates",
                "ordering": ["-rate_on", "currency"],
                "indexes": [models.Index(fields=["-rate_on"], name="fx_rate_latest_day")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("currency", "rate_on"), name="fx_rate_once_a_day"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("rate__gt", 0)), name="fx_rate_positive"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("currency", "EUR"), _negated=True),
                        name="fx_rate_not_euro",
                    ),
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
