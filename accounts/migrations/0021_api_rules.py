"""The API obeys the console's rules: a named right for a customer's terms (segment, credit
limit, status, source), granted to managers and finance, who held it through
work_all_customers before; a credit limit is never negative (the constraint already
refused it; the validator names the field).
"""

import django.core.validators
from django.db import migrations, models

from accounts import roles

ROLES = {
    "Collections manager": ["accounts.change_customer_terms"],
    "Finance": ["accounts.change_customer_terms"],
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0020_idempotency_record_moves_to_accounts")]

    operations = [
        migrations.AlterModelOptions(
            name="customer",
            options={
                "ordering": ["name", "id"],
                "permissions": [
                    ("log_activity", "Can add notes and log calls"),
                    ("assign_customer", "Can assign customers to agents"),
                    ("pause_dunning", "Can pause and resume dunning"),
                    ("pause_dunning_unlimited", "Can pause dunning beyond the agent limit"),
                    ("work_all_customers", "Can work customers assigned to other agents"),
                    (
                        "change_customer_terms",
                        "Can change a customer's segment, credit limit, status and source",
                    ),
                ],
                "verbose_name": "customer",
            },
        ),
        migrations.AlterField(
            model_name="customer",
            name="credit_limit",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                max_digits=14,
                null=True,
                validators=[django.core.validators.MinValueValidator(0)],
                verbose_name="credit limit",
            ),
        ),
        migrations.RunPython(grant, revoke),
    ]
