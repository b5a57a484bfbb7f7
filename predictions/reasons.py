"""Plain-word reasons for one invoice's features: the three that weigh most.

Each rule below reads one or two features and, when they point to late payment, gives a
sentence and a strength between 0 and 1 (how far the figure is from a good payer's).
A model can rank them instead: pass `contributions` ({feature name: signed contribution to
the predicted lateness}) and the reasons come in the order of the model's own weights, the
sentences unchanged. Reasons that point to payment on time are left out: the list answers
"why is this invoice likely to be late?".
"""

from decimal import ROUND_HALF_UP, Decimal

ONE = Decimal(1)
# The features the sentences below read: a model's contributions are asked for these.
REASON_FEATURES = (
    "recent_late_count",
    "mean_days_late",
    "trend_days_late",
    "last_days_late",
    "overdue_count",
    "amount_ratio",
    "promises_broken",
    "disputes",
    "payment_plans",
    "credit_use",
    "bounces",
    "days_since_engagement",
    "portal_visits_90_days",
    "portal_actions_90_days",
    "settled_count",
)
QUIET_DAYS = 60  # a debtor who used to answer and has not for this long has gone quiet
LOOKING_VISITS = 2  # portal visits in 90 days with no action there: looking, not paying


def _cap(value) -> Decimal:
    return max(min(Decimal(value), ONE), Decimal(0))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _times(ratio: Decimal) -> str:
    if ratio >= Decimal("1.95") and ratio < Decimal("2.05"):
        return "twice the usual amount"
    return f"{ratio.quantize(Decimal('0.1'), ROUND_HALF_UP)} times the usual amount"


def candidates(f: dict) -> list[tuple[str, Decimal, str]]:
    """(feature that drives it, strength, sentence) for every reason that applies."""
    out = []
    settled = f.get("settled_count") or 0
    recent = min(settled, 5)
    late = f.get("recent_late_count") or 0
    if recent and late:
        out.append(
            (
                "recent_late_count",
                _cap(Decimal(late) / recent),
                (
                    f"paid {late} of the last {recent} invoices late"
                    if settled > recent
                    else f"paid {late} of {_plural(settled, 'past invoice')} late"
                ),
            )
        )
    mean = f.get("mean_days_late")
    if mean is not None and mean >= 1:
        out.append(
            (
                "mean_days_late",
                _cap(mean / 30),
                f"pays {mean.quantize(ONE, ROUND_HALF_UP)} days late on average",
            )
        )
    trend = f.get("trend_days_late")
    if trend is not None and trend >= 3:
        out.append(
            (
                "trend_days_late",
                _cap(trend / 20),
                f"paying {trend.quantize(ONE, ROUND_HALF_UP)} days later than before",
            )
        )
    last = f.get("last_days_late")
    if last:
        out.append(
            ("last_days_late", _cap(Decimal(last) / 30), f"paid the last invoice {last} days late")
        )
    overdue = f.get("overdue_count") or 0
    if overdue:
        out.append(
            (
                "overdue_count",
                _cap(Decimal(overdue) / 3),
                f"{_plural(overdue, 'invoice')} already overdue",
            )
        )
    ratio = f.get("amount_ratio")
    if ratio is not None and ratio >= Decimal("1.5"):
        out.append(("amount_ratio", _cap((ratio - 1) / 2), _times(ratio)))
    broken = f.get("promises_broken") or 0
    if broken:
        out.append(
            (
                "promises_broken",
                _cap(Decimal(broken) / 2),
                f"broke {_plural(broken, 'promise')} to pay in the last year",
            )
        )
    disputes = f.get("disputes") or 0
    if disputes:
        out.append(
            (
                "disputes",
                _cap(Decimal(disputes) / 3),
                f"raised {_plural(disputes, 'dispute')} in the last year",
            )
        )
    plans = f.get("payment_plans") or 0
    if plans:
        out.append(
            (
                "payment_plans",
                _cap(Decimal(plans) / 2),
                f"needed {_plural(plans, 'payment plan')} in the last year",
            )
        )
    use = f.get("credit_use")
    if use is not None and use >= Decimal("0.8"):
        out.append(
            (
                "credit_use",
                _cap(use - Decimal("0.5")) * 2 if use < 1 else ONE,
                f"uses {(use * 100).quantize(ONE, ROUND_HALF_UP)}% of the credit limit",
            )
        )
    bounces = f.get("bounces") or 0
    if bounces:
        out.append(
            (
                "bounces",
                _cap(Decimal(bounces) / 3),
                f"e-mails bounced {_plural(bounces, 'time')} in the last year",
            )
        )
    quiet = f.get("days_since_engagement")
    if quiet is not None and quiet >= QUIET_DAYS:
        out.append(
            (
                "days_since_engagement",
                _cap(Decimal(quiet) / 180),
                f"no reply or portal visit for {quiet} days",
            )
        )
    visits = f.get("portal_visits_90_days") or 0
    if visits >= LOOKING_VISITS and not f.get("portal_actions_90_days"):
        out.append(
            (
                "portal_visits_90_days",
                _cap(Decimal(visits) / 6),
                f"visited the portal {_plural(visits, 'time')} in the last 90 days "
                "without paying or acting there",
            )
        )
    if not settled:
        out.append(("settled_count", Decimal("0.3"), "no payment history yet"))
    return out


def reasons(
    features: dict, *, contributions: dict | None = None, limit: int = 3, found=None
) -> list[str]:
    """The `limit` strongest reasons, strongest first; [] for a good payer. `found`: the
    features' candidates when the caller already has them."""
    found = candidates(features) if found is None else found
    if contributions is not None:
        found = [
            (name, Decimal(str(contributions[name])), text)
            for name, _strength, text in found
            if name in contributions and contributions[name] > 0
        ]
    # Stable: equal strengths keep the order of the rules above.
    found.sort(key=lambda c: c[1], reverse=True)
    return [text for _name, _strength, text in found[:limit]]
