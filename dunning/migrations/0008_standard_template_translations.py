"""Seed German, French and Spanish translations of the Standard policy's templates.

The sender picks the template with the step template's name in the customer's language
(dunning/rendering.py, translation_for). These use the `*_display` variables: amounts and
dates in the customer's locale format (1.234,50 EUR, 30. November 2026).

Forward never overwrites a translation that already exists. Backward removes only those
still as seeded, so a translation someone wrote or edited survives going back.
"""

from django.db import migrations

SIGNATURE = "{{ agent_name }}\n{{ company_name }}"


def invoice_list(due_word: str, colon: str = ":") -> str:
    return (
        "{% for line in invoices %}- {{ line.number }}, "
        + due_word
        + " {{ line.due_on_display }}"
        + colon
        + " {{ line.open_balance_display }} {{ line.currency }}\n{% endfor %}"
    )


TOTALS = (
    "{% for currency, total in totals_display.items %}{{ total }} {{ currency }}"
    "{% if not forloop.last %}, {% endif %}{% endfor %}"
)

# (name, language) -> (channel, tone, subject, body)
TRANSLATIONS = {
    # --- Deutsch
    ("friendly-upcoming", "de"): (
        "email",
        "friendly",
        "Ihre Rechnung ist in 3 Tagen fällig",
        "Guten Tag {{ contact_name }},\n\nwir möchten Sie freundlich daran erinnern, dass die "
        "folgenden Rechnungen von {{ customer_name }} bald fällig werden:\n\n"
        + invoice_list("fällig am")
        + "\nGesamt: "
        + TOTALS
        + "\n\nSie können jetzt bezahlen unter {{ pay_link }}\n\nVielen Dank\n"
        + SIGNATURE,
    ),
    ("due-today", "de"): (
        "email",
        "urgent",
        "Zahlung heute fällig",
        "Guten Tag {{ contact_name }},\n\ndie folgenden Rechnungen sind heute fällig:\n\n"
        + invoice_list("fällig am")
        + "\nGesamt: "
        + TOTALS
        + "\n\nBitte bezahlen Sie unter {{ pay_link }} oder sagen Sie uns, falls etwas der "
        "Zahlung im Wege steht.\n\n" + SIGNATURE,
    ),
    ("firm-overdue", "de"): (
        "email",
        "firm",
        "Überfällig: Bitte zahlen Sie jetzt",
        "Guten Tag {{ contact_name }},\n\nlaut unseren Unterlagen sind diese Rechnungen "
        "überfällig:\n\n"
        + invoice_list("fällig am")
        + "\nÜberfällig insgesamt: "
        + TOTALS
        + "\n\nBitte veranlassen Sie die Zahlung noch heute unter {{ pay_link }}. Falls Sie "
        "bereits bezahlt haben, senden Sie uns bitte die Zahlungsdetails.\n\n" + SIGNATURE,
    ),
    ("firm-overdue-sms", "de"): (
        "sms",
        "firm",
        "",
        "{{ company_name }}: {{ invoice_count }} Rechnung(en) überfällig, gesamt "
        + TOTALS
        + ". Zahlen: {{ pay_link }}",
    ),
    ("final-notice-letter", "de"): (
        "letter",
        "final",
        "Letzte Mahnung vor weiteren Schritten",
        "Guten Tag {{ contact_name }},\n\ntrotz unserer Erinnerungen sind die folgenden "
        "Rechnungen von {{ customer_name }} weiterhin unbezahlt:\n\n"
        + invoice_list("fällig am")
        + "\nGesamt: "
        + TOTALS
        + "\n\nGeht die Zahlung nicht innerhalb von 10 Tagen bei uns ein, prüfen wir weitere "
        "Schritte, bis hin zur Übergabe an ein Inkassounternehmen.\n\nMit freundlichen "
        "Grüßen\n" + SIGNATURE,
    ),
    # --- Français
    ("friendly-upcoming", "fr"): (
        "email",
        "friendly",
        "Votre facture arrive à échéance dans 3 jours",
        "Bonjour {{ contact_name }},\n\nPour rappel, les factures suivantes de "
        "{{ customer_name }} arrivent bientôt à échéance :\n\n"
        + invoice_list("échéance le", " :")
        + "\nTotal : "
        + TOTALS
        + "\n\nVous pouvez payer dès maintenant sur {{ pay_link }}\n\nMerci,\n"
        + SIGNATURE,
    ),
    ("due-today", "fr"): (
        "email",
        "urgent",
        "Paiement dû aujourd'hui",
        "Bonjour {{ contact_name }},\n\nLes factures suivantes arrivent à échéance "
        "aujourd'hui :\n\n"
        + invoice_list("échéance le", " :")
        + "\nTotal : "
        + TOTALS
        + "\n\nMerci de régler sur {{ pay_link }} ou de nous dire si quelque chose retarde "
        "le paiement.\n\n" + SIGNATURE,
    ),
    ("firm-overdue", "fr"): (
        "email",
        "firm",
        "En retard : merci de payer maintenant",
        "Bonjour {{ contact_name }},\n\nSelon nos dossiers, ces factures sont maintenant en "
        "retard de paiement :\n\n"
        + invoice_list("échéance le", " :")
        + "\nTotal en retard : "
        + TOTALS
        + "\n\nMerci d'effectuer le paiement dès aujourd'hui sur {{ pay_link }}. Si vous avez "
        "déjà payé, merci de nous envoyer les références du virement.\n\n" + SIGNATURE,
    ),
    # SMS in the GSM-7 alphabet: no ç, ê, â, î, ô or û.
    ("firm-overdue-sms", "fr"): (
        "sms",
        "firm",
        "",
        "{{ company_name }} : {{ invoice_count }} facture(s) en retard, total "
        + TOTALS
        + ". Payer : {{ pay_link }}",
    ),
    ("final-notice-letter", "fr"): (
        "letter",
        "final",
        "Dernier avis avant d'autres mesures",
        "Bonjour {{ contact_name }},\n\nMalgré nos précédents rappels, les factures suivantes "
        "de {{ customer_name }} restent impayées :\n\n"
        + invoice_list("échéance le", " :")
        + "\nTotal : "
        + TOTALS
        + "\n\nSans paiement de votre part sous 10 jours, nous envisagerons d'autres mesures, "
        "pouvant aller jusqu'au recours à une société de recouvrement.\n\nVeuillez agréer nos "
        "salutations distinguées.\n" + SIGNATURE,
    ),
    # --- Español
    ("friendly-upcoming", "es"): (
        "email",
        "friendly",
        "Su factura vence en 3 días",
        "Hola, {{ contact_name }}:\n\nLe recordamos que las siguientes facturas de "
        "{{ customer_name }} vencen pronto:\n\n"
        + invoice_list("vence el")
        + "\nTotal: "
        + TOTALS
        + "\n\nPuede pagar ahora en {{ pay_link }}\n\nGracias,\n"
        + SIGNATURE,
    ),
    ("due-today", "es"): (
        "email",
        "urgent",
        "Pago con vencimiento hoy",
        "Hola, {{ contact_name }}:\n\nLas siguientes facturas vencen hoy:\n\n"
        + invoice_list("vence el")
        + "\nTotal: "
        + TOTALS
        + "\n\nPor favor, pague en {{ pay_link }} o avísenos si algo impide el pago.\n\n"
        + SIGNATURE,
    ),
    ("firm-overdue", "es"): (
        "email",
        "firm",
        "Vencido: por favor, pague ahora",
        "Hola, {{ contact_name }}:\n\nSegún nuestros registros, estas facturas ya están "
        "vencidas:\n\n"
        + invoice_list("venció el")
        + "\nTotal vencido: "
        + TOTALS
        + "\n\nPor favor, realice el pago hoy en {{ pay_link }}. Si ya ha pagado, envíenos los "
        "datos de la transferencia.\n\n" + SIGNATURE,
    ),
    # SMS in the GSM-7 alphabet: no á, í, ó or ú.
    ("firm-overdue-sms", "es"): (
        "sms",
        "firm",
        "",
        "{{ company_name }}: {{ invoice_count }} factura(s) vencida(s), total "
        + TOTALS
        + ". Pague en {{ pay_link }}",
    ),
    ("final-notice-letter", "es"): (
        "letter",
        "final",
        "Último aviso antes de otras medidas",
        "Estimado/a {{ contact_name }}:\n\nA pesar de nuestros recordatorios, las siguientes "
        "facturas de {{ customer_name }} siguen sin pagar:\n\n"
        + invoice_list("venció el")
        + "\nTotal: "
        + TOTALS
        + "\n\nSi no recibimos el pago en un plazo de 10 días, estudiaremos otras medidas, "
        "que pueden incluir la cesión a una agencia de cobro.\n\nAtentamente,\n" + SIGNATURE,
    ),
}


def forward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    for (name, language), (channel, tone, subject, body) in TRANSLATIONS.items():
        Template.objects.get_or_create(
            name=name,
            language=language,
            defaults={"channel": channel, "tone": tone, "subject": subject, "body_text": body},
        )


def backward(apps, schema_editor):
    Template = apps.get_model("dunning", "Template")
    for (name, language), (_channel, _tone, subject, body) in TRANSLATIONS.items():
        Template.objects.filter(
            name=name, language=language, subject=subject, body_text=body, steps__isnull=True
        ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0007_default_disclosures"),
        ("dunning", "0002_default_policies"),
    ]

    operations = [migrations.RunPython(forward, backward)]
