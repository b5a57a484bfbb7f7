"""run_dunning: plan and send today's (or a given day's) notices by hand."""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from dunning import planner, sender


class Command(BaseCommand):
    help = "Plan the dunning notices for a day and send those that may go out now."

    def add_arguments(self, parser):
        parser.add_argument("--date", help="plan as of this day, YYYY-MM-DD (default: today)")
        parser.add_argument("--at", help="send as if it were this moment, ISO 8601 (default: now)")
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would happen, change nothing"
        )
        parser.add_argument(
            "--plan-only",
            action="store_true",
            help="plan the day's notices into the outbox and send nothing (the workers' "
            "'Send due dunning notices' job sends them); safe to repeat",
        )

    def handle(self, *args, date=None, at=None, dry_run=False, plan_only=False, **options):
        try:
            on = dt.date.fromisoformat(date) if date else timezone.localdate()
            now = dt.datetime.fromisoformat(at) if at else timezone.now()
        except ValueError as exc:
            raise CommandError(f"bad --date or --at: {exc}") from exc
        if timezone.is_naive(now):
            now = timezone.make_aware(now)
        # Planning is one transaction (rolled back on --dry-run); sending is not: each
        # message's send is made durable on its own (dunning/sender.py), so a run killed
        # after some messages went out keeps them recorded and sends none of them again.
        with transaction.atomic():
            plan = planner.plan(on=on)
            if dry_run:
                transaction.set_rollback(True)
        sent = sender.SendResult() if dry_run or plan_only else sender.send_due(now=now)
        summary = {
            "evaluated": plan.evaluated,
            "planned": plan.planned,
            "sent": sent.sent,
            "deferred": sent.deferred,
            "awaiting_approval": plan.awaiting_approval + sent.awaiting_approval,
            "suppressed": plan.suppressed + sent.suppressed,
            "failed": sent.failed,
            "uncertain": sent.uncertain,
        }
        self.stdout.write(json.dumps(summary))
