"""Print a contact's portal link: for support, or to try the portal on the demo data."""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Contact
from accounts.portal_links import portal_url


class Command(BaseCommand):
    help = (
        "Print the portal link of the contact with this e-mail address, or of the primary "
        "contact of the customer with this reference (without either: of the first customer "
        "with open invoices). Anyone holding the link can open that customer's portal."
    )

    def add_arguments(self, parser):
        parser.add_argument("--email", default="")
        parser.add_argument("--customer", default="", help="the customer's reference")

    def handle(self, *args, email: str, customer: str, **options):
        contacts = Contact.objects.select_related("customer").filter(
            customer__erased_at__isnull=True
        )
        if email:
            contacts = contacts.matching(email=email)
        elif customer:
            contacts = contacts.filter(customer__external_ref=customer)
        else:
            contacts = contacts.filter(
                customer__invoices__status__in=["open", "partially_paid"]
            ).distinct()
        contact = contacts.exclude(email="").order_by("-is_primary", "customer_id", "pk").first()
        if contact is None:
            raise CommandError("No contact with an e-mail address matches.")
        self.stdout.write(f"{contact.name} at {contact.customer.name}:\n{portal_url(contact)}")
