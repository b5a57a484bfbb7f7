"""Backtest the predictor: train at a cutoff, score every later invoice as of its issue date
and 14 days before its due date, and compare with the baselines."""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from predictions.backtest import backtest
from predictions.training import NotEnoughHistory


class Command(BaseCommand):
    help = (
        "Train on what was known at --cutoff, score every invoice issued after it as of its "
        "issue date and 14 days before its due date; print ROC AUC, Brier score, calibration "
        "and pay-date error beside the risk score and the customer's late share (JSON)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--cutoff", type=dt.date.fromisoformat, required=True)
        parser.add_argument(
            "--until",
            type=dt.date.fromisoformat,
            help="outcomes as known at this date (default: the ledger's last dated fact)",
        )
        parser.add_argument("--output", help="CSV file: one row per (invoice, as-of)")

    def handle(self, *args, cutoff, until=None, output=None, **options):
        try:
            if output:
                with open(output, "w", newline="", encoding="utf-8") as handle:
                    result = backtest(cutoff, until=until, output=handle)
            else:
                result = backtest(cutoff, until=until)
        except NotEnoughHistory as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(json.dumps(result, indent=2))
