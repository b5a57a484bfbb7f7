"""Number each invoice's allocation rows: 1 for its first, 2 for the next, reversals included.

Step one of two: the column, nullable, filled in for the rows there are (in id order, the
order they were written). 0018 makes it required and unique per invoice and indexes it.
On PostgreSQL one UPDATE with ROW_NUMBER (about 25 s for 780,000 allocations on the bench
machine); elsewhere a correlated count. Reversed by dropping the column.
"""

from django.db import migrations, models

POSTGRESQL = (
    "UPDATE accounts_allocation a SET seq = numbered.seq"
    " FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY invoice_id ORDER BY id) AS seq"
    " FROM accounts_allocation) numbered WHERE numbered.id = a.id"
)
PORTABLE = (
    "UPDATE accounts_allocation SET seq = (SELECT COUNT(*) FROM accounts_allocation earlier"
    " WHERE earlier.invoice_id = accounts_allocation.invoice_id"
    " AND earlier.id <= accounts_allocation.id)"
)


def number_allocations(apps, schema_editor):
    is_postgresql = schema_editor.connection.vendor == "postgresql"
    schema_editor.execute(POSTGRESQL if is_postgresql else PORTABLE)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0016_allocation_allocated_on"),
    ]

    operations = [
        migrations.AddField(
            model_name="allocation",
            name="seq",
            field=models.PositiveIntegerField(null=True, verbose_name="number on the invoice"),
        ),
        migrations.RunPython(number_allocations, migrations.RunPython.noop, elidable=False),
    ]
