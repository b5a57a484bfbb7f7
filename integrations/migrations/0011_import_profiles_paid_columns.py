"""Teach the shipped import profiles the columns of settlement history: the paid date,
the amount paid and a disputed flag, under the names the exports use."""

from django.db import migrations

COLUMNS = {
    "generic-csv": {
        "paid_on": ["paid date", "date paid", "paid on", "payment date", "paid_on"],
        "amount_paid": ["amount paid", "paid amount", "amount_paid"],
        "disputed": ["disputed", "in dispute", "dispute"],
    },
    # Xero: the invoice export's InvoiceAmountPaid; FullyPaidOnDate from its API and the
    # reports built on it; "Paid Date" / "Amount Paid" in its receivable invoice reports.
    "xero": {
        "paid_on": ["FullyPaidOnDate", "Paid Date", "PaidDate"],
        "amount_paid": ["InvoiceAmountPaid", "AmountPaid", "Amount Paid"],
        "disputed": ["Disputed"],
    },
    # QuickBooks Online: invoice lists and the "Invoices and Received Payments" report.
    "quickbooks-online": {
        "paid_on": ["Date Paid", "Payment Date", "Paid Date"],
        "amount_paid": ["Amount Paid", "Payment Amount", "Paid Amount"],
        "disputed": ["Disputed"],
    },
}


def forward(apps, schema_editor):
    ImportProfile = apps.get_model("integrations", "ImportProfile")
    for profile in ImportProfile.objects.filter(name__in=COLUMNS, is_builtin=True):
        columns = dict(profile.columns or {})
        for field, aliases in COLUMNS[profile.name].items():
            columns.setdefault(field, aliases)  # an administrator's own mapping stays
        profile.columns = columns
        profile.save(update_fields=["columns"])


def backward(apps, schema_editor):
    ImportProfile = apps.get_model("integrations", "ImportProfile")
    for profile in ImportProfile.objects.filter(name__in=COLUMNS, is_builtin=True):
        columns = dict(profile.columns or {})
        for field, aliases in COLUMNS[profile.name].items():
            if columns.get(field) == aliases:
                del columns[field]
        profile.columns = columns
        profile.save(update_fields=["columns"])


class Migration(migrations.Migration):
    dependencies = [("integrations", "0010_match_proposal_rule_labels")]

    operations = [migrations.RunPython(forward, backward)]
