"""manage.py erase_customer <id> --reason ...: pseudonymise one customer's personal data."""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Customer
from privacy import erasure


class Command(BaseCommand):
    help = (
        "Erase one customer's personal data everywhere it lives (customer, contacts, "
        "timeline, notices, outbox, e-mail events, rejected rows, letters' files), keeping "
        "amounts and dates; recorded on the customer's timeline with the reason. Cannot be "
        "undone."
    )

    def add_arguments(self, parser):
        parser.add_argument("customer_id", type=int)
        parser.add_argument("--reason", required=True, help="why (kept on the timeline)")
        parser.add_argument(
            "--by", default="", help="username the erasure is recorded under (default: system)"
        )

    def handle(self, *args, customer_id, reason, by, **options):
        user = None
        if by:
            user = get_user_model().objects.filter(username=by).first()
            if user is None:
                raise CommandError(f"--by: no user {by!r}")
        try:
            counts = erasure.erase_customer(customer=customer_id, reason=reason, by=user)
        except Customer.DoesNotExist as exc:
            raise CommandError(f"no customer {customer_id}") from exc
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError(" ".join(getattr(exc, "messages", [str(exc)]))) from exc
        rows = ", ".join(f"{name} {n}" for name, n in counts.items())
        self.stdout.write(self.style.SUCCESS(f"customer {customer_id} erased ({rows})"))
