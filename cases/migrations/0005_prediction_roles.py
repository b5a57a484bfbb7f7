"""Every role may read the nightly predictions (probability of paying late, expected pay
date, reasons) in the console: the invoice list and page, the customer page."""

from django.db import migrations

from accounts import roles

ROLES = {
    group: ["cases.view_invoiceprediction"]
    for group in ("Collections agent", "Collections manager", "Finance")
}


def grant(apps, schema_editor):
    roles.grant(apps, ROLES)


def revoke(apps, schema_editor):
    roles.revoke(apps, ROLES)


class Migration(migrations.Migration):
    dependencies = [
        ("cases", "0004_invoice_predictions"),
    ]

    operations = [
        migrations.RunPython(grant, revoke),
    ]
