"""Personal data at rest: encrypted model fields and the keyed hashes that find them.

Contacts' e-mail addresses and phone numbers and customers' postal addresses are stored
as Fernet tokens (AES-128-CBC with HMAC-SHA256, from `cryptography`) under keys read from
the environment: FIELD_ENCRYPTION_KEYS, comma-separated, the first encrypts and every one
decrypts (MultiFernet), so a key is rotated by putting a new one first, running
`manage.py rotate_encryption_keys`, and then removing the old one. A token carries a
random IV, so equal values give different tokens: a lookup cannot compare ciphertexts.
Exact search goes through a keyed hash stored beside the ciphertext (HMAC-SHA256 under
FIELD_HASH_KEY, over the normalised value: an e-mail lower-cased, a phone in E.164), and
every lookup by e-mail or phone in the product goes through `Contact.objects.matching`.

Without keys (a laptop, the tests) both keys are derived from SECRET_KEY, but only while
DEBUG or ALLOW_INSECURE_SECRET_KEY is on; production refuses to start encrypting and
`check --deploy` reports it (accounts.E001).

Why our own fields and not a package: django-fernet-encrypted-fields (the maintained one
for Django 5.2) derives its keys from SECRET_KEY by PBKDF2 (so rotating the session
signing key re-keys the data), returns the ciphertext as the value when no key fits, and
has no searchable hash; the rest are unmaintained. The cipher itself is `cryptography`'s.
"""

import base64
import functools
import hashlib
import hmac

import phonenumbers
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models
from django.db.models.lookups import Exact, IsNull


class UndecryptableError(ImproperlyConfigured):
    """A stored value that none of FIELD_ENCRYPTION_KEYS opens (a key removed too early)."""


def _derived(purpose: str) -> bytes:
    if not settings.FIELD_KEYS_MAY_DERIVE:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS and FIELD_HASH_KEY must be set when DEBUG is off "
            "(or set ALLOW_INSECURE_SECRET_KEY for a test machine)"
        )
    return hashlib.sha256(f"{purpose}:{settings.SECRET_KEY}".encode()).digest()


def encryption_keys() -> tuple[str, ...]:
    """The configured keys, first the one that encrypts; a derived one when none is set."""
    configured = tuple(settings.FIELD_ENCRYPTION_KEYS)
    if configured:
        return configured
    return (base64.urlsafe_b64encode(_derived("field-encryption")).decode(),)


@functools.lru_cache(maxsize=8)
def _ciphers(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key.encode()))
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)"
            ) from exc
    return MultiFernet(fernets), fernets[0]


def _multi() -> MultiFernet:
    return _ciphers(encryption_keys())[0]


def encrypt(text: str) -> str:
    """A token for `text` under the first key; the empty string stays empty (so `= ''`
    still tells a contact without an e-mail)."""
    if not text:
        return text
    return _multi().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        return token
    try:
        return _multi().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableError(
            "a stored personal field opens with none of FIELD_ENCRYPTION_KEYS "
            "(was a key removed before `rotate_encryption_keys` finished?)"
        ) from exc


def is_current(token: str) -> bool:
    """True when the first key already opens `token` (rotation skips it)."""
    if not token:
        return True
    try:
        _ciphers(encryption_keys())[1].decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def reencrypt(token: str) -> str:
    """The same value under the first key (any configured key may open it)."""
    if not token:
        return token
    return _multi().rotate(token.encode()).decode()


def _hash_key() -> bytes:
    configured = settings.FIELD_HASH_KEY
    return configured.encode() if configured else _derived("field-hash")


def normal_email(value: str) -> str:
    return (value or "").strip().lower()


def normal_phone(value: str, region: str = "") -> str:
    """E.164 when the number parses (with `region` for a national form), else as typed."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        number = phonenumbers.parse(value, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_valid_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


NORMALISE = {"email": normal_email, "phone": normal_phone}


def lookup_hash(kind: str, value: str) -> str:
    """HMAC-SHA256 (hex) of the normalised value, or "" for no value."""
    normal = NORMALISE[kind](value)
    if not normal:
        return ""
    return hmac.new(_hash_key(), f"{kind}:{normal}".encode(), hashlib.sha256).hexdigest()


class _EmptyOnlyExact(Exact):
    """`= ''` (no value) is the one comparison an encrypted column can answer."""

    def get_prep_lookup(self):
        if self.rhs not in ("", None) and not hasattr(self.rhs, "resolve_expression"):
            raise FieldError(
                f"{self.lhs.target.name} is encrypted: look it up by its hash "
                "(Contact.objects.matching(email=...) or (phone=...))"
            )
        return super().get_prep_lookup()


class EncryptedMixin:
    """Stored as a Fernet token in a text column, read back as the plaintext.

    The model field keeps its validation (an EmailField still checks the address and its
    length) on the plaintext. Lookups other than `= ''` and `isnull` are refused, loudly:
    a token never equals another, so they could only ever find nothing.
    """

    is_encrypted = True

    def get_internal_type(self):
        return "TextField"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        return encrypt(value) if value else value

    def from_db_value(self, value, expression, connection):
        return decrypt(value) if value else value

    def get_lookup(self, lookup_name):
        if lookup_name == "exact":
            return _EmptyOnlyExact
        if lookup_name == "isnull":
            return IsNull
        return None

    def get_transform(self, lookup_name):
        return None


class EncryptedEmailField(EncryptedMixin, models.EmailField):
    pass


class EncryptedCharField(EncryptedMixin, models.CharField):
    pass


class EncryptedTextField(EncryptedMixin, models.TextField):
    pass


class LookupHashField(models.CharField):
    """The keyed hash of another field of the row, kept in step whenever the row is saved
    or bulk-created, and by `accounts.bulk`'s COPY and UPDATE writers."""

    def __init__(self, *args, source: str, kind: str, **kwargs):
        self.source, self.kind = source, kind
        kwargs.setdefault("max_length", 64)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("default", "")
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(source=self.source, kind=self.kind)
        implied = {"max_length": 64, "blank": True, "default": "", "editable": False}
        for key, value in implied.items():
            if kwargs.get(key) == value:
                del kwargs[key]
        return name, path, args, kwargs

    def derive(self, source_value) -> str:
        return lookup_hash(self.kind, source_value or "")

    def pre_save(self, model_instance, add):
        value = self.derive(getattr(model_instance, self.source))
        setattr(model_instance, self.attname, value)
        return value


@checks.register(checks.Tags.security, deploy=True)
def check_field_keys(app_configs=None, **kwargs):
    """`check --deploy`: personal data must not be encrypted under keys made from SECRET_KEY."""
    found = []
    if not settings.FIELD_ENCRYPTION_KEYS:
        found.append(
            checks.Error(
                "FIELD_ENCRYPTION_KEYS is not set: personal data would be encrypted under a "
                "key derived from SECRET_KEY.",
                hint="Set FIELD_ENCRYPTION_KEYS to one or more Fernet keys (README: Security).",
                id="accounts.E001",
            )
        )
    else:
        try:
            _ciphers(tuple(settings.FIELD_ENCRYPTION_KEYS))
        except ImproperlyConfigured as exc:
            found.append(checks.Error(str(exc), id="accounts.E002"))
    if not settings.FIELD_HASH_KEY:
        found.append(
            checks.Error(
                "FIELD_HASH_KEY is not set: the e-mail and phone lookup hashes would be keyed "
                "from SECRET_KEY.",
                hint="Set FIELD_HASH_KEY to a long random string (README: Security).",
                id="accounts.E003",
            )
        )
    return found


def encrypted_columns() -> list[tuple[type[models.Model], list[models.Field]]]:
    """Every model with encrypted fields, and those fields."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if getattr(f, "is_encrypted", False)]
        if fields:
            found.append((model, fields))
    return found


def rotate_keys(*, chunk_size: int = 1000, rehash: bool = False, report=None) -> int:
    """Re-encrypt every stored token that the first key does not already open; returns
    how many rows were rewritten.

    1. Walk each table by id in chunks; each chunk is read and written in its own
       transaction, so a run stopped anywhere keeps what it finished.
    2. A token the first key opens is left alone: a second run (after a stop) rewrites
       only what the first did not reach, and a finished rotation rewrites nothing.
    3. A row is written with a conditional UPDATE on its old tokens, so a value changed by
       the application meanwhile (already under the first key) is not overwritten.
    With `rehash`, the lookup hashes are recomputed too (after FIELD_HASH_KEY changed).
    """
    from django.db import connection, transaction

    quote = connection.ops.quote_name
    rewritten = 0
    for model, fields in encrypted_columns():
        hashes = (
            [f for f in model._meta.concrete_fields if isinstance(f, LookupHashField)]
            if rehash
            else []
        )
        by_source = {f.source: f for f in hashes}
        table = quote(model._meta.db_table)
        columns = [quote(f.column) for f in fields]
        last = 0
        while True:
            with transaction.atomic(), connection.cursor() as cursor:
                lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
                cursor.execute(
                    f"SELECT id, {', '.join(columns)} FROM {table} "  # noqa: S608
                    f"WHERE id > %s ORDER BY id LIMIT %s{lock}",
                    [last, chunk_size],
                )
                rows = cursor.fetchall()
                if not rows:
                    break
                last = rows[-1][0]
                for pk, *tokens in rows:
                    stale = [not is_current(token) for token in tokens]
                    if not any(stale) and not hashes:
                        continue
                    new = [reencrypt(t) if s else t for t, s in zip(tokens, stale, strict=True)]
                    sets = [f"{c} = %s" for c in columns]
                    values = list(new)
                    for field, token in zip(fields, tokens, strict=True):
                        if field.name in by_source:
                            sets.append(f"{quote(by_source[field.name].column)} = %s")
                            values.append(by_source[field.name].derive(decrypt(token)))
                    same = " AND ".join(f"{c} = %s" for c in columns)
                    cursor.execute(
                        f"UPDATE {table} SET {', '.join(sets)} WHERE id = %s AND {same}",  # noqa: S608
                        [*values, pk, *tokens],
                    )
                    rewritten += cursor.rowcount
            if report:
                report(model._meta.label, last, rewritten)
    return rewritten
