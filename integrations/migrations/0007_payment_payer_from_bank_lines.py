"""Payments booked from bank lines before payments kept their payer get the line's
counterparty name and account (one UPDATE ... FROM; nothing to undo on the way back)."""

from django.db import migrations

BACKFILL = """
UPDATE accounts_payment AS p
   SET payer_name = l.counterparty_name, payer_account = l.counterparty_account
  FROM integrations_bankline AS l
 WHERE l.payment_id = p.id AND p.payer_name = '' AND p.payer_account = ''
   AND (l.counterparty_name <> '' OR l.counterparty_account <> '')
"""


def backfill(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKFILL, params=None)
        return
    BankLine = apps.get_model("integrations", "BankLine")
    Payment = apps.get_model("accounts", "Payment")
    lines = BankLine.objects.filter(payment__isnull=False, payment__payer_name="")
    for line in lines.exclude(counterparty_name="", counterparty_account="").iterator():
        Payment.objects.filter(pk=line.payment_id).update(
            payer_name=line.counterparty_name, payer_account=line.counterparty_account
        )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0028_payment_payer"),
        ("integrations", "0006_webhook_events"),
    ]

    operations = [migrations.RunPython(backfill, migrations.RunPython.noop)]
