"""The nightly case-work run: promises, installments, risk, routing, reviews, aging alerts,
and the customer list's figures (amount past due, next action).

(Installment reminders are not part of it: they are dunning notices, planned by the
dunning run and sent by its sender.)

It runs before the dunning planner (01:30 against 02:00 by default), so a promise broken
today lets dunning resume tonight and a customer the risk score moved to another band is
planned on that band's policy. Each job is a plain function in its own module; this one
calls them in order; each job commits its own work (risk scoring commits per chunk, so it
must not run inside an outer transaction), one failing job does not stop the others, and
a retry repeats nothing (every job is idempotent by its own constraints).
"""

import dataclasses
import datetime as dt
import logging

from accounts import summaries

from . import next_actions, plans, promises, recoveries, risk, routing
from .alerts import raise_aging_alerts

logger = logging.getLogger(__name__)


def _count(outcome):
    if dataclasses.is_dataclass(outcome):
        return {
            key: len(value) if isinstance(value, list | set | dict) else value
            for key, value in dataclasses.asdict(outcome).items()
        }
    if isinstance(outcome, list | set | tuple):
        return len(outcome)
    return outcome


def run_case_work(*, on: dt.date, now: dt.datetime) -> dict:
    """Run every nightly case job for the day `on`; returns counts, and errors by job."""
    jobs = [
        ("broken_promises", lambda: promises.detect_broken_promises(today=on)),
        ("missed_installments", lambda: plans.detect_missed_installments(today=on)),
        ("risk_scores", lambda: risk.score_customers(now=now)),
        ("routed", lambda: routing.route_customers()),
        ("write_off_reviews", lambda: recoveries.propose_reviews(today=on)),
        ("aging_alerts", lambda: raise_aging_alerts(on=on)),
        # Last, so the customer list's figures include what the jobs above changed.
        ("past_due_summaries", lambda: summaries.refresh_past_due(today=on)),
        ("next_actions", lambda: next_actions.refresh_next_actions()),
    ]
    summary: dict = {"errors": {}}
    for name, job in jobs:
        try:
            summary[name] = _count(job())
        except Exception as exc:  # one job's failure must not stop the others
            logger.exception("nightly case job %s failed", name)
            summary["errors"][name] = f"{type(exc).__name__}: {exc}"
    return summary
