"""Find earlier bank lines by the payer's account: the matcher's first evidence of who paid.

reconciliation.identify_payers looks up every IBAN of every imported chunk among the lines
already stored; without an index that is a scan of the whole statement history. Lines
without a counterparty account (many CSV exports) are left out of the index.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_profiles_and_roles")]

    operations = [
        migrations.AddIndex(
            model_name="bankline",
            index=models.Index(
                condition=models.Q(("counterparty_account", ""), _negated=True),
                fields=["counterparty_account"],
                name="bank_line_counterparty",
            ),
        ),
    ]
