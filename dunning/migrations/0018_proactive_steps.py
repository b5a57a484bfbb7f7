"""Seed the proactive steps that act on predictions: a reminder 10 days before the due date
for the standard and high-risk policies, and a white-glove call for strategic accounts.

Both apply only to invoices predicted at least 50% likely to be paid late
(Step.min_probability_late), so good payers are spared them:

- "Proactive reminder (predicted late)": an e-mail 10 days before the due date, tone
  reminder, with the template "proactive-pre-due" in English, German, French and Spanish,
  added to the active any-band dunning policies of the standard and high-risk segments.
- "White-glove call (predicted late)": a call task for the customer's agent 7 days before
  the due date, added to the active any-band strategic policy. An installation without a
  strategic policy gets "Strategic accounts (white-glove)", whose steps are all call tasks.

A policy that already has an e-mail step 10 days before (or a call step 7 days before) is
left as it is: the unique (policy, offset_days, channel) constraint allows one, and it is
the team's. Forward never overwrites a template that exists. Backward removes what this
seeded; a seeded step that notices already used is deactivated instead (it cannot be
deleted, and without its threshold it would reach every invoice).
"""

from decimal import Decimal

from django.db import migrations

THRESHOLD = Decimal("0.5000")
TEMPLATE = "proactive-pre-due"
REMINDER = ("Proactive reminder (predicted late)", -10, "email", "reminder")
CALL = ("White-glove call (predicted late)", -7, "call", "friendly")
REMINDER_SEGMENTS = ("standard", "high_risk")
STRATEGIC_POLICY = "Strategic accounts (white-glove)"
STRATEGIC_STEPS = [  # (name, offset, channel, tone, min_probability_late)
    (*CALL, THRESHOLD),
    ("Personal call", 3, "call", "reminder", None),
    ("Senior agent call", 10, "call", "firm", None),
    ("Escalate to a manager", 30, "escalation", "final", None),
]

SIGNATURE = "{{ agent_name }}\n{{ company_name }}"
ONE = "{% if invoice_count == 1 %}"


def invoice_list(due_word: str, colon: str = ":", *, display: bool = True) -> str:
    if not display:
        return (
            "{% for line in invoices %}- {{ line.number }}, "
            + due_word
            + " {{ line.due_on }}"
            + colon
            + " {{ line.currency }} {{ line.open_balance }}\n{% endfor %}"
        )
    return (
        "{% for line in invoices %}- {{ line.number }}, "
        + due_word
        + " {{ line.due_on_display }}"
        + colon
        + " {{ line.open_balance_display }} {{ line.currency }}\n{% endfor %}"
    )


TOTALS_EN = (
    "{% for currency, total in totals.items %}{{ currency }} {{ total }}"
    "{% if not forloop.last %}, {% endif %}{% endfor %}"
)
TOTALS = (
    "{% for currency, total in totals_display.items %}{{ total }} {{ currency }}"
    "{% if not forloop.last %}, {% endif %}{% endfor %}"
)

# language -> (subject, body)
TEXTS = {
    "en": (
        ONE + "Invoice {{ invoices.0.number }} is{% else %}{{ invoice_count }} invoices are"
        "{% endif %} due in 10 days: pay now or set up automatic payment",
        "Hello {{ contact_name }},\n\n"
        + ONE
        + "This invoice of {{ customer_name }} falls due in 10 days:{% else %}These invoices "
        "of {{ customer_name }} fall due in 10 days:{% endif %}\n\n"
        + invoice_list("due", display=False)
        + "\nTotal: "
        + TOTALS_EN
        + "\n\nYou can pay now at {{ pay_link }}\n\nWould you rather not think about due dates? "
        "Reply to this e-mail and we will set up automatic payment with you.\n\nThank you,\n"
        + SIGNATURE,
    ),
    "de": (
        ONE + "Rechnung {{ invoices.0.number }} ist{% else %}{{ invoice_count }} Rechnungen "
        "sind{% endif %} in 10 Tagen fällig: jetzt bezahlen oder automatische Zahlung einrichten",
        "Guten Tag {{ contact_name }},\n\n"
        + ONE
        + "diese Rechnung von {{ customer_name }} wird in 10 Tagen fällig:{% else %}diese "
        "Rechnungen von {{ customer_name }} werden in 10 Tagen fällig:{% endif %}\n\n"
        + invoice_list("fällig am")
        + "\nGesamt: "
        + TOTALS
        + "\n\nSie können jetzt bezahlen unter {{ pay_link }}\n\nSie möchten sich nicht um "
        "Fälligkeiten kümmern? Antworten Sie auf diese E-Mail, und wir richten mit Ihnen die "
        "automatische Zahlung ein.\n\nVielen Dank\n" + SIGNATURE,
    ),
    "fr": (
        ONE + "La facture {{ invoices.0.number }} arrive{% else %}{{ invoice_count }} factures "
        "arrivent{% endif %} à échéance dans 10 jours : payez ou passez au paiement automatique",
        "Bonjour {{ contact_name }},\n\n"
        + ONE
        + "Cette facture de {{ customer_name }} arrive à échéance dans 10 jours :{% else %}"
        "Ces factures de {{ customer_name }} arrivent à échéance dans 10 jours :{% endif %}\n\n"
        + invoice_list("échéance le", " :")
        + "\nTotal : "
        + TOTALS
        + "\n\nVous pouvez payer dès maintenant sur {{ pay_link }}\n\nVous préférez ne plus "
        "penser aux échéances ? Répondez à cet e-mail et nous mettrons en place le paiement "
        "automatique avec vous.\n\nMerci,\n" + SIGNATURE,
    ),
    "es": (
        ONE + "La factura {{ invoices.0.number }} vence{% else %}{{ invoice_count }} facturas "
        "vencen{% endif %} en 10 días: pague ahora o configure el pago automático",
        "Hola, {{ contact_name }}:\n\n"
        + ONE
        + "Esta factura de {{ customer_name }} vence en 10 días:{% else %}Estas facturas de "
        "{{ customer_name }} vencen en 10 días:{% endif %}\n\n"
        + invoice_list("vence el")
        + "\nTotal: "
        + TOTALS
        + "\n\nPuede pagar ahora en {{ pay_link }}\n\n¿Prefiere no estar pendiente de los "
        "vencimientos? Responda a este correo y configuraremos con usted el pago "
        "automático.\n\nGracias,\n" + SIGNATURE,
    ),
}


def _policies(Policy, segments):
    return Policy.objects.filter(
        purpose="dunning", is_active=True, risk_band="", segment__in=segments
    ).order_by("pk")


def _add_step(Step, policy, name, offset, channel, tone, template=None, threshold=THRESHOLD):
    if Step.objects.filter(policy=policy, offset_days=offset, channel=channel).exists():
        return  # the team's own step at that day and channel: left as it is
    Step.objects.create(
        policy=policy,
        name=name,
        offset_days=offset,
        channel=channel,
        template=template,
        tone=tone,
        approval="none",
        min_probability_late=threshold,
    )


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
                "tone": "reminder",
                "subject": subject,
                "body_text": body,
            },
        )
    template = Template.objects.get(name=TEMPLATE, language="en")
    name, offset, channel, tone = REMINDER
    for policy in _policies(Policy, REMINDER_SEGMENTS):
        _add_step(Step, policy, name, offset, channel, tone, template)
    strategic = list(_policies(Policy, ["strategic"]))
    if (
        not strategic
        and not Policy.objects.filter(
            purpose="dunning", is_active=True, segment="strategic"
        ).exists()
    ):
        policy, _ = Policy.objects.get_or_create(
            name=STRATEGIC_POLICY,
            defaults={
                "segment": "strategic",
                "description": "High-value accounts: their agent calls, a week before the "
                "due date when the invoice is predicted late, and after it.",
            },
        )
        for name, offset, channel, tone, threshold in STRATEGIC_STEPS:
            _add_step(Step, policy, name, offset, channel, tone, threshold=threshold)
    for policy in strategic:
        _add_step(Step, policy, *CALL)


def backward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    Notice = apps.get_model("dunning", "Notice")
    NoticeInvoice = apps.get_model("dunning", "NoticeInvoice")
    seeded = Step.objects.filter(
        name=REMINDER[0], offset_days=REMINDER[1], channel=REMINDER[2], template__name=TEMPLATE
    ) | Step.objects.filter(
        name=CALL[0], offset_days=CALL[1], channel=CALL[2], min_probability_late=THRESHOLD
    )
    seeded_ids = set(seeded.values_list("pk", flat=True))
    created = Policy.objects.filter(name=STRATEGIC_POLICY, segment="strategic")
    seeded_ids |= set(Step.objects.filter(policy__in=created).values_list("pk", flat=True))
    used = set(Notice.objects.filter(step__in=seeded_ids).values_list("step_id", flat=True))
    used |= set(NoticeInvoice.objects.filter(step__in=seeded_ids).values_list("step_id", flat=True))
    Step.objects.filter(pk__in=used).update(is_active=False)
    Step.objects.filter(pk__in=seeded_ids - used).delete()
    for policy in created:
        if policy.steps.exists() or policy.customers.exists():
            Policy.objects.filter(pk=policy.pk).update(is_active=False)
        else:
            policy.delete()
    for language, (subject, body) in TEXTS.items():  # only as seeded: never a team's own
        Template.objects.filter(
            name=TEMPLATE, language=language, subject=subject, body_text=body, steps__isnull=True
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0017_step_prediction_threshold_policy_risk_band"),
        ("dunning", "0014_installment_reminder_policy"),
    ]

    operations = [migrations.RunPython(forward, backward)]
