"""Erasure: the timeline's one sanctioned change, a customer's erased flag, the right to erase.

The append-only trigger (0002) lets an UPDATE through only while the transaction has set
`accounts.timeline_erasure` to 'on' (accounts/timeline.py `erase_personal_data`, the only
caller) and only of an entry's text and details: its customer, invoice, kind, actor and
time stay. DELETE stays refused. Managers get `accounts.erase_customer`.
"""

from django.db import migrations, models

from accounts import roles

ROLES = {"Collections manager": ["accounts.erase_customer"]}

SANCTIONED = """
CREATE OR REPLACE FUNCTION accounts_activity_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND current_setting('accounts.timeline_erasure', true) = 'on'
        AND NEW.id = OLD.id
        AND NEW.customer_id = OLD.customer_id
        AND NEW.invoice_id IS NOT DISTINCT FROM OLD.invoice_id
        AND NEW.kind = OLD.kind
        AND NEW.channel = OLD.channel
        AND NEW.outcome = OLD.outcome
        AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
        AND NEW.occurred_at = OLD.occurred_at
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the account timeline is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""

STRICT = """
CREATE OR REPLACE FUNCTION accounts_activity_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the account timeline is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""


def sanction(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SANCTIONED, params=None)


def unsanction(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(STRICT, params=None)


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0023_encrypted_personal_data"),
    ]

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
                    ("erase_customer", "Can erase a customer's personal data"),
                ],
                "verbose_name": "customer",
            },
        ),
        migrations.AddField(
            model_name="customer",
            name="erased_at",
            field=models.DateTimeField(
                blank=True, null=True, verbose_name="personal data erased at"
            ),
        ),
        migrations.AlterField(
            model_name="activity",
            name="kind",
            field=models.CharField(
                choices=[
                    ("note", "Note"),
                    ("call", "Call"),
                    ("email", "E-mail sent"),
                    ("sms", "SMS sent"),
                    ("letter", "Letter sent"),
                    ("delivery", "Delivery status"),
                    ("reply", "Reply received"),
                    ("payment", "Payment received"),
                    ("allocation", "Allocation"),
                    ("status_change", "Status change"),
                    ("hold_change", "Hold change"),
                    ("assignment", "Assignment"),
                    ("import", "Import"),
                    ("override", "Override"),
                    ("task", "Task"),
                    ("alert", "Alert"),
                    ("promise", "Promise to pay"),
                    ("dispute", "Dispute"),
                    ("payment_plan", "Payment plan"),
                    ("write_off", "Write-off"),
                    ("placement", "Agency placement"),
                    ("risk", "Risk score"),
                    ("erasure", "Personal data erased"),
                ],
                max_length=16,
                verbose_name="kind",
            ),
        ),
        migrations.RunPython(sanction, unsanction),
        migrations.RunPython(grant, revoke),
    ]
