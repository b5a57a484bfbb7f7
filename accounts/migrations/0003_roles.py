"""Seed the three roles as groups. The README's permission matrix mirrors ROLES."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

LEDGER_VIEW = [
    "accounts.view_customer",
    "accounts.view_contact",
    "accounts.view_invoice",
    "accounts.view_payment",
    "accounts.view_allocation",
    "accounts.view_activity",
]
AGENT = [
    *LEDGER_VIEW,
    "accounts.change_customer",
    "accounts.add_contact",
    "accounts.change_contact",
    "accounts.add_activity",
    "accounts.log_activity",
    "accounts.assign_customer",
    "accounts.pause_dunning",
]
ROLES = {
    "Collections agent": AGENT,
    "Collections manager": [
        *AGENT,
        "accounts.work_all_customers",
        "accounts.pause_dunning_unlimited",
        "accounts.change_invoice",
    ],
    "Finance": [
        *LEDGER_VIEW,
        "accounts.work_all_customers",
        "accounts.add_customer",
        "accounts.change_customer",
        "accounts.add_contact",
        "accounts.change_contact",
        "accounts.add_invoice",
        "accounts.change_invoice",
        "accounts.add_payment",
        "accounts.change_payment",
        "accounts.add_allocation",
    ],
}


def seed_roles(apps, schema_editor):
    # Permissions are normally created after migrate; make sure ours exist now.
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


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_postgresql_search_and_append_only"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(seed_roles, remove_roles)]
