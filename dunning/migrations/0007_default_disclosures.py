"""Seed editable default disclosures for consumer debt.

DEFAULT WORDING, NOT LEGAL ADVICE: each row says so in its name. Have counsel review (and
edit under Dunning -> Required disclosures) before sending to consumers. Nothing is seeded
for business customers. Who may edit them follows the template rights (dunning/admin.py),
so the roles need no new permissions. Reversible: going back removes these rows.
"""

from django.db import migrations

REVIEW = "(DEFAULT wording: have counsel review)"
LONG = ["email", "letter", "legal"]

# name -> (customer kind, jurisdiction, language, channels, text)
DISCLOSURES = {
    f"US consumer debt: validation notice {REVIEW}": (
        "consumer",
        "US",
        "",
        LONG,
        "This is an attempt to collect a debt by {{ company_name }}, and any information "
        "obtained will be used for that purpose.\n\n"
        "Unless you notify us within 30 days after receiving this notice that you dispute "
        "the validity of this debt, or any portion of it, we will assume the debt is valid. "
        "If you notify us in writing within that 30-day period that you dispute the debt, or "
        "any portion of it, we will obtain verification of the debt and mail you a copy of "
        "it. If you request it in writing within the same 30-day period, we will give you "
        "the name and address of the original creditor, if different from the current "
        "creditor.",
    ),
    f"US consumer debt: SMS line {REVIEW}": (
        "consumer",
        "US",
        "",
        ["sms"],
        "This is an attempt to collect a debt by {{ company_name }}.",
    ),
    f"UK consumer: free debt advice {REVIEW}": (
        "consumer",
        "GB",
        "",
        LONG,
        "If you are finding it hard to pay, please talk to us: we will look at your "
        "circumstances and the options open to you, such as paying in instalments. Free, "
        "confidential and impartial debt advice is available from MoneyHelper "
        "(www.moneyhelper.org.uk) and other not-for-profit debt advice organisations.",
    ),
    f"UK consumer: SMS debt advice line {REVIEW}": (
        "consumer",
        "GB",
        "",
        ["sms"],
        "Free debt advice: www.moneyhelper.org.uk",
    ),
    f"EU consumer: generic notice {REVIEW}": (
        "consumer",
        "EU",
        "",
        LONG,
        "This message is about an amount owed to {{ company_name }}. If you think you do "
        "not owe it, or you are having difficulty paying, please contact us at "
        "{{ company_email }} and we will look at your situation. You can also get free "
        "advice from a consumer or debt advice organisation in your country.",
    ),
    f"EU consumer: generic notice, Deutsch {REVIEW}": (
        "consumer",
        "EU",
        "de",
        LONG,
        "Diese Nachricht betrifft einen offenen Betrag bei {{ company_name }}. Wenn Sie "
        "meinen, diesen Betrag nicht zu schulden, oder Schwierigkeiten bei der Zahlung haben, "
        "melden Sie sich bitte unter {{ company_email }}; wir prüfen dann Ihre Situation. "
        "Kostenlose Beratung erhalten Sie auch bei einer Verbraucher- oder "
        "Schuldnerberatungsstelle in Ihrem Land.",
    ),
    f"EU consumer: generic notice, français {REVIEW}": (
        "consumer",
        "EU",
        "fr",
        LONG,
        "Ce message concerne une somme due à {{ company_name }}. Si vous pensez ne pas devoir "
        "cette somme, ou si vous avez des difficultés à payer, contactez-nous à "
        "{{ company_email }} : nous examinerons votre situation. Vous pouvez aussi obtenir "
        "des conseils gratuits auprès d'une association de consommateurs ou d'un service "
        "d'aide aux personnes endettées de votre pays.",
    ),
    f"EU consumer: generic notice, español {REVIEW}": (
        "consumer",
        "EU",
        "es",
        LONG,
        "Este mensaje se refiere a un importe adeudado a {{ company_name }}. Si cree que no "
        "lo debe, o tiene dificultades para pagar, contáctenos en {{ company_email }} y "
        "estudiaremos su situación. También puede obtener asesoramiento gratuito de una "
        "organización de consumidores o de asesoramiento sobre deudas de su país.",
    ),
}


def forward(apps, schema_editor):
    Disclosure = apps.get_model("dunning", "Disclosure")
    for name, (kind, jurisdiction, language, channels, text) in DISCLOSURES.items():
        Disclosure.objects.get_or_create(
            name=name,
            defaults={
                "customer_kind": kind,
                "jurisdiction": jurisdiction,
                "language": language,
                "channels": channels,
                "body_text": text,
            },
        )


def backward(apps, schema_editor):
    apps.get_model("dunning", "Disclosure").objects.filter(name__in=DISCLOSURES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0006_disclosures_thresholds_email_events"),
    ]

    operations = [migrations.RunPython(forward, backward)]
