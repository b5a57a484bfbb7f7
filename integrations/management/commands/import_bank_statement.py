"""Import a bank statement file (camt.053, MT940 or CSV) and match its payments."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from integrations.bank.formats import FORMATS
from integrations.bank.importer import import_statement
from integrations.bank.statement import StatementUnreadable


class Command(BaseCommand):
    help = (
        "Import a bank statement (camt.053 XML, MT940 or CSV): store its lines, record a "
        "payment per credit and match the payments to open invoices. The last line of the "
        "output is JSON. Exit status 2 when the file cannot be read."
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
            content = Path(path).read_bytes()
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}", returncode=2) from exc
        try:
            result = import_statement(
                content=content,
                filename=Path(path).name,
                format=format,
                by=by,
                account=account,
                reconcile=not no_reconcile,
            )
        except StatementUnreadable as exc:
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
