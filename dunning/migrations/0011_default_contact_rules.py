"""Seed the contact rules that reproduce the guards the sender enforced from settings.

Two rules, editable under Dunning -> Contact rules: any customer (contact 08:00-21:00 in
the customer's time zone, not on Sunday, 7 contacts in any 7 days, no monthly cap, public
holidays not observed) and consumers (the same, plus 3 contacts a month and no contact on
the public holidays of their country). The hours, weekdays and caps are read from the
DUNNING_CONTACT_* and DUNNING_MAX_* settings, whose defaults are those values, so a
deployment that changed them keeps its guards. Who may edit the rules follows the policy
rights (dunning/admin.py): no new permissions. Reversible: going back removes these rows.
"""

from django.conf import settings
from django.db import migrations

# (country, customer kind): blank is "any".
DEFAULT, CONSUMER = ("", ""), ("", "consumer")


def forward(apps, schema_editor):
    ContactRule = apps.get_model("dunning", "ContactRule")
    start, end = settings.DUNNING_CONTACT_HOURS
    common = {
        "from_hour": start,
        "until_hour": end,
        "no_contact_weekdays": sorted(settings.DUNNING_NO_CONTACT_WEEKDAYS),
        "max_contacts_per_7_days": settings.DUNNING_MAX_CONTACTS_PER_7_DAYS,
    }
    ContactRule.objects.get_or_create(
        country=DEFAULT[0],
        customer_kind=DEFAULT[1],
        defaults={
            **common,
            "observe_public_holidays": False,
            "max_contacts_per_month": None,
            "note": "Seeded default: every customer without a more specific rule.",
        },
    )
    ContactRule.objects.get_or_create(
        country=CONSUMER[0],
        customer_kind=CONSUMER[1],
        defaults={
            **common,
            "observe_public_holidays": True,
            "max_contacts_per_month": settings.DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH,
            "note": "Seeded default for consumer debt (Regulation F: 7 in 7 days).",
        },
    )


def backward(apps, schema_editor):
    ContactRule = apps.get_model("dunning", "ContactRule")
    for country, kind in (DEFAULT, CONSUMER):
        ContactRule.objects.filter(country=country, customer_kind=kind).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("dunning", "0010_contact_rules"),
    ]

    operations = [migrations.RunPython(forward, backward)]
