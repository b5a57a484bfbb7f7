"""Benchmark: training the late-payment predictor and scoring every open invoice at scale.

Builds (or reuses) a PostgreSQL ledger of 200,000 customers and about 1,000,000 invoices
with two years of payment history, then times `manage.py train_predictor` and
`manage.py score_invoices`, each in a subprocess of its own under `/usr/bin/time -v` for
its peak memory (maximum resident set size). Prints one row per step against the targets
of issue #17: training under 180 s, scoring every open invoice under 60 s, peak memory
under 1.5 GB. A benchmark, not a test: a FAIL row is a finding and exits 0; a command
that is missing or fails exits 1.

The ledger is the demo's (demo/portfolio.py: customers with their own payment habits,
seasons, disputes, payment runs), planned with fewer invoices per customer so that the
counts match, and written with COPY (accounts.bulk.insert_rows) one chunk of customers
per transaction, with every constraint in place as in production.

    .venv/bin/python bench/predict.py --customers 2000 --invoices 10000   # smoke, seconds
    .venv/bin/python bench/predict.py                                     # 200k / 1M
    .venv/bin/python bench/predict.py --reuse                             # no reseed
    .venv/bin/python bench/predict.py --reuse --commands "seed_demo --help"  # harness only
    .venv/bin/python bench/predict.py --build-only                        # data, no timing

See bench/README.md.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/bench_predict"
DEFAULT_COMMANDS = ("train_predictor", "score_invoices")
TARGET_SECONDS = {"train_predictor": 180.0, "score_invoices": 60.0}
TARGET_PEAK_MB = 1536.0  # 1.5 GB (MiB, as /usr/bin/time counts kilobytes of 1024 bytes)
DEMO_INVOICES_PER_CUSTOMER = 24  # seed_demo's, at invoice_rate 1
REUSE_TOLERANCE = 0.05  # --reuse keeps a ledger whose invoice count is this close
LEDGER_TABLES = (
    "accounts_activity",
    "accounts_allocation",
    "accounts_payment",
    "accounts_invoice",
    "accounts_contact",
    "accounts_customer",
)


@dataclass
class Step:
    command: str
    seconds: float | None = None
    peak_mb: float | None = None
    rows: str = ""
    status: str = ""  # "", "command missing", "failed (exit N)"
    output_tail: str = ""

    @property
    def name(self) -> str:
        return shlex.split(self.command)[0]

    def verdict(self) -> str:
        if self.status:
            return self.status
        target = TARGET_SECONDS.get(self.name)
        fast = target is None or self.seconds < target
        small = self.peak_mb is None or self.peak_mb < TARGET_PEAK_MB
        return "PASS" if fast and small else "FAIL"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=1_000_000, help="about this many")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_PREDICT_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database, created if missing; its name must contain 'bench'",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the ledger if it has these customers and about these invoices",
    )
    parser.add_argument("--seed", type=int, default=42, help="random seed for the ledger")
    parser.add_argument(
        "--commands",
        nargs="+",
        default=list(DEFAULT_COMMANDS),
        help="manage.py commands to time, each one quoted string with its arguments "
        f"(default: {' '.join(DEFAULT_COMMANDS)})",
    )
    parser.add_argument("--build-only", action="store_true", help="build the ledger, time nothing")
    args = parser.parse_args()
    if args.customers < 10 or args.invoices < args.customers:
        parser.error("need at least 10 customers and as many invoices as customers")
    return args


def ensure_database(database_url: str) -> None:
    import dj_database_url

    db = dj_database_url.parse(database_url)
    if "postgresql" not in db["ENGINE"]:
        sys.exit("the benchmark needs a PostgreSQL database URL")
    if "bench" not in db["NAME"]:
        sys.exit(f"{db['NAME']}: the bench database's name must contain 'bench' (it is emptied)")
    maintenance = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**maintenance) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if found.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"created database {db['NAME']}")


def bench_environment(database_url: str) -> dict[str, str]:
    """Production-like settings (DEBUG off) for this process and the timed commands."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "ALLOW_INSECURE_SECRET_KEY": env.get("ALLOW_INSECURE_SECRET_KEY", "true"),
        }
    )
    env.setdefault("LOG_LEVEL", "WARNING")
    return env


def configure_django(env: dict[str, str]) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.update(env)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


# -- the ledger ------------------------------------------------------------------------------


def ledger_counts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT count(*) FROM accounts_customer),"
            " (SELECT count(*) FROM accounts_invoice),"
            " (SELECT count(*) FROM accounts_invoice WHERE status = 'paid'),"
            " (SELECT count(*) FROM accounts_invoice"
            "   WHERE status IN ('open', 'partially_paid', 'disputed')),"
            " (SELECT count(*) FROM accounts_payment),"
            " (SELECT count(*) FROM accounts_allocation),"
            " (SELECT count(*) FROM accounts_activity)"
        )
        names = ("customers", "invoices", "paid", "open", "payments", "allocations", "activities")
        return dict(zip(names, cursor.fetchone(), strict=True))


def invoice_rate(customers: int, invoices: int, seed: int, today, tz) -> float:
    """How often to invoice (demo/portfolio.py's invoice_rate) for about `invoices` in all:
    guessed from the demo's invoices per customer, corrected twice on a sample."""
    from demo.portfolio import plan_portfolio

    sample = min(customers, 400)
    wanted = invoices / customers
    rate = min(1.0, wanted / DEMO_INVOICES_PER_CUSTOMER)
    for _attempt in range(2):
        planned = sum(
            len(chunk.invoices)
            for chunk in plan_portfolio(
                customers=sample, seed=seed, today=today, tz=tz, invoice_rate=rate
            )
        )
        rate *= wanted / (planned / sample)
    return rate


def build_ledger(args: argparse.Namespace) -> float:
    """Empty the ledger and load the demo's, chunk by chunk. Returns seconds."""
    from django.db import connection
    from django.utils import timezone

    from demo.portfolio import ensure_users, plan_portfolio

    started = time.perf_counter()
    with connection.cursor() as cursor:
        # CASCADE empties what refers to the ledger too (case work, notices, predictions).
        cursor.execute(f"TRUNCATE {', '.join(LEDGER_TABLES)} RESTART IDENTITY CASCADE")
        cursor.execute("SET maintenance_work_mem = '512MB'")
    today, tz = timezone.localdate(), timezone.get_default_timezone()
    rate = invoice_rate(args.customers, args.invoices, args.seed, today, tz)
    print(f"seeding {args.customers:,} customers, about {args.invoices:,} invoices "
          f"(invoice rate {rate:.3f} of the demo's) ...")  # fmt: skip
    users = ensure_users()[0]
    done, invoices, last_report = 0, 0, time.perf_counter()
    for chunk in plan_portfolio(
        customers=args.customers, seed=args.seed, today=today, tz=tz, invoice_rate=rate
    ):
        copy_chunk(chunk, users)
        done += len(chunk.customers)
        invoices += len(chunk.invoices)
        if time.perf_counter() - last_report > 30 or done == args.customers:
            last_report = time.perf_counter()
            print(f"  {done:>9,} customers {invoices:>10,} invoices "
                  f"{last_report - started:7.1f} s")  # fmt: skip
    vacuum_started = time.perf_counter()
    connection.ensure_connection()
    autocommit = connection.get_autocommit()
    connection.set_autocommit(True)
    try:
        with connection.cursor() as cursor:
            for table in LEDGER_TABLES:
                cursor.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        connection.set_autocommit(autocommit)
    print(f"  vacuum + analyze in {time.perf_counter() - vacuum_started:.1f} s")
    return time.perf_counter() - started


def copy_chunk(chunk, users: dict[str, int]) -> None:
    """Store one planned chunk (demo.portfolio.PortfolioChunk) with COPY, in one
    transaction: demo.portfolio.write_chunk's rows and references, without the ORM."""
    from django.db import transaction

    from accounts.models import Activity, Allocation, Contact, Customer, Invoice, Payment

    def without(row: dict, *keys: str) -> dict:
        return {k: v for k, v in row.items() if k not in keys}

    with transaction.atomic():
        customer_ids = _insert(
            Customer,
            chunk.customers,
            lambda row: {
                **without(row, "assigned_agent"),
                "assigned_agent_id": users.get(row["assigned_agent"]),
            },
            key="external_ref",
        )
        _insert(
            Contact,
            chunk.contacts,
            lambda row: {**without(row, "customer"), "customer_id": customer_ids[row["customer"]]},
        )
        invoice_ids = _insert(
            Invoice,
            chunk.invoices,
            lambda row: {**without(row, "customer"), "customer_id": customer_ids[row["customer"]]},
            key="number",
        )
        payment_ids = _insert(
            Payment,
            chunk.payments,
            lambda row: {
                **without(row, "key", "customer", "created_by"),
                "customer_id": customer_ids.get(row["customer"]),
                "created_by_id": users.get(row["created_by"]),
            },
            key="key",
        )
        allocation_ids = _insert(
            Allocation,
            chunk.allocations,
            lambda row: {
                **without(row, "key", "payment", "invoice", "created_by"),
                "payment_id": payment_ids[row["payment"]],
                "invoice_id": invoice_ids[row["invoice"]],
                "created_by_id": users.get(row["created_by"]),
            },
            key="key",
        )

        def activity(row: dict) -> dict:
            details = dict(row["details"])
            if row["payment"]:
                details["payment"] = payment_ids[row["payment"]]
            if row["allocation"]:
                details["allocation"] = allocation_ids[row["allocation"]]
            return {
                "customer_id": customer_ids[row["customer"]],
                "invoice_id": invoice_ids[row["invoice"]] if row["invoice"] else None,
                "kind": row["kind"],
                "channel": row["channel"],
                "outcome": row["outcome"],
                "actor_id": users.get(row["actor"]),
                "text": row["text"],
                "details": details,
                "occurred_at": row["occurred_at"],
            }

        _insert(Activity, chunk.activities, activity)


def _insert(model, rows: list[dict], convert, *, key: str | None = None) -> dict:
    """COPY the converted rows; with `key`, return {row[key]: new id}."""
    from accounts import bulk

    if not rows:
        return {}
    converted = [convert(row) for row in rows]
    columns = tuple(converted[0])
    values = [tuple(row.values()) for row in converted]
    if key is None:
        bulk.insert_rows(model, columns, values, returning=False)
        return {}
    stored = bulk.insert_rows(model, columns, values)
    pk_at = model._meta.concrete_fields.index(model._meta.pk)
    return {row[key]: saved[pk_at] for row, saved in zip(rows, stored, strict=True)}


def ledger_is_there(args: argparse.Namespace, counts: dict[str, int]) -> bool:
    return (
        counts["customers"] == args.customers
        and abs(counts["invoices"] - args.invoices) <= REUSE_TOLERANCE * args.invoices
        and counts["allocations"] > 0
    )


# -- the timed steps ------------------------------------------------------------------------


def run_step(command: str, env: dict[str, str]) -> Step:
    """Run `manage.py <command>` under /usr/bin/time -v; its wall time and peak memory."""
    from django.core.management import get_commands

    step = Step(command)
    if step.name not in get_commands():
        step.status = "command missing"
        print(f"\n== {command}: command missing (no manage.py {step.name} in this checkout)")
        return step
    python = BASE_DIR / ".venv" / "bin" / "python"
    argv = [str(python if python.exists() else sys.executable), "manage.py", *shlex.split(command)]
    timer = shutil.which("time", path="/usr/bin")
    if timer:
        argv = [timer, "-v", *argv]
    print(f"\n== {command}")
    started = time.perf_counter()
    # The operator's own command line, run as a list (no shell).
    finished = subprocess.run(  # noqa: S603
        argv, cwd=BASE_DIR, env=env, capture_output=True, text=True, check=False
    )
    step.seconds = time.perf_counter() - started
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", finished.stderr)
    if rss:
        step.peak_mb = int(rss.group(1)) / 1024
    report = re.split(r"^\s*Command being timed:", finished.stderr, flags=re.MULTILINE)[0]
    step.output_tail = "\n".join((finished.stdout + report).strip().splitlines()[-15:])
    print(step.output_tail)
    status = re.search(r"Exit status: (\d+)", finished.stderr)
    code = int(status.group(1)) if status else finished.returncode
    if code != 0:
        step.status = f"failed (exit {code})"
    return step


def step_rows(step: Step, counts: dict[str, int]) -> str:
    """What the step worked through: settled invoices to learn from, or open ones to score
    and the predictions stored."""
    from django.db import connection

    if step.name == "train_predictor":
        return f"{counts['paid']:,} paid invoices"
    if step.name == "score_invoices":
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM cases_invoiceprediction")
            (predictions,) = cursor.fetchone()
        return f"{counts['open']:,} open, {predictions:,} predictions"
    return ""


def print_table(steps: list[Step], seed_seconds: float | None, counts: dict[str, int]) -> None:
    print(
        f"\nLedger: {counts['customers']:,} customers, {counts['invoices']:,} invoices "
        f"({counts['paid']:,} paid, {counts['open']:,} open), {counts['payments']:,} payments, "
        f"{counts['allocations']:,} allocations, {counts['activities']:,} timeline entries"
    )
    print("\n| Step | Seconds | Peak MB | Rows | Target | Result |\n|---|---:|---:|---|---|---|")
    if seed_seconds is not None:
        print(f"| build ledger (COPY) | {seed_seconds:.1f} | | {counts['invoices']:,} invoices "
              "| | |")  # fmt: skip
    for step in steps:
        target = TARGET_SECONDS.get(step.name)
        goal = f"< {target:.0f} s, " if target else ""
        seconds = f"{step.seconds:.1f}" if step.seconds is not None else "-"
        peak = f"{step.peak_mb:,.0f}" if step.peak_mb is not None else "-"
        print(
            f"| `{step.command}` | {seconds} | {peak} | {step.rows} "
            f"| {goal}< {TARGET_PEAK_MB:,.0f} MB | {step.verdict()} |"
        )


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)  # progress shows when piped to a log
    args = parse_args()
    ensure_database(args.database_url)
    env = bench_environment(args.database_url)
    configure_django(env)
    counts = ledger_counts()
    seed_seconds = None
    if args.reuse and ledger_is_there(args, counts):
        print(f"reusing {counts['customers']:,} customers / {counts['invoices']:,} invoices")
    else:
        seed_seconds = build_ledger(args)
        counts = ledger_counts()
        print(f"built in {seed_seconds:.1f} s")
    steps = []
    if not args.build_only:
        for command in args.commands:
            step = run_step(command, env)
            step.rows = step_rows(step, counts) if not step.status else ""
            steps.append(step)
    print_table(steps, seed_seconds, counts)
    return 1 if any(step.status for step in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
