"""Score every open invoice with the active late-payment model (the nightly run)."""

import datetime as dt
import json

from django.core.management.base import BaseCommand

from predictions.scoring import score_open_invoices


class Command(BaseCommand):
    help = "Score every open invoice with the active predictor and store the predictions."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="default: today")

    def handle(self, *args, as_of=None, **options):
        self.stdout.write(json.dumps(score_open_invoices(as_of=as_of)))
