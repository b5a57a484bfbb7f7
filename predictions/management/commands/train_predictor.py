"""Train the late-payment predictor on the outcomes known at a date; activate it if better."""

import datetime as dt
import json

from django.core.management.base import BaseCommand, CommandError

from predictions import registry
from predictions.training import NotEnoughHistory


class Command(BaseCommand):
    help = (
        "Train a new version of the late-payment predictor on the outcomes known at --as-of "
        "(default: yesterday), store it and activate it only if it beats the active one."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=dt.date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--activate",
            choices=["auto", "always", "never"],
            default="auto",
            help="auto (default): only if its ROC AUC beats the active model's on the "
            "same held-out rows",
        )

        parser.add_argument(
            "--if-none",
            action="store_true",
            help="do nothing when a model is already active (for `make run`)",
        )

    def handle(self, *args, as_of=None, activate="auto", if_none=False, **options):
        if if_none and registry.active() is not None:
            self.stdout.write("A model is already active: nothing trained.")
            return
        try:
            record, activated, why = registry.train(as_of=as_of, activate_when=activate)
        except NotEnoughHistory as exc:
            raise CommandError(str(exc)) from exc
        chosen = record.figures["chosen"]
        self.stdout.write(
            json.dumps(
                {
                    "version": record.version,
                    "activated": activated,
                    "why": why,
                    "trained_as_of": str(record.trained_as_of),
                    "window": [str(record.window_start), str(record.window_end)],
                    "rows": record.rows,
                    "late_rows": record.late_rows,
                    "classifier": chosen["classifier"],
                    "pay_date_model": chosen["regressor"],
                    "held_out": {
                        kind: {k: v for k, v in figures.items() if k != "calibration"}
                        for kind, figures in record.figures["candidates"].items()
                    },
                    "pay_date": record.figures["pay_date"],
                },
                indent=2,
            )
        )
