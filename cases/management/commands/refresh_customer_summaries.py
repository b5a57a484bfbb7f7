"""refresh_customer_summaries: recompute every customer's amount past due and next action now."""

import datetime as dt

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts import summaries
from cases import next_actions


class Command(BaseCommand):
    help = (
        "Recompute the customer list's figures (amount and days past due, next action) for "
        "every customer; the nightly case-work run does the same."
    )

    def add_arguments(self, parser):
        parser.add_argument("--date", help="past due as of this day, YYYY-MM-DD (default: today)")

    def handle(self, *args, date=None, **options):
        try:
            today = dt.date.fromisoformat(date) if date else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"bad --date: {exc}") from exc
        past_due = summaries.refresh_past_due(today=today)
        actions = next_actions.refresh_next_actions()
        self.stdout.write(f"past due: {past_due} customers changed; next action: {actions} changed")
