"""load_fx_rates: load the ECB's euro reference rates from a file or a URL (integrations.fx)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from integrations.fx import loading


class Command(BaseCommand):
    help = (
        "Load the ECB's euro reference rates (eurofxref-daily.xml, eurofxref-hist.xml, "
        "eurofxref-hist-90d.xml, eurofxref.zip, eurofxref-hist.zip or their .csv) from a file "
        "or a URL; by default from setting FX_RATES_URL (the ECB's daily file). Loading the "
        "same rates again changes nothing."
    )

    def add_arguments(self, parser):
        where = parser.add_mutually_exclusive_group()
        where.add_argument("--file", metavar="PATH", help="a rate file on this machine")
        where.add_argument("--url", help="where to fetch the file (https://, http:// or file://)")

    def handle(self, *args, file=None, url=None, **options):
        try:
            result = loading.load_file(file) if file else loading.load_url(url)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(result.describe())
