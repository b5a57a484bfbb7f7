"""Run the matching engine again over payments that still hold unapplied money."""

import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Payment
from integrations.reconciliation import matching


class Command(BaseCommand):
    help = (
        "Match unapplied payments (no pending proposal) to open invoices, e.g. after new "
        "invoices were loaded. The last line of the output is JSON."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", help="only payments from this source, e.g. bank")
        parser.add_argument("--user", help="username recorded on the allocations")

    def handle(self, *args, source, user, **options):
        by = None
        if user:
            try:
                by = get_user_model().objects.get(username=user)
            except get_user_model().DoesNotExist as exc:
                raise CommandError(f"no user {user!r}") from exc
        payments = Payment.objects.filter(unallocated_amount__gt=0, kind=Payment.Kind.PAYMENT)
        if source:
            payments = payments.filter(source=source)
        ids = list(payments.order_by("received_on", "pk").values_list("pk", flat=True))
        outcome = matching.reconcile(ids, by=by)
        self.stdout.write(
            json.dumps(
                {
                    "payments": len(ids),
                    "matched": outcome.matched,
                    "partially_matched": outcome.partially_matched,
                    "review": outcome.review,
                    "unmatched": outcome.unmatched,
                }
            )
        )
