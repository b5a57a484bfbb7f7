"""Saved filters per user (staff.SavedFilter) and the right to export console lists,
granted to managers and finance (agents may be given it by an administrator)."""

import django.db.models.deletion
from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations, models

ROLES = ["Collections manager", "Finance"]
PERMISSION = "export_lists"


def grant(apps, schema_editor):
    # Permissions are normally created after migrate (as accounts.roles.grant does).
    app_config = apps.get_app_config("staff")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label="staff", codename=PERMISSION)
    for name in ROLES:
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name__in=ROLES):
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="staff", codename=PERMISSION)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("staff", "0001_initial"),
        ("accounts", "0003_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SavedFilter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "list",
                    models.CharField(
                        help_text="app_label.model_name", max_length=100, verbose_name="list"
                    ),
                ),
                ("name", models.CharField(max_length=80, verbose_name="name")),
                ("query", models.CharField(blank=True, max_length=2000, verbose_name="query")),
                ("created_at", models.DateTimeField(auto_now_add=True, verbose_name="created at")),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="saved_filters",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "saved filter",
                "ordering": ["name", "id"],
                "permissions": [("export_lists", "Can export console lists to CSV and XLSX")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("user", "list", "name"), name="saved_filter_name_per_list"
                    )
                ],
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
