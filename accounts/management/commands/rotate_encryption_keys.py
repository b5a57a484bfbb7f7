"""manage.py rotate_encryption_keys: re-encrypt personal data under the first key."""

from django.core.management.base import BaseCommand

from accounts import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt every encrypted personal field (contacts' e-mails and phones, postal "
        "addresses) with the first of FIELD_ENCRYPTION_KEYS, in chunks, each committed; "
        "stopped, it resumes where it left off (rows already under the first key are "
        "skipped). Rotation: put the new key first, keep the old ones after it, run this, "
        "then remove the old keys."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=1000)
        parser.add_argument(
            "--rehash",
            action="store_true",
            help="also recompute the e-mail and phone lookup hashes (after FIELD_HASH_KEY changed)",
        )

    def handle(self, *args, chunk_size, rehash, **options):
        if chunk_size < 1:
            self.stderr.write("--chunk-size must be at least 1")
            raise SystemExit(2)

        def report(label, last_id, rewritten):
            if options["verbosity"] > 1:
                self.stdout.write(f"{label}: up to id {last_id}, {rewritten} rewritten so far")

        rewritten = crypto.rotate_keys(chunk_size=chunk_size, rehash=rehash, report=report)
        self.stdout.write(self.style.SUCCESS(f"{rewritten} rows re-encrypted with the first key"))
