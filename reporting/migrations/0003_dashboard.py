"""The managers' dashboard page (no table) and its permission, granted to managers."""

from django.db import migrations, models

from accounts import roles


ROLES = {"Collections manager": ["reporting.view_dashboard"]}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0002_roles_and_schedule")]

    operations = [
        migrations.CreateModel(
            name="Dashboard",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "verbose_name": "managers' dashboard",
                "verbose_name_plural": "managers' dashboard",
                "permissions": [("view_dashboard", "Can view the managers' dashboard")],
                "managed": False,
                "default_permissions": (),
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
