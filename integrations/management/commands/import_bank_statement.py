"""Import a bank statement file (camt.052/053/054, MT940/MT942, BAI2 or CSV) and match it."""

import json
import os
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from integrations.bank.formats import FORMATS
from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementUnreadable
from integrations.uploads import UploadRefused, check_size


class Command(BaseCommand):
    help = (
        "Import a bank statement (camt.053/052/054 XML, MT940/MT942, BAI2 or CSV): store its "
        "lines, record a payment per credit and match the payments to open invoices. The "
        "file is read as a stream. The last line of the output is JSON. Exit status 2 when "
        "the file cannot be read or is over the upload limits (UPLOAD_MAX_BYTES, "
        "UPLOAD_MAX_ROWS)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--format", choices=FORMATS, help="detected when omitted")
        parser.add_argument("--user", help="username recorded as the importer")
        parser.add_argument("--account", default="", help="own account for CSV files")
        parser.add_argument(
            "--no-reconcile", action="store_true", help="store the payments, match nothing"
        )

    def handle(self, *args, path, format, user, account, no_reconcile, **options):
        by = None
        if user:
            try:
                by = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"no user {user!r}") from exc
        try:
            check_size(os.stat(path).st_size)  # before a byte is read
            with open(path, "rb") as stream:
                result = import_statement(
                    file=stream,
                    filename=Path(path).name,
                    format=format,
                    by=by,
                    account=account,
                    reconcile=not no_reconcile,
                )
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from exc
        except (StatementUnreadable, UploadRefused) as exc:
            raise CommandError(f"{path}: {exc}", returncode=2) from exc
        outcome = result.outcome
        self.stdout.write(
            f"batch {result.batch.pk}: {result.lines} lines, {result.payments} payments, "
            f"{result.duplicates} duplicates, {result.rejected} rejected; "
            f"{outcome.review} sent to review"
        )
        if outcome.by_rule:
            rules = ", ".join(f"{rule} {n}" for rule, n in sorted(outcome.by_rule.items()))
            self.stdout.write(f"rules: {rules}")
        self.stdout.write(json.dumps(result.summary()))
