"""aging_report: write the aging report as of a date to a PDF, CSV or XLSX file."""

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from reporting import exports, services
from reporting.aging import GROUP_BY_FIELDS, AgingReport, Filters
from reporting.models import ReportExport, ReportFormat


class Command(BaseCommand):
    help = "Write the aging report as of a date to a file (recorded as a report export)."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", required=True, help="report date, YYYY-MM-DD")
        parser.add_argument("--format", required=True, choices=ReportFormat.values)
        parser.add_argument("--output", required=True, help="file to write")
        parser.add_argument("--group-by", choices=GROUP_BY_FIELDS, default="")
        parser.add_argument("--detail", action="store_true", help="one row per open invoice")
        parser.add_argument(
            "--in-base-currency",
            action="store_true",
            help="also every total converted into BASE_CURRENCY at the ECB rates of --as-of",
        )
        parser.add_argument("--segment", default="", help="only this segment")
        parser.add_argument("--agent", default="", help="only customers of this username")
        parser.add_argument("--currency", default="", help="only this currency (ISO 4217)")
        parser.add_argument("--min-balance", help="only customers owing at least this much")
        parser.add_argument(
            "--edges", help="bucket edges in days, e.g. 30,60,90 (default: setting)"
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=exports.PDF_CUSTOMER_LIMIT,
            help="PDF only: list this many customers, largest first (0: all)",
        )
        parser.add_argument("--user", help="record the export as this username (default: system)")

    def handle(self, *args, **options):
        try:
            as_of = dt.date.fromisoformat(options["as_of"])
        except ValueError as exc:
            raise CommandError(f"--as-of: {exc}") from exc
        users = get_user_model().objects
        by = agent = None
        try:
            if options["user"]:
                by = users.get(username=options["user"])
            if options["agent"]:
                agent = users.get(username=options["agent"])
        except users.model.DoesNotExist as exc:
            raise CommandError(f"no such user: {exc}") from exc
        try:
            min_balance = Decimal(options["min_balance"]) if options["min_balance"] else None
        except InvalidOperation as exc:
            raise CommandError(f"--min-balance is not an amount: {options['min_balance']}") from exc
        try:
            report = AgingReport(
                as_of=as_of,
                filters=Filters(
                    segment=options["segment"],
                    agent_id=agent.pk if agent else None,
                    currency=options["currency"].upper(),
                    min_balance=min_balance,
                ),
                group_by=options["group_by"],
                edges=options["edges"],
                detail=options["detail"],
                in_base_currency=options["in_base_currency"],
            )
            file = services.export_aging(
                report=report,
                fmt=options["format"],
                by=by,
                via=ReportExport.Via.COMMAND,
                limit=options["limit"] or None,
            )
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        output = Path(options["output"])
        with output.open("wb") as out:
            if file.chunks is not None:
                for chunk in file.chunks:
                    out.write(chunk)
            else:
                out.write(file.content)
        file.record.refresh_from_db()
        self.stdout.write(
            json.dumps(
                {
                    "as_of": as_of.isoformat(),
                    "format": options["format"],
                    "output": str(output),
                    "bytes": output.stat().st_size,
                    "rows": file.record.row_count,
                    "export": file.record.pk,
                }
            )
        )
