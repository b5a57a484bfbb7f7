"""Personal data at rest: ciphertext in the database, exact lookups by hash, key rotation."""

import pytest
from cryptography.fernet import Fernet
from django.core import checks
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection
from rest_framework.test import APIClient

from accounts import bulk, crypto
from accounts.models import Contact, Customer
from dunning.unsubscribe import opt_out_email
from integrations.twilio.webhooks import record_reply
from tests.factories import ContactFactory, CustomerFactory

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def stored_contact(pk: int) -> tuple[str, str, str, str]:
    [row] = raw(
        "SELECT email, phone, email_hash, phone_hash FROM accounts_contact WHERE id = %s", [pk]
    )
    return row


@pytest.mark.django_db
def test_the_database_holds_ciphertext_and_the_model_reads_plaintext():
    customer = CustomerFactory(postal_address="1 Main Street\nSpringfield")
    contact = ContactFactory(customer=customer, email="Ap@Acme.example", phone="+14155550123")
    email, phone, email_hash, phone_hash = stored_contact(contact.pk)
    [(address,)] = raw("SELECT postal_address FROM accounts_customer WHERE id = %s", [customer.pk])
    for token, plain in ((email, "Acme"), (phone, "4155550123"), (address, "Springfield")):
        assert token.startswith("gAAAAA") and plain not in token
    assert email_hash == crypto.lookup_hash("email", "ap@acme.example") and len(email_hash) == 64
    assert phone_hash == crypto.lookup_hash("phone", "+14155550123")
    contact = Contact.objects.select_related("customer").get(pk=contact.pk)
    assert (contact.email, contact.phone) == ("Ap@Acme.example", "+14155550123")
    assert contact.customer.postal_address == "1 Main Street\nSpringfield"
    # No value stays empty (a contact without a phone is still told apart), not a token.
    nobody = ContactFactory(customer=customer, email="", phone="")
    assert stored_contact(nobody.pk) == ("", "", "", "")
    assert set(Contact.objects.exclude(phone="").values_list("pk", flat=True)) == {contact.pk}


@pytest.mark.django_db
def test_lookups_by_email_and_phone_go_through_the_hash():
    mine = ContactFactory(email="ap@acme.example", phone="+442079460000")
    ContactFactory(email="other@acme.example", phone="+14155550123")
    assert list(Contact.objects.matching(email="  AP@ACME.example ")) == [mine]
    assert list(Contact.objects.matching(phone="+44 20 7946 0000")) == [mine]
    assert list(Contact.objects.matching(phone="020 7946 0000", regions=["GB"])) == [mine]
    assert list(Contact.objects.matching(email="ap@acme")) == []
    assert list(Contact.objects.matching()) == []
    # A comparison with a ciphertext column could only ever find nothing: refused.
    with pytest.raises(FieldError, match="encrypted"):
        list(Contact.objects.filter(email="ap@acme.example"))
    with pytest.raises(FieldError):
        list(Contact.objects.filter(email__icontains="acme"))


@pytest.mark.django_db
def test_an_edit_of_the_email_alone_moves_its_hash():
    contact = ContactFactory(email="old@acme.example")
    contact.email = "new@acme.example"
    contact.save(update_fields=["email"])
    assert list(Contact.objects.matching(email="new@acme.example")) == [contact]
    assert list(Contact.objects.matching(email="old@acme.example")) == []


@pytest.mark.django_db
def test_sms_replies_and_email_opt_outs_find_the_contact():
    contact = ContactFactory(email="ap@acme.example", phone="+14155550123")
    assert record_reply(sender="+14155550123", body="STOP") == [contact]
    contact.refresh_from_db()
    assert contact.sms_opted_out_at is not None
    assert opt_out_email(email="AP@acme.example", source="complaint") == [contact]


@pytest.mark.django_db
def test_bulk_writers_encrypt_and_keep_the_hashes():
    customer = CustomerFactory()
    bulk.insert_rows(
        Contact,
        ("customer_id", "name", "email", "phone", "is_primary"),
        [(customer.pk, "Jo", "jo@acme.example", "+14155550124", True)],
        returning=False,
    )
    contact = Contact.objects.get(customer=customer)
    assert "acme" not in stored_contact(contact.pk)[0]
    assert list(Contact.objects.matching(email="jo@acme.example")) == [contact]
    contact.email, contact.phone = "jay@acme.example", "+14155550125"
    bulk.write_rows(Contact, [contact], ["email", "phone"])
    assert "acme" not in stored_contact(contact.pk)[0]
    assert list(Contact.objects.matching(email="jay@acme.example")) == [contact]
    assert list(Contact.objects.matching(phone="+14155550125")) == [contact]
    assert Contact.objects.get(pk=contact.pk).email == "jay@acme.example"


@pytest.mark.django_db
def test_the_api_shows_plaintext_to_whoever_may_read_it(manager):
    contact = ContactFactory(email="ap@acme.example", phone="+14155550123")
    client = APIClient()
    client.force_authenticate(manager)
    body = client.get(f"/api/v1/contacts/{contact.pk}/").json()
    assert (body["email"], body["phone"]) == ("ap@acme.example", "+14155550123")


@pytest.mark.django_db
def test_rotation_re_encrypts_under_the_new_key_and_the_old_one_can_then_go(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    contacts = [ContactFactory(email=f"ap{n}@acme.example") for n in range(5)]
    customer = CustomerFactory(postal_address="1 Main Street")
    before = {c.pk: stored_contact(c.pk) for c in contacts}

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # new first, old still accepted
    assert Contact.objects.get(pk=contacts[0].pk).email == "ap0@acme.example"
    call_command("rotate_encryption_keys", "--chunk-size", "2", verbosity=0)
    for contact in contacts:
        email, phone, email_hash, phone_hash = stored_contact(contact.pk)
        assert email != before[contact.pk][0] and phone != before[contact.pk][1]
        assert Fernet(KEY_B.encode()).decrypt(email.encode()).decode() == contact.email
        assert (email_hash, phone_hash) == before[contact.pk][2:]
    # Finished: a second run rewrites nothing (a stopped run resumes the same way).
    assert crypto.rotate_keys() == 0

    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key removed
    assert Customer.objects.get(pk=customer.pk).postal_address == "1 Main Street"
    assert list(Contact.objects.matching(email="ap3@acme.example")) == [contacts[3]]
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]  # only the old key: nothing opens
    with pytest.raises(crypto.UndecryptableError):
        Contact.objects.get(pk=contacts[0].pk)


@pytest.mark.django_db
def test_a_stopped_rotation_resumes_with_what_is_left(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    customer = CustomerFactory(postal_address="")
    for _ in range(4):
        ContactFactory(customer=customer)
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    chunks = []

    def stop_after_first_chunk_of_contacts(label, last_id, rewritten):
        if label == "accounts.Contact":
            chunks.append(rewritten)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        crypto.rotate_keys(chunk_size=2, report=stop_after_first_chunk_of_contacts)
    assert chunks == [2]  # the first chunk was written
    assert crypto.rotate_keys() == 2  # the rest, and only the rest


@pytest.mark.django_db
def test_check_deploy_refuses_keys_derived_from_the_secret_key(settings):
    settings.FIELD_ENCRYPTION_KEYS, settings.FIELD_HASH_KEY = [], ""
    ids = {message.id for message in crypto.check_field_keys()}
    assert ids == {"accounts.E001", "accounts.E003"}
    deploy = {m.id for m in checks.run_checks(include_deployment_checks=True)}
    assert {"accounts.E001", "accounts.E003"} <= deploy
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    assert {m.id for m in crypto.check_field_keys()} == {"accounts.E002", "accounts.E003"}
    settings.FIELD_ENCRYPTION_KEYS, settings.FIELD_HASH_KEY = [KEY_A], "h" * 40
    assert crypto.check_field_keys() == []


def test_production_without_keys_refuses_to_encrypt(settings):
    settings.FIELD_ENCRYPTION_KEYS, settings.FIELD_KEYS_MAY_DERIVE = [], False
    with pytest.raises(crypto.ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        crypto.encrypt("ap@acme.example")
