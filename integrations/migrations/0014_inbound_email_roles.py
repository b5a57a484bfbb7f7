"""Agents and managers read debtors' inbound messages (managers also the unmatched ones,
through accounts.work_all_customers); the README's permission matrix lists it."""

from django.db import migrations

from accounts import roles

ROLES = {
    "Collections agent": ["integrations.view_inboundemail"],
    "Collections manager": ["integrations.view_inboundemail"],
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0013_inbound_email")]

    operations = [migrations.RunPython(grant, revoke)]
