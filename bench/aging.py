"""Benchmark: the aging report on a million-invoice PostgreSQL ledger.

Seeds (or reuses) a bench database with bench/ledger_seed.py, adds the payments and
allocations that explain every balance (dated, so a report as of a past date has later
allocations to take back out, and a few refunds), pending notices and open tasks, then
times:

- the aging summary (today, a quarter ago, grouped, filtered), against a plain SQL SUM
  of today's open balances; the past date and the minimum balance also against plain
  SQL over the rows they need (the allocations after the date; the sums per customer);
- the full customer-level CSV export, streamed through the admin download view, in a
  child process whose peak RSS is reported;
- the PDF of the summary plus the 1,000 largest customers, in a child process.

    .venv/bin/python bench/aging.py --customers 2000 --invoices 10000   # smoke
    .venv/bin/python bench/aging.py                                    # 200k/1M
    .venv/bin/python bench/aging.py --reuse                            # no reseed

Exits 0 with the figures (a missed target is a finding); non-zero only when an output
is broken (wrong totals, rows missing, no "page X of Y").
"""

import argparse
import datetime as dt
import io
import json
import os
import statistics
import subprocess
import sys
import time
from decimal import Decimal

import psycopg
from admin_changelist import (
    MANAGER,
    configure_django,
    ensure_database,
    ensure_users,
    peak_rss_mb,
    seed_if_needed,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_r1"
SUMMARY_TARGET_S = 2.0
SUMMARY_TARGET_RATIO = 3.0
CSV_TARGET_S = 30.0
PDF_TARGET_S = 20.0
PDF_TARGET_MB = 500.0
PDF_CUSTOMERS = 1000


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
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per summary")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--summaries-only", action="store_true", help="time the summaries, skip the exports"
    )
    parser.add_argument("--child", choices=["idle", "csv", "xlsx", "pdf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "bench" not in args.database_url.rsplit("/", 1)[-1]:
        parser.error("the database name must contain 'bench'")
    return args


# --- seeding what ledger_seed leaves out ---------------------------------------------------


def seed_follow_up(database_url: str, today: dt.date) -> float | None:
    """Payments and allocations explaining every paid amount, refunds, notices and tasks.

    ledger_seed writes balances without the allocations behind them. Here each invoice
    whose balance is below its amount gets one payment and one allocation of the
    difference, dated from a week before its due date to two months after (never after
    today); one in fifty partly paid invoices was overpaid and half refunded (a negative
    allocation ten days later). Balances stay exactly as seeded. Skipped when allocations
    exist already. Returns seconds, or None when skipped.
    """
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM accounts_allocation)").fetchone()[0]:
            return None
        print("adding payments, allocations, refunds, notices and tasks ...")
        started = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        paid_on = (
            "LEAST(%(today)s::date, GREATEST(i.issued_on,"
            " i.due_on + ((i.id * 7919) %% 68 - 7)::int))"
        )
        refunded = "(i.status = 'partially_paid' AND i.id %% 50 = 0)"
        extra = f"CASE WHEN {refunded} THEN round(i.open_balance / 2, 2) ELSE 0 END"
        conn.execute(
            "INSERT INTO accounts_payment (id, customer_id, kind, amount, currency,"
            " unallocated_amount, refunded_amount, received_on, method, remittance_reference,"
            " source, external_id, created_at)"
            f" SELECT i.id, i.customer_id, 'payment', i.amount - i.open_balance + {extra},"
            f" i.currency, 0, {extra}, {paid_on}, 'bank_transfer', i.number, 'bench', '', now()"
            " FROM accounts_invoice i"
            " WHERE i.status <> 'cancelled' AND i.amount > i.open_balance",
            {"today": today},
        )
        conn.execute(
            "INSERT INTO accounts_allocation (id, payment_id, invoice_id, amount, allocated_on,"
            " seq, rule, reason, created_at)"
            " SELECT p.id, p.id, p.id, p.amount, p.received_on, 1, 'bench', '', now()"
            " FROM accounts_payment p WHERE p.source = 'bench'"
        )
        offset = conn.execute("SELECT max(id) FROM accounts_allocation").fetchone()[0] or 0
        conn.execute(
            "INSERT INTO accounts_allocation (id, payment_id, invoice_id, amount, allocated_on,"
            " seq, rule, reverses_id, reason, created_at)"
            " SELECT %(offset)s + p.id, p.id, p.id, -p.refunded_amount,"
            " LEAST(%(today)s::date, p.received_on + 10), 2, 'refund', p.id, 'bench refund',"
            " now()"
            " FROM accounts_payment p WHERE p.source = 'bench' AND p.refunded_amount > 0",
            {"offset": offset, "today": today},
        )
        step_id = conn.execute(
            "SELECT id FROM dunning_step WHERE channel = 'email' ORDER BY id LIMIT 1"
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO dunning_notice (customer_id, step_id, channel, status, planned_on,"
            " reason, subject, body_text, body_html, recipient, provider_message_id, document,"
            " attempts, edited_invoices, created_at, updated_at)"
            " SELECT c.id, %(step)s, 'email', 'planned', %(today)s::date + (c.id %% 14)::int,"
            " '', '', '', '', '', '', '', 0, '[]', now(), now()"
            " FROM accounts_customer c WHERE c.id %% 4 = 0",
            {"step": step_id, "today": today},
        )
        conn.execute(
            "INSERT INTO accounts_task (customer_id, kind, title, description, due_at, status,"
            " outcome, outcome_note, source, details, created_at)"
            " SELECT c.id, 'call', 'Call about the oldest invoice', '',"
            " now() + make_interval(days => (c.id %% 10)::int), 'open', '', '', '', '{}', now()"
            " FROM accounts_customer c WHERE c.id %% 7 = 0",
            {},
        )
        for table in ("accounts_payment", "accounts_allocation"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
        conn.autocommit = True
        for table in ("accounts_payment", "accounts_allocation", "dunning_notice", "accounts_task"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM accounts_allocation WHERE amount > 0),"
            " (SELECT count(*) FROM accounts_allocation WHERE amount < 0),"
            " (SELECT count(*) FROM dunning_notice), (SELECT count(*) FROM accounts_task)"
        ).fetchone()
    elapsed = time.perf_counter() - started
    print(
        f"  {counts[0]:,} allocations, {counts[1]:,} refunds, {counts[2]:,} notices,"
        f" {counts[3]:,} tasks in {elapsed:.1f} s"
    )
    return elapsed


def check_ledger_consistent() -> None:
    """Every balance is explained by its allocations (the premise of the as-of rebuild)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM accounts_invoice i LEFT JOIN (SELECT invoice_id,"
            " SUM(amount) AS total FROM accounts_allocation GROUP BY invoice_id) a"
            " ON a.invoice_id = i.id WHERE i.status <> 'cancelled'"
            " AND i.amount - COALESCE(a.total, 0) <> i.open_balance"
        )
        broken = cursor.fetchone()[0]
    if broken:
        sys.exit(f"BROKEN: {broken} invoices whose balance their allocations do not explain")


# --- timing --------------------------------------------------------------------------------


def timed_rounds(measures: dict, repeat: int) -> dict:
    """{name: (median s, max s, last result)}, measured in interleaved rounds.

    One warm-up call each (caches, plans), then `repeat` rounds that call every measure
    once, in order: a baseline and the summaries it is compared with run under the same
    load from other work, which on a shared machine drifts within a minute.
    """
    results = {name: function() for name, function in measures.items()}
    runs = {name: [] for name in measures}
    for _ in range(repeat):
        for name, function in measures.items():
            started = time.perf_counter()
            results[name] = function()
            runs[name].append(time.perf_counter() - started)
    return {
        name: (statistics.median(times), max(times), results[name]) for name, times in runs.items()
    }


def _fetch(sql: str, params: list) -> list:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def plain_sum(as_of: dt.date) -> dict:
    """The baseline: one SUM per currency over the invoices open today, no as-of rebuild."""
    return dict(
        _fetch(
            "SELECT currency, SUM(open_balance) FROM accounts_invoice"
            " WHERE issued_on <= %s AND status NOT IN ('cancelled', 'written_off')"
            " AND open_balance > 0 GROUP BY currency",
            [as_of],
        )
    )


def plain_sums_with_later_allocations(as_of: dt.date) -> list:
    """A second baseline for a past date: plain SUMs over the rows that report reads.

    The plain SUM above (the invoices, read in full) plus one SUM of the allocations dated
    after `as_of` (what the as-of rebuild adds back), read but not matched to invoices.
    """
    return _fetch(
        "SELECT currency, SUM(open_balance) FROM accounts_invoice"
        " WHERE issued_on <= %s AND status NOT IN ('cancelled', 'written_off')"
        " AND open_balance > 0 GROUP BY currency"
        " UNION ALL SELECT '', SUM(amount) FROM accounts_allocation WHERE allocated_on > %s",
        [as_of, as_of],
    )


def plain_sums_per_customer(as_of: dt.date, minimum: Decimal) -> dict:
    """A second baseline for a minimum balance: the open invoices summed per customer.

    {currency: total of the customers at or above `minimum`}, from one plain GROUP BY
    customer and currency with HAVING (the grouping the filter needs, nothing else); it
    also checks the summary's totals.
    """
    totals = {}
    for currency, total in _fetch(
        "SELECT currency, SUM(open_balance) FROM accounts_invoice"
        " WHERE issued_on <= %s AND status NOT IN ('cancelled', 'written_off')"
        " AND open_balance > 0 GROUP BY customer_id, currency HAVING SUM(open_balance) >= %s",
        [as_of, minimum],
    ):
        totals[currency] = totals.get(currency, Decimal(0)) + total
    return totals


def totals_from_the_orm(as_of: dt.date) -> dict:
    """Totals per currency on `as_of` from invoice_balances_as_of (a per-invoice subquery),
    an independent check of the summary's SQL. Not timed."""
    from django.db.models import Sum

    from reporting.ledger import invoice_balances_as_of

    return dict(
        invoice_balances_as_of(as_of)
        .order_by()
        .values_list("currency")
        .annotate(total=Sum("balance_as_of"))
    )


def time_summaries(today: dt.date, repeat: int) -> list[dict]:
    """The summary rows of the table: label, median, max and the baseline(s) to divide by."""
    from reporting.aging import AgingReport, Filters, summary
    from reporting.ledger import receivables_as_of

    quarter_ago = today - dt.timedelta(days=91)
    minimum = Decimal(10_000)
    cases = [
        ("aging summary, today", AgingReport(as_of=today), None),
        ("aging summary, 91 days ago", AgingReport(as_of=quarter_ago), "later"),
        ("aging summary by agent", AgingReport(as_of=today, group_by="agent"), None),
        ("aging summary by segment, min 10,000", AgingReport(
            as_of=today, group_by="segment", filters=Filters(min_balance=minimum)
        ), "per customer"),
        ("aging summary, one segment and currency", AgingReport(
            as_of=today, filters=Filters(segment="strategic", currency="EUR")
        ), None),
    ]  # fmt: skip
    baselines = {
        "plain": ("plain SQL SUM (baseline)", lambda: plain_sum(today)),
        "later": (
            "plain SQL SUMs over the same rows, 91 days ago: + allocations after (2nd baseline)",
            lambda: plain_sums_with_later_allocations(quarter_ago),
        ),
        "per customer": (
            "plain SQL SUM per customer, HAVING >= 10,000 (2nd baseline)",
            lambda: plain_sums_per_customer(today, minimum),
        ),
    }
    extras = [
        ("summary with customers counted per group (what exports use)",
         lambda: summary(AgingReport(as_of=today, group_by="segment"), count_customers=True)),
        ("receivables_as_of, 91 days ago", lambda: receivables_as_of(quarter_ago)),
        ("admin page: summary + 25 largest accounts", admin_page(today)),
    ]  # fmt: skip
    measures = {key: function for key, (_label, function) in baselines.items()}
    measures.update({label: (lambda report=report: summary(report)) for label, report, _ in cases})
    measures.update(dict(extras))
    timed = timed_rounds(measures, repeat)

    results = {name: result for name, (_median, _worst, result) in timed.items()}
    totals = {label: {c: a.total for c, a in results[label].totals.items()} for label, *_ in cases}
    if totals["aging summary, today"] != results["plain"]:
        sys.exit(f"BROKEN: summary totals {totals['aging summary, today']} differ from the plain"
                 f" SUM {results['plain']}")  # fmt: skip
    if totals["aging summary, 91 days ago"] != (expected := totals_from_the_orm(quarter_ago)):
        sys.exit(f"BROKEN: the summary 91 days ago {totals['aging summary, 91 days ago']}"
                 f" differs from invoice_balances_as_of {expected}")  # fmt: skip
    if totals["aging summary by segment, min 10,000"] != results["per customer"]:
        sys.exit(f"BROKEN: the minimum-balance summary differs from the per-customer SUMs"
                 f" {results['per customer']}")  # fmt: skip

    def row(label, name, second=None):
        median, worst, _ = timed[name]
        return {"label": label, "median": median, "max": worst, "second": second}

    rows = [row(baselines["plain"][0], "plain")]
    for label, _report, second in cases:
        rows.append(row(label, label, second and timed[second][0]))
        if second:
            rows.append(row(baselines[second][0], second))
    rows.extend(row(label, label) for label, _ in extras)
    return rows


def admin_page(today: dt.date):
    """The report page in the admin as the manager sees it (a function to time)."""
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.get(username=MANAGER))

    def get():
        response = client.get(f"/admin/reporting/aging/?as_of={today.isoformat()}")
        if response.status_code != 200 or b'id="aging-largest"' not in response.content:
            sys.exit(f"BROKEN: the admin report page answered {response.status_code}")

    return get


# --- child processes (their own peak RSS) --------------------------------------------------


def run_child(args: argparse.Namespace, step: str) -> dict:
    command = [sys.executable, __file__, "--child", step, "--database-url", args.database_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"BROKEN: the {step} step failed:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(step: str, database_url: str) -> dict:
    configure_django(database_url)
    from django.contrib.auth.models import User
    from django.test import Client
    from django.utils import timezone

    from reporting.aging import AgingReport, summary
    from reporting.models import ReportExport

    today = timezone.localdate()
    if step == "idle":
        User.objects.exists()
        return {"rss_mb": peak_rss_mb()}
    client = Client()
    client.force_login(User.objects.get(username=MANAGER))
    expected = summary(AgingReport(as_of=today), count_customers=True)
    url = f"/admin/reporting/aging/export/?as_of={today.isoformat()}&format={step}"
    if step == "csv":
        started = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200 and response.streaming, response.status_code
        size = customers = totals = 0
        for chunk in response.streaming_content:  # each chunk ends at the end of a row
            size += len(chunk)
            customers += chunk.count(b"\ncustomer,") + chunk.startswith(b"customer,")
            totals += chunk.count(b"\ntotal,") + chunk.startswith(b"total,")
        elapsed = time.perf_counter() - started
        record = ReportExport.objects.latest("pk")
        ok = (
            customers == expected.customer_count
            and totals == len(expected.totals)
            and record.row_count == customers
        )
        return {
            "seconds": elapsed,
            "rows": customers,
            "expected_rows": expected.customer_count,
            "bytes": size,
            "rss_mb": peak_rss_mb(),
            "ok": ok,
        }
    if step == "xlsx":
        started = time.perf_counter()
        response = client.get(url)
        elapsed = time.perf_counter() - started
        ok = (
            response.status_code == 200
            and response.content[:2] == b"PK"
            and ReportExport.objects.latest("pk").row_count == expected.customer_count
        )
        return {
            "seconds": elapsed,
            "bytes": len(response.content),
            "rss_mb": peak_rss_mb(),
            "ok": ok,
        }
    from pypdf import PdfReader

    started = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.status_code
    rss = peak_rss_mb()
    pages = PdfReader(io.BytesIO(response.content)).pages
    texts = [page.extract_text() for page in pages]
    summary_text = "\n".join(texts[:3])
    ok = (
        all(f"page {n} of {len(texts)}" in text for n, text in enumerate(texts, start=1))
        and all(f"{a.total:,.2f}" in summary_text for a in expected.totals.values())
        and ReportExport.objects.latest("pk").row_count
        == min(PDF_CUSTOMERS, expected.customer_count)
    )
    return {
        "seconds": elapsed,
        "pages": len(pages),
        "bytes": len(response.content),
        "rss_mb": rss,
        "ok": ok,
    }


# --- main ----------------------------------------------------------------------------------


def verdict(is_met: bool) -> str:
    return "PASS" if is_met else "FAIL"


def print_summary_table(args: argparse.Namespace, today: dt.date, rows: list[dict]) -> None:
    base = rows[0]["median"]
    print()
    print(f"{args.customers:,} customers, {args.invoices:,} invoices, as of {today}; "
          f"median of {args.repeat} interleaved rounds after one warm-up")  # fmt: skip
    print()
    print("| Measure | Median s | Max s | x plain SUM | x 2nd baseline | Target | |")
    print("|---|---:|---:|---:|---:|---|:---:|")
    for row in rows:
        ratio = row["median"] / base
        second = f"{row['median'] / row['second']:.1f}" if row["second"] else ""
        is_summary = row["label"].startswith("aging summary")
        target = f"< {SUMMARY_TARGET_S:.0f} s, < {SUMMARY_TARGET_RATIO:.0f}x" if is_summary else ""
        met = row["median"] < SUMMARY_TARGET_S and ratio < SUMMARY_TARGET_RATIO
        print(
            f"| {row['label']} | {row['median']:.3f} | {row['max']:.3f} | {ratio:.1f} | {second} "
            f"| {target} | {verdict(met) if is_summary else ''} |"
        )


def main() -> int:
    args = parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.database_url)))
        return 0
    ensure_database(args.database_url)
    configure_django(args.database_url)
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", interactive=False, verbosity=0)
    _manager, agent_ids = ensure_users()
    seed_if_needed(args, agent_ids)
    today = timezone.localdate()
    seed_follow_up(args.database_url, today)
    check_ledger_consistent()

    rows = time_summaries(today, args.repeat)
    if args.summaries_only:
        print_summary_table(args, today, rows)
        return 0
    idle = run_child(args, "idle")
    csv_run = run_child(args, "csv")
    pdf_run = run_child(args, "pdf")
    xlsx_run = run_child(args, "xlsx")
    if not csv_run["ok"]:
        sys.exit(f"BROKEN: CSV export {csv_run}")
    if not xlsx_run["ok"]:
        sys.exit(f"BROKEN: XLSX export {xlsx_run}")
    if not pdf_run["ok"]:
        sys.exit(f"BROKEN: PDF export {pdf_run}")

    print_summary_table(args, today, rows)
    csv_mb = csv_run["bytes"] / 1e6
    print(
        f"| customer-level CSV, streamed ({csv_run['rows']:,} rows, {csv_mb:.0f} MB) "
        f"| {csv_run['seconds']:.1f} | | | | < {CSV_TARGET_S:.0f} s "
        f"| {verdict(csv_run['seconds'] < CSV_TARGET_S)} |"
    )
    print(
        f"| PDF: summary + {PDF_CUSTOMERS:,} largest customers ({pdf_run['pages']} pages) "
        f"| {pdf_run['seconds']:.1f} | | | | < {PDF_TARGET_S:.0f} s, < {PDF_TARGET_MB:.0f} MB "
        f"| {verdict(pdf_run['seconds'] < PDF_TARGET_S and pdf_run['rss_mb'] < PDF_TARGET_MB)} |"
    )
    print(
        f"| customer-level XLSX ({xlsx_run['bytes'] / 1e6:.0f} MB; no target) "
        f"| {xlsx_run['seconds']:.1f} | | | | | |"
    )
    print()
    print(
        f"Peak RSS: CSV export process {csv_run['rss_mb']:.0f} MB, PDF process "
        f"{pdf_run['rss_mb']:.0f} MB, XLSX process {xlsx_run['rss_mb']:.0f} MB, "
        f"an idle Django process {idle['rss_mb']:.0f} MB."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
