"""Case work's content types, permissions and periodic tasks follow its models to `cases`.

The ContentType rows are relabelled (accounts -> cases), not recreated, so every Permission
keeps its id and every group keeps exactly the rights it had (the permission-matrix test
checks the roles). The celery beat rows that named `accounts.tasks.*` now name the same
tasks under `cases.tasks`. Reversible: the reverse relabels back.
"""

from django.db import migrations

MODELS = (
    "task",
    "promisetopay",
    "dispute",
    "paymentplan",
    "installment",
    "recovery",
    "routingrule",
)
TASKS = ("run_case_work", "send_installment_reminders")


def relabel(apps, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for model in MODELS:
        moved = ContentType.objects.filter(app_label=source, model=model)
        if not moved.exists():
            continue  # a fresh database: post_migrate will create cases' content types
        # A content type made under the target label in between (by post_migrate on an
        # earlier run) has no permissions of ours; drop it so the relabel can take its place.
        ContentType.objects.filter(app_label=target, model=model).delete()
        moved.update(app_label=target)
    for name in TASKS:
        PeriodicTask.objects.filter(task=f"{source}.tasks.{name}").update(
            task=f"{target}.tasks.{name}"
        )


def forward(apps, schema_editor):
    relabel(apps, source="accounts", target="cases")


def backward(apps, schema_editor):
    relabel(apps, source="cases", target="accounts")


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0001_initial"),
        ("accounts", "0019_case_work_moves_to_cases"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
