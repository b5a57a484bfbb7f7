"""snapshot_forecast: store the 13-week cash forecast made on a day (predictions.forecast)."""

import argparse
import datetime as dt

from django.core.management.base import BaseCommand
from django.utils import timezone

from predictions import forecast


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"use YYYY-MM-DD, not {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Store the cash forecast (expected and naive amounts per week and currency, 13 weeks) "
        "made on the day given, replacing that day's snapshot if there is one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today)")

    def handle(self, *args, as_of: dt.date | None, **options):
        as_of = as_of or timezone.localdate()
        rows = forecast.snapshot_forecast(as_of)
        self.stdout.write(f"Cash forecast of {as_of.isoformat()} stored: {rows} rows.")
