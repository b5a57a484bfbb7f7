"""Backtest the late-payment predictor on a synthetic accounts-receivable history, loaded
the way a new user loads theirs: through the invoice import, with paid dates.

    .venv/bin/python bench/backtest_history.py [--seed 1] [--database bench_backtest]

1. Writes a CSV shaped like a small company's two years of invoices (2012-2013): 100
   customers, each with its own habit (mean days after due, spread), a slow drift, a share
   of disputed invoices that are paid later, a slower December, 30-day terms; invoices paid
   after 2013-12-31 are still open.
2. Recreates the PostgreSQL database --database, migrates it and runs
   `manage.py import_invoices` (profile generic-csv: paid date, disputed).
3. Runs `manage.py backtest_predictor --cutoff 2013-01-01 --until 2013-12-31` and prints
   ROC AUC, Brier score and pay-date error beside the two baselines, per moment.

The generator is here, outside the product, on purpose: the predictor must not be tuned to
it. Different seeds give different companies; report several.
"""

import argparse
import csv
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
START, END = dt.date(2012, 1, 1), dt.date(2013, 12, 31)


def write_history(path: Path, seed: int) -> int:
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(
            [
                "Invoice Number",
                "Customer",
                "Invoice Date",
                "Due Date",
                "Currency",
                "Amount",
                "Paid Date",
                "Amount Paid",
                "Disputed",
            ]
        )
        n = 0
        for c in range(100):
            habit = rng.gauss(-3, 8)  # the customer's mean days after the due date
            spread = abs(rng.gauss(4, 2))
            disputes = rng.choice([0.05, 0.1, 0.2, 0.4])
            drift = rng.gauss(0, 0.15)  # days per month
            for _ in range(rng.randint(8, 45)):
                issued = START + dt.timedelta(days=rng.randint(0, 729))
                due = issued + dt.timedelta(days=30)
                amount = rng.lognormvariate(4, 0.6)
                disputed = rng.random() < disputes
                delay = habit + drift * (issued - START).days / 30 + rng.gauss(0, spread)
                delay += rng.uniform(5, 20) if disputed else 0
                delay += rng.uniform(0, 6) if issued.month == 12 else 0
                paid = due + dt.timedelta(days=round(max(delay, -25)))
                n += 1
                out.writerow(
                    [
                        f"INV{n:05d}",
                        f"CUST{c:03d}",
                        issued,
                        due,
                        "USD",
                        f"{amount:.2f}",
                        paid if paid <= END else "",
                        "",
                        "yes" if disputed else "",
                    ]
                )
    return n


def recreate(database: str) -> str:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(database)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    return f"postgres://postgres@127.0.0.1:5432/{database}"


def manage(*args: str, env: dict) -> str:
    result = subprocess.run(  # noqa: S603 - our own manage.py, our own arguments
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default="bench_backtest")
    args = parser.parse_args()
    env = {
        **os.environ,
        "DATABASE_URL": recreate(args.database),
        "ALLOW_INSECURE_SECRET_KEY": "true",
        "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "history.csv"
        invoices = write_history(path, args.seed)
        manage("migrate", "-v0", env=env)
        manage("import_invoices", str(path), env=env)
    result = json.loads(
        manage("backtest_predictor", "--cutoff", "2013-01-01", "--until", "2013-12-31", env=env)
    )
    print(f"seed {args.seed}: {invoices} invoices, model {result['model']['classifier']}")
    print(f"{'moment':28} {'rows':>6} {'AUC':>6} {'risk':>6} {'share':>6} {'Brier':>6} "
          f"{'share':>6} {'days off':>8} {'due':>6}")  # fmt: skip
    for moment in ("as_of_issue_date", "as_of_14_days_before_due"):
        block = result[moment]
        p, r, s = (
            block["predictor"],
            block["baseline_risk_score"],
            block["baseline_customer_late_share"],
        )
        pay = block["pay_date"]
        print(
            f"{moment:28} {p['rows']:>6} {p['roc_auc']:>6} {r['roc_auc']:>6} {s['roc_auc']:>6} "
            f"{p['brier']:>6} {s['brier']:>6} {pay['mean_days_off']:>8} "
            f"{pay['due_date_days_off']:>6}"
        )


if __name__ == "__main__":
    main()
