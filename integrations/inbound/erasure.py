"""Erasing a customer's inbound messages, for privacy.erasure.erase_customer to call.

A debtor's message is their own words: its text and subject are replaced whole, the
sender's address and its lookup hash emptied, the attachments' files deleted (their rows
kept, marked erased). The messages matched to the customer go, and so do unmatched ones
sent from one of its contacts' addresses. Ids, dates, the thread (Message-IDs naming our
notices) and what was found (promised date and amount) stay, as the ledger's figures do.
"""

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Q

from accounts.crypto import lookup_hash

from ..models import InboundAttachment, InboundEmail

ERASED = "[erased]"


@transaction.atomic
def erase_messages(*, customer, emails: Iterable[str]) -> dict[str, int]:
    """Erase the messages of `customer` and those from `emails`; counts of what changed."""
    hashes = {lookup_hash("email", address) for address in emails} - {""}
    messages = InboundEmail.objects.filter(Q(customer=customer) | Q(sender_hash__in=hashes))
    ids = list(messages.values_list("pk", flat=True))
    attachments = InboundAttachment.objects.filter(email_id__in=ids)
    files = 0
    for attachment in attachments.exclude(file=""):
        attachment.file.delete(save=False)
        files += 1
    attachments.update(filename=ERASED, file="", refused_reason=ERASED)
    erased = InboundEmail.objects.filter(pk__in=ids).update(
        sender="", sender_hash="", subject=ERASED, text=ERASED, match_note=""
    )
    return {"inbound_messages": erased, "inbound_files": files}
