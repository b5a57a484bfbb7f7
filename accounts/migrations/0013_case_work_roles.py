"""Give the three roles their rights over case work (tasks, promises, disputes, plans...)."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

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
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0012_case_work")]

    operations = [migrations.RunPython(grant, revoke)]
