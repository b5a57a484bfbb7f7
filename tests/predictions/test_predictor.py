"""The predictor: training on known outcomes, choosing and storing a model safely,
activation only when better, nightly scoring, and the backtest with its baselines."""

import datetime as dt
import io
import json

import numpy as np
import pytest
import skops.io as sio
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import Invoice
from cases.models import InvoicePrediction
from predictions import registry, training
from predictions.frame import Ledger, day_number
from predictions.models import PredictorModel
from predictions.scoring import score_open_invoices
from tests.predictions.history import habits_ledger

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2025, 8, 1)


@pytest.fixture
def ledger_with_habits():
    return habits_ledger(end=AS_OF)


def test_training_uses_only_outcomes_known_at_its_date(ledger_with_habits):
    ledger = Ledger.load()
    rows = training._training_rows(ledger, day_number(AS_OF))
    assert len(rows) and (ledger.due[rows] <= day_number(AS_OF)).all()
    # An invoice due later has no known outcome and is not learnt from.
    assert not set(np.flatnonzero(ledger.due > day_number(AS_OF))) & set(rows)
    late, delta, _censored = training.outcomes(ledger, rows, day_number(AS_OF))
    assert late.any() and (~late).any()
    assert np.isfinite(delta).all()


def test_the_predictor_learns_habits_and_ranks_late_payers_first(ledger_with_habits):
    fitted = training.fit(AS_OF)
    assert fitted.classifier_kind in ("logistic", "boosting")
    chosen = fitted.figures["candidates"][fitted.classifier_kind]
    assert chosen["roc_auc"] > 0.85
    base = fitted.figures["baselines"]["late_share"]["roc_auc"]
    assert base is not None and fitted.rows > 100
    assert fitted.window_end <= AS_OF and fitted.late_rows > 10
    assert fitted.figures["weights"], "the model card lists the features that weigh most"


def test_not_enough_history_is_a_clear_error():
    with pytest.raises(CommandError, match="invoice moments with a known outcome"):
        call_command("train_predictor", "--as-of", "2025-08-01")


def test_a_model_is_stored_safely_and_activated_only_when_better(ledger_with_habits):
    first, activated, why = registry.train(as_of=AS_OF)
    assert activated and why == "no model was active" and first.is_active
    classifier, regressor = registry.load(first)
    assert hasattr(classifier, "predict_proba") and hasattr(regressor, "predict")
    # The same outcomes again: not better than itself, so the first stays active.
    second, activated, why = registry.train(as_of=AS_OF)
    first.refresh_from_db()
    assert not activated and first.is_active and not second.is_active
    assert "not above" in why
    # A manager may activate any version; there is only ever one active.
    registry.activate(second, note="chosen by hand")
    assert list(PredictorModel.objects.filter(is_active=True)) == [second]


def test_a_tampered_or_forged_model_file_is_refused_before_it_is_read(ledger_with_habits):
    record, _activated, _why = registry.train(as_of=AS_OF)
    registry._cache.clear()
    tampered = bytearray(record.blob)
    tampered[-10] ^= 0xFF
    record.blob = bytes(tampered)
    with pytest.raises(registry.UnsafeModel, match="digest"):
        registry.load(record)
    # A file whose digest matches but holds a type nobody trusted (here a function).
    forged = sio.dumps({"classifier": np.add, "regressor": print})
    record.blob, record.blob_sha256 = forged, PredictorModel.digest(forged)
    with pytest.raises(registry.UnsafeModel, match="types we do not load"):
        registry.load(record)


def test_scoring_writes_a_prediction_per_open_invoice_with_reasons(ledger_with_habits):
    late_payers, _good_payers = ledger_with_habits
    registry.train(as_of=AS_OF)
    result = score_open_invoices(as_of=AS_OF)
    open_count = Invoice.objects.outstanding().filter(issued_on__lte=AS_OF).count()
    assert result["scored"] == open_count == InvoicePrediction.objects.count()
    predictions = InvoicePrediction.objects.select_related("invoice")
    for p in predictions:
        assert 0 <= p.probability_late <= 1
        assert p.expected_pay_on >= AS_OF
        if p.invoice.due_on < AS_OF:
            assert p.probability_late == 1  # already late
    not_due = [p for p in predictions if p.invoice.due_on >= AS_OF]
    late_ids = {c.pk for c in late_payers}
    habitual = [float(p.probability_late) for p in not_due if p.customer_id in late_ids]
    good = [float(p.probability_late) for p in not_due if p.customer_id not in late_ids]
    assert habitual and good and np.mean(habitual) > np.mean(good) + 0.3
    said = [p for p in not_due if p.customer_id in late_ids]
    assert any("late" in reason for p in said for reason in p.reasons)
    # Scoring again replaces, it does not add.
    score_open_invoices(as_of=AS_OF)
    assert InvoicePrediction.objects.count() == open_count


def test_scoring_without_a_model_says_so():
    assert score_open_invoices(as_of=AS_OF)["scored"] == 0


def test_backtest_scores_later_invoices_at_both_moments_beside_the_baselines(tmp_path):
    habits_ledger(end=dt.date(2025, 12, 31))
    out = io.StringIO()
    csv_path = tmp_path / "backtest.csv"
    call_command(
        "backtest_predictor", "--cutoff", "2025-06-01", "--output", str(csv_path), stdout=out
    )
    result = json.loads(out.getvalue())
    issue = result["as_of_issue_date"]
    assert issue["predictor"]["rows"] > 0 and issue["predictor"]["roc_auc"] > 0.8
    assert issue["baseline_risk_score"]["rows"] == issue["predictor"]["rows"]
    assert issue["baseline_customer_late_share"]["roc_auc"] is not None
    assert result["as_of_14_days_before_due"]["predictor"]["rows"] > 0
    assert (
        result["all"]["pay_date"]["mean_days_off"] < result["all"]["pay_date"]["due_date_days_off"]
    )
    lines = csv_path.read_text().splitlines()
    assert lines[0].startswith("invoice_number,as_of,moment,probability_late,expected_pay_on")
    assert len(lines) - 1 == result["all"]["predictor"]["rows"]
    # Every scored invoice was issued after the cutoff.
    first_as_of = min(line.split(",")[1] for line in lines[1:])
    assert first_as_of > "2025-06-01"


def test_a_newer_model_is_compared_on_outcomes_the_active_one_never_saw(monkeypatch):
    """Weekly retraining: the active model learnt from everything due before its day, so it
    is judged against the new one only on moments due after that day; otherwise it would
    win by memory and never be replaced."""
    habits_ledger(end=dt.date(2025, 12, 31))
    monkeypatch.setattr(registry, "MIN_COMPARE", 10)  # a small ledger's held-out rows
    registry.train(as_of=dt.date(2025, 8, 1))
    second, _activated, why = registry.train(as_of=dt.date(2025, 11, 1))
    assert "due after 2025-08-01" in why
    second.refresh_from_db()
    assert second.is_active == ("not above" not in why)
