"""kpis: print every collections KPI per currency as one JSON object (see reporting.kpis)."""

import argparse
import datetime as dt
import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from reporting import kpis


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"use YYYY-MM-DD, not {value!r}") from exc


def _days(value: str) -> int:
    try:
        days = int(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a whole number of days, not {value!r}") from exc
    if not 1 <= days <= 3660:
        raise argparse.ArgumentTypeError("between 1 and 3660 days")
    return days


class Command(BaseCommand):
    help = (
        "Print DSO (count-back and simple), best possible DSO, ADD, CEI, collection rates per "
        "policy and template, days to first payment, recovery time, automated notification "
        "rate, arrears coverage and recovery rate, per currency, as one JSON object. Amounts "
        "and ratios are strings (exact decimals); see the README for every formula."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=_date, default=None, help="YYYY-MM-DD (default: today)")
        parser.add_argument(
            "--currency", type=str.upper, default=None, help="only this currency (e.g. EUR)"
        )
        parser.add_argument(
            "--period-days",
            type=_days,
            default=90,
            help="length of the period ending on the as-of day (default: 90)",
        )

    def handle(self, *args, as_of: dt.date | None, period_days: int, currency, **options):
        period = kpis.Period(as_of=as_of or timezone.localdate(), days=period_days)
        result = kpis.as_json(period, kpis.compute(period, currency))
        self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
