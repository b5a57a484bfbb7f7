"""The nightly scoring: every open invoice gets a probability of being paid late, an
expected pay date and its reasons, written in bulk to cases.InvoicePrediction.

1. The active model is loaded (registry.load checks the file before reading it).
2. The ledger is loaded once and every open invoice's features computed as of today
   (predictions.frame, the same code the model learnt from).
3. An invoice already past its due date is late by definition: probability 1. Its
   expected pay date is the model's (due date plus predicted days), but never before today.
4. Reasons: for each phrase predictions.reasons can say, the feature behind it is set to
   its training median and the probability computed again; the difference is that
   feature's contribution, and the three largest positive ones are the reasons.
5. One transaction replaces the table: readers see last night's rows or tonight's, never a
   mix (PostgreSQL: COPY; elsewhere bulk_create).
"""

import datetime as dt
import json
import logging

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Invoice
from cases.models import InvoicePrediction

from . import registry
from .features import to_people
from .frame import Ledger, day_number, feature_matrix, from_day_number
from .reasons import REASON_FEATURES, candidates, reasons
from .training import INPUTS, model_inputs, predict

log = logging.getLogger(__name__)
CHUNK = 5000
READ = frozenset((*REASON_FEATURES, "recent_late_count"))


def score_open_invoices(*, as_of: dt.date | None = None) -> dict:
    """Score every open invoice as of `as_of` (default today); returns counts."""
    as_of = as_of or timezone.localdate()
    record = registry.active()
    if record is None:
        return {"scored": 0, "model": None, "note": "no active model: run train_predictor"}
    classifier, regressor = registry.load(record)
    targets = list(
        Invoice.objects.outstanding()
        .filter(issued_on__lte=as_of, open_balance__gt=0)
        .values_list("id", "customer_id")
        .iterator(chunk_size=20000)
    )
    ids = np.fromiter((t[0] for t in targets), np.int64, len(targets))
    customers = {t[1] for t in targets}
    del targets
    ledger = Ledger.load(None if len(customers) > 5000 else customers)
    rows = ledger.rows(ids)
    ids, rows = ids[rows >= 0], rows[rows >= 0]
    today = day_number(as_of)
    days = np.full(len(rows), today)
    raw = feature_matrix(ledger, rows, days)
    x = model_inputs(raw)
    probability, delta = predict(classifier, regressor, x)
    due = ledger.due[rows]
    probability = np.where(due < today, 1.0, probability)
    pay_day = np.maximum(due + np.rint(np.nan_to_num(delta)).astype(np.int64), today)
    pay_day = np.maximum(pay_day, ledger.issued[rows])
    people = [to_people(line, names=READ) for line in raw]
    found = [candidates(f) for f in people]
    applies = [{name for name, _strength, _text in these} for these in found]
    contributions = _contributions(
        classifier, x, probability, applies, record.figures.get("medians", {})
    )
    now = timezone.now()
    version = f"v{record.version}"

    def lines():
        for i in range(len(rows)):
            said = reasons(
                people[i],
                contributions={name: c[i] for name, c in contributions.items()},
                found=found[i],
            )
            yield (
                int(ids[i]),
                int(ledger.customer[rows[i]]),
                round(float(probability[i]), 4),
                from_day_number(int(pay_day[i])),
                said,
            )

    written = _replace(lines(), version=version, as_of=as_of, now=now)
    late = int((probability >= 0.5).sum())
    log.info("Scored %d open invoices with model %s (%d likely late)", written, version, late)
    return {"scored": written, "model": version, "likely_late": late}


def _contributions(classifier, x, probability, applies, medians) -> dict:
    """{feature: per-row rise in probability that feature causes, against its median},
    asked only for the rows where that feature has something to say (`applies`: the
    reasons' candidates per row), so the model predicts a few times the rows, not twelve."""
    answer = {}
    for name in REASON_FEATURES:
        median = medians.get(name)
        which = np.fromiter((name in a for a in applies), dtype=bool, count=len(applies))
        if median is None or not which.any():
            continue
        changed = x[which]
        changed[:, INPUTS.index(name)] = median
        contribution = np.zeros(len(applies))
        # Already-late invoices (probability 1 by definition) keep the model's ranking.
        contribution[which] = probability[which] - classifier.predict_proba(changed)[:, 1]
        answer[name] = contribution
    return answer


@transaction.atomic
def _replace(lines, *, version: str, as_of: dt.date, now: dt.datetime) -> int:
    InvoicePrediction.objects.all().delete()
    if connection.vendor == "postgresql":
        return _copy(lines, version=version, as_of=as_of, now=now)
    count = 0
    batch = []
    for invoice_id, customer_id, p, pay_on, said in lines:
        batch.append(
            InvoicePrediction(
                invoice_id=invoice_id,
                customer_id=customer_id,
                probability_late=f"{p:.4f}",
                expected_pay_on=pay_on,
                reasons=said,
                model_version=version,
                as_of=as_of,
                scored_at=now,
            )
        )
        if len(batch) >= CHUNK:
            InvoicePrediction.objects.bulk_create(batch)
            count += len(batch)
            batch = []
    InvoicePrediction.objects.bulk_create(batch)
    return count + len(batch)


def _copy(lines, *, version, as_of, now) -> int:
    table = InvoicePrediction._meta.db_table
    columns = (
        "invoice_id, customer_id, probability_late, expected_pay_on, reasons, "
        "model_version, as_of, scored_at"
    )
    count = 0
    stamp = now.isoformat()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for invoice_id, customer_id, p, pay_on, said in lines:
                copy.write_row(
                    (
                        invoice_id,
                        customer_id,
                        f"{p:.4f}",
                        pay_on,
                        json.dumps(said),
                        version,
                        as_of,
                        stamp,
                    )
                )
                count += 1
    return count
