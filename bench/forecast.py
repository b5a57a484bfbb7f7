"""Benchmark: the 13-week cash forecast on a million-invoice PostgreSQL ledger.

Seeds (or reuses) a bench database with bench/ledger_seed.py and payments and
allocations (as bench/aging.py does, dated up to today, so today's forecast rebuilds the
balances at the start of the day), then adds the case work the forecast reads: a
prediction for nine open invoices in ten, open promises to pay on 2% of the overdue
ones and active payment plans (three installments) on 0.5%. Then times:

- cash_forecast(today) and cash_forecast(four weeks ago), against a plain SQL SUM of the
  same open balances per currency (which the naive forecast's weeks must add up to);
- snapshot_forecast(today) (the forecast plus its 13 x currencies rows);
- forecast_accuracy(today) over eight weekly snapshots;
- the dashboard's whole cash forecast section.

    .venv/bin/python bench/forecast.py --customers 2000 --invoices 10000   # smoke
    .venv/bin/python bench/forecast.py                                    # 200k/1M
    .venv/bin/python bench/forecast.py --reuse                            # no reseed

Exits 0 with the figures (a missed target is a finding); non-zero only when the forecast
is broken (its naive weeks do not add up to the open balances).
"""

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal

import psycopg
from admin_changelist import configure_django, ensure_database, ensure_users, peak_rss_mb
from admin_changelist import seed_if_needed as seed_ledger_if_needed
from aging import timed_rounds

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_forecast"
TARGET_S = 10.0  # "seconds, not minutes" for the whole book


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to (re)create and seed; its name must contain 'bench'",
    )
    parser.add_argument("--reuse", action="store_true", help="keep data whose counts match")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per measure")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the database name must contain 'bench'")
    return args


def seed_payments(database_url: str, today: dt.date) -> float | None:
    """One payment and one allocation for every paid amount (as bench/aging.py does; its
    seed_follow_up predates the payer columns), dated from a week before the due date to
    two months after, never after today. Skipped when allocations exist."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM accounts_allocation)").fetchone()[0]:
            return None
        print("adding payments and allocations ...")
        started = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        paid_on = (
            "LEAST(%(today)s::date, GREATEST(i.issued_on,"
            " i.due_on + ((i.id * 7919) %% 68 - 7)::int))"
        )
        conn.execute(
            "INSERT INTO accounts_payment (id, customer_id, kind, amount, currency,"
            " unallocated_amount, refunded_amount, received_on, method, remittance_reference,"
            " payer_name, payer_account, source, external_id, created_at)"
            " SELECT i.id, i.customer_id, 'payment', i.amount - i.open_balance, i.currency, 0,"
            f" 0, {paid_on}, 'bank_transfer', i.number, '', '', 'bench', '', now()"
            " FROM accounts_invoice i WHERE i.status <> 'cancelled' AND i.amount > i.open_balance",
            {"today": today},
        )
        conn.execute(
            "INSERT INTO accounts_allocation (id, payment_id, invoice_id, amount, allocated_on,"
            " seq, rule, reason, created_at)"
            " SELECT p.id, p.id, p.id, p.amount, p.received_on, 1, 'bench', '', now()"
            " FROM accounts_payment p WHERE p.source = 'bench'"
        )
        for table in ("accounts_payment", "accounts_allocation"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
        conn.autocommit = True
        for table in ("accounts_payment", "accounts_allocation"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
    elapsed = time.perf_counter() - started
    print(f"  payments and allocations in {elapsed:.1f} s")
    return elapsed


def seed_case_work(database_url: str, today: dt.date) -> float | None:
    """Predictions, promises and plans, in a few INSERT ... SELECT statements.

    Skipped when predictions exist already. Returns seconds, or None when skipped."""
    from django.db.models import Model

    from cases.models import Installment, InvoicePrediction, PaymentPlan, PromiseToPay

    def table(model: type[Model]) -> str:
        return model._meta.db_table

    promise_links = PromiseToPay.invoices.through._meta.db_table
    plan_links = PaymentPlan.invoices.through._meta.db_table
    open_invoices = (
        "FROM accounts_invoice i WHERE i.status IN ('open', 'partially_paid', 'disputed')"
        " AND i.open_balance > 0"
    )
    with psycopg.connect(database_url) as conn:
        found = conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table(InvoicePrediction)})")
        if found.fetchone()[0]:
            return None
        print("adding predictions, promises and plans ...")
        started = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        # Expected pay date: from a week early to six weeks late, by invoice id.
        conn.execute(
            f"INSERT INTO {table(InvoicePrediction)} (invoice_id, customer_id, probability_late,"
            " expected_pay_on, reasons, model_version, as_of, scored_at)"
            " SELECT i.id, i.customer_id, ((i.id * 37) %% 100) / 100.0,"
            " i.due_on + ((i.id * 7919) %% 49 - 7)::int, '[]', 'bench', %(today)s, now()"
            f" {open_invoices} AND i.id %% 10 <> 0",
            {"today": today},
        )
        # One promise per chosen overdue invoice: 60% of its balance, in one to three weeks.
        conn.execute(
            f"INSERT INTO {table(PromiseToPay)} (id, customer_id, amount, currency, promised_on,"
            " holds_until, channel, status, paid_amount, note, created_at)"
            " SELECT i.id, i.customer_id, round(i.open_balance * 0.6, 2), i.currency,"
            " %(today)s::date + (7 + i.id %% 14)::int, %(today)s::date + (10 + i.id %% 14)::int,"
            " 'phone', 'open', 0, '', now()"
            f" {open_invoices} AND i.due_on < %(today)s AND i.id %% 50 = 1",
            {"today": today},
        )
        conn.execute(
            f"INSERT INTO {promise_links} (promisetopay_id, invoice_id)"
            f" SELECT p.id, p.id FROM {table(PromiseToPay)} p"
        )
        conn.execute(
            f"INSERT INTO {table(PaymentPlan)} (id, customer_id, currency, total_amount, status,"
            " grace_days, note, created_at)"
            " SELECT i.id, i.customer_id, i.currency, i.open_balance, 'active', 5, '', now()"
            f" {open_invoices} AND i.due_on < %(today)s AND i.id %% 200 = 3",
            {"today": today},
        )
        conn.execute(
            f"INSERT INTO {plan_links} (paymentplan_id, invoice_id)"
            f" SELECT p.id, p.id FROM {table(PaymentPlan)} p"
        )
        # Three installments a month apart; the first thirds rounded, the last the rest.
        conn.execute(
            f"INSERT INTO {table(Installment)} (plan_id, sequence, due_on, amount, paid_amount,"
            " status)"
            " SELECT p.id, n, %(today)s::date + (30 * (n - 1) + p.id %% 7)::int,"
            " CASE WHEN n < 3 THEN round(p.total_amount / 3, 2)"
            " ELSE p.total_amount - 2 * round(p.total_amount / 3, 2) END, 0, 'pending'"
            f" FROM {table(PaymentPlan)} p CROSS JOIN generate_series(1, 3) AS n"
            " WHERE p.total_amount >= 0.03",
            {"today": today},
        )
        for model in (PromiseToPay, PaymentPlan):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table(model)}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table(model)}), false)"
            )
        conn.commit()
        conn.autocommit = True
        for model in (InvoicePrediction, PromiseToPay, PaymentPlan, Installment):
            conn.execute(f"VACUUM (ANALYZE) {table(model)}")
        counts = conn.execute(
            f"SELECT (SELECT count(*) FROM {table(InvoicePrediction)}),"
            f" (SELECT count(*) FROM {table(PromiseToPay)}),"
            f" (SELECT count(*) FROM {table(PaymentPlan)})"
        ).fetchone()
    elapsed = time.perf_counter() - started
    print(
        f"  {counts[0]:,} predictions, {counts[1]:,} promises, {counts[2]:,} plans"
        f" in {elapsed:.1f} s"
    )
    return elapsed


def open_at_start_of(as_of: dt.date) -> dict[str, Decimal]:
    """The baseline and the check: open balances at the start of `as_of` per currency, in
    plain SQL (today's balance plus the allocations dated on or after `as_of`)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.currency, SUM(CASE WHEN i.status = 'written_off' THEN 0"
            " ELSE i.open_balance END + COALESCE(a.total, 0)) FROM accounts_invoice i"
            " LEFT JOIN (SELECT invoice_id, SUM(amount) AS total FROM accounts_allocation"
            " WHERE allocated_on >= %s GROUP BY invoice_id) a ON a.invoice_id = i.id"
            " WHERE i.issued_on <= %s AND i.status <> 'cancelled'"
            " AND CASE WHEN i.status = 'written_off' THEN 0 ELSE i.open_balance END"
            " + COALESCE(a.total, 0) > 0 GROUP BY i.currency",
            [as_of, as_of],
        )
        return dict(cursor.fetchall())


def check_naive_adds_up(result, as_of: dt.date) -> None:
    expected = open_at_start_of(as_of)
    found = {code: item.naive_total + item.naive_later for code, item in result.currencies.items()}
    if found != expected:
        sys.exit(f"BROKEN: naive weeks {found} do not add up to the open balances {expected}")


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    configure_django(args.database_url)
    from django.core.management import call_command
    from django.utils import timezone

    from predictions import forecast
    from predictions.models import ForecastSnapshot
    from reporting import dashboard

    call_command("migrate", interactive=False, verbosity=0)
    _manager, agent_ids = ensure_users()
    seed_ledger_if_needed(args, agent_ids)
    today = timezone.localdate()
    seed_payments(args.database_url, today)
    seed_case_work(args.database_url, today)
    past = today - dt.timedelta(weeks=4)

    # Eight Monday snapshots before today, so the accuracy has weeks to score.
    ForecastSnapshot.objects.all().delete()
    monday = forecast.week_start(today)
    started = time.perf_counter()
    for weeks_back in range(8, 0, -1):
        forecast.snapshot_forecast(monday - dt.timedelta(weeks=weeks_back))
    print(f"eight past snapshots stored in {time.perf_counter() - started:.1f} s")

    rows = timed_rounds(
        {
            "plain SQL: open balances per currency (start of today)": lambda: open_at_start_of(
                today
            ),
            "cash_forecast(today)": lambda: forecast.cash_forecast(today),
            "cash_forecast(4 weeks ago)": lambda: forecast.cash_forecast(past),
            "snapshot_forecast(today)": lambda: forecast.snapshot_forecast(today),
            "forecast_accuracy(today), 8 snapshots": lambda: forecast.forecast_accuracy(today),
            "dashboard cash forecast section": lambda: dashboard.cash_forecast_section(
                today, "USD"
            ),
        },
        args.repeat,
    )
    check_naive_adds_up(rows["cash_forecast(today)"][2], today)
    check_naive_adds_up(rows["cash_forecast(4 weeks ago)"][2], past)

    with psycopg.connect(args.database_url) as conn:
        invoices = conn.execute("SELECT count(*) FROM accounts_invoice").fetchone()[0]
        open_count = conn.execute(
            "SELECT count(*) FROM accounts_invoice WHERE open_balance > 0"
        ).fetchone()[0]
    print()
    print(f"{invoices:,} invoices ({open_count:,} open), as of {today}, {args.repeat} runs each")
    print()
    print("| measure | median s | max s | target |")
    print("|---|---|---|---|")
    for name, (median, longest, _result) in rows.items():
        target = "" if name.startswith("plain") else f"< {TARGET_S:.0f} s"
        verdict = "" if not target else ("ok" if median < TARGET_S else "FAIL")
        print(f"| {name} | {median:.2f} | {longest:.2f} | {target} {verdict} |")
    result = rows["cash_forecast(today)"][2]
    print()
    for code, item in result.currencies.items():
        print(
            f"{code}: expected {item.total:,} in 13 weeks (naive {item.naive_total:,}),"
            f" later {item.later:,}, not expected {item.not_expected:,}"
        )
    print(f"base {result.base.currency}: {result.base.total:,}, missing {result.base.missing}")
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
