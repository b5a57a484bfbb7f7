"""Seed the shipped import profiles and give the roles their intake permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# Ledger field -> header aliases, matched case- and space-insensitively.
GENERIC = {
    "number": ["invoice number", "invoice no", "invoice", "number", "invoice_number"],
    "customer_ref": ["customer id", "customer ref", "customer number", "account", "customer_ref"],
    "customer_name": ["customer", "customer name", "company", "customer_name"],
    "email": ["email", "e-mail", "contact email"],
    "phone": ["phone", "telephone", "contact phone"],
    "contact_name": ["contact", "contact name"],
    "country": ["country"],
    "issued_on": ["invoice date", "issue date", "date", "issued_on"],
    "due_on": ["due date", "due", "due_on"],
    "currency": ["currency"],
    "amount": ["amount", "total", "invoice total"],
    "amount_due": ["amount due", "open balance", "balance", "outstanding"],
    "reference": ["reference", "po", "po number", "purchase order"],
}
XERO = {
    "number": ["InvoiceNumber"],
    "customer_name": ["ContactName"],
    "email": ["EmailAddress"],
    "country": ["POCountry"],
    "issued_on": ["InvoiceDate"],
    "due_on": ["DueDate"],
    "currency": ["Currency"],
    "amount": ["Total"],
    "amount_due": ["InvoiceAmountDue"],
    "reference": ["Reference"],
}
QUICKBOOKS = {
    "number": ["Num", "No.", "Invoice No"],
    "customer_name": ["Customer", "Customer full name"],
    "issued_on": ["Date", "Invoice Date"],
    "due_on": ["Due Date"],
    "currency": ["Currency"],
    "amount": ["Amount", "Total"],
    "amount_due": ["Open Balance", "Balance"],
    "reference": ["Memo/Description", "Memo"],
    "transaction_type": ["Transaction Type"],
}
PROFILES = [
    {
        "name": "generic-csv",
        "label": "Generic CSV / XLSX",
        "description": "Invoice number, customer, dates, currency and amount under common header names.",
        "source": "spreadsheet",
        "columns": GENERIC,
        "date_formats": ["%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y"],
        "decimal_separator": ".",
        "thousands_separator": ",",
        "default_currency": "",
        "required": ["number", "customer_name", "issued_on", "amount", "currency"],
    },
    {
        "name": "xero",
        "label": "Xero sales invoices export",
        "description": "Xero's invoice export: one row per invoice line, dates DD/MM/YYYY.",
        "source": "xero",
        "columns": XERO,
        "date_formats": ["%d/%m/%Y", "%Y-%m-%d"],
        "decimal_separator": ".",
        "thousands_separator": ",",
        "default_currency": "",
        "required": ["number", "customer_name", "issued_on", "due_on", "amount"],
    },
    {
        "name": "quickbooks-online",
        "label": "QuickBooks Online A/R aging detail or invoice list",
        "description": "QuickBooks Online export; dates MM/DD/YYYY; non-invoice rows are skipped.",
        "source": "quickbooks",
        "columns": QUICKBOOKS,
        "date_formats": ["%m/%d/%Y", "%Y-%m-%d"],
        "decimal_separator": ".",
        "thousands_separator": ",",
        "default_currency": "USD",
        "required": ["number", "customer_name", "issued_on", "amount"],
    },
]

VIEW_INTAKE = [
    "integrations.view_intakebatch",
    "integrations.view_rejection",
    "integrations.view_sourcehealth",
    "integrations.view_importprofile",
]
ROLES = {
    "Finance": [
        *VIEW_INTAKE,
        "integrations.add_intakebatch",
        "integrations.change_rejection",
        "integrations.resolve_rejection",
        "integrations.add_importprofile",
        "integrations.change_importprofile",
        "integrations.view_webhookevent",
        "integrations.view_bankstatement",
        "integrations.view_bankline",
        "integrations.view_matchproposal",
        "integrations.review_match",
    ],
    "Collections manager": [*VIEW_INTAKE, "integrations.view_matchproposal"],
}


def forward(apps, schema_editor):
    ImportProfile = apps.get_model("integrations", "ImportProfile")
    for profile in PROFILES:
        ImportProfile.objects.update_or_create(
            name=profile["name"], defaults={**profile, "is_builtin": True}
        )
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group = Group.objects.get(name=name)
        for perm in perms:
            app_label, codename = perm.split(".")
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def backward(apps, schema_editor):
    apps.get_model("integrations", "ImportProfile").objects.filter(is_builtin=True).delete()
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, perms in ROLES.items():
        group = Group.objects.filter(name=name).first()
        if group is None:
            continue
        codenames = [perm.split(".")[1] for perm in perms]
        group.permissions.remove(
            *Permission.objects.filter(
                content_type__app_label="integrations", codename__in=codenames
            )
        )


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        ("accounts", "0005_refunds_as_allocation_reversals"),
    ]

    operations = [migrations.RunPython(forward, backward)]
