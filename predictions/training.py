"""Training and evaluating the late-payment predictor, from the ledger alone.

The question: will this open invoice be paid after its due date, and on which day will it
be paid? Asked at two moments of an invoice's life, the ones collections acts on: the day
it is issued, and 14 days before it falls due (PRE_DUE_DAYS). An invoice already paid at
that moment has nothing to predict and is left out.

`fit(as_of)`:

1. Rows: every invoice issued in the training window (PREDICTOR_TRAINING_DAYS before
   `as_of`) whose outcome is known at the end of `as_of`, i.e. whose due day has passed.
   Late means "not settled at the end of its due day". The pay day is the day its last
   settlement began; an invoice still open is at least `as_of - due` days late (censored).
2. Features as of each moment (predictions.frame), so nothing the model learns from was
   unknown at the moment it stands for. Above PREDICTOR_MAX_TRAINING_ROWS rows, a seeded
   random sample is taken before the features are computed.
3. Candidates, chosen by a time split, not by taste: the rows of the last 20% of moments
   are held out; logistic regression and gradient boosting learn from the rest and the
   better ROC AUC on the held-out rows wins (Brier score breaks a tie); for the pay day,
   gradient boosting on absolute error against a linear regression, by mean days off.
   The two baselines are scored on the same held-out rows: the risk score's weights
   (cases.risk.WEIGHTS) applied to the same point-in-time figures, and the customer's
   share of late invoices so far.
4. The winners learn again from every row, and the evaluation is kept with them.
"""

import datetime as dt
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cases.risk import WEIGHTS

from .frame import (
    FEATURES,
    INDEX,
    LONGER,
    RECENT,
    Ledger,
    day_number,
    feature_matrix,
    from_day_number,
)

PRE_DUE_DAYS = 14
MOMENTS = ("issue", "pre_due")
HOLD_OUT = 0.2
MIN_ROWS = 100
MIN_EACH_CLASS = 10
MISSING = -1e6  # below every feature's real values
CAP_HISTORY = 20  # invoices paid so far, as a model sees it
CAP_AGE = 365  # days since the customer's first invoice, as a model sees it
MONEY = ("open_amount", "overdue_amount")
# Model inputs: the features, amounts on a log scale, the month as a point on a circle, and
# the customer's record as log-odds shrunk toward even for a short history (a customer with
# 1 late of 1 is not a customer with 20 of 20): what a linear model can weigh directly.
INPUTS = (
    *FEATURES,
    "issue_month_sin",
    "issue_month_cos",
    "late_log_odds",
    "all_late_log_odds",
    "recent_late_log_odds",
    "history_size",
    "days_to_due_shrunk",
)


class NotEnoughHistory(Exception):
    """Too few invoices with a known outcome to learn from."""


def model_inputs(matrix: np.ndarray) -> np.ndarray:
    """The feature matrix as the models see it (same code at training and scoring)."""
    x = np.array(matrix, dtype=np.float64, copy=True)
    for name in MONEY:
        x[:, INDEX[name]] = np.log1p(np.maximum(x[:, INDEX[name]], 0))
    ratio = x[:, INDEX["amount_ratio"]]
    with np.errstate(divide="ignore", invalid="ignore"):
        x[:, INDEX["amount_ratio"]] = np.log(np.where(ratio > 0, ratio, np.nan))
    month = x[:, INDEX["issue_month"]]
    angle = 2 * math.pi * (month - 1) / 12
    # Inputs that would only grow with a customer's tenure are capped, so the older
    # ledger a model is scored on looks like the younger one it learnt from.
    settled = np.nan_to_num(matrix[:, INDEX["settled_count"]])
    x[:, INDEX["settled_count"]] = np.minimum(settled, CAP_HISTORY)
    x[:, INDEX["customer_age_days"]] = np.minimum(x[:, INDEX["customer_age_days"]], CAP_AGE)
    x[:, INDEX["days_since_engagement"]] = np.minimum(x[:, INDEX["days_since_engagement"]], CAP_AGE)
    longer = np.minimum(settled, LONGER)
    late = np.nan_to_num(matrix[:, INDEX["late_share_10"]]) * longer
    all_late = np.nan_to_num(matrix[:, INDEX["late_share"]]) * settled
    recent = np.minimum(settled, RECENT)
    recent_late = np.nan_to_num(matrix[:, INDEX["recent_late_count"]])
    mean_delta = np.nan_to_num(matrix[:, INDEX["mean_days_to_due"]])
    return np.column_stack(
        [
            x,
            np.sin(angle),
            np.cos(angle),
            np.log((late + 1) / (longer - late + 1)),
            np.log((all_late + 1) / (settled - all_late + 1)),
            np.log((recent_late + 1) / (recent - recent_late + 1)),
            np.log1p(np.minimum(settled, CAP_HISTORY)),
            mean_delta * settled / (settled + 2),
        ]
    )


# The logistic regression's regularisation is chosen on the held-out rows too.
STRENGTHS = (0.003, 0.01, 0.03, 0.1, 0.3)
STRENGTH_ROWS = 150_000
# What the logistic regression reads: one input per idea. Many near-copies of the same
# record (share late, its log-odds, days late, recent days late...) let a linear model
# weigh one against another, which fits the past and not the future; boosting reads all.
LINEAR_INPUTS = (
    "all_late_log_odds",
    "late_log_odds",
    "recent_late_log_odds",
    "days_to_due_shrunk",
    "recent_days_to_due",
    "trend_days_late",
    "history_size",
    "open_count",
    "overdue_count",
    "overdue_amount",
    "amount_ratio",
    "terms_days",
    "days_to_due",
    "issue_month_sin",
    "issue_month_cos",
    "invoices_90_days",
    "disputes",
    "promises_kept",
    "promises_broken",
    "payment_plans",
    "credit_use",
    "bounces",
    "replies",
    "calls_reached",
    "portal_visits_90_days",
    "portal_actions_90_days",
    "days_since_engagement",
)


def logistic(strength: float = 0.1):
    columns = [INPUTS.index(name) for name in LINEAR_INPUTS]
    return make_pipeline(
        ColumnTransformer([("read", "passthrough", columns)], remainder="drop"),
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=strength, max_iter=2000),
    )


def classifiers(strength: float = 0.1) -> dict:
    return {
        "logistic": logistic(strength),
        "boosting": make_pipeline(
            _missing_apart(),
            HistGradientBoostingClassifier(
                learning_rate=0.06,
                max_iter=300,
                max_leaf_nodes=31,
                min_samples_leaf=40,
                l2_regularization=1.0,
                early_stopping="auto",  # on above 10,000 rows
                n_iter_no_change=20,
                random_state=0,
            ),
        ),
    }


def _missing_apart():
    """Missing figures as a value below every real one: trees split them off as the
    boosting's own missing-value handling would (which fails on a column with no value
    at all, as a young ledger has: a scikit-learn 1.9 binning error)."""
    return SimpleImputer(strategy="constant", fill_value=MISSING, keep_empty_features=True)


def regressors() -> dict:
    return {
        "boosting": make_pipeline(
            _missing_apart(),
            HistGradientBoostingRegressor(
                loss="absolute_error",
                learning_rate=0.06,
                max_iter=300,
                max_leaf_nodes=31,
                min_samples_leaf=40,
                early_stopping="auto",  # on above 10,000 rows
                n_iter_no_change=20,
                random_state=0,
            ),
        ),
        "linear": make_pipeline(
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            Ridge(alpha=1.0),
        ),
    }


@dataclass
class Examples:
    """(invoice, moment) rows with their features and, where known, their outcomes."""

    rows: np.ndarray  # ledger rows
    days: np.ndarray  # the moment's day number
    moment: np.ndarray  # index into MOMENTS
    x: np.ndarray  # model inputs
    late: np.ndarray  # bool
    delta: np.ndarray  # pay day - due day (nan: not paid yet)
    censored: np.ndarray  # bool: still open, delta is a lower bound
    features: np.ndarray = field(repr=False, default=None)  # raw feature matrix


def moments(ledger: Ledger, rows: np.ndarray):
    """Each invoice at its issue day and 14 days before its due day (when that is later),
    leaving out a moment at which the invoice was already paid."""
    issue = ledger.issued[rows]
    pre = ledger.due[rows] - PRE_DUE_DAYS
    later = pre > issue
    all_rows = np.concatenate([rows, rows[later]])
    days = np.concatenate([issue, pre[later]])
    moment = np.concatenate([np.zeros(len(rows), np.int8), np.ones(later.sum(), np.int8)])
    still_open = ledger.settled_on(all_rows, days) < 0
    return all_rows[still_open], days[still_open], moment[still_open]


def outcomes(ledger: Ledger, rows: np.ndarray, known_day: int):
    """Late or not, days from due to payment, and whether the invoice is still open, as
    known at the end of `known_day` (rows whose due day is after it are not known)."""
    due = ledger.due[rows]
    late = ledger.settled_on(rows, due) < 0
    paid_from = ledger.settled_on(rows, np.full(len(rows), known_day))
    censored = paid_from < 0
    delta = np.where(censored, known_day - due, paid_from - due).astype(np.float64)
    return late, delta, censored


def examples(ledger: Ledger, rows: np.ndarray, known_day: int, *, limit=None, seed=0):
    all_rows, days, moment = moments(ledger, rows)
    if limit and len(all_rows) > limit:
        keep = np.sort(np.random.default_rng(seed).choice(len(all_rows), limit, replace=False))
        all_rows, days, moment = all_rows[keep], days[keep], moment[keep]
    raw = feature_matrix(ledger, all_rows, days)
    late, delta, censored = outcomes(ledger, all_rows, known_day)
    return Examples(all_rows, days, moment, model_inputs(raw), late, delta, censored, raw)


def risk_baseline(raw: np.ndarray) -> np.ndarray:
    """The risk score's weights (cases/risk.py) on the same point-in-time figures, 0-1."""

    def col(name):
        return raw[:, INDEX[name]]

    with np.errstate(invalid="ignore", divide="ignore"):
        promises = col("promises_kept") + col("promises_broken")
        parts = {
            "late_share": np.nan_to_num(col("late_share")),
            "days_late": np.nan_to_num(col("mean_days_late")) / 60,
            "trend": np.nan_to_num(col("trend_days_late")) / 30,
            "broken_promises": np.where(promises > 0, col("promises_broken") / promises, 0),
            "disputes": col("disputes") / 3,
            "past_due_share": np.where(
                col("open_amount") > 0, col("overdue_amount") / col("open_amount"), 0
            ),
            "credit_utilisation": np.nan_to_num(col("credit_use")),
        }
    score = sum(WEIGHTS[name] * np.clip(value, 0, 1) for name, value in parts.items())
    return score / 100


def late_share_baseline(raw: np.ndarray, prior: float) -> np.ndarray:
    share = raw[:, INDEX["late_share"]]
    return np.where(np.isnan(share), prior, share)


def scores(late: np.ndarray, probability: np.ndarray) -> dict:
    """ROC AUC, Brier score and calibration in ten bins of predicted probability."""
    late = np.asarray(late, dtype=bool)
    probability = np.clip(np.asarray(probability, dtype=np.float64), 0, 1)
    both = 0 < late.sum() < len(late)
    bins = []
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, 9)
    for b in range(10):
        inside = which == b
        if inside.any():
            bins.append(
                {
                    "from": round(float(edges[b]), 1),
                    "to": round(float(edges[b + 1]), 1),
                    "rows": int(inside.sum()),
                    "predicted": round(float(probability[inside].mean()), 4),
                    "observed": round(float(late[inside].mean()), 4),
                }
            )
    return {
        "rows": len(late),
        "late_share": round(float(late.mean()), 4) if len(late) else None,
        "roc_auc": round(float(roc_auc_score(late, probability)), 4) if both else None,
        "brier": round(float(brier_score_loss(late, probability)), 4) if len(late) else None,
        "calibration": bins,
    }


def days_off(delta, predicted, censored) -> dict:
    """Mean days between predicted and actual pay day, over invoices paid; beside it, the
    error of "paid on the due date"."""
    paid = ~np.asarray(censored, dtype=bool)
    if not paid.any():
        return {"paid_rows": 0, "mean_days_off": None, "due_date_days_off": None}
    return {
        "paid_rows": int(paid.sum()),
        "mean_days_off": round(float(np.abs(predicted[paid] - delta[paid]).mean()), 2),
        "due_date_days_off": round(float(np.abs(delta[paid]).mean()), 2),
    }


@dataclass
class Fitted:
    """A trained pair of models with what is known about them (not stored yet)."""

    classifier: object
    regressor: object
    classifier_kind: str
    regressor_kind: str
    as_of: dt.date
    window_start: dt.date
    window_end: dt.date
    rows: int
    late_rows: int
    invoices: int
    figures: dict
    held_out: Examples | None = None  # to compare with the active model
    held_out_due: np.ndarray | None = None  # their invoices' due days
    held_out_model: object = None  # the chosen kind as it learnt before the held-out rows

    def predict(self, x: np.ndarray):
        """(probability of paying late, days from due to payment) per row of inputs."""
        return predict(self.classifier, self.regressor, x)


def predict(classifier, regressor, x):
    if not len(x):
        return np.zeros(0), np.zeros(0)
    probability = classifier.predict_proba(x)[:, 1]
    delta = regressor.predict(x)
    return probability, delta


def _training_rows(ledger: Ledger, as_of_day: int) -> np.ndarray:
    window = int(settings.PREDICTOR_TRAINING_DAYS)
    return np.flatnonzero(
        (ledger.due <= as_of_day)
        & (ledger.issued >= as_of_day - window)
        & (ledger.issued <= as_of_day)
    )


def fit(as_of: dt.date, *, ledger: Ledger | None = None) -> Fitted:
    """Learn from the outcomes known at the end of `as_of` (see the module's docstring)."""
    with threadpool_limits(limits=settings.PREDICTOR_THREADS):
        return _fit(as_of, ledger=ledger)


def _fit(as_of: dt.date, *, ledger: Ledger | None) -> Fitted:
    ledger = ledger or Ledger.load()
    as_of_day = day_number(as_of)
    rows = _training_rows(ledger, as_of_day)
    data = examples(
        ledger, rows, as_of_day, limit=int(settings.PREDICTOR_MAX_TRAINING_ROWS), seed=as_of_day
    )
    n, n_late = len(data.late), int(data.late.sum())
    if n < MIN_ROWS or n_late < MIN_EACH_CLASS or n - n_late < MIN_EACH_CLASS:
        raise NotEnoughHistory(
            f"{n} invoice moments with a known outcome ({n_late} late) up to {as_of}: "
            f"at least {MIN_ROWS}, with {MIN_EACH_CLASS} late and {MIN_EACH_CLASS} on time, "
            "are needed. Load payment history (paid dates) first."
        )
    split_day = np.quantile(data.days, 1 - HOLD_OUT)
    learn, held = data.days < split_day, data.days >= split_day
    if held.sum() < MIN_EACH_CLASS or learn.sum() < MIN_ROWS // 2:
        learn = held = np.ones(n, dtype=bool)  # too little to split: judged on what it saw
    held_examples = _subset(data, held)
    figures = {"held_out_from": str(from_day_number(int(split_day))), "candidates": {}}
    prior = float(data.late[learn].mean())
    candidates = {}
    strength = _strength(data, learn, held)
    figures["logistic_strength"] = strength
    for kind, model in classifiers(strength).items():
        if len(np.unique(data.late[learn])) < 2:
            continue
        model.fit(data.x[learn], data.late[learn])
        probability = model.predict_proba(data.x[held])[:, 1]
        candidates[kind] = model
        figures["candidates"][kind] = scores(data.late[held], probability)
    best = max(
        candidates,
        key=lambda k: (
            figures["candidates"][k]["roc_auc"] or 0,
            -(figures["candidates"][k]["brier"] or 1),
        ),
    )
    figures["baselines"] = {
        "risk_score": scores(data.late[held], risk_baseline(data.features[held])),
        "late_share": scores(data.late[held], late_share_baseline(data.features[held], prior)),
    }
    figures["held_out_by_moment"] = {
        name: scores(
            data.late[held & (data.moment == i)],
            candidates[best].predict_proba(data.x[held & (data.moment == i)])[:, 1]
            if (held & (data.moment == i)).any()
            else np.zeros(0),
        )
        for i, name in enumerate(MOMENTS)
    }

    pay_rows = ~data.censored
    pay_learn, pay_held = learn & pay_rows, held
    regressor_figures = {}
    regressor_models = {}
    for kind, model in regressors().items():
        if pay_learn.sum() < MIN_EACH_CLASS:
            break
        model.fit(data.x[pay_learn], data.delta[pay_learn])
        regressor_models[kind] = model
        regressor_figures[kind] = days_off(
            data.delta[pay_held], model.predict(data.x[pay_held]), data.censored[pay_held]
        )
    if not regressor_models:
        raise NotEnoughHistory("No paid invoices to learn pay days from.")
    best_regressor = min(
        regressor_models, key=lambda k: regressor_figures[k]["mean_days_off"] or math.inf
    )
    figures["pay_date"] = regressor_figures
    figures["weights"] = _weights(candidates[best], best, held_examples)
    figures["chosen"] = {"classifier": best, "regressor": best_regressor}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column with no value at all
        medians = np.nanmedian(_finite_or_nan(data.x), axis=0)
    figures["medians"] = {
        name: (None if np.isnan(v) else float(v)) for name, v in zip(INPUTS, medians, strict=True)
    }

    # The winners learn again from every row.
    classifier = classifiers(strength)[best].fit(data.x, data.late)
    regressor = regressors()[best_regressor].fit(data.x[pay_rows], data.delta[pay_rows])
    issued = ledger.issued[data.rows]
    return Fitted(
        classifier=classifier,
        regressor=regressor,
        classifier_kind=best,
        regressor_kind=best_regressor,
        as_of=as_of,
        window_start=from_day_number(int(issued.min())),
        window_end=from_day_number(int(issued.max())),
        rows=n,
        late_rows=n_late,
        invoices=len(np.unique(data.rows)),
        figures=figures,
        held_out=held_examples,
        held_out_due=ledger.due[held_examples.rows],
        held_out_model=candidates[best],
    )


def _strength(data: Examples, learn, held) -> float:
    """The logistic regression's C with the best held-out log loss (ties: stronger),
    learnt from at most STRENGTH_ROWS of the learning rows (a seeded sample)."""
    if len(np.unique(data.late[learn])) < 2 or len(np.unique(data.late[held])) < 2:
        return 0.1
    rows = np.flatnonzero(learn)
    if len(rows) > STRENGTH_ROWS:
        rows = np.sort(np.random.default_rng(0).choice(rows, STRENGTH_ROWS, replace=False))
    losses = {}
    for strength in STRENGTHS:
        model = logistic(strength).fit(data.x[rows], data.late[rows])
        p = np.clip(model.predict_proba(data.x[held])[:, 1], 1e-6, 1 - 1e-6)
        y = data.late[held]
        losses[strength] = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    return min(STRENGTHS, key=lambda c: (round(losses[c], 4), c))


def _finite_or_nan(x):
    return np.where(np.isfinite(x), x, np.nan)


def _subset(data: Examples, mask) -> Examples:
    return Examples(
        data.rows[mask],
        data.days[mask],
        data.moment[mask],
        data.x[mask],
        data.late[mask],
        data.delta[mask],
        data.censored[mask],
        data.features[mask],
    )


def _weights(model, kind: str, held: Examples, top: int = 12) -> list[dict]:
    """The inputs that weigh most: standardised coefficients of a logistic regression, or
    the loss of ROC AUC when an input is shuffled (permutation importance) for boosting."""
    if kind == "logistic":
        coef = model[-1].coef_[0][: len(LINEAR_INPUTS)]
        pairs = [(name, float(c)) for name, c in zip(LINEAR_INPUTS, coef, strict=True)]
        pairs.sort(key=lambda p: abs(p[1]), reverse=True)
        return [{"feature": n, "weight": round(w, 4)} for n, w in pairs[:top]]
    pick = np.random.default_rng(0).permutation(len(held.late))[:20000]
    if len(pick) < 20 or len(np.unique(held.late[pick])) < 2:
        return []
    result = permutation_importance(
        model,
        held.x[pick],
        held.late[pick],
        scoring="roc_auc",
        n_repeats=3,
        random_state=0,
    )
    pairs = sorted(
        zip(INPUTS, result.importances_mean, strict=True), key=lambda p: p[1], reverse=True
    )
    return [{"feature": n, "weight": round(float(w), 4)} for n, w in pairs[:top]]
