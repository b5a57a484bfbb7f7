"""run_case_work: the nightly case jobs by hand (broken promises, risk, routing, alerts...)."""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from cases import nightly


class Command(BaseCommand):
    help = (
        "Detect broken promises and missed installments, send installment reminders, score "
        "risk, route unassigned customers, raise write-off reviews and aging alerts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="run as of this day, YYYY-MM-DD (default: today)")

    def handle(self, *args, date=None, **options):
        try:
            on = dt.date.fromisoformat(date) if date else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"bad --date: {exc}") from exc
        summary = nightly.run_case_work(on=on, now=timezone.now())
        self.stdout.write(json.dumps(summary, default=str))
        if summary["errors"]:
            raise CommandError(f"{len(summary['errors'])} job(s) failed: see the JSON above")
