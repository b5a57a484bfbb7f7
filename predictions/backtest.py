"""Backtests: how good would the predictor have been?

`backtest(cutoff)` trains on what was known at the end of `cutoff` (training.fit), then
scores every invoice issued after it as of its issue date and again 14 days before its
due date (a moment at which the invoice was already paid, or that falls before its issue
date, has nothing to predict and is left out), with the features known at each moment.
Outcomes are read as known at `until` (default: the ledger's last dated fact); invoices
not yet due then have no outcome and are left out.

Beside the predictor, on the same rows, the two baselines: the risk score's weights on
the same point-in-time figures, and the customer's share of late invoices so far (the
training rows' late share for a customer with no history). Pay dates: mean days between
the expected and the actual pay day over paid invoices, beside "paid on the due date".
"""

import csv
import datetime as dt

import numpy as np
from django.db.models import Max

from accounts.models import Allocation, Invoice

from .frame import Ledger, day_number, feature_matrix, from_day_number
from .training import (
    MOMENTS,
    days_off,
    fit,
    late_share_baseline,
    model_inputs,
    moments,
    outcomes,
    risk_baseline,
    scores,
)

MOMENT_NAMES = {"issue": "as_of_issue_date", "pre_due": "as_of_14_days_before_due"}


def last_known_day() -> dt.date:
    days = [
        Invoice.objects.aggregate(d=Max("issued_on"))["d"],
        Allocation.objects.aggregate(d=Max("allocated_on"))["d"],
    ]
    days = [d for d in days if d]
    return max(days) if days else dt.date.today()


def backtest(cutoff: dt.date, *, until: dt.date | None = None, output=None) -> dict:
    ledger = Ledger.load()
    until = until or last_known_day()
    fitted = fit(cutoff, ledger=ledger)
    cutoff_day, until_day = day_number(cutoff), day_number(until)
    test = np.flatnonzero((ledger.issued > cutoff_day) & (ledger.due <= until_day))
    rows, days, moment = moments(ledger, test)
    raw = feature_matrix(ledger, rows, days)
    probability, delta = fitted.predict(model_inputs(raw))
    late, actual_delta, censored = outcomes(ledger, rows, until_day)
    due = ledger.due[rows]
    expected = np.maximum(due + np.rint(np.nan_to_num(delta)).astype(np.int64), days)
    predicted_delta = (expected - due).astype(np.float64)
    prior = fitted.late_rows / fitted.rows
    risk = risk_baseline(raw)
    share = late_share_baseline(raw, prior)

    def block(mask):
        return {
            "predictor": scores(late[mask], probability[mask]),
            "baseline_risk_score": scores(late[mask], risk[mask]),
            "baseline_customer_late_share": scores(late[mask], share[mask]),
            "pay_date": days_off(actual_delta[mask], predicted_delta[mask], censored[mask]),
        }

    result = {
        "cutoff": str(cutoff),
        "outcomes_known_until": str(until),
        "model": {
            "classifier": fitted.classifier_kind,
            "pay_date_model": fitted.regressor_kind,
            "training_rows": fitted.rows,
            "training_late_rows": fitted.late_rows,
            "training_window": [str(fitted.window_start), str(fitted.window_end)],
            "chosen_on_held_out": fitted.figures["candidates"],
        },
        "invoices": len(np.unique(rows)),
        "all": block(np.ones(len(rows), dtype=bool)),
    }
    for i, name in enumerate(MOMENTS):
        result[MOMENT_NAMES[name]] = block(moment == i)
    if output is not None:
        _write_csv(
            output, ledger, rows, days, moment, probability, expected, late, actual_delta, censored
        )
    return result


def _write_csv(output, ledger, rows, days, moment, probability, expected, late, delta, censored):
    numbers = dict(
        Invoice.objects.filter(pk__in=ledger.invoice_ids[np.unique(rows)].tolist()).values_list(
            "id", "number"
        )
    )
    writer = csv.writer(output)
    writer.writerow(
        [
            "invoice_number",
            "as_of",
            "moment",
            "probability_late",
            "expected_pay_on",
            "due_on",
            "actual_late",
            "actual_paid_on",
        ]
    )
    for i in np.lexsort((days, rows)):
        row = rows[i]
        due = ledger.due[row]
        writer.writerow(
            [
                numbers.get(int(ledger.invoice_ids[row]), ""),
                from_day_number(days[i]).isoformat(),
                MOMENTS[moment[i]],
                f"{probability[i]:.4f}",
                from_day_number(expected[i]).isoformat(),
                from_day_number(due).isoformat(),
                "late" if late[i] else "on time",
                "" if censored[i] else from_day_number(due + int(delta[i])).isoformat(),
            ]
        )
