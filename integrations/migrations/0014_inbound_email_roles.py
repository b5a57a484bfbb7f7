"""Agents and managers read debtors' inbound messages (managers also the unmatched ones,
through accounts.work_all_customers) and automatic-payment mandates and charges; managers
cancel a customer's automatic payment. docs/administrator.md's permission matrix lists it."""

from django.db import migrations

from accounts import roles

AUTOPAY = ["integrations.view_autopaymandate", "integrations.view_autopaycharge"]
ROLES = {
    "Collections agent": ["integrations.view_inboundemail", *AUTOPAY],
    "Collections manager": [
        "integrations.view_inboundemail",
        *AUTOPAY,
        "integrations.cancel_mandate",
    ],
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0013_inbound_email")]

    operations = [migrations.RunPython(grant, revoke)]
