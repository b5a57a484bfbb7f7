"""Benchmark: the nightly dunning planner and the sender on a million-invoice ledger.

Seeds (or reuses) a PostgreSQL bench database with bench/ledger_seed.py's COPY loader
(due dates spread over 18 months back and six weeks ahead, so every night has the
invoices of one due date at each step), then times `dunning.planner.plan(on=...)` for a
first night (which catches up the missed days), the next night, and the same night again
(which must plan nothing), and `dunning.sender.send_due` through the local outbox e-mail
backend, in one process and in two processes side by side. It checks that no notice went
out twice and none was left behind, and prints a table for bench/README.md.

    .venv/bin/python bench/dunning.py --customers 2000 --invoices 10000 --send 200  # smoke
    .venv/bin/python bench/dunning.py                       # 200k customers / 1M invoices
    .venv/bin/python bench/dunning.py --reuse --profile     # keep the ledger; pyinstrument
"""

import argparse
import contextlib
import cProfile
import datetime as dt
import io
import multiprocessing
import os
import pstats
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from admin_changelist import configure_django, ensure_database, ensure_users
from ledger_seed import AHEAD_DAYS, LedgerSeeder, ledger_counts, truncate_ledger
from reconcile import EMPTY_BY_TYPE, default_unseeded_columns

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_dunning"
TARGET_PLAN_SECONDS = 60.0
PARKED_UNTIL = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # notices kept out of a send phase
SEND_HOUR_UTC = 17  # 09:00-19:00 in the seeded customers' zones (Los Angeles to Berlin)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DUNNING_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to (re)create and seed; its name must contain 'bench'",
    )
    parser.add_argument("--reuse", action="store_true", help="keep a ledger of the right size")
    parser.add_argument("--seed", type=int, default=42, help="random seed for the ledger")
    parser.add_argument("--send", type=int, default=2000, help="e-mail notices per sending phase")
    parser.add_argument(
        "--history-nights",
        type=int,
        default=365,
        help="nights of earlier notices already in the outbox (customers / 40 a night)",
    )
    parser.add_argument("--workers", type=int, default=2, help="processes in the parallel phase")
    parser.add_argument(
        "--profile", action="store_true", help="pyinstrument the next night's plan and the sender"
    )
    args = parser.parse_args()
    if args.customers < 10 or args.invoices < args.customers:
        parser.error("need at least 10 customers and as many invoices as customers")
    return args


def reset_peak_rss() -> None:
    """Start a new peak-RSS measurement (Linux: VmHWM is reset by writing 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """Peak RSS since the last reset_peak_rss (or since the start, off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Row:
    phase: str
    evaluated: int | None
    notices: int
    seconds: float
    peak_rss_mb: float
    queries: int
    note: str = ""

    @property
    def per_second(self) -> float:
        return self.notices / self.seconds if self.seconds else 0.0


class Profile:
    """pyinstrument when it is installed, else the standard library's cProfile."""

    def __init__(self):
        try:
            from pyinstrument import Profiler
        except ImportError:
            self.pyinstrument, self.cprofile = None, cProfile.Profile()
            self.cprofile.enable()
        else:
            self.pyinstrument, self.cprofile = Profiler(interval=0.001), None
            self.pyinstrument.start()

    def stop(self) -> None:
        if self.pyinstrument:
            self.pyinstrument.stop()
        else:
            self.cprofile.disable()

    def text(self) -> str:
        if self.pyinstrument:
            return self.pyinstrument.output_text(unicode=True, color=False, show_all=False)
        out = io.StringIO()
        pstats.Stats(self.cprofile, stream=out).sort_stats("cumulative").print_stats(40)
        return out.getvalue()


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def seed(args, agent_ids: list[int]) -> None:
    """The ledger_seed ledger (reused when the counts match), with no dunning state left."""
    from django.utils import timezone

    with psycopg.connect(args.database_url) as conn:
        if "bench" not in conn.info.dbname:
            sys.exit(f"{conn.info.dbname} is not a bench database; not emptying it")
        counts = ledger_counts(conn)
        wanted = {"customers": args.customers, "invoices": args.invoices}
        if args.reuse and counts == wanted:
            print(f"reusing {counts['customers']:,} customers / {counts['invoices']:,} invoices")
        else:
            print(f"seeding {args.customers:,} customers / {args.invoices:,} invoices ...")
            started = time.perf_counter()
            truncate_ledger(conn)
            default_unseeded_columns(conn)
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
            print(f"seeded in {time.perf_counter() - started:.1f} s")
        # Earlier runs' notices, outbox and their timeline entries. The append-only trigger
        # refuses DELETE; in this bench database only, it is set aside for the statement.
        conn.execute(
            "TRUNCATE dunning_noticeinvoice, dunning_notice, dunning_outboxmessage CASCADE"
        )
        conn.execute("ALTER TABLE accounts_activity DISABLE TRIGGER accounts_activity_append_only")
        conn.execute("DELETE FROM accounts_activity WHERE details ? 'notice'")
        conn.execute("ALTER TABLE accounts_activity ENABLE TRIGGER accounts_activity_append_only")
        if args.history_nights:
            started = time.perf_counter()
            count = seed_history(conn, args.history_nights, args.customers)
            print(f"{count:,} earlier notices in {time.perf_counter() - started:.1f} s")
        conn.commit()
        conn.autocommit = True
        for table in ("dunning_notice", "dunning_noticeinvoice", "accounts_activity"):
            conn.execute(f"VACUUM (ANALYZE) {table}")


def seed_history(conn: psycopg.Connection, nights: int, customers: int) -> int:
    """Notices of earlier nights, sent (one in twenty cancelled), oldest first: the outbox
    a year in. They have the lowest ids, as in production, so a claim query that walks the
    primary key has to step over them; and they count towards the contact caps."""
    per_night = max(1, customers // 40)  # 5,000 at 200,000 customers: what a night plans
    count = nights * per_night
    history = {
        "customer_id": f"1 + (g::bigint * 7919) % {customers}",  # spread over the customers
        "step_id": "(SELECT min(id) FROM dunning_step WHERE channel = 'email')",
        "channel": "'email'",
        "status": "CASE WHEN g % 20 = 0 THEN 'cancelled' ELSE 'sent' END",
        "planned_on": f"night - 1 - ({count} - 1 - g) / {per_night}",
        "sent_at": f"(night - 1 - ({count} - 1 - g) / {per_night}) + time '09:00'",
        "attempts": "1",
        "created_at": "now()",
        "updated_at": "now()",
    }
    # Every other NOT NULL column (this model grows) gets its type's empty value.
    for column, data_type in conn.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'dunning_notice' AND is_nullable = 'NO' "
        "AND column_default IS NULL AND is_identity = 'NO'"
    ).fetchall():
        if column not in history and data_type in EMPTY_BY_TYPE:
            history[column] = EMPTY_BY_TYPE[data_type]
    conn.execute(
        f"INSERT INTO dunning_notice ({', '.join(history)}) "
        f"SELECT {', '.join(history.values())} FROM generate_series(0, {count - 1}) AS g, "
        f"(SELECT max(due_on) - {AHEAD_DAYS} AS night FROM accounts_invoice) AS seeded"
    )
    return count


def seeded_today() -> dt.date:
    """The day the ledger was seeded for: due dates end AHEAD_DAYS after it, exactly."""
    from django.db.models import Max

    from accounts.models import Invoice

    latest = Invoice.objects.aggregate(latest=Max("due_on"))["latest"]
    return latest - dt.timedelta(days=AHEAD_DAYS)


def time_plan(phase: str, on: dt.date, profile: bool = False) -> tuple[Row, object]:
    from django.db import connection

    from dunning import planner

    counter = QueryCounter()
    profiler = Profile() if profile else None
    reset_peak_rss()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = planner.plan(on=on)
    seconds = time.perf_counter() - started
    if profiler:
        profiler.stop()
    notices = result.planned + result.awaiting_approval
    note = (
        f"{result.planned:,} planned, {result.awaiting_approval:,} awaiting approval, "
        f"{result.suppressed:,} invoices held"
    )
    row = Row(phase, result.evaluated, notices, seconds, peak_rss_mb(), counter.count, note)
    return row, profiler


def night_breakdown(on: dt.date) -> list[tuple[str, str, str, int, int]]:
    """Notices planned for a night, per policy, step and channel, with their invoices."""
    from django.db.models import Count

    from dunning.models import Notice

    return list(
        Notice.objects.filter(planned_on=on)
        .values_list("step__policy__name", "step__name", "channel")
        .annotate(notices=Count("id", distinct=True), invoices=Count("lines"))
        .order_by("step__policy__name", "step__offset_days", "channel")
    )


def send_moment(on: dt.date) -> dt.datetime:
    """The first contact day from `on`, at an hour inside every seeded zone's contact hours.

    A day no active contact rule (nor the settings' fallback) forbids: not a no-contact
    weekday, nor a public holiday anywhere if a rule observes holidays.
    """
    from django.conf import settings

    from dunning.models import ContactRule, PublicHoliday

    rules = ContactRule.objects.filter(is_active=True)
    weekdays = set(settings.DUNNING_NO_CONTACT_WEEKDAYS).union(
        *rules.values_list("no_contact_weekdays", flat=True)
    )
    observed = rules.filter(observe_public_holidays=True).exists()
    holidays = set(PublicHoliday.objects.values_list("date", flat=True)) if observed else set()
    day = on
    while day.weekday() in weekdays or day in holidays:
        day += dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(SEND_HOUR_UTC), tzinfo=dt.UTC)


def release(notice_ids: list[int]) -> None:
    """Make exactly these notices sendable; every other sendable notice waits (parked)."""
    from django.db import connection
    from django.db.models import Q

    from dunning.models import Notice
    from dunning.sender import SENDABLE

    open_notices = Notice.objects.filter(status__in=SENDABLE)
    open_notices.exclude(pk__in=notice_ids).update(
        status=Notice.Status.DEFERRED, not_before_at=PARKED_UNTIL, reason="bench: parked"
    )
    Notice.objects.filter(Q(pk__in=notice_ids)).update(
        status=Notice.Status.PLANNED, not_before_at=None, reason=""
    )
    # Parking left a dead index entry per notice; a night's outbox would not have them.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) dunning_notice")


def send_until_done(now: dt.datetime) -> dict:
    """What a sending worker does: take chunks until nothing is sendable."""
    from dunning import sender

    total: dict[str, int] = {}
    while True:
        result = vars(sender.send_due(now=now, limit=500))
        for outcome, count in result.items():
            total[outcome] = total.get(outcome, 0) + count
        if not any(result.values()):
            return total


def _worker(barrier, now: dt.datetime, results) -> None:
    from django.db import connection

    counter = QueryCounter()
    barrier.wait()
    reset_peak_rss()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        outcome = send_until_done(now)
    results.put((outcome, time.perf_counter() - started, counter.count, peak_rss_mb()))
    connection.close()


def time_send_parallel(now: dt.datetime, workers: int) -> tuple[float, list[tuple]]:
    """`workers` forked processes running send_until_done at once: the wall time, and each
    one's outcome, seconds, queries and peak RSS."""
    from django.db import connections

    connections.close_all()  # each child opens its own connection
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(barrier, now, results)) for _ in range(workers)
    ]
    for process in processes:
        process.start()
    barrier.wait()
    started = time.perf_counter()
    outcomes = [results.get(timeout=3600) for _ in processes]
    seconds = time.perf_counter() - started
    for process in processes:
        process.join()
    return seconds, outcomes


def check_sent_once(notice_ids: list[int], now: dt.datetime, kept: int) -> list[str]:
    """Problems with a send phase: a notice still sendable (left behind), or an e-mail kept
    twice or not at all. Deferred notices (contact caps) are a legitimate outcome."""
    from django.db.models import Count

    from dunning import sender
    from dunning.models import Notice, OutboxMessage

    problems = []
    left = sender.sendable(now).filter(pk__in=notice_ids).count()
    if left:
        problems.append(f"{left} notices left behind, still sendable")
    in_doubt = Notice.objects.filter(
        pk__in=notice_ids, status__in=[Notice.Status.SENDING, Notice.Status.UNCERTAIN]
    ).count()
    if in_doubt:
        problems.append(f"{in_doubt} notices left sending or uncertain (no worker died)")
    sent = Notice.objects.filter(pk__in=notice_ids, status=Notice.Status.SENT)
    message_ids = list(sent.values_list("provider_message_id", flat=True))
    per_message = dict(
        OutboxMessage.objects.filter(message_id__in=message_ids)
        .values_list("message_id")
        .annotate(n=Count("id"))
    )
    twice = sum(1 for n in per_message.values() if n > 1)
    missing = len(set(message_ids) - set(per_message))
    if twice or missing or kept != len(message_ids):
        problems.append(
            f"{len(message_ids)} notices sent, {kept} e-mails kept: {twice} kept twice, "
            f"{missing} sent notices without an e-mail"
        )
    return problems


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| Phase | Invoices evaluated | Notices | Seconds | Notices/s | Queries | Peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        evaluated = "" if row.evaluated is None else f"{row.evaluated:,}"
        lines.append(
            f"| {row.phase} | {evaluated} | {row.notices:,} | {row.seconds:.2f} | "
            f"{row.per_second:,.0f} | {row.queries:,} | {row.peak_rss_mb:.0f} |"
        )
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    os.environ["EMAIL_BACKEND"] = "dunning.outbox.OutboxEmailBackend"
    os.environ.pop("EMAIL_HOST", None)
    # This file shares its name with the dunning app; configure_django puts the project
    # ahead of bench/ on sys.path before anything imports the app.
    configure_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection

    from dunning.models import Channel, Notice, OutboxMessage

    call_command("migrate", interactive=False, verbosity=0)
    _manager, agent_ids = ensure_users()
    seed(args, agent_ids)
    connection.close()  # the TRUNCATE ran on another connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        server = cursor.fetchone()[0].split(" on ")[0]
    night = seeded_today()
    print(f"{server}; {args.customers:,} customers, {args.invoices:,} invoices; night {night}")

    rows: list[Row] = []
    broken: list[str] = []
    first, _ = time_plan(
        f"plan {night - dt.timedelta(days=1)}: first run (catches up missed days)",
        night - dt.timedelta(days=1),
    )
    rows.append(first)
    nightly, plan_profile = time_plan(f"plan {night}: the next night", night, args.profile)
    rows.append(nightly)
    again, _ = time_plan(f"plan {night} again (idempotent)", night)
    rows.append(again)
    if not first.notices or not nightly.notices:
        broken.append("the planner planned nothing")
    if again.notices:
        broken.append(f"the second run of the same night planned {again.notices} notices")
    for row in rows:
        print(f"{row.phase}: {row.note}")

    print()
    print(f"notices planned for {night}, by step:")
    for policy, step, channel, notices, invoices in night_breakdown(night):
        print(f"  {policy:<10} {step:<28} {channel:<10} {notices:>7,} notices {invoices:>7,} inv.")

    # Sending: only e-mail notices, `--send` per phase, the rest parked meanwhile.
    now = send_moment(night)
    emails = list(
        Notice.objects.filter(channel=Channel.EMAIL, status=Notice.Status.PLANNED)
        .order_by("id")
        .values_list("id", flat=True)
    )
    per_phase = min(args.send, len(emails) // 2)
    single, parallel = emails[:per_phase], emails[per_phase : 2 * per_phase]
    print(f"\nsending at {now:%Y-%m-%d %H:%M} UTC, {per_phase:,} e-mail notices per phase")

    # A worker imports the URLconf (pay and unsubscribe links) once, on its first notice;
    # do it before the clock starts, as a long-running worker already has.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (importing them is the point)
    release(single)
    kept_before = OutboxMessage.objects.count()
    counter = QueryCounter()
    profiler = Profile() if args.profile else None
    reset_peak_rss()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        outcome = send_until_done(now)
    seconds = time.perf_counter() - started
    if profiler:
        profiler.stop()
    kept = OutboxMessage.objects.count() - kept_before
    processed = sum(outcome.values())
    rows.append(Row("send_due, 1 process", None, processed, seconds, peak_rss_mb(), counter.count))
    print(f"  1 process:   {outcome}, {kept:,} e-mails in the outbox")
    broken += [f"1 process: {problem}" for problem in check_sent_once(single, now, kept)]

    release(parallel)
    kept_before = OutboxMessage.objects.count()
    seconds, outcomes = time_send_parallel(now, args.workers)
    sent = sum(outcome["sent"] for outcome, *_ in outcomes)
    processed = sum(sum(outcome.values()) for outcome, *_ in outcomes)
    kept = OutboxMessage.objects.count() - kept_before
    queries = sum(worker[2] for worker in outcomes)
    peak = max(worker[3] for worker in outcomes)
    rows.append(
        Row(f"send_due, {args.workers} processes at once", None, processed, seconds, peak, queries)
    )
    for n, (worker_outcome, worker_seconds, *_) in enumerate(outcomes, start=1):
        print(f"  process {n}:   {worker_outcome} in {worker_seconds:.1f} s")
    print(f"  {args.workers} processes: {sent:,} sent, {kept:,} e-mails in the outbox")
    broken += [f"{args.workers} processes: {p}" for p in check_sent_once(parallel, now, kept)]

    print()
    print(markdown_table(rows))
    for row in rows[-2:]:
        print(f"{row.phase}: {row.queries / max(row.notices, 1):.1f} queries per notice")
    print()
    print("(peak RSS per phase; the parallel phase: the larger process, queries of both)")
    whole_run = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of the whole run, seeding included: {whole_run:.0f} MB")
    verdict = "PASS" if nightly.seconds < TARGET_PLAN_SECONDS else "FAIL"
    print(f"target: a night planned in < {TARGET_PLAN_SECONDS:.0f} s: {verdict}")
    print(f"exactly once: {'no double sends, none left behind' if not broken else 'BROKEN'}")
    for problem in broken:
        print(f"  BROKEN: {problem}")
    if plan_profile:
        print(f"\nprofile: plan {night}\n{plan_profile.text()}")
    if profiler:
        print(f"\nprofile: send_due, 1 process\n{profiler.text()}")
    return 1 if broken else 0  # slow figures are findings; wrong counts are a broken run


if __name__ == "__main__":
    sys.exit(main())
