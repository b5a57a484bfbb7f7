"""Benchmark: the admin's invoice and customer pages on a million-invoice PostgreSQL ledger.

Seeds (or reuses) a bench database, then requests each page as a Collections manager
through django.test.Client and prints median/max wall time, the query count and the
slowest query, ending with a Markdown table for bench/README.md. See bench/README.md.

    .venv/bin/python bench/admin_changelist.py --customers 2000 --invoices 10000   # smoke
    .venv/bin/python bench/admin_changelist.py                                    # 200k/1M
    .venv/bin/python bench/admin_changelist.py --reuse                             # no reseed
"""

import argparse
import os
import re
import resource
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg
from ledger_seed import (
    KEY_ACCOUNT_ID,
    NEW_CHAIN_NAME,
    LedgerSeeder,
    contact_email,
    customer_name,
    invoice_number,
    ledger_counts,
    truncate_ledger,
)
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench"
TARGET_MS = 300.0
EXPLAIN_MS = 5.0  # --explain shows plans of queries at least this slow
MANAGER = "bench_manager"
AGENTS = [f"bench_agent_{n}" for n in range(1, 6)]
INVOICE_NUMBER = re.compile(r"INV-\d{7}")


@dataclass
class Page:
    label: str
    url: str
    expect: list[str | re.Pattern] = field(default_factory=list)  # text, or HTML patterns
    is_changelist: bool = True  # expectations are then looked for in the result table only
    has_results: bool = True  # False: the changelist must say it found nothing


@dataclass
class Run:
    ms: float
    queries: list[tuple[float, str]]  # (ms, SQL as sent) in execution order

    @property
    def sql_ms(self) -> float:
        return sum(ms for ms, _ in self.queries)

    @property
    def slowest(self) -> tuple[float, str]:
        return max(self.queries)


@dataclass
class Result:
    page: Page
    runs: list[Run]

    @property
    def median_ms(self) -> float:
        return statistics.median(run.ms for run in self.runs)

    @property
    def max_ms(self) -> float:
        return max(run.ms for run in self.runs)

    @property
    def typical(self) -> Run:
        """The run at the median, whose queries stand for the page."""
        return sorted(self.runs, key=lambda run: run.ms)[len(self.runs) // 2]

    @property
    def passed(self) -> bool:
        return self.median_ms < TARGET_MS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to (re)create and seed; it is emptied unless --reuse",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data if the counts already match"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per page")
    parser.add_argument("--seed", type=int, default=42, help="random seed for the ledger")
    parser.add_argument(
        "--explain",
        action="store_true",
        help=f"EXPLAIN ANALYZE queries over {EXPLAIN_MS:.0f} ms on every page, "
        "not only on pages over the target",
    )
    args = parser.parse_args()
    if args.customers < 10 or args.invoices < args.customers:
        parser.error("need at least 10 customers and as many invoices as customers")
    return args


def configure_django(database_url: str) -> None:
    """Production-like settings (DEBUG off) that the test client can talk to."""
    sys.path.insert(0, str(BASE_DIR))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "ALLOW_INSECURE_SECRET_KEY": "true",  # the bench signs nothing that outlives it
            "ALLOWED_HOSTS": "testserver,127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",  # the test client speaks plain HTTP
        }
    )
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    import django

    django.setup()


def ensure_database(database_url: str) -> None:
    import dj_database_url

    db = dj_database_url.parse(database_url)
    if "postgresql" not in db["ENGINE"]:
        sys.exit("the benchmark needs a PostgreSQL DATABASE_URL")
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


def ensure_users() -> tuple[object, list[int]]:
    """Five agents who own the customers and the manager the pages are timed as."""
    from django.contrib.auth.models import Group, User

    agent_group = Group.objects.get(name="Collections agent")
    manager_group = Group.objects.get(name="Collections manager")
    agent_ids = []
    for username in AGENTS:
        agent, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
        agent.groups.add(agent_group)
        agent_ids.append(agent.pk)
    manager, _ = User.objects.get_or_create(username=MANAGER, defaults={"is_staff": True})
    manager.is_staff, manager.is_superuser = True, False
    manager.set_unusable_password()
    manager.save()
    manager.groups.add(manager_group)
    return manager, agent_ids


def seed_if_needed(args: argparse.Namespace, agent_ids: list[int]) -> float | None:
    """Seed unless --reuse and the ledger already has the requested size. Returns seconds."""
    from django.utils import timezone

    with psycopg.connect(args.database_url) as conn:
        counts = ledger_counts(conn)
        wanted = {"customers": args.customers, "invoices": args.invoices}
        if args.reuse and counts == wanted:
            print(f"reusing {counts['customers']:,} customers / {counts['invoices']:,} invoices")
            return None
        if any(counts.values()) and "bench" not in conn.info.dbname:
            sys.exit(
                f"{conn.info.dbname} has a ledger and is not a bench database; not emptying it"
            )
        print(f"seeding {args.customers:,} customers / {args.invoices:,} invoices ...")
        started = time.perf_counter()
        truncate_ledger(conn)
        conn.execute("SET work_mem = '256MB'")  # GIN pending-list merges during COPY
        conn.execute("SET maintenance_work_mem = '512MB'")  # VACUUM and ANALYZE
        LedgerSeeder(
            conn,
            customers=args.customers,
            invoices=args.invoices,
            agent_ids=agent_ids,
            today=timezone.localdate(),
            seed=args.seed,
        ).run()
        elapsed = time.perf_counter() - started
    print(f"seeded in {elapsed:.1f} s")
    return elapsed


def pages(args: argparse.Namespace) -> list[Page]:
    """The pages to time. Each names what must appear in its results, so a broken or empty
    page cannot pass for a fast one."""
    from django.contrib.auth.models import Group, User

    from accounts.models import Customer, Invoice

    # Timed as staff, not as a superuser, so every permission check runs as it does for users.
    manager = User.objects.get(username=MANAGER)
    assert not manager.is_superuser
    assert manager.groups.filter(pk=Group.objects.get(name="Collections manager").pk).exists()

    middle = Customer.objects.get(pk=args.customers // 2)
    assert middle.name == customer_name(middle.pk, args.customers), (
        "the bench data is not from ledger_seed"
    )
    words = middle.name.split()
    fragment = f"{words[0]} {words[1][:4]}".lower()  # "hartwell timb"
    broad_word = words[1].lower()  # "timber": thousands of customers
    chain_word = NEW_CHAIN_NAME.split()[0].lower()  # a hundred customers, recent invoices
    invoice = Invoice.objects.select_related("customer").get(pk=args.invoices // 3)
    email = contact_email(invoice.customer_id, args.customers)
    key_account = Customer.objects.get(pk=KEY_ACCOUNT_ID)
    deep_page = min(100, max(2, args.invoices // 50 // 2))
    invoices = "/admin/accounts/invoice/"
    customers = "/admin/accounts/customer/"
    return [
        Page("Invoices: default view", invoices, [INVOICE_NUMBER]),
        Page("Invoices: bucket 31-60", f"{invoices}?bucket=31-60", [INVOICE_NUMBER, "31-60"]),
        Page("Invoices: bucket 120+", f"{invoices}?bucket=120%2B", [INVOICE_NUMBER, "Over 120"]),
        Page(
            f"Invoices: search name fragment “{fragment}”",
            f"{invoices}?q={quote(fragment)}",
            [INVOICE_NUMBER, re.compile(re.escape(fragment), re.IGNORECASE)],
        ),
        Page(
            f"Invoices: search common word “{broad_word}”",
            f"{invoices}?q={quote(broad_word)}",
            [INVOICE_NUMBER, re.compile(re.escape(broad_word), re.IGNORECASE)],
        ),
        Page(
            f"Invoices: search new chain “{chain_word}”",
            f"{invoices}?q={quote(chain_word)}",
            [INVOICE_NUMBER, NEW_CHAIN_NAME],
        ),
        Page(
            "Invoices: search two letters “zz” (no match)",
            f"{invoices}?q=zz",
            has_results=False,
        ),
        Page(
            "Invoices: search exact number",
            f"{invoices}?q={quote(invoice.number)}",
            [invoice_number(invoice.pk)],
        ),
        Page(
            "Invoices: search contact e-mail",
            f"{invoices}?q={quote(email)}",
            [INVOICE_NUMBER, invoice.customer.name],
        ),
        Page(f"Invoices: page {deep_page}", f"{invoices}?p={deep_page}", [INVOICE_NUMBER]),
        Page("Customers: default view", customers, [Customer.objects.first().name]),
        Page(
            f"Customers: search “{fragment}”",
            f"{customers}?q={quote(fragment)}",
            [middle.name],
        ),
        Page(
            "Customer change page (long timeline)",
            f"{customers}{key_account.pk}/change/",
            [key_account.name, re.compile('id="timeline"'), INVOICE_NUMBER],
            is_changelist=False,
        ),
    ]


def check(page: Page, response) -> None:
    """The page answered 200 and its results (not just the echoed search box) hold what we
    expect."""
    from django.utils.html import escape

    assert response.status_code == 200, f"{page.url} answered {response.status_code}"
    body = response.content.decode()
    if page.is_changelist:
        results_at = body.find('id="result_list"')
        if not page.has_results:
            assert results_at < 0, f"{page.url} found something"
            assert re.search(r'class="paginator">\s*0 ', body), f"{page.url} shows no count"
            return
        assert results_at >= 0, f"{page.url} shows no result list"
        body = body[results_at : body.find("</table>", results_at)]
    for expected in page.expect:
        if isinstance(expected, re.Pattern):
            assert expected.search(body), f"{page.url}: no match for {expected.pattern!r}"
        else:
            assert escape(expected) in body, f"{page.url}: {expected!r} not on the page"


class QueryTimer:
    """Times each query with perf_counter (the debug log rounds to whole milliseconds)."""

    def __init__(self):
        self.ms: list[float] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ms.append((time.perf_counter() - started) * 1000)


def measure(client, page: Page, repeat: int) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    check(page, client.get(page.url))  # warm-up: caches, template loading, connection
    runs = []
    for _ in range(repeat):
        timer = QueryTimer()
        with connection.execute_wrapper(timer), CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(page.url)
            elapsed_ms = (time.perf_counter() - started) * 1000
        check(page, response)
        # BEGIN/COMMIT are logged by Django but never pass the timer (a page that writes,
        # such as the access log's one INSERT, runs in a transaction).
        statements = [
            query["sql"]
            for query in captured.captured_queries
            if query["sql"] not in ("BEGIN", "COMMIT", "ROLLBACK")
        ]
        runs.append(Run(elapsed_ms, list(zip(timer.ms, statements, strict=True))))
    return Result(page, runs)


def explain(statement: str) -> str:
    from django.db import connection

    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
        return "(not a read: not explained, EXPLAIN ANALYZE would run it)"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
        return "\n".join(row[0] for row in cursor.fetchall())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def markdown_table(results: list[Result]) -> str:
    lines = [
        "| Page | Median ms | Max ms | Queries | SQL ms | Slowest query ms "
        f"| < {TARGET_MS:.0f} ms |",
        "|---|---:|---:|---:|---:|---:|:---:|",
    ]
    for result in results:
        run = result.typical
        lines.append(
            f"| {result.page.label} | {result.median_ms:.0f} | {result.max_ms:.0f} "
            f"| {len(run.queries)} | {run.sql_ms:.0f} | {run.slowest[0]:.0f} "
            f"| {'PASS' if result.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def report(result: Result, explain_queries: bool) -> None:
    run = result.typical
    print(
        f"{result.page.label:<46} median {result.median_ms:6.1f} ms  max {result.max_ms:6.1f} ms"
        f"  {len(run.queries):2d} queries  SQL {run.sql_ms:6.1f} ms"
        f"  slowest {run.slowest[0]:6.1f} ms  {'PASS' if result.passed else 'FAIL'}"
    )
    if not (explain_queries or not result.passed):
        return
    slow = sorted((query for query in run.queries if query[0] >= EXPLAIN_MS), reverse=True)
    for ms, statement in slow[:3]:
        print(f"  -- {ms:.1f} ms: {statement}")
        print("  " + explain(statement).replace("\n", "\n  "))


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    configure_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", interactive=False, verbosity=0)
    manager, agent_ids = ensure_users()
    seed_if_needed(args, agent_ids)
    print(f"peak RSS after setup: {peak_rss_mb():.0f} MB")

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0].split(" on ")[0])

    client = Client()
    client.force_login(manager)
    results = []
    for page in pages(args):
        result = measure(client, page, args.repeat)
        results.append(result)
        report(result, args.explain)

    print()
    print(
        f"{args.customers:,} customers, {args.invoices:,} invoices; "
        f"median of {args.repeat} runs after one warm-up, as a Collections manager"
    )
    print()
    print(markdown_table(results))
    print()
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0  # a benchmark reports; FAIL rows are findings, not a broken run


if __name__ == "__main__":
    sys.exit(main())
