"""The idempotency records leave integrations for accounts (see accounts 0020): state only,
and the content type (with its permissions) is relabelled, not recreated.
"""

from django.db import migrations


def relabel(apps, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    moved = ContentType.objects.filter(app_label=source, model="idempotencyrecord")
    if moved.exists():
        ContentType.objects.filter(app_label=target, model="idempotencyrecord").delete()
        moved.update(app_label=target)


def forward(apps, schema_editor):
    relabel(apps, source="integrations", target="accounts")


def backward(apps, schema_editor):
    relabel(apps, source="accounts", target="integrations")


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0020_idempotency_record_moves_to_accounts"),
        ("integrations", "0003_bank_line_counterparty_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.DeleteModel(
                    name="IdempotencyRecord",
                ),
            ],
        ),
        migrations.RunPython(forward, backward),
    ]
