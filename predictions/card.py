"""What the model card shows, in plain words: read from a stored model's figures."""

from django.utils.translation import gettext_lazy as _

from .models import PredictorModel

FEATURE_LABELS = {
    "settled_count": _("invoices paid so far"),
    "late_share": _("share of past invoices paid late"),
    "mean_days_late": _("average days late"),
    "recent_mean_days_late": _("average days late, last 5 invoices"),
    "recent_late_count": _("late among the last 5 invoices"),
    "late_share_10": _("share paid late of the last 10 invoices"),
    "trend_days_late": _("paying later than before (days)"),
    "last_days_late": _("days late of the last invoice"),
    "mean_days_to_due": _("average days from due date to payment"),
    "recent_days_to_due": _("days from due date to payment, last 5 invoices"),
    "open_count": _("open invoices"),
    "open_amount": _("open balance"),
    "overdue_count": _("overdue invoices"),
    "overdue_amount": _("overdue balance"),
    "amount_ratio": _("amount against the customer's usual"),
    "terms_days": _("payment terms (days)"),
    "issue_month": _("month issued"),
    "issue_month_sin": _("season issued"),
    "issue_month_cos": _("season issued"),
    "due_weekday": _("weekday due"),
    "days_to_due": _("days until due"),
    "customer_age_days": _("how long the customer has been invoiced"),
    "invoices_90_days": _("invoices in the last 90 days"),
    "disputes": _("disputes raised"),
    "promises_kept": _("promises to pay kept"),
    "promises_broken": _("promises to pay broken"),
    "payment_plans": _("payment plans"),
    "credit_use": _("share of the credit limit in use"),
    "bounces": _("bounced e-mails"),
    "replies": _("replies"),
    "calls_reached": _("calls that reached someone"),
    "portal_visits_90_days": _("portal visits in the last 90 days"),
    "portal_actions_90_days": _("actions taken in the portal in the last 90 days"),
    "days_since_engagement": _("days since the last reply or portal visit"),
    "late_log_odds": _("record of late payment, last 10 invoices (log-odds)"),
    "all_late_log_odds": _("record of late payment, all invoices (log-odds)"),
    "recent_late_log_odds": _("recent record of late payment (log-odds)"),
    "history_size": _("how many invoices paid so far (log)"),
    "days_to_due_shrunk": _("average days from due date to payment (shrunk)"),
}
CANDIDATE_NAMES = {"logistic": _("Logistic regression"), "boosting": _("Gradient boosting")}
SIZE = 240  # the calibration chart's side, in pixels


def model_card(record: PredictorModel) -> dict:
    figures = record.figures or {}
    candidates = figures.get("candidates", {})
    baselines = figures.get("baselines", {})
    rows = [
        {
            "name": CANDIDATE_NAMES.get(kind, kind),
            "chosen": kind == record.classifier_kind,
            **{k: v for k, v in scores.items() if k != "calibration"},
        }
        for kind, scores in candidates.items()
    ]
    rows += [
        {
            "name": _("Baseline: the risk score"),
            "baseline": True,
            **_plain(baselines, "risk_score"),
        },
        {
            "name": _("Baseline: the customer's share of late invoices"),
            "baseline": True,
            **_plain(baselines, "late_share"),
        },
    ]
    calibration = candidates.get(record.classifier_kind, {}).get("calibration", [])
    weights = figures.get("weights", [])
    top = max((abs(w["weight"]) for w in weights), default=0) or 1
    return {
        "comparison": rows,
        "held_out_from": figures.get("held_out_from"),
        "by_moment": figures.get("held_out_by_moment", {}),
        "pay_date": [
            {"name": kind, "chosen": kind == record.regressor_kind, **values}
            for kind, values in figures.get("pay_date", {}).items()
        ],
        "calibration": calibration,
        "chart": _chart(calibration),
        "weights": [
            {
                "label": FEATURE_LABELS.get(w["feature"], w["feature"]),
                "weight": w["weight"],
                "width": round(100 * abs(w["weight"]) / top),
                "direction": "later" if w["weight"] > 0 else "sooner",
            }
            for w in weights
        ],
        "weights_kind": record.classifier_kind,
    }


def _plain(baselines, name):
    return {k: v for k, v in baselines.get(name, {}).items() if k != "calibration"}


def _chart(bins) -> dict:
    """Points of predicted (x) against observed (y) share late, in SVG coordinates; a
    perfectly calibrated model lies on the diagonal. A point's radius grows with its rows."""
    most = max((b["rows"] for b in bins), default=1) or 1
    points = [
        {
            "x": round(b["predicted"] * SIZE, 1),
            "y": round(SIZE - b["observed"] * SIZE, 1),
            "r": round(3 + 7 * (b["rows"] / most) ** 0.5, 1),
            "title": f"{b['from']:.1f} to {b['to']:.1f}: {b['rows']} rows, "
            f"predicted {b['predicted']:.0%}, observed {b['observed']:.0%}",
        }
        for b in bins
    ]
    return {
        "size": SIZE,
        "points": points,
        "line": " ".join(f"{p['x']},{p['y']}" for p in points),
    }
