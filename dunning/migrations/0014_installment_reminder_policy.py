"""Seed the installments policy, its reminder step and the reminder's templates, and retire
the hourly task that e-mailed installment reminders outside the outbox.

The step reminds INSTALLMENT_REMINDER_DAYS (3) before each installment's due date, by
e-mail, through the one sender: contact rules, caps, disclosures and the opt-out line
apply as to any notice. Managers edit the step (days, channel, approval) and the
templates in the console. A team that had written its own "Installment reminder"
template keeps it: forward never overwrites one. Backward removes what this seeded (if
no notice used it) and restores the hourly task.
"""

from django.conf import settings
from django.db import migrations

POLICY = "Payment plan installments"
STEP = "Installment reminder"
TEMPLATE = "Installment reminder"
OLD_TASK_NAME = "Send installment reminders"
OLD_TASK = "cases.tasks.send_installment_reminders"

PAY = "{% if pay_link %}\n\n{pay}{{ pay_link }}{% endif %}"
SIGNATURE = "{{ agent_name }}\n{{ company_name }}"
# language -> (subject, body)
TEXTS = {
    "en": (
        "Payment plan: installment {{ installment_number }} of {{ installment_count }} due on "
        "{{ installment_due_on }}",
        "Hello {{ contact_name }},\n\nA reminder that installment {{ installment_number }} of "
        "{{ installment_count }} of your payment plan, {{ currency }} {{ installment_amount }}, "
        "is due on {{ installment_due_on }}."
        + PAY.replace("{pay}", "You can pay at ")
        + "\n\nThank you,\n"
        + SIGNATURE,
    ),
    "de": (
        "Zahlungsplan: Rate {{ installment_number }} von {{ installment_count }} fällig am "
        "{{ installment_due_on_display }}",
        "Guten Tag {{ contact_name }},\n\nwir erinnern Sie daran, dass Rate "
        "{{ installment_number }} von {{ installment_count }} Ihres Zahlungsplans, "
        "{{ installment_amount_display }} {{ currency }}, am {{ installment_due_on_display }} "
        "fällig ist."
        + PAY.replace("{pay}", "Sie können bezahlen unter ")
        + "\n\nVielen Dank\n"
        + SIGNATURE,
    ),
    "fr": (
        "Échéancier : échéance {{ installment_number }} sur {{ installment_count }} due le "
        "{{ installment_due_on_display }}",
        "Bonjour {{ contact_name }},\n\nNous vous rappelons que l'échéance "
        "{{ installment_number }} sur {{ installment_count }} de votre échéancier, "
        "{{ installment_amount_display }} {{ currency }}, est due le "
        "{{ installment_due_on_display }}."
        + PAY.replace("{pay}", "Vous pouvez payer sur ")
        + "\n\nMerci,\n"
        + SIGNATURE,
    ),
    "es": (
        "Plan de pagos: cuota {{ installment_number }} de {{ installment_count }} vence el "
        "{{ installment_due_on_display }}",
        "Hola {{ contact_name }}:\n\nLe recordamos que la cuota {{ installment_number }} de "
        "{{ installment_count }} de su plan de pagos, {{ installment_amount_display }} "
        "{{ currency }}, vence el {{ installment_due_on_display }}."
        + PAY.replace("{pay}", "Puede pagar en ")
        + "\n\nGracias,\n"
        + SIGNATURE,
    ),
}


def forward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for language, (subject, body) in TEXTS.items():
        Template.objects.get_or_create(
            name=TEMPLATE,
            language=language,
            defaults={
                "channel": "email",
                "tone": "reminder",
                "subject": subject,
                "body_text": body,
            },
        )
    policy, _ = Policy.objects.get_or_create(
        name=POLICY,
        defaults={
            "purpose": "installments",
            "description": "Reminds customers in an active payment plan of each installment "
            "before it is due.",
        },
    )
    Step.objects.get_or_create(
        policy=policy,
        name=STEP,
        defaults={
            "offset_days": -settings.INSTALLMENT_REMINDER_DAYS,
            "channel": "email",
            "template": Template.objects.get(name=TEMPLATE, language="en"),
            "tone": "reminder",
        },
    )
    PeriodicTask.objects.filter(task=OLD_TASK).delete()


def backward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    Notice = apps.get_model("dunning", "Notice")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    step_ids = list(
        Step.objects.filter(policy__name=POLICY, policy__purpose="installments").values_list(
            "pk", flat=True
        )
    )
    if not Notice.objects.filter(step_id__in=step_ids).exists():
        # Plain deletes: nothing refers to these rows (no notice used the step, no customer
        # can hold an installments policy), and the ORM's cascade collector trips over the
        # historical models of a backwards migration.
        Step.objects.filter(pk__in=step_ids)._raw_delete(schema_editor.connection.alias)
        Policy.objects.filter(name=POLICY, purpose="installments")._raw_delete(
            schema_editor.connection.alias
        )
        for language, (subject, body) in TEXTS.items():  # only as seeded: never a team's own
            Template.objects.filter(
                name=TEMPLATE, language=language, subject=subject, body_text=body
            ).delete()
    hourly, _ = IntervalSchedule.objects.get_or_create(every=1, period="hours")
    PeriodicTask.objects.update_or_create(
        name=OLD_TASK_NAME, defaults={"task": OLD_TASK, "interval": hourly}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0013_installment_reminders"),
        ("cases", "0002_content_types_and_schedule"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(forward, backward)]
