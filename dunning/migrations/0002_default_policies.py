"""Seed the default policies, their steps and English templates, and the dunning roles.

All of it is editable in the admin afterwards; this only gives a new installation a
sensible starting point (see README, "Dunning policies").
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SIGNATURE = "{{ agent_name }}\n{{ company_name }}"
INVOICE_LIST = (
    "{% for line in invoices %}- {{ line.number }}, due {{ line.due_on }}: "
    "{{ line.currency }} {{ line.open_balance }}\n{% endfor %}"
)
TOTALS = "{% for currency, total in totals.items %}{{ currency }} {{ total }}{% if not forloop.last %}, {% endif %}{% endfor %}"

TEMPLATES = {
    "friendly-upcoming": (
        "email",
        "friendly",
        "Your invoice is due in 3 days",
        "Hello {{ contact_name }},\n\nA friendly reminder that the following invoices for "
        "{{ customer_name }} fall due soon:\n\n"
        + INVOICE_LIST
        + "\nTotal: "
        + TOTALS
        + "\n\nYou can pay now at {{ pay_link }}\n\nThank you,\n"
        + SIGNATURE,
    ),
    "due-today": (
        "email",
        "urgent",
        "Payment due today",
        "Hello {{ contact_name }},\n\nThe following invoices are due today:\n\n"
        + INVOICE_LIST
        + "\nTotal: "
        + TOTALS
        + "\n\nPlease pay at {{ pay_link }} or let us know if anything is "
        "holding up payment.\n\n" + SIGNATURE,
    ),
    "firm-overdue": (
        "email",
        "firm",
        "Overdue: please pay now",
        "Hello {{ contact_name }},\n\nOur records show these invoices are now overdue:\n\n"
        + INVOICE_LIST
        + "\nTotal overdue: "
        + TOTALS
        + "\n\nPlease arrange payment today at "
        "{{ pay_link }}. If you have already paid, please send us the remittance details.\n\n"
        + SIGNATURE,
    ),
    "firm-overdue-sms": (
        "sms",
        "firm",
        "",
        "{{ company_name }}: {{ invoice_count }} invoice(s) overdue, total "
        + TOTALS
        + ". Pay: {{ pay_link }}",
    ),
    "final-notice-letter": (
        "letter",
        "final",
        "Final notice before further action",
        "Dear {{ contact_name }},\n\nDespite our earlier reminders the following invoices of "
        "{{ customer_name }} remain unpaid:\n\n"
        + INVOICE_LIST
        + "\nTotal: "
        + TOTALS
        + "\n\nUnless payment is received within 10 days we will consider further steps, "
        "which may include referral to a collections agency.\n\nYours sincerely,\n" + SIGNATURE,
    ),
    "personal-reminder": (
        "email",
        "reminder",
        "A note about your account",
        "Hello {{ contact_name }},\n\nI wanted to check in personally about these invoices:\n\n"
        + INVOICE_LIST
        + "\nTotal: "
        + TOTALS
        + "\n\nIs there anything I can help with on your side? "
        "You can pay at {{ pay_link }}, or simply reply to this e-mail.\n\nBest regards,\n"
        + SIGNATURE,
    ),
    "early-reminder": (
        "email",
        "reminder",
        "Invoice due in 7 days",
        "Hello {{ contact_name }},\n\nThese invoices fall due in 7 days:\n\n"
        + INVOICE_LIST
        + "\nTotal: "
        + TOTALS
        + "\n\nPay at {{ pay_link }}.\n\n"
        + SIGNATURE,
    ),
}

# policy -> (segment, description, steps: (name, offset, channel, template, tone, approval))
POLICIES = {
    "Standard": (
        "standard",
        "Friendly before the due date, firmer after, a call at 15 days, a final letter at 30.",
        [
            ("Friendly reminder", -3, "email", "friendly-upcoming", "friendly", "none"),
            ("Due today", 0, "email", "due-today", "urgent", "none"),
            ("Overdue e-mail", 7, "email", "firm-overdue", "firm", "none"),
            ("Overdue SMS", 7, "sms", "firm-overdue-sms", "firm", "none"),
            ("Call the customer", 15, "call", None, "firm", "none"),
            ("Final notice letter", 30, "letter", "final-notice-letter", "final", "high_value"),
            ("Escalate to a manager", 60, "escalation", None, "final", "none"),
            ("Write-off or agency review", 90, "review", None, "legal", "none"),
        ],
    ),
    "Strategic": (
        "strategic",
        "High-value accounts: personal e-mails from the assigned agent, no SMS, calls from +7.",
        [
            ("Personal reminder", -3, "email", "personal-reminder", "friendly", "none"),
            ("Personal follow-up", 3, "email", "personal-reminder", "reminder", "none"),
            ("Senior agent call", 7, "call", None, "reminder", "none"),
            ("Second call", 21, "call", None, "firm", "none"),
            ("Final notice letter", 30, "letter", "final-notice-letter", "final", "always"),
            ("Escalate to a manager", 45, "escalation", None, "final", "none"),
        ],
    ),
    "High risk": (
        "high_risk",
        "Earlier and firmer: a reminder 7 days before, firm notices from the due date.",
        [
            ("Early reminder", -7, "email", "early-reminder", "reminder", "none"),
            ("Firm notice on due date", 0, "email", "firm-overdue", "firm", "none"),
            ("Firm SMS on due date", 0, "sms", "firm-overdue-sms", "firm", "none"),
            ("Call the customer", 7, "call", None, "firm", "none"),
            ("Final notice letter", 21, "letter", "final-notice-letter", "final", "high_value"),
            ("Escalate to a manager", 45, "escalation", None, "final", "none"),
            ("Write-off or agency review", 90, "review", None, "legal", "none"),
        ],
    ),
}

ROLES = {
    "Collections manager": [
        "dunning.view_policy",
        "dunning.add_policy",
        "dunning.change_policy",
        "dunning.view_step",
        "dunning.add_step",
        "dunning.change_step",
        "dunning.delete_step",
        "dunning.view_template",
        "dunning.add_template",
        "dunning.change_template",
        "dunning.view_notice",
        "dunning.approve_notice",
        "dunning.send_notice_now",
        "dunning.switch_policy",
    ],
    "Collections agent": [
        "dunning.view_policy",
        "dunning.view_step",
        "dunning.view_template",
        "dunning.view_notice",
    ],
    "Finance": ["dunning.view_notice"],
}


def forward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    Policy = apps.get_model("dunning", "Policy")
    Step = apps.get_model("dunning", "Step")
    templates = {}
    for name, (channel, tone, subject, body) in TEMPLATES.items():
        templates[name], _ = Template.objects.update_or_create(
            name=name,
            language="en",
            defaults={"channel": channel, "tone": tone, "subject": subject, "body_text": body},
        )
    for name, (segment, description, steps) in POLICIES.items():
        policy, _ = Policy.objects.update_or_create(
            name=name, defaults={"segment": segment, "description": description}
        )
        for step_name, offset, channel, template, tone, approval in steps:
            Step.objects.update_or_create(
                policy=policy,
                offset_days=offset,
                channel=channel,
                defaults={
                    "name": step_name,
                    "template": templates[template] if template else None,
                    "tone": tone,
                    "approval": approval,
                },
            )
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in ROLES.items():
        group = Group.objects.get(name=group_name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def backward(apps, schema_editor):
    apps.get_model("dunning", "Step").objects.filter(policy__name__in=POLICIES).delete()
    apps.get_model("dunning", "Policy").objects.filter(name__in=POLICIES).delete()
    apps.get_model("dunning", "Template").objects.filter(name__in=TEMPLATES).delete()
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, perms in ROLES.items():
        group = Group.objects.filter(name=group_name).first()
        if group:
            codenames = [perm.split(".")[1] for perm in perms]
            group.permissions.remove(
                *Permission.objects.filter(
                    content_type__app_label="dunning", codename__in=codenames
                )
            )


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0001_initial"),
        ("accounts", "0006_customer_dunning_policy"),
    ]

    operations = [migrations.RunPython(forward, backward)]
