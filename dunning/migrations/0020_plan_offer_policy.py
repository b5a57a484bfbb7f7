"""Plan offers become notices: a purpose for policies, and the seeded "Payment plan offers"
policy with one e-mail step (on the day the plan becomes active) and its templates.

When an agent proposes a payment plan (one click on a suggestion, or the plan form) and it
is active at once, or when a manager approves one that waited, dunning/offers.py plans one
notice per active step of this policy for the plan: the customer receives the plan (each
installment's date and amount, the total, how to pay) through the one sender, so contact
rules, caps, opt-outs and do-not-contact apply as to any notice. Managers edit the step
(channel, approval, or switch it off) and the "Payment plan offer" templates in the
console. A team that had written its own template of that name keeps it: forward never
overwrites one. Backward removes what this seeded (if no notice used it; otherwise it
keeps the policy, whose purpose is then a value the older code does not list).
"""

from django.db import migrations, models

POLICY = "Payment plan offers"
STEP = "Payment plan offer"
TEMPLATE = "Payment plan offer"

PAY = "{% if pay_link %}\n\n{pay}{{ pay_link }}{% endif %}"
SIGNATURE = "{{ agent_name }}\n{{ company_name }}"
LINES = (
    "{% for line in plan_installments %}\n"
    "{{ line.number }}. {due} {{ line.due_on_display }}: {{ line.amount_display }} "
    "{{ currency }}{% endfor %}"
)
# language -> (subject, body)
TEXTS = {
    "en": (
        "Your payment plan: {{ plan_installment_count }} "
        "installment{{ plan_installment_count|pluralize }}, {{ currency }} "
        "{{ plan_total }} in all",
        "Hello {{ contact_name }},\n\nAs agreed, here is your payment plan: "
        "{{ currency }} {{ plan_total }} in {{ plan_installment_count }} "
        "installment{{ plan_installment_count|pluralize }}.\n"
        + LINES.replace("{due}", "due")
        .replace("{{ line.due_on_display }}", "{{ line.due_on }}")
        .replace("{{ line.amount_display }} {{ currency }}", "{{ currency }} {{ line.amount }}")
        + "\n\nTotal: {{ currency }} {{ plan_total }}. Paying each installment by its date "
        "accepts the plan; while you do, we will not send you reminders for these invoices."
        + PAY.replace("{pay}", "You can pay at ")
        + "\n\nThank you,\n"
        + SIGNATURE,
    ),
    "de": (
        "Ihr Zahlungsplan: {{ plan_installment_count }} Raten, insgesamt "
        "{{ plan_total_display }} {{ currency }}",
        "Guten Tag {{ contact_name }},\n\nwie vereinbart erhalten Sie Ihren Zahlungsplan: "
        "{{ plan_total_display }} {{ currency }} in {{ plan_installment_count }} Rate(n).\n"
        + LINES.replace("{due}", "fällig am")
        + "\n\nGesamt: {{ plan_total_display }} {{ currency }}. Mit der fristgerechten "
        "Zahlung jeder Rate nehmen Sie den Plan an; solange Sie das tun, erhalten Sie für "
        "diese Rechnungen keine Mahnungen."
        + PAY.replace("{pay}", "Sie können bezahlen unter ")
        + "\n\nVielen Dank\n"
        + SIGNATURE,
    ),
    "fr": (
        "Votre échéancier : {{ plan_installment_count }} échéances, "
        "{{ plan_total_display }} {{ currency }} au total",
        "Bonjour {{ contact_name }},\n\nComme convenu, voici votre échéancier : "
        "{{ plan_total_display }} {{ currency }} en {{ plan_installment_count }} "
        "échéance(s).\n"
        + LINES.replace("{due}", "due le")
        + "\n\nTotal : {{ plan_total_display }} {{ currency }}. Le paiement de chaque "
        "échéance à sa date vaut acceptation de l'échéancier ; tant que vous le respectez, "
        "nous ne vous relancerons pas pour ces factures."
        + PAY.replace("{pay}", "Vous pouvez payer sur ")
        + "\n\nMerci,\n"
        + SIGNATURE,
    ),
    "es": (
        "Su plan de pagos: {{ plan_installment_count }} cuotas, {{ plan_total_display }} "
        "{{ currency }} en total",
        "Hola {{ contact_name }}:\n\nSegún lo acordado, este es su plan de pagos: "
        "{{ plan_total_display }} {{ currency }} en {{ plan_installment_count }} cuota(s).\n"
        + LINES.replace("{due}", "vence el")
        + "\n\nTotal: {{ plan_total_display }} {{ currency }}. Pagar cada cuota en su fecha "
        "supone aceptar el plan; mientras lo haga, no le enviaremos recordatorios por estas "
        "facturas." + PAY.replace("{pay}", "Puede pagar en ") + "\n\nGracias,\n" + SIGNATURE,
    ),
}


def forward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    for language, (subject, body) in TEXTS.items():
        Template.objects.get_or_create(
            name=TEMPLATE,
            language=language,
            defaults={
                "channel": "email",
                "tone": "friendly",
                "subject": subject,
                "body_text": body,
            },
        )
    policy, _ = Policy.objects.get_or_create(
        name=POLICY,
        defaults={
            "purpose": "plan_offer",
            "description": "Sends the customer their payment plan (installments, total, how "
            "to pay) once, when an agent's plan becomes active.",
        },
    )
    Step.objects.get_or_create(
        policy=policy,
        name=STEP,
        defaults={
            "offset_days": 0,
            "channel": "email",
            "template": Template.objects.get(name=TEMPLATE, language="en"),
            "tone": "friendly",
        },
    )


def backward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    Notice = apps.get_model("dunning", "Notice")
    step_ids = list(
        Step.objects.filter(policy__name=POLICY, policy__purpose="plan_offer").values_list(
            "pk", flat=True
        )
    )
    if not Notice.objects.filter(step_id__in=step_ids).exists():
        # Plain deletes, as in 0014: nothing refers to these rows (no notice used the step).
        Step.objects.filter(pk__in=step_ids)._raw_delete(schema_editor.connection.alias)
        Policy.objects.filter(name=POLICY, purpose="plan_offer")._raw_delete(
            schema_editor.connection.alias
        )
        for language, (subject, body) in TEXTS.items():  # only as seeded: never a team's own
            Template.objects.filter(
                name=TEMPLATE, language=language, subject=subject, body_text=body
            ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0019_step_variants"),
    ]

    operations = [
        migrations.AlterField(
            model_name="policy",
            name="purpose",
            field=models.CharField(
                choices=[
                    ("dunning", "Overdue invoices"),
                    ("installments", "Payment plan installments"),
                    ("plan_offer", "Payment plan offers"),
                ],
                db_default="dunning",
                default="dunning",
                help_text="Installment reminders and plan offers follow payment plans, not the "
                "due date.",
                max_length=12,
                verbose_name="purpose",
            ),
        ),
        migrations.RunPython(forward, backward),
    ]
