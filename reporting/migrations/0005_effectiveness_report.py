"""The message effectiveness report page (no table) and its permission, granted to managers."""

from django.db import migrations, models

from accounts import roles

ROLES = {"Collections manager": ["reporting.view_effectiveness_report"]}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [("reporting", "0004_scheduled_report_sending")]

    operations = [
        migrations.CreateModel(
            name="Effectiveness",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
            ],
            options={
                "verbose_name": "message effectiveness",
                "verbose_name_plural": "message effectiveness",
                "permissions": [
                    ("view_effectiveness_report", "Can view the message effectiveness report")
                ],
                "managed": False,
                "default_permissions": (),
            },
        ),
        migrations.RunPython(grant, revoke),
    ]
