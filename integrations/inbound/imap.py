"""IMAP polling: read a mailbox folder for debtors' replies, for teams without a provider.

Off while INBOUND_IMAP_HOST is empty. Each poll (the periodic task, or
`manage.py poll_inbound_imap`):

1. Log in (IMAP over TLS to INBOUND_IMAP_HOST:INBOUND_IMAP_PORT), select
   INBOUND_IMAP_FOLDER read-only: nothing in the mailbox is changed or marked read.
2. Look up the folder's cursor (`ImapCursor`: UIDVALIDITY and the last UID read). A new
   UIDVALIDITY (the folder was recreated) starts again from UID 1; the receive path's
   unique (source, Message-ID) keeps messages already stored from being stored again.
3. Ask for the UIDs above the last one read, oldest first, at most INBOUND_IMAP_BATCH.
4. For each: its size first; a message larger than INBOUND_MAX_REQUEST_BYTES is stored
   from its headers alone with the body recorded as refused. Else fetch it (BODY.PEEK[])
   and receive it. The cursor moves past each message once it is stored, so a poll that
   dies half-way goes on from there next time, and nothing is read twice.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import ImapCursor, InboundEmail
from . import receive

logger = logging.getLogger(__name__)

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass
class PollResult:
    configured: bool = True
    read: int = 0
    stored: int = 0
    last_uid: int = 0


def connect() -> imaplib.IMAP4:
    """A logged-in connection to the configured mailbox (TLS)."""
    connection = imaplib.IMAP4_SSL(
        settings.INBOUND_IMAP_HOST, settings.INBOUND_IMAP_PORT, timeout=60
    )
    connection.login(settings.INBOUND_IMAP_USER, settings.INBOUND_IMAP_PASSWORD)
    return connection


def _mailbox() -> str:
    return (
        f"{settings.INBOUND_IMAP_USER}@{settings.INBOUND_IMAP_HOST}:"
        f"{settings.INBOUND_IMAP_PORT}/{settings.INBOUND_IMAP_FOLDER}"
    )[:500]


def _fetched_bytes(data) -> bytes:
    for item in data or []:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return b""


def _uid_validity(connection) -> int:
    _typ, data = connection.response("UIDVALIDITY")
    try:
        return int((data or [b"0"])[0] or 0)
    except (TypeError, ValueError):
        return 0


def poll(*, connector: Callable[[], imaplib.IMAP4] | None = None) -> PollResult:
    """Read the messages not read before; see the module's steps."""
    if not settings.INBOUND_IMAP_HOST:
        return PollResult(configured=False)
    connection = (connector or connect)()
    result = PollResult()
    try:
        typ, _data = connection.select(settings.INBOUND_IMAP_FOLDER, readonly=True)
        if typ != "OK":
            raise imaplib.IMAP4.error(f"cannot select {settings.INBOUND_IMAP_FOLDER}")
        validity = _uid_validity(connection)
        cursor, _created = ImapCursor.objects.get_or_create(mailbox=_mailbox())
        if cursor.uid_validity != validity:
            cursor.uid_validity, cursor.last_uid = validity, 0
        typ, data = connection.uid("SEARCH", None, f"UID {cursor.last_uid + 1}:*")
        uids = sorted(
            {int(uid) for uid in (data[0] or b"").split() if uid.isdigit()}
            if typ == "OK" and data
            else set()
        )
        # "n:*" names the highest UID even when it is below n: keep only the new ones.
        uids = [uid for uid in uids if uid > cursor.last_uid][: settings.INBOUND_IMAP_BATCH]
        for uid in uids:
            result.stored += _take(connection, uid, validity)
            result.read += 1
            cursor.last_uid = uid
            cursor.polled_at = timezone.now()
            cursor.save()
        cursor.polled_at = timezone.now()
        cursor.save()
        result.last_uid = cursor.last_uid
    finally:
        with contextlib.suppress(Exception):  # a connection already closed is fine
            connection.logout()
    return result


def _take(connection, uid: int, validity: int) -> int:
    """Receive one message by UID; 1 if it was new."""
    _typ, data = connection.uid("FETCH", str(uid), "(RFC822.SIZE)")
    found = _SIZE.search(b" ".join(d if isinstance(d, bytes) else b"" for d in data or []))
    size = int(found.group(1)) if found else 0
    if size > settings.INBOUND_MAX_REQUEST_BYTES:
        _typ, data = connection.uid("FETCH", str(uid), "(BODY.PEEK[HEADER])")
        message = email.message_from_bytes(_fetched_bytes(data), policy=email.policy.default)
        files = [
            receive.IncomingFile(
                filename="(the whole message)",
                content_type="message/rfc822",
                size=size,
                content=b"",
                refused=_("larger than %(n)d bytes (INBOUND_MAX_REQUEST_BYTES)")
                % {"n": settings.INBOUND_MAX_REQUEST_BYTES},
            )
        ]
    else:
        _typ, data = connection.uid("FETCH", str(uid), "(BODY.PEEK[])")
        message = email.message_from_bytes(_fetched_bytes(data), policy=email.policy.default)
        files = None
    _inbound, created = receive.receive_email(
        source=InboundEmail.Source.IMAP,
        message=message,
        files=files,
        fallback_id=f"imap-{validity}-{uid}",
    )
    return int(created)
