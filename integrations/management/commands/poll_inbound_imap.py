"""poll_inbound_imap: read debtors' replies from the IMAP folder once (integrations.inbound)."""

import imaplib

from django.core.management.base import BaseCommand, CommandError

from integrations.inbound import imap


class Command(BaseCommand):
    help = (
        "Read the messages not read before from the IMAP folder set by INBOUND_IMAP_HOST, "
        "_PORT, _USER, _PASSWORD and _FOLDER, and receive each as a debtor's reply (stored "
        "once, threaded to its notice, on the timeline). Does nothing while the host is empty."
    )

    def handle(self, *args, **options):
        try:
            result = imap.poll()
        except (imaplib.IMAP4.error, OSError) as exc:
            raise CommandError(f"IMAP: {exc}") from exc
        if not result.configured:
            self.stdout.write("IMAP polling is off: INBOUND_IMAP_HOST is empty.")
            return
        self.stdout.write(
            f"Read {result.read} message(s), {result.stored} new; last UID {result.last_uid}."
        )
