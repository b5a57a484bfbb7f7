"""Load an invoice spreadsheet (CSV or XLSX) through the intake invoices."""

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from integrations.intake import spreadsheets
from integrations.models import ImportProfile

FAILED = 1
UNREADABLE = 2


class Command(BaseCommand):
    help = (
        "Load invoices (and their customers and contacts) from a CSV or XLSX file. The last "
        'line of output is {"read", "created", "updated", "unchanged", "rejected", "batch"} '
        "as JSON. Exit 0 when the file was read (rejected rows included), 2 when it could "
        "not be read at all or is over an upload limit (UPLOAD_MAX_*), 1 when the load "
        "stopped at an error (its batch is marked failed with the reason). A dry run "
        "writes nothing, not even its batch."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="the .csv or .xlsx file")
        parser.add_argument(
            "--profile", default="generic-csv", help="import profile name (default generic-csv)"
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and count every row, write nothing at all (no batch, no rejected row)",
        )
        parser.add_argument("--user", help="username recorded as the importer on the timeline")
        parser.add_argument(
            "--encoding", help="CSV text encoding when not UTF-8 (e.g. cp1252, latin-1)"
        )

    def handle(self, *args, path, profile, dry_run, user, encoding, **options):
        try:
            profile_obj = ImportProfile.objects.get(name=profile)
        except ImportProfile.DoesNotExist as exc:
            names = ", ".join(ImportProfile.objects.values_list("name", flat=True))
            raise CommandError(f"Unknown profile {profile!r}; choose one of: {names}") from exc
        by = None
        if user:
            by = get_user_model().objects.filter(username=user).first()
            if by is None:
                raise CommandError(f"Unknown user {user!r}.")
        file = Path(path)
        try:
            stream = file.open("rb")
        except OSError as exc:
            self._unreadable(f"{path}: {exc.strerror or exc}", batch=None)
        with stream:
            try:
                batch = spreadsheets.import_invoices(
                    stream,
                    filename=file.name,
                    profile=profile_obj,
                    by=by,
                    is_dry_run=dry_run,
                    encoding=encoding,
                )
            except spreadsheets.UnreadableFile as exc:
                self._unreadable(f"{path}: {exc}", batch=exc.batch)
            except spreadsheets.LoadFailed as exc:
                self._unreadable(
                    f"{path}: the load stopped at an error (batch {exc.batch.pk} failed): {exc}",
                    batch=exc.batch,
                    returncode=FAILED,
                )
        counts = batch.counts()
        prefix = "Dry run, nothing written: " if dry_run else ""
        self.stdout.write(
            f"{prefix}{counts['read']} rows read from {file.name} with profile {profile_obj.name}:"
            f" {counts['created']} created, {counts['updated']} updated,"
            f" {counts['unchanged']} unchanged, {counts['rejected']} rejected"
            + (f" ({counts['warned']} loaded with a warning)." if counts["warned"] else ".")
        )
        if counts["rejected"] and dry_run:
            for rejection in batch.dry_run_rejections:
                reason = "; ".join(f"{k}: {' '.join(v)}" for k, v in rejection.errors.items())
                self.stdout.write(f"Row {rejection.row_number}: {reason}")
            if counts["rejected"] > len(batch.dry_run_rejections):
                self.stdout.write(
                    f"... and {counts['rejected'] - len(batch.dry_run_rejections)} more."
                )
        elif counts["rejected"]:
            self.stdout.write(
                f"Rejected rows are listed under Intake > Rejected rows (batch {batch.pk})."
            )
        self.stdout.write(json.dumps(counts))

    def _unreadable(self, message: str, *, batch, returncode: int = UNREADABLE) -> None:
        counts = (
            batch.counts()
            if batch is not None
            else dict.fromkeys(["read", "created", "updated", "unchanged", "rejected", "warned"], 0)
            | {"batch": None}
        )
        self.stdout.write(json.dumps(counts))
        raise CommandError(message, returncode=returncode)
