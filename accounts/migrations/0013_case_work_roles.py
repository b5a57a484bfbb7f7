"""Give the three roles their rights over case work (tasks, promises, disputes, plans...)."""

from django.db import migrations

from accounts import roles

CASE_VIEW = [
    "accounts.view_task",
    "accounts.view_promisetopay",
    "accounts.view_dispute",
    "accounts.view_paymentplan",
    "accounts.view_installment",
    "accounts.view_recovery",
    "accounts.view_routingrule",
]
AGENT = [
    *CASE_VIEW,
    "accounts.add_task",
    "accounts.change_task",
    "accounts.add_promisetopay",
    "accounts.change_promisetopay",
    "accounts.add_dispute",
    "accounts.change_dispute",
    "accounts.add_paymentplan",
    "accounts.add_recovery",
]
ROLES = {
    "Collections agent": AGENT,
    "Collections manager": [
        *AGENT,
        "accounts.change_paymentplan",
        "accounts.approve_paymentplan",
        "accounts.change_recovery",
        "accounts.approve_recovery",
        "accounts.resolve_dispute",
        "accounts.add_routingrule",
        "accounts.change_routingrule",
        "accounts.delete_routingrule",
    ],
    "Finance": [*CASE_VIEW, "accounts.resolve_dispute"],
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_case_work")]

    operations = [migrations.RunPython(grant, revoke)]
