"""send_due: send the notices that may go out now, crash-safe (see dunning/sender.py)."""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dunning import sender


class Command(BaseCommand):
    help = "Send every notice that may go out now (after sweeping dead workers' sends)."

    def add_arguments(self, parser):
        parser.add_argument("--at", help="send as if it were this moment, ISO 8601 (default: now)")
        parser.add_argument("--limit", type=int, default=1000, help="at most this many notices")

    def handle(self, *args, at=None, limit=1000, **options):
        try:
            now = dt.datetime.fromisoformat(at) if at else timezone.now()
        except ValueError as exc:
            raise CommandError(f"bad --at: {exc}") from exc
        if timezone.is_naive(now):
            now = timezone.make_aware(now)
        self.stdout.write(json.dumps(vars(sender.send_due(now=now, limit=limit))))
