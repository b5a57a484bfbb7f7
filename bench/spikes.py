"""Benchmark: a month-end spike of signed webhooks and bulk invoice posts against gunicorn.

Starts gunicorn (the product's WSGI app) and Celery workers on Redis against a fresh
PostgreSQL bench database, then fires, spread evenly over one minute from 127.0.0.1 only,
10,000 signed payment webhooks (1 in 100 carrying a NUL character, which must be refused
and dead-lettered) and 100 bulk invoice posts of 1,000 invoices each (`Prefer:
respond-async`; some items invalid, the last ten posts repeating earlier ones). It measures
each acknowledgement's latency from the moment the request was due (so waiting for a free
connection counts), waits for the workers to apply everything, and checks that nothing
was lost:

    events sent     = acknowledged (202 stored + 400 refused)       (no 5xx, no time-out)
    events received = processed + rejected                        (inbox + dead-letter list)
    invoices posted = created + updated + unchanged + rejected    (the bulk batches)

    .venv/bin/python bench/spikes.py                      # the full spike (about 5 minutes)
    .venv/bin/python bench/spikes.py --events 1000 --bulk-posts 10 --seconds 10  # smoke

Needs PostgreSQL and Redis on 127.0.0.1 and gunicorn in the venv (requirements.txt). The
Redis database given (`--broker-url`) is flushed first: give it one nobody else uses.
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import psycopg
import redis
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_spikes"
SECRET = "bench-spike-webhook-secret"  # noqa: S105 (signs the bench's own requests)
TARGET_P95_MS = 200.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000, help="signed webhooks to send")
    parser.add_argument("--bulk-posts", type=int, default=100, help="bulk invoice posts")
    parser.add_argument("--bulk-size", type=int, default=1000, help="invoices per bulk post")
    parser.add_argument("--seconds", type=float, default=60.0, help="spread the spike over")
    parser.add_argument("--reject-every", type=int, default=100, help="1 event in N has a NUL")
    parser.add_argument("--connections", type=int, default=100, help="client connection pool")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--celery-concurrency", type=int, default=2)
    parser.add_argument(
        "--drain-per-second",
        default="100",
        help="INBOX_DRAIN_PER_SECOND: events a running drain applies per second",
    )
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run the Celery workers at this nice level (10: the web's CPU comes first, as "
        "when workers have machines of their own)",
    )
    parser.add_argument(
        "--bulk-rate-limit", default="30/m", help="INBOX_BULK_RATE_LIMIT for the workers"
    )
    parser.add_argument("--drain-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_SPIKES_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to drop and recreate; its name must contain 'bench'",
    )
    parser.add_argument(
        "--broker-url",
        default=os.environ.get("BENCH_SPIKES_BROKER_URL", "redis://127.0.0.1:6379/7"),
        help="Redis database for Celery (flushed first)",
    )
    return parser.parse_args()


# --- setting up ------------------------------------------------------------------------


def environment(args) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
        "DATABASE_URL": args.database_url,
        "CELERY_BROKER_URL": args.broker_url,
        "DEBUG": "false",
        "ALLOW_INSECURE_SECRET_KEY": "true",  # the bench signs nothing that outlives it
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "PAYMENTS_WEBHOOK_SECRET": SECRET,
        "INBOX_DRAIN_PER_SECOND": args.drain_per_second,
        "INBOX_BULK_RATE_LIMIT": args.bulk_rate_limit,
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BASE_DIR),
    }


def recreate_database(database_url: str) -> None:
    import dj_database_url

    db = dj_database_url.parse(database_url)
    if "bench" not in db["NAME"]:
        sys.exit("refusing to drop a database whose name does not contain 'bench'")
    with psycopg.connect(
        host=db["HOST"] or None,
        port=db["PORT"] or None,
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        name = sql.Identifier(db["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def prepare(args) -> str:
    """A fresh database, migrated, with a finance user; returns that user's API token."""
    recreate_database(args.database_url)
    env = environment(args)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR,
        env=env,
        check=True,
    )
    os.environ.update({k: v for k, v in env.items() if k != "PYTHONPATH"})
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.contrib.auth.models import Group, User

    from staff.models import ApiToken

    user = User.objects.create_user("bench-finance", password=None, is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    return ApiToken.objects.create(user=user, expiry=dt.timedelta(days=1))[1]


def start(args) -> list[subprocess.Popen]:
    env = environment(args)
    redis.Redis.from_url(args.broker_url).flushdb()
    log = open(BASE_DIR / "var" / "bench-spikes.log", "w")  # noqa: SIM115 (kept for the run)
    worker = subprocess.Popen(  # noqa: S603 (our own venv's celery)
        [
            str(VENV_BIN / "celery"),
            "-A",
            "collections_mgmt",
            "worker",
            "--concurrency",
            str(args.celery_concurrency),
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=lambda: os.nice(args.worker_nice),
    )
    web = subprocess.Popen(  # noqa: S603 (our own venv's gunicorn)
        [
            str(VENV_BIN / "gunicorn"),
            "collections_mgmt.wsgi",
            "--workers",
            str(args.web_workers),
            "--threads",
            str(args.web_threads),
            "--bind",
            f"127.0.0.1:{args.port}",
            "--preload",
            "--keep-alive",
            "30",  # longer than the client keeps an idle connection: no reset mid-reuse
            "--backlog",
            "2048",
            "--log-level",
            "warning",
        ],
        cwd=BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    return [worker, web]


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


async def wait_until_up(base: str) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(120):
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status in (200, 503):
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
    sys.exit("gunicorn did not come up; see var/bench-spikes.log")


# --- the spike -------------------------------------------------------------------------


def webhook_body(index: int, reject_every: int) -> bytes:
    event = {
        "id": f"evt_spike_{index}",
        "type": "payment.succeeded",
        "amount": f"{10 + index % 90}.{index % 100:02d}",
        "currency": "USD",
        "invoice_number": f"SPK-{index % 90:03d}-{index % 1000:04d}",
        "reference": f"pay_spike_{index}",
    }
    if reject_every and index % reject_every == reject_every - 1:
        event["invoice_number"] += "\u0000"
    return json.dumps(event).encode()


def bulk_body(post: int, size: int) -> bytes:
    """Posts 0-89: new invoices (0.5% invalid); posts from 90 on repeat post N-90, with
    one invoice in ten moved to a later due date."""
    original = post - 90 if post >= 90 else post
    items = []
    for j in range(size):
        item = {
            "number": f"SPK-{original:03d}-{j:04d}",
            "customer_ref": f"SPK-C-{original:03d}-{j % 20:02d}",
            "customer_name": f"Spike customer {original}-{j % 20}",
            "issued_on": "2026-10-01",
            "due_on": "2026-10-31",
            "currency": "USD",
            "amount": f"{100 + j}.00",
        }
        if j % 200 == 199:
            item["currency"] = "XYZ"  # rejected, named by index and field
        if post >= 90 and j % 10 == 0:
            item["due_on"] = "2026-11-30"
        items.append(item)
    return json.dumps({"source": "bench-spike", "invoices": items}).encode()


async def fire(args, token: str) -> dict:
    base = f"http://127.0.0.1:{args.port}"
    await wait_until_up(base)
    plan = [("event", i) for i in range(args.events)]
    every = max(1, len(plan) // max(1, args.bulk_posts))
    for post in range(args.bulk_posts):
        plan.insert(min(len(plan), post * (every + 1)), ("bulk", post))
    gap = args.seconds / max(1, len(plan))
    bulk_bodies = {post: bulk_body(post, args.bulk_size) for post in range(args.bulk_posts)}
    results = {"event": [], "bulk": []}
    statuses: dict[tuple[str, int], int] = {}
    failures: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def send(kind: str, number: int, due: float) -> None:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            started = time.perf_counter()
            if kind == "event":
                body = webhook_body(number, args.reject_every)
                stamp = str(int(time.time()))
                digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256)
                url = f"{base}/integrations/payments/webhook/"
                headers = {
                    "Content-Type": "application/json",
                    "X-Timestamp": stamp,
                    "X-Signature": "sha256=" + digest.hexdigest(),
                }
            else:
                body = bulk_bodies[number]
                url = f"{base}/api/v1/invoices/bulk/"
                headers = {
                    "Content-Type": "application/json",
                    "Authorization": f"Token {token}",
                    "Prefer": "respond-async",
                }
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    status = response.status
            except (TimeoutError, aiohttp.ClientError) as exc:
                status = 0
                failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
            # From when it was due: a request that waited for a connection counts it.
            results[kind].append((time.perf_counter() - min(started, due)) * 1000)
            statuses[(kind, status)] = statuses.get((kind, status), 0) + 1

        begin = time.perf_counter() + 0.5
        await asyncio.gather(
            *(send(kind, number, begin + i * gap) for i, (kind, number) in enumerate(plan))
        )
        sent_seconds = time.perf_counter() - begin
    return {
        "latency": results,
        "statuses": statuses,
        "failures": failures,
        "sent_seconds": sent_seconds,
    }


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


# --- after the spike ---------------------------------------------------------------------


def drain(timeout: float) -> float:
    """Wait until no inbox item is waiting and no API batch is running; returns seconds."""
    from django.db import connection

    from integrations.models import InboxItem, IntakeBatch

    begin = time.perf_counter()
    while time.perf_counter() - begin < timeout:
        waiting = InboxItem.objects.filter(status=InboxItem.Status.RECEIVED).count()
        running = IntakeBatch.objects.filter(
            source=IntakeBatch.Source.API, status=IntakeBatch.Status.RUNNING
        ).count()
        if waiting == 0 and running == 0:
            return time.perf_counter() - begin
        print(f"  ... {waiting} stored items waiting, {running} bulk batches loading", flush=True)
        connection.close()
        time.sleep(5)
    return float("nan")


def counts() -> dict:
    from django.db.models import Count, Sum

    from integrations.models import InboxItem, IntakeBatch, Rejection, WebhookEvent

    items = InboxItem.objects.filter(source=InboxItem.Source.PAYMENTS_WEBHOOK)
    api = IntakeBatch.objects.filter(source=IntakeBatch.Source.API).aggregate(
        read=Sum("rows_read"),
        created=Sum("created"),
        updated=Sum("updated"),
        unchanged=Sum("unchanged"),
        rejected=Sum("rejected"),
    )
    return {
        "events_stored": items.count(),
        "events_processed": items.filter(status=InboxItem.Status.PROCESSED).count(),
        "events_failed": items.filter(status=InboxItem.Status.FAILED).count(),
        "events_refused_dead_lettered": Rejection.objects.filter(
            batch__source=IntakeBatch.Source.WEBHOOK, raw__has_key="body"
        ).count(),
        "webhook_events_by_status": {
            row["status"]: row["n"]
            for row in WebhookEvent.objects.values("status").annotate(n=Count("id"))
        },
        "bulk_batches": IntakeBatch.objects.filter(source=IntakeBatch.Source.API).count(),
        "bulk_batches_completed": IntakeBatch.objects.filter(
            source=IntakeBatch.Source.API, status=IntakeBatch.Status.COMPLETED
        ).count(),
        "invoices": {k: v or 0 for k, v in api.items()},
    }


def latency_table(fired: dict) -> None:
    statuses = fired["statuses"]
    print()
    print(f"sent in {fired['sent_seconds']:.1f} s")
    print("| requests | n | p50 ms | p95 ms | p99 ms | max ms | answers |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    every = fired["latency"]["event"] + fired["latency"]["bulk"]
    for label, values, kind in (
        ("webhooks", fired["latency"]["event"], "event"),
        ("bulk posts (1,000 invoices)", fired["latency"]["bulk"], "bulk"),
        ("all", every, None),
    ):
        answers = ", ".join(
            f"{status or 'error'}: {n}"
            for (k, status), n in sorted(statuses.items())
            if (kind is None or k == kind)
        )
        print(
            f"| {label} | {len(values)} | {percentile(values, 0.5):.0f} | "
            f"{percentile(values, 0.95):.0f} | {percentile(values, 0.99):.0f} | "
            f"{max(values, default=float('nan')):.0f} | {answers} |"
        )
    if fired["failures"]:
        print(f"client-side failures: {fired['failures']}")
    print(flush=True)


def report(args, fired: dict, drained: float, final: dict) -> bool:
    statuses = fired["statuses"]
    every = fired["latency"]["event"] + fired["latency"]["bulk"]
    print(f"processing finished {drained:.1f} s after sending ended")
    print()
    print(json.dumps(final, indent=2))
    accepted = statuses.get(("event", 202), 0)
    refused = statuses.get(("event", 400), 0)
    errors = sum(n for (k, status), n in statuses.items() if status == 0 or status >= 500)
    invoices = final["invoices"]
    checks = {
        "no errors or time-outs": errors == 0,
        "every event acknowledged (202 or 400)": accepted + refused == args.events,
        "stored = acknowledged 202": final["events_stored"] == accepted,
        "received = processed + rejected": accepted + refused
        == final["events_processed"]
        + final["events_failed"]
        + final["events_refused_dead_lettered"],
        "every bulk post answered 202": statuses.get(("bulk", 202), 0) == args.bulk_posts,
        "invoices posted = created + updated + unchanged + rejected": args.bulk_posts
        * args.bulk_size
        == invoices["created"] + invoices["updated"] + invoices["unchanged"] + invoices["rejected"]
        == invoices["read"],
        f"p95 acknowledgement under {TARGET_P95_MS:.0f} ms": percentile(every, 0.95)
        < TARGET_P95_MS,
    }
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    return all(checks.values())


def main() -> None:
    args = parse_args()
    (BASE_DIR / "var").mkdir(exist_ok=True)
    print(f"preparing {args.database_url} ...")
    token = prepare(args)
    processes = start(args)
    try:
        print(
            f"firing {args.events} webhooks and {args.bulk_posts} bulk posts of "
            f"{args.bulk_size} invoices over {args.seconds:.0f} s at 127.0.0.1:{args.port} ..."
        )
        fired = asyncio.run(fire(args, token))
        latency_table(fired)
        print("waiting for the workers ...")
        drained = drain(args.drain_timeout)
        final = counts()
    finally:
        stop(processes)
    ok = report(args, fired, drained, final)
    print(
        f"load average now: {os.getloadavg()}; drain {args.drain_per_second}/s, "
        f"bulk {args.bulk_rate_limit}; web {args.web_workers}x{args.web_threads}, "
        f"celery concurrency {args.celery_concurrency} at nice {args.worker_nice}"
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
