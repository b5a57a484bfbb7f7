"""PostgreSQL only: trigram indexes for admin search, and the append-only timeline trigger.

Both are skipped on SQLite (the laptop default), where the model and admin guards still hold.
"""

from django.db import migrations

FORWARD = """
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX IF NOT EXISTS customer_name_trgm
    ON accounts_customer USING gin (UPPER(name::text) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS invoice_number_trgm
    ON accounts_invoice USING gin (UPPER(number::text) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS contact_email_trgm
    ON accounts_contact USING gin (UPPER(email::text) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS contact_phone_trgm
    ON accounts_contact USING gin (phone gin_trgm_ops);

CREATE OR REPLACE FUNCTION accounts_activity_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the account timeline is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_activity_append_only
    BEFORE UPDATE OR DELETE ON accounts_activity
    FOR EACH ROW EXECUTE FUNCTION accounts_activity_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS accounts_activity_append_only ON accounts_activity;
DROP FUNCTION IF EXISTS accounts_activity_append_only();
DROP INDEX IF EXISTS contact_phone_trgm;
DROP INDEX IF EXISTS contact_email_trgm;
DROP INDEX IF EXISTS invoice_number_trgm;
DROP INDEX IF EXISTS customer_name_trgm;
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
