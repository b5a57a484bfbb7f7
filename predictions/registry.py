"""Storing, loading and activating trained predictors.

A model file is written with skops and read back with an explicit list of trusted types
(TRUSTED): a file holding anything else (a forged or tampered file, a function, a pickled
object) is refused before it is read, and its SHA-256 must match the one recorded when it
was trained. Models live in the database, not in a writable folder.

A new model is activated only if it beats the active one on the same held-out rows (its
ROC AUC is higher), unless told otherwise (`activate="always"` or "never"); a manager can
activate any version from the model card. Every decision is kept in `activation_note`.
"""

import datetime as dt
import logging

import numpy as np
import skops.io as sio
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from .frame import day_number
from .models import PredictorModel
from .training import INPUTS, Fitted, fit, scores

log = logging.getLogger(__name__)

TRUSTED = [
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
]
_cache: dict = {}
MIN_COMPARE = 200  # held-out moments needed to compare two models on the same rows


class UnsafeModel(Exception):
    """A stored model file that does not match its digest or holds untrusted types."""


def dump(fitted: Fitted) -> bytes:
    return sio.dumps({"classifier": fitted.classifier, "regressor": fitted.regressor})


def load(record: PredictorModel):
    """(classifier, regressor) of a stored model, checked before anything is read."""
    key = (record.pk, record.blob_sha256)
    if key not in _cache:
        blob = bytes(record.blob)
        if PredictorModel.digest(blob) != record.blob_sha256:
            raise UnsafeModel(f"Model v{record.version}: the file does not match its digest.")
        untrusted = set(sio.get_untrusted_types(data=blob)) - set(TRUSTED)
        if untrusted:
            raise UnsafeModel(
                f"Model v{record.version} holds types we do not load: {sorted(untrusted)}"
            )
        models = sio.loads(blob, trusted=TRUSTED)
        _cache.clear()
        _cache[key] = (models["classifier"], models["regressor"])
    return _cache[key]


def active() -> PredictorModel | None:
    return PredictorModel.objects.filter(is_active=True).first()


@transaction.atomic
def activate(record: PredictorModel, *, by=None, note: str = "") -> PredictorModel:
    now = timezone.now()
    PredictorModel.objects.select_for_update().filter(is_active=True).exclude(pk=record.pk).update(
        is_active=False
    )
    record.is_active = True
    record.activated_at = now
    record.activated_by = by
    record.activation_note = note[:300]
    record.save(update_fields=["is_active", "activated_at", "activated_by", "activation_note"])
    return record


def _compare(fitted: Fitted, current: PredictorModel) -> tuple[bool, str]:
    """Does the new model beat the active one?

    Fairly, on rows neither learnt from: the new model's held-out rows whose outcome the
    active model could not know (due after the day it was trained as of). The active model
    learnt from everything before that day, so on older rows it would win by memory, and a
    weekly retraining would never replace it. When there are too few such rows (fewer than
    MIN_COMPARE, or one outcome only), each model's own held-out ROC AUC, from its
    training, is compared instead. A tie keeps the active model."""
    mine = fitted.figures["candidates"][fitted.classifier_kind]["roc_auc"] or 0
    if list(current.features) != list(INPUTS):
        return True, f"the active v{current.version} uses other features"
    held = fitted.held_out
    unseen = fitted.held_out_due > day_number(current.trained_as_of)
    late = held.late[unseen]
    if unseen.sum() >= MIN_COMPARE and 0 < late.sum() < len(late):
        try:
            classifier, _regressor = load(current)
        except UnsafeModel as exc:
            return True, str(exc)
        new_classifier = fitted.held_out_model
        ours = scores(late, new_classifier.predict_proba(held.x[unseen])[:, 1])["roc_auc"]
        theirs = scores(late, classifier.predict_proba(held.x[unseen])[:, 1])["roc_auc"]
        where = f"on {int(unseen.sum())} moments due after {current.trained_as_of}"
    else:
        ours = mine
        recorded = current.figures.get("candidates", {}).get(current.classifier_kind, {})
        theirs = recorded.get("roc_auc") or 0
        where = "each on its own held-out moments"
    if ours > theirs:
        return True, f"ROC AUC {ours:.4f} against {theirs:.4f} for v{current.version} ({where})"
    return False, f"ROC AUC {ours:.4f}, not above {theirs:.4f} for v{current.version} ({where})"


def train(*, as_of: dt.date | None = None, activate_when: str = "auto", by=None):
    """Train on the outcomes known at `as_of` (default: yesterday), store a new version,
    and activate it per `activate_when` ("auto": only if it beats the active model)."""
    as_of = as_of or timezone.localdate() - dt.timedelta(days=1)
    fitted = fit(as_of)
    blob = dump(fitted)
    current = active()
    if activate_when == "always":
        decision, why = True, "activated on request"
    elif activate_when == "never":
        decision, why = False, "kept inactive on request"
    elif current is None:
        decision, why = True, "no model was active"
    else:
        decision, why = _compare(fitted, current)
    with transaction.atomic():
        version = (PredictorModel.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        record = PredictorModel.objects.create(
            version=version,
            trained_as_of=fitted.as_of,
            window_start=fitted.window_start,
            window_end=fitted.window_end,
            rows=fitted.rows,
            late_rows=fitted.late_rows,
            invoices=fitted.invoices,
            classifier_kind=fitted.classifier_kind,
            regressor_kind=fitted.regressor_kind,
            features=list(INPUTS),
            figures=_plain(fitted.figures),
            blob=blob,
            blob_sha256=PredictorModel.digest(blob),
            activation_note=why[:300],
        )
        if decision:
            activate(record, by=by, note=why)
    log.info("Trained predictor v%s (%s): %s", record.version, record.classifier_kind, why)
    return record, decision, why


def _plain(value):
    """JSON-safe copy of the evaluation figures (numpy numbers become Python ones)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
