"""The access log (who was shown which customer), append-only; managers may read it.

On PostgreSQL a trigger refuses UPDATE and DELETE, as for the timeline (migration 0002);
SQLite keeps the model, queryset and admin guards.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from accounts import roles

FORWARD = """
CREATE OR REPLACE FUNCTION accounts_accesslog_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the access log is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_accesslog_append_only
    BEFORE UPDATE OR DELETE ON accounts_accesslog
    FOR EACH ROW EXECUTE FUNCTION accounts_accesslog_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS accounts_accesslog_append_only ON accounts_accesslog;
DROP FUNCTION IF EXISTS accounts_accesslog_append_only();
"""

ROLES = {"Collections manager": ["accounts.view_accesslog"]}


def guard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def unguard(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0024_timeline_erasure"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AccessLog",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "at",
                    models.DateTimeField(default=django.utils.timezone.now, verbose_name="when"),
                ),
                (
                    "surface",
                    models.CharField(
                        choices=[
                            ("customer_page", "Customer page"),
                            ("customer_list", "Customer list"),
                            ("contact_page", "Contact page"),
                            ("contact_list", "Contact list"),
                            ("timeline", "Timeline list"),
                            ("worklist", "Worklist"),
                            ("api_customer", "API: customer"),
                            ("api_customer_list", "API: customer list"),
                            ("api_contact", "API: contact"),
                            ("api_contact_list", "API: contact list"),
                            ("statement", "Statement download"),
                            ("report", "Aging report on screen"),
                            ("export", "Portfolio export download"),
                        ],
                        max_length=20,
                        verbose_name="where",
                    ),
                ),
                ("path", models.CharField(blank=True, max_length=200, verbose_name="path")),
                ("request_id", models.UUIDField(verbose_name="request")),
                ("details", models.JSONField(blank=True, default=dict, verbose_name="details")),
                (
                    "customer",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        help_text="Empty for a portfolio export (see its details).",
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="accounts.customer",
                        verbose_name="customer",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="user",
                    ),
                ),
            ],
            options={
                "verbose_name": "access log entry",
                "verbose_name_plural": "access log",
                "ordering": ["-at", "-id"],
                "indexes": [
                    models.Index(fields=["customer", "-at"], name="accesslog_customer_at"),
                    models.Index(fields=["user", "-at"], name="accesslog_user_at"),
                    models.Index(fields=["-at"], name="accesslog_at"),
                ],
            },
        ),
        migrations.RunPython(guard, unguard),
        migrations.RunPython(grant, revoke),
    ]
