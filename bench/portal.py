"""Benchmark: the debtor portal's home and invoice list at a million invoices, timed in
process for many debtors and then under load against gunicorn (issue #18: under 150 ms at
the 95th percentile; 50 concurrent debtors for a minute with no error).

    .venv/bin/python bench/portal.py --customers 2000 --invoices 10000 --duration 10  # smoke
    .venv/bin/python bench/portal.py                                   # 200k / 1M, 50 x 60 s
    .venv/bin/python bench/portal.py --reuse                           # no reseed
    .venv/bin/python bench/portal.py --reuse --no-load                 # in process only
    .venv/bin/python bench/portal.py --build-only                      # data, no timing

1. Creates the PostgreSQL database if missing, migrates it, and unless --reuse finds the
   requested counts, loads the ledger with COPY (bench/ledger_seed.py: customers with a
   primary contact each, invoices skewed over them, a timeline), then the payments and
   allocations behind the balances.
2. In process (django.test.Client, DEBUG off): --debtors debtors, drawn by invoice (a
   debtor with many invoices gets more e-mails, so more visits), plus the largest account.
   Each logs in through its own portal link (accounts.portal_links.portal_url), then asks
   for the portal home and the invoice list once each, after one warm-up debtor. Prints
   p50/p95/max per page, the queries of the slowest request and, over the target (or with
   --explain), EXPLAIN ANALYZE of its slowest queries.
3. Under load: starts gunicorn (--workers) on 127.0.0.1:--port against the same database,
   logs --concurrency other debtors in through their links over HTTP (each its own
   session cookie), and runs wrk (bench/portal_load.lua) for --duration seconds, each
   debtor asking for the home and the invoice list in turn. Prints requests, requests per
   second, errors (anything but a 200, and socket errors) and p50/p95/p99 latency.

A benchmark, not a test: figures over the target are findings and exit 0; a page that
does not answer 200 with the debtor's own invoices, or any error under load, exits 1.
"""

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from ledger_seed import KEY_ACCOUNT_ID, LedgerSeeder, ledger_counts, truncate_ledger

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_portal"
TARGET_P95_MS = 150.0
EXPLAIN_MS = 5.0
LUA = Path(__file__).resolve().parent / "portal_load.lua"
# The environment of both the in-process client and gunicorn: production settings (DEBUG
# off), plain HTTP on 127.0.0.1.
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
    "DEBUG": "false",
    "ALLOW_INSECURE_SECRET_KEY": "true",  # the bench signs nothing that outlives it
    "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Timing:
    ms: float
    queries: list[tuple[float, str]]

    @property
    def sql_ms(self) -> float:
        return sum(ms for ms, _ in self.queries)


@dataclass
class PageTimes:
    label: str
    runs: list[Timing] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        values = sorted(run.ms for run in self.runs)
        return values[min(len(values) - 1, max(0, round(p / 100 * len(values)) - 1))]

    @property
    def slowest(self) -> Timing:
        return max(self.runs, key=lambda run: run.ms)


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
    parser.add_argument("--build-only", action="store_true", help="build the data and stop")
    parser.add_argument("--seed", type=int, default=42, help="random seed")
    parser.add_argument("--debtors", type=int, default=300, help="debtors timed in process")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN the slowest queries")
    parser.add_argument("--no-load", action="store_true", help="skip gunicorn and wrk")
    parser.add_argument("--concurrency", type=int, default=50, help="debtors at once")
    parser.add_argument("--duration", type=int, default=60, help="seconds of load")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per gunicorn worker (gthread; 1: the sync worker, which a debtor's "
        "idle keep-alive connection holds while they read: only behind a buffering proxy)",
    )
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--port", type=int, default=8642)
    parser.add_argument(
        "--think-ms",
        type=int,
        default=1000,
        help="milliseconds each connection waits before a request, a person reading the page "
        "(0: back to back; PORTAL_REQUESTS_PER_MINUTE then refuses a debtor asking more than "
        "its limit, so raise it to measure raw capacity)",
    )
    parser.add_argument(
        "--cache-url",
        default=os.environ.get("BENCH_CACHE_URL", ""),
        help="CACHE_URL for the app (redis://...): rate limits shared by all workers, as "
        "in production; empty: each process its own",
    )
    args = parser.parse_args()
    if args.customers < 10 or args.invoices < args.customers:
        parser.error("need at least 10 customers and as many invoices as customers")
    if args.concurrency < args.wrk_threads:
        parser.error("--concurrency must be at least --wrk-threads")
    return args


def app_env(args: argparse.Namespace) -> dict:
    # Behind one proxy: the client's address is X-Forwarded-For's (the debtors' own).
    env = {**BENCH_ENV, "DATABASE_URL": args.database_url, "TRUSTED_PROXY_COUNT": "1"}
    if args.cache_url:
        env["CACHE_URL"] = args.cache_url
    return env


def configure_django(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.update(app_env(args))
    import django

    django.setup()


def ensure_database(database_url: str) -> None:
    import dj_database_url
    from psycopg import sql

    db = dj_database_url.parse(database_url)
    if "postgresql" not in db["ENGINE"]:
        sys.exit("the benchmark needs a PostgreSQL database URL")
    with psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if found.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"created database {db['NAME']}")


def seed_if_needed(args: argparse.Namespace) -> None:
    from django.contrib.auth.models import Group, User
    from django.utils import timezone

    group = Group.objects.get(name="Collections agent")
    agent_ids = []
    for n in range(1, 6):
        agent, _ = User.objects.get_or_create(
            username=f"bench_agent_{n}", defaults={"is_staff": True}
        )
        agent.groups.add(group)
        agent_ids.append(agent.pk)
    with psycopg.connect(args.database_url) as conn:
        counts = ledger_counts(conn)
        wanted = {"customers": args.customers, "invoices": args.invoices}
        if args.reuse and counts == wanted:
            print(f"reusing {counts['customers']:,} customers / {counts['invoices']:,} invoices")
            seed_payments(args.database_url, timezone.localdate())  # unless already there
            return
        if any(counts.values()) and "bench" not in conn.info.dbname:
            sys.exit(f"{conn.info.dbname} has a ledger and is not a bench database; not emptying")
        print(f"seeding {args.customers:,} customers / {args.invoices:,} invoices ...")
        started = time.perf_counter()
        truncate_ledger(conn)
        conn.execute("SET work_mem = '256MB'")
        conn.execute("SET maintenance_work_mem = '512MB'")
        LedgerSeeder(
            conn,
            customers=args.customers,
            invoices=args.invoices,
            agent_ids=agent_ids,
            today=timezone.localdate(),
            seed=args.seed,
        ).run()
    seed_payments(args.database_url, timezone.localdate())
    print(f"seeded in {time.perf_counter() - started:.1f} s")


def seed_payments(database_url: str, today) -> None:
    """The payments and allocations behind the seeded balances: a debtor's portal shows
    what was paid and when. ledger_seed writes balances without them; here each invoice
    whose balance is below its amount gets one payment and one allocation of the
    difference, dated from a week before its due date to two months after (never after
    today), in two INSERT ... SELECT statements. Skipped when allocations exist."""
    with psycopg.connect(database_url) as conn:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM accounts_allocation)").fetchone()[0]:
            return
        started = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        paid_on = (
            "LEAST(%(today)s::date, GREATEST(i.issued_on,"
            " i.due_on + ((i.id * 7919) %% 68 - 7)::int))"
        )
        conn.execute(
            "INSERT INTO accounts_payment (id, customer_id, kind, amount, currency,"
            " unallocated_amount, refunded_amount, received_on, method, remittance_reference,"
            " source, external_id, payer_account, payer_name, created_at)"
            " SELECT i.id, i.customer_id, 'payment', i.amount - i.open_balance, i.currency, 0,"
            f" 0, {paid_on}, 'bank_transfer', i.number, 'bench', '', '', '', now()"
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
        for table in ("accounts_payment", "accounts_allocation"):
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )
        conn.commit()
        conn.autocommit = True
        for table in ("accounts_payment", "accounts_allocation"):
            conn.execute(f"VACUUM (ANALYZE) {table}")
        count = conn.execute("SELECT count(*) FROM accounts_allocation").fetchone()[0]
    print(f"  {count:,} payments and allocations in {time.perf_counter() - started:.1f} s")


def pick_debtors(count: int, *, seed: int, exclude=()) -> list[int]:
    """Customer ids of `count` debtors, drawn by invoice (debtors with many invoices are
    e-mailed, and so visit, more often), never one of `exclude`."""
    from accounts.models import Invoice

    rng = random.Random(seed)
    top = Invoice.objects.order_by("-id").values_list("id", flat=True).first() or 0
    chosen, excluded = [], set(exclude)
    tries = 0
    while len(chosen) < count and tries < count * 50:
        tries += 1
        ids = [rng.randint(1, top) for _ in range(count * 2)]
        for customer_id in (
            Invoice.objects.filter(pk__in=ids).values_list("customer_id", flat=True).distinct()
        ):
            if customer_id not in excluded and len(chosen) < count:
                chosen.append(customer_id)
                excluded.add(customer_id)
    return chosen


def portal_link(customer_id: int) -> str:
    """The path and query of the customer's primary contact's portal link."""
    from accounts.models import Contact
    from accounts.portal_links import portal_url

    contact = Contact.objects.filter(customer_id=customer_id).order_by("-is_primary", "id").first()
    url = urlsplit(portal_url(contact))
    return url.path + (f"?{url.query}" if url.query else "")


def invoice_numbers(customer_id: int) -> set[str]:
    """The customer's open invoices' numbers: the invoice list shows open invoices first."""
    from accounts.models import Invoice

    return set(
        Invoice.objects.outstanding()
        .filter(customer_id=customer_id)
        .values_list("number", flat=True)
    )


class QueryTimer:
    """Times each query with perf_counter."""

    def __init__(self):
        self.ms: list[float] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.ms.append((time.perf_counter() - started) * 1000)


def timed_get(client, url: str) -> tuple[object, Timing]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timer = QueryTimer()
    with connection.execute_wrapper(timer), CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url)
        ms = (time.perf_counter() - started) * 1000
    statements = [
        q["sql"] for q in captured.captured_queries if q["sql"] not in ("BEGIN", "COMMIT")
    ]
    return response, Timing(ms, list(zip(timer.ms, statements, strict=False)))


def log_in(client, customer_id: int) -> None:
    """Through the debtor's own link, as from an e-mail: follow it to the portal."""
    response = client.get(portal_link(customer_id), follow=True)
    assert response.status_code == 200, f"customer {customer_id}: the link answered {response}"


def check_invoices_page(customer_id: int, response, numbers: set[str]) -> None:
    assert response.status_code == 200, f"customer {customer_id}: invoices {response}"
    body = response.content.decode()
    assert not numbers or any(n in body for n in numbers), (
        f"customer {customer_id}: the invoice list shows none of the customer's invoices"
    )


def in_process(args: argparse.Namespace) -> tuple[PageTimes, PageTimes]:
    from django.test import Client
    from django.urls import reverse

    home_url, invoices_url = reverse("portal:home"), reverse("portal:invoices")
    debtors = [KEY_ACCOUNT_ID, *pick_debtors(args.debtors, seed=args.seed, exclude=[1])]
    home, invoices = PageTimes("portal home"), PageTimes("invoice list")
    key_account = {}
    # A warm-up debtor: templates, translations, the connection.
    # Each debtor from its own address, as under load (per-client rate limits).
    warm = Client(HTTP_X_FORWARDED_FOR=debtor_address(0))
    log_in(warm, debtors[-1])
    warm.get(home_url)
    warm.get(invoices_url)
    for n, customer_id in enumerate(debtors, start=1):
        client = Client(HTTP_X_FORWARDED_FOR=debtor_address(100_000 + n))
        log_in(client, customer_id)
        response, timing = timed_get(client, home_url)
        assert response.status_code == 200, f"customer {customer_id}: home {response}"
        home.runs.append(timing)
        response, timing2 = timed_get(client, invoices_url)
        check_invoices_page(customer_id, response, invoice_numbers(customer_id))
        invoices.runs.append(timing2)
        if customer_id == KEY_ACCOUNT_ID:
            key_account = {"home": timing.ms, "invoices": timing2.ms}
    print(
        f"\nin process: {len(debtors)} debtors, one request per page each, after a warm-up "
        f"(largest account: home {key_account['home']:.1f} ms, "
        f"invoices {key_account['invoices']:.1f} ms)"
    )
    for page in (home, invoices):
        report(page, args.explain)
    return home, invoices


def report(page: PageTimes, explain_queries: bool) -> None:
    p95 = page.percentile(95)
    slow = page.slowest
    print(
        f"  {page.label:<14} p50 {page.percentile(50):6.1f} ms  p95 {p95:6.1f} ms  "
        f"max {slow.ms:6.1f} ms  mean queries "
        f"{statistics.mean(len(r.queries) for r in page.runs):4.1f}  "
        f"{'PASS' if p95 < TARGET_P95_MS else 'FAIL'} (p95 < {TARGET_P95_MS:.0f} ms)"
    )
    print(f"    slowest request: {len(slow.queries)} queries, SQL {slow.sql_ms:.1f} ms")
    for ms, statement in sorted(slow.queries, reverse=True)[:3]:
        print(f"      {ms:7.2f} ms  {statement[:300]}")
    if explain_queries or p95 >= TARGET_P95_MS:
        for ms, statement in sorted(slow.queries, reverse=True)[:3]:
            if ms >= EXPLAIN_MS:
                print(f"    -- EXPLAIN of the {ms:.1f} ms query:")
                print("      " + explain(statement).replace("\n", "\n      "))


def explain(statement: str) -> str:
    from django.db import connection

    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
        return "(not a read: not explained)"
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}")
        return "\n".join(row[0] for row in cursor.fetchall())


# --- Under load ----------------------------------------------------------------------------


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not listen on {port} within {seconds:.0f} s")


def debtor_address(n: int) -> str:
    """A distinct client address for debtor n (sent as X-Forwarded-For)."""
    return f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256 + 1}"


def http_get(port: int, path: str, cookies: dict, address: str) -> tuple[int, dict, list[str]]:
    """One GET to 127.0.0.1 without following redirects: (status, headers, Set-Cookie)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": "127.0.0.1", "X-Forwarded-For": address}
    if cookies:
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    response.read()
    set_cookies = response.headers.get_all("Set-Cookie") or []
    conn.close()
    return response.status, dict(response.headers), set_cookies


def http_log_in(port: int, link: str, home: str, address: str) -> str:
    """Follow a portal link over HTTP as a browser would; the Cookie header of the session."""
    cookies: dict = {}
    path = link
    for _ in range(5):
        status, headers, set_cookies = http_get(port, path, cookies, address)
        for header in set_cookies:
            name, _, rest = header.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        if status in (301, 302, 303, 307, 308):
            location = urlsplit(headers["Location"])
            path = location.path + (f"?{location.query}" if location.query else "")
            continue
        break
    status, _headers, _set = http_get(port, home, cookies, address)
    if status != 200:
        raise RuntimeError(f"logged in through {link}, the home page answered {status}")
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def warm_up(args, home: str, invoices: str, cookies: list[str], addresses: list[str]) -> None:
    """Requests at once, a few rounds, so that every worker has loaded its URLs, templates
    and connection before the clock starts (a cold worker's first request takes seconds)."""
    from concurrent.futures import ThreadPoolExecutor

    def get(i: int) -> int:
        j = i % len(cookies)
        jar = dict(part.split("=", 1) for part in cookies[j].split("; ") if "=" in part)
        return http_get(args.port, (home, invoices)[i % 2], jar, addresses[j])[0]

    with ThreadPoolExecutor(max_workers=args.workers * 2) as pool:
        for _ in range(3):
            statuses = list(pool.map(get, range(args.workers * 4)))
            if any(status != 200 for status in statuses):
                raise RuntimeError(f"warm-up answered {sorted(set(statuses))}")


def under_load(args: argparse.Namespace, exclude: list[int]) -> dict:
    from django.urls import reverse

    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    home, invoices = reverse("portal:home"), reverse("portal:invoices")
    debtors = pick_debtors(args.concurrency, seed=args.seed + 1, exclude=exclude)
    links = [portal_link(customer_id) for customer_id in debtors]
    gunicorn = [
        str(Path(sys.executable).parent / "gunicorn"),
        "collections_mgmt.wsgi:application",
        "--bind",
        f"127.0.0.1:{args.port}",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--keep-alive",
        "5",
        "--timeout",
        "60",
        "--log-level",
        "warning",
    ]
    with tempfile.TemporaryDirectory() as folder:
        log_path = Path(folder) / "gunicorn.log"
        with log_path.open("w") as log:
            server = subprocess.Popen(  # noqa: S603 - our own venv's gunicorn
                gunicorn,
                cwd=BASE_DIR,
                env={**os.environ, **app_env(args)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for_port(args.port, server)
            addresses = [debtor_address(n) for n in range(len(links))]
            cookies = [
                http_log_in(args.port, link, home, address)
                for link, address in zip(links, addresses, strict=True)
            ]
            warm_up(args, home, invoices, cookies, addresses)
            cookie_file = Path(folder) / "debtors.txt"
            cookie_file.write_text(
                "".join(f"{a}\t{c}\n" for a, c in zip(addresses, cookies, strict=True))
            )
            print(
                f"\nunder load: gunicorn, {args.workers} workers x {args.threads} threads on "
                f"127.0.0.1:{args.port}; "
                f"wrk, {args.concurrency} debtors (each its own session) for {args.duration} s, "
                + (f"{args.think_ms} ms between requests" if args.think_ms else "back to back")
            )
            result = subprocess.run(  # noqa: S603 - wrk with our own arguments
                [
                    wrk,
                    "-t",
                    str(args.wrk_threads),
                    "-c",
                    str(args.concurrency),
                    "-d",
                    f"{args.duration}s",
                    "--timeout",
                    "10s",
                    "-s",
                    str(LUA),
                    f"http://127.0.0.1:{args.port}",
                    "--",
                    str(cookie_file),
                    str(args.wrk_threads),
                    home,
                    invoices,
                    str(args.think_ms),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        server_log = log_path.read_text()
    line = next((x for x in result.stdout.splitlines() if x.startswith("PORTAL_LOAD ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout}{result.stderr}")
    figures = json.loads(line.removeprefix("PORTAL_LOAD "))
    figures["socket_errors"] = sum(figures[k] for k in ("connect", "read", "write", "timeout"))
    figures["errors"] = figures["not_200"] + figures["socket_errors"]
    print(
        f"  {figures['requests']:,} requests in {figures['seconds']:.1f} s "
        f"({figures['requests'] / figures['seconds']:.0f}/s); errors {figures['errors']} "
        f"(not 200: {figures['not_200']} {figures['statuses'].strip()}; socket: "
        f"{figures['socket_errors']})"
    )
    print(
        f"  latency p50 {figures['p50_ms']:.1f} ms  p95 {figures['p95_ms']:.1f} ms  "
        f"p99 {figures['p99_ms']:.1f} ms  max {figures['max_ms']:.1f} ms  "
        f"{'PASS' if figures['p95_ms'] < TARGET_P95_MS else 'FAIL'} (p95 < "
        f"{TARGET_P95_MS:.0f} ms)"
    )
    if figures["errors"] and server_log.strip():
        print("  gunicorn's log (tail):\n    " + "\n    ".join(server_log.splitlines()[-20:]))
    return figures


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    configure_django(args)

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    seed_if_needed(args)
    if args.build_only:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT version(), (SELECT count(*) FROM accounts_invoice), "
            "(SELECT count(*) FROM accounts_customer)"
        )
        version, invoices, customers = cursor.fetchone()
    print(f"{version.split(' on ')[0]}; {customers:,} customers, {invoices:,} invoices")
    home, invoice_list = in_process(args)
    failed = False
    if not args.no_load:
        figures = under_load(args, exclude=[KEY_ACCOUNT_ID])
        failed = figures["errors"] > 0
    print(
        f"\nsummary: in process p95 home {home.percentile(95):.1f} ms, invoice list "
        f"{invoice_list.percentile(95):.1f} ms (target {TARGET_P95_MS:.0f} ms)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (AssertionError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
