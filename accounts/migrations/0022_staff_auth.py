"""Staff login security: managers may unlock logins (django-axes) and revoke anyone's API
tokens; DRF's plain-text tokens (rest_framework.authtoken) are dropped for knox's hashed ones.

The old token table held usable secrets in plain text, so it is dropped rather than kept:
every API client makes a new token under Staff login -> API tokens. Reversing restores the
permissions only (the old tokens are gone for good, as intended).
"""

from django.db import migrations

from accounts.roles import grant, revoke

ROLES = {
    "Collections manager": [
        "axes.view_accessattempt",
        "axes.delete_accessattempt",
        "axes.view_accessfailurelog",
        "axes.view_accesslog",
        "staff.revoke_any_apitoken",
    ],
}


def drop_plain_text_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    schema_editor.execute("DROP TABLE authtoken_token")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = 'authtoken'")
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="authtoken").delete()


def grant_roles(apps, schema_editor):
    grant(apps, ROLES)


def revoke_roles(apps, schema_editor):
    revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0021_api_rules"),
        ("axes", "0010_accessattemptexpiration"),
        ("staff", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.RunPython(grant_roles, revoke_roles),
        migrations.RunPython(drop_plain_text_tokens, migrations.RunPython.noop),
    ]
