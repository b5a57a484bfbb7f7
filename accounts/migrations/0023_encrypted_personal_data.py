"""Contacts' e-mails and phones and customers' postal addresses encrypted at rest, with
keyed hashes for exact lookup (accounts/crypto.py).

The plaintext indexes go (an index over tokens finds nothing), the trigram ones too
(PostgreSQL), and so does the E.164 check (a token never starts with "+": the phone is
normalised by the model, the forms, the API and intake before it is stored). Existing rows
are encrypted in chunks of ids; backwards they are decrypted before the columns turn
back into varchar and the check returns.
"""

from django.db import migrations, models

import accounts.crypto
from accounts import crypto

CHUNK = 2000

TRIGRAM_DROP = """
DROP INDEX IF EXISTS contact_email_trgm;
DROP INDEX IF EXISTS contact_phone_trgm;
"""
TRIGRAM_CREATE = """
CREATE INDEX IF NOT EXISTS contact_email_trgm
    ON accounts_contact USING gin (UPPER(email::text) gin_trgm_ops);
CREATE INDEX IF NOT EXISTS contact_phone_trgm
    ON accounts_contact USING gin (phone gin_trgm_ops);
"""


def _chunks(cursor, table, columns):
    last = 0
    while True:
        cursor.execute(
            f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > %s ORDER BY id LIMIT %s",  # noqa: S608
            [last, CHUNK],
        )
        rows = cursor.fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def encrypt_rows(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for rows in _chunks(cursor, "accounts_contact", ["email", "phone"]):
            cursor.executemany(
                "UPDATE accounts_contact SET email = %s, phone = %s, email_hash = %s, "
                "phone_hash = %s WHERE id = %s",
                [
                    (
                        crypto.encrypt(email),
                        crypto.encrypt(phone),
                        crypto.lookup_hash("email", email),
                        crypto.lookup_hash("phone", phone),
                        pk,
                    )
                    for pk, email, phone in rows
                ],
            )
        for rows in _chunks(cursor, "accounts_customer", ["postal_address"]):
            cursor.executemany(
                "UPDATE accounts_customer SET postal_address = %s WHERE id = %s",
                [(crypto.encrypt(address), pk) for pk, address in rows if address],
            )


def decrypt_rows(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        for rows in _chunks(cursor, "accounts_contact", ["email", "phone"]):
            cursor.executemany(
                "UPDATE accounts_contact SET email = %s, phone = %s WHERE id = %s",
                [(crypto.decrypt(email), crypto.decrypt(phone), pk) for pk, email, phone in rows],
            )
        for rows in _chunks(cursor, "accounts_customer", ["postal_address"]):
            cursor.executemany(
                "UPDATE accounts_customer SET postal_address = %s WHERE id = %s",
                [(crypto.decrypt(address), pk) for pk, address in rows if address],
            )


def drop_trigram(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGRAM_DROP, params=None)


def create_trigram(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGRAM_CREATE, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0022_staff_auth"),
    ]

    operations = [
        migrations.RunPython(drop_trigram, create_trigram),
        migrations.RemoveConstraint(
            model_name="contact",
            name="contact_phone_e164",
        ),
        migrations.RemoveIndex(
            model_name="contact",
            name="accounts_co_phone_2233f6_idx",
        ),
        migrations.RemoveIndex(
            model_name="contact",
            name="accounts_co_email_ea7067_idx",
        ),
        migrations.RemoveIndex(
            model_name="contact",
            name="contact_email_upper",
        ),
        migrations.AddField(
            model_name="contact",
            name="email_hash",
            field=accounts.crypto.LookupHashField(kind="email", source="email"),
        ),
        migrations.AddField(
            model_name="contact",
            name="phone_hash",
            field=accounts.crypto.LookupHashField(kind="phone", source="phone"),
        ),
        migrations.AlterField(
            model_name="contact",
            name="email",
            field=accounts.crypto.EncryptedEmailField(
                blank=True, max_length=254, verbose_name="e-mail"
            ),
        ),
        migrations.AlterField(
            model_name="contact",
            name="phone",
            field=accounts.crypto.EncryptedCharField(
                blank=True, help_text="E.164", max_length=16, verbose_name="phone"
            ),
        ),
        migrations.AlterField(
            model_name="customer",
            name="postal_address",
            field=accounts.crypto.EncryptedTextField(
                blank=True, db_default="", default="", verbose_name="postal address"
            ),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["email_hash"], name="contact_email_hash"),
        ),
        migrations.AddIndex(
            model_name="contact",
            index=models.Index(fields=["phone_hash"], name="contact_phone_hash"),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
    ]
