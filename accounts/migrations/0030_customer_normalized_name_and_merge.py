"""Customer matching and merging (issue #16, defect 2).

- `normalized_name`: the name as imports match it (accounts/customer_names.py), indexed,
  filled here for the customers already stored;
- `merged_into` / `merged_at` and the status "merged": a duplicate merged into another
  customer stays as an empty row pointing at the survivor (accounts/merging.py);
- `accounts.merge_customers` for managers and finance;
- the timeline's append-only trigger lets one more sanctioned change through: while the
  transaction has set `accounts.timeline_merge` to 'on' (accounts/timeline.py
  `move_entries`, the only caller), an UPDATE may change an entry's customer and nothing
  else. The erasure's rewrite (0024) stays as it was; DELETE stays refused.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import accounts.customer_names
from accounts import roles

ROLES = {
    "Collections manager": ["accounts.merge_customers"],
    "Finance": ["accounts.merge_customers"],
}

SANCTIONED = """
CREATE OR REPLACE FUNCTION accounts_activity_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
        AND NEW.id = OLD.id
        AND NEW.invoice_id IS NOT DISTINCT FROM OLD.invoice_id
        AND NEW.kind = OLD.kind
        AND NEW.channel = OLD.channel
        AND NEW.outcome = OLD.outcome
        AND NEW.actor_id IS NOT DISTINCT FROM OLD.actor_id
        AND NEW.occurred_at = OLD.occurred_at
    THEN
        IF current_setting('accounts.timeline_erasure', true) = 'on'
            AND NEW.customer_id = OLD.customer_id
        THEN
            RETURN NEW;
        END IF;
        IF current_setting('accounts.timeline_merge', true) = 'on'
            AND NEW.text = OLD.text
            AND NEW.details = OLD.details
        THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the account timeline is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
"""

# As migration 0024 left it: the erasure's rewrite only.
ERASURE_ONLY = """
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

CHUNK = 2000


def fill_normalized_names(apps, schema_editor):
    Customer = apps.get_model("accounts", "Customer")
    derive = accounts.customer_names.normalized_name
    last = 0
    while True:
        rows = list(
            Customer.objects.filter(pk__gt=last).order_by("pk").values_list("pk", "name")[:CHUNK]
        )
        if not rows:
            return
        Customer.objects.bulk_update(
            [Customer(pk=pk, normalized_name=derive(name)) for pk, name in rows],
            ["normalized_name"],
            batch_size=CHUNK,
        )
        last = rows[-1][0]


def sanction(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SANCTIONED, params=None)


def unsanction(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ERASURE_ONLY, params=None)


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0029_fx_rates"),
        ("dunning", "0015_crash_safe_sending"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
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
                    (
                        "change_customer_terms",
                        "Can change a customer's segment, credit limit, status and source",
                    ),
                    ("merge_customers", "Can merge a duplicate customer into another"),
                ],
                "verbose_name": "customer",
            },
        ),
        migrations.AddField(
            model_name="customer",
            name="merged_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="merged at"),
        ),
        migrations.AddField(
            model_name="customer",
            name="merged_into",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="merged_customers",
                to="accounts.customer",
                verbose_name="merged into",
            ),
        ),
        migrations.AddField(
            model_name="customer",
            name="normalized_name",
            field=accounts.customer_names.NormalizedNameField(
                db_default="", verbose_name="normalised name"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="status",
            field=models.CharField(
                choices=[
                    ("active", "Active"),
                    ("placed_with_agency", "Placed with agency"),
                    ("written_off", "Written off"),
                    ("closed", "Closed"),
                    ("merged", "Merged into another customer"),
                ],
                default="active",
                max_length=20,
                verbose_name="status",
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["normalized_name"], name="customer_normalized_name"),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(
                        ("merged_at__isnull", True),
                        ("merged_into__isnull", True),
                        models.Q(("status", "merged"), _negated=True),
                    ),
                    models.Q(
                        ("merged_at__isnull", False),
                        ("merged_into__isnull", False),
                        ("status", "merged"),
                    ),
                    _connector="OR",
                ),
                name="customer_merged_has_survivor",
            ),
        ),
        migrations.AddConstraint(
            model_name="customer",
            constraint=models.CheckConstraint(
                condition=models.Q(("merged_into", models.F("pk")), _negated=True),
                name="customer_not_merged_into_itself",
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
                    ("merge", "Customers merged"),
                ],
                max_length=16,
                verbose_name="kind",
            ),
        ),
        migrations.RunPython(fill_normalized_names, migrations.RunPython.noop),
        migrations.RunPython(sanction, unsanction),
        migrations.RunPython(grant, revoke),
    ]
