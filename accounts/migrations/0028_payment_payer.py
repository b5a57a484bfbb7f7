"""Payments keep who sent them (name and IBAN/account), searchable with a trigram index
on PostgreSQL like the customer name (skipped on SQLite)."""

from django.db import migrations, models

FORWARD = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS payment_payer_name_trgm
    ON accounts_payment USING gin (UPPER(payer_name::text) gin_trgm_ops);
"""
BACKWARD = "DROP INDEX IF EXISTS payment_payer_name_trgm;"


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0027_customer_permissions_merged"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="payer_account",
            field=models.CharField(
                blank=True,
                help_text="The IBAN or account number the money came from.",
                max_length=64,
                verbose_name="payer account",
            ),
        ),
        migrations.AddField(
            model_name="payment",
            name="payer_name",
            field=models.CharField(
                blank=True,
                help_text="The name the bank or payment provider gave for the sender.",
                max_length=200,
                verbose_name="payer name",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
