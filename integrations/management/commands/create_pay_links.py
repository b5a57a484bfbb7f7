"""Give invoices a pay link: `create_pay_links --invoice NUMBER ... | --all-open [--force]`."""

import stripe
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Invoice
from integrations.gateways.paylinks import ensure_pay_link


class Command(BaseCommand):
    help = (
        "Give invoices a payment URL (a Stripe Checkout Session when STRIPE_API_KEY is set, "
        "otherwise PAY_LINK_TEMPLATE). Existing links are kept unless --force."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--invoice",
            action="append",
            default=[],
            metavar="NUMBER",
            help="an invoice number (repeat for several)",
        )
        parser.add_argument(
            "--all-open", action="store_true", help="every outstanding invoice without a link"
        )
        parser.add_argument("--force", action="store_true", help="replace existing links")

    def handle(self, *args, invoice, all_open, force, **options):
        if not invoice and not all_open:
            raise CommandError("Name invoices with --invoice NUMBER or use --all-open.")
        if invoice:
            invoices = Invoice.objects.filter(number__in=invoice)
            missing = set(invoice) - set(invoices.values_list("number", flat=True))
            for number in sorted(missing):
                self.stderr.write(f"{number}: no such invoice")
        else:
            missing = set()
            invoices = Invoice.objects.outstanding()
            if not force:
                invoices = invoices.filter(pay_link="")
        created = kept = failed = 0
        for each in invoices.select_related("customer").order_by("id").iterator(chunk_size=500):
            previous = each.pay_link
            try:
                url = ensure_pay_link(each, force=force)
            except (ValidationError, stripe.StripeError) as exc:
                failed += 1
                message = " ".join(exc.messages) if isinstance(exc, ValidationError) else exc
                self.stderr.write(f"{each.number}: {message}")
                continue
            if url == previous:
                kept += 1
            else:
                created += 1
                self.stdout.write(f"{each.number}: {url}")
        self.stdout.write(f"{created} created, {kept} kept, {failed + len(missing)} failed")
        if failed or missing:
            raise CommandError("Some invoices got no pay link; see above.")
