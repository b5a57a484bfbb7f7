"""Balance updates as HOT updates: no index on the invoice's status, room left on each page.

A payment moves an invoice's open_balance, status and updated_at. PostgreSQL can then
rewrite the row on its own page without touching any index (a heap-only tuple update)
only if no index names one of those columns (a partial index's condition counts) and the
page has room for the new version. Otherwise every update inserts into all the invoice
indexes, the trigram GIN index among them: reconciling 100,000 payments spent most of its
database time there. So invoice_status_due_on goes (the admin's lists walk
invoice_due_on_id and filter the status; the planner's windows are due_on ranges), and
the table keeps 10% of each page free for the new versions (fillfactor 90).

The fillfactor applies to pages written from now on; existing pages gain room as vacuum
prunes them (or at once with VACUUM FULL / pg_repack in a maintenance window).
"""

from django.db import migrations

FILLFACTOR = 90


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"ALTER TABLE accounts_invoice SET (fillfactor = {FILLFACTOR})")


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE accounts_invoice RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0013_case_work_roles")]

    operations = [
        migrations.RemoveIndex(model_name="invoice", name="invoice_status_due_on"),
        migrations.RunPython(forward, backward),
    ]
