"""Benchmark: the customer list sorted and filtered by amount past due, days past due, risk
and next action, at 200,000 customers.

Seeds (or reuses) a bench database with bench/ledger_seed.py (customers, contacts,
invoices), gives most customers a risk score and one in ten an open task, then:

1. "before": times what the list would cost without the summary kept on the customer
   row: the first page of 50 customers ordered by an aggregate computed over the
   invoices (or tasks) on the fly, as the ORM would write it;
2. times the full refresh of the summary (what the nightly run does);
3. "after": times the customer changelist as a Collections manager, sorted by each
   column both ways and filtered by each, through django.test.Client (as
   bench/admin_changelist.py does, whose helpers it uses).

    .venv/bin/python bench/customer_list.py --customers 2000 --invoices 6000     # smoke
    .venv/bin/python bench/customer_list.py                                      # 200k
    .venv/bin/python bench/customer_list.py --reuse                              # no reseed
"""

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from admin_changelist import (
    TARGET_MS,
    Page,
    configure_django,
    ensure_database,
    ensure_users,
    markdown_table,
    measure,
    peak_rss_mb,
    report,
    seed_if_needed,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_customers"
TASK_SHARE = 10  # one customer in ten has an open task
UNSCORED_SHARE = 20  # one customer in twenty has no risk score yet


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument(
        "--invoices",
        type=int,
        default=600_000,
        help="invoices (default 600,000: three a customer keeps the seed short)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_CUSTOMERS_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="PostgreSQL database to (re)create and seed; it is emptied unless --reuse",
    )
    parser.add_argument(
        "--reuse", action="store_true", help="keep the data if the counts already match"
    )
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per page")
    parser.add_argument("--seed", type=int, default=42, help="random seed for the ledger")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN queries over 5 ms")
    args = parser.parse_args()
    if args.customers < 10 or args.invoices < args.customers:
        parser.error("need at least 10 customers and as many invoices as customers")
    return args


def seed_case_work(agent_ids: list[int]) -> None:
    """Risk scores for most customers and an open task for one in ten (plain SQL, once)."""
    from django.db import connection

    from cases.models import Task

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {Task._meta.db_table} WHERE status = 'open'")
        if cursor.fetchone()[0]:
            return
        cursor.execute(
            f"""
            UPDATE accounts_customer SET
                risk_score = CASE WHEN id % {UNSCORED_SHARE} = 0 THEN NULL ELSE (id * 37) % 101 END,
                risk_band = CASE WHEN id % {UNSCORED_SHARE} = 0 THEN ''
                    WHEN (id * 37) % 101 >= 70 THEN 'high'
                    WHEN (id * 37) % 101 >= 40 THEN 'medium' ELSE 'low' END
            """
        )
        cursor.execute(
            f"""
            INSERT INTO {Task._meta.db_table}
                (customer_id, kind, title, description, assignee_id, due_at, status, outcome,
                 outcome_note, source, details, created_at, created_by_id)
            SELECT c.id, 'call', 'Call ' || c.name, '', c.assigned_agent_id,
                now() + ((c.id % 21) - 10) * interval '1 day', 'open', '', '', '', '{{}}',
                now(), NULL
            FROM accounts_customer c WHERE c.id % {TASK_SHARE} = 0
            """
        )


def refresh(args) -> dict[str, float]:
    from django.db import connection

    from accounts import summaries
    from cases import next_actions

    timings = {}
    for label, job in [
        ("amount and days past due", summaries.refresh_past_due),
        ("next action", next_actions.refresh_next_actions),
    ]:
        started = time.perf_counter()
        changed = job()
        timings[label] = time.perf_counter() - started
        print(f"full refresh, {label}: {changed:,} rows changed in {timings[label]:.1f} s")
    started = time.perf_counter()
    job_again = summaries.refresh_past_due()
    print(
        f"full refresh again (nothing changed): {job_again:,} rows in "
        f"{time.perf_counter() - started:.1f} s"
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) accounts_customer")
    write_cost(args.repeat)
    return timings


def write_cost(repeat: int) -> None:
    """What a ledger write adds: the refresh of the customers it touched (one, as
    `allocate` does; a thousand, as a reconciliation batch through `allocate_many` does)."""
    from django.db import transaction

    from accounts import summaries
    from accounts.models import Customer

    ids = list(Customer.objects.order_by("?").values_list("pk", flat=True)[:1000])
    for label, batch in [("1 customer", ids[:1]), ("1,000 customers", ids)]:
        runs = []
        for _ in range(repeat):
            with transaction.atomic():
                started = time.perf_counter()
                summaries.refresh_past_due(customer_ids=batch)
                runs.append((time.perf_counter() - started) * 1000)
        print(
            f"refresh of {label} (a ledger write's added cost): median "
            f"{statistics.median(runs):.1f} ms"
        )


def on_the_fly(repeat: int) -> list[tuple[str, float]]:
    """The first page of 50 as the list would have to compute it without the summary."""
    from django.db.models import Min, OuterRef, Subquery, Sum
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from accounts.models import Customer, Invoice
    from cases.models import Task

    today = timezone.localdate()
    past_due = (
        Invoice.objects.outstanding()
        .filter(customer=OuterRef("pk"), due_on__lt=today)
        .order_by()
        .values("customer")
        .annotate(total=Sum("open_balance"))
        .values("total")
    )
    oldest = (
        Invoice.objects.outstanding()
        .filter(customer=OuterRef("pk"))
        .order_by()
        .values("customer")
        .annotate(oldest=Min("due_on"))
        .values("oldest")
    )
    next_task = (
        Task.objects.filter(customer=OuterRef("pk"), status="open")
        .order_by("due_at", "id")
        .values("due_at")[:1]
    )
    queries = [
        (
            "amount past due, on the fly",
            Customer.objects.annotate(a=Coalesce(Subquery(past_due), 0)).order_by("-a", "-pk"),
        ),
        (
            "days past due, on the fly",
            Customer.objects.annotate(o=Subquery(oldest)).order_by("o", "pk"),
        ),
        (
            "next action, on the fly",
            Customer.objects.annotate(n=Subquery(next_task)).order_by("n", "pk"),
        ),
        (
            "risk, no index (risk_score DESC NULLS LAST, -pk asc)",
            Customer.objects.order_by("-risk_score", "pk"),
        ),
    ]
    results = []
    for label, queryset in queries:
        list(queryset.values_list("pk", flat=True)[:50])  # warm-up
        runs = []
        for _ in range(repeat):
            started = time.perf_counter()
            list(queryset.values_list("pk", flat=True)[:50])
            runs.append((time.perf_counter() - started) * 1000)
        results.append((label, statistics.median(runs)))
        print(f"before: {label:<52} median {statistics.median(runs):8.1f} ms")
    return results


def pages() -> list[Page]:
    from django.contrib import admin
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from accounts.models import Customer

    request = RequestFactory().get("/admin/accounts/customer/")
    request.user = User.objects.get(username="bench_manager")
    columns = admin.site._registry[Customer].get_changelist_instance(request).list_display
    url = "/admin/accounts/customer/"
    row = re.compile(r"class=\"action-checkbox\"")
    # The list as it opens (by name), for the cost of the page itself on this machine.
    listed = [Page("Customers: default view (by name)", url, [row])]
    for field, label in [
        ("past_due", "amount past due"),
        ("days_past_due", "days past due"),
        ("risk", "risk"),
        ("next_action_due", "next action"),
    ]:
        index = columns.index(field)
        listed.append(Page(f"Customers: sort by {label}", f"{url}?o={index}", [row]))
        listed.append(Page(f"Customers: sort by {label}, reversed", f"{url}?o=-{index}", [row]))
    for query, label in [
        ("past_due=10000", "amount past due ≥ 10,000"),
        ("days_past_due=91-120", "days past due 91-120"),
        ("risk_band=high", "risk band high"),
        ("next_action=overdue", "next action overdue"),
        (
            f"past_due=1000&risk_band=high&o=-{columns.index('past_due')}",
            "past due ≥ 1,000, high risk, by amount",
        ),
    ]:
        listed.append(Page(f"Customers: filter {label}", f"{url}?{query}", [row]))
    return listed


def log_in(client, user) -> None:
    """Log in as after the whole login wizard: managers must pass a second factor, so the
    session names a confirmed TOTP device (as tests/conftest.py does)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client.force_login(user)
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="bench", defaults={"confirmed": True}
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def main() -> int:
    args = parse_args()
    ensure_database(args.database_url)
    configure_django(args.database_url)

    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", interactive=False, verbosity=0)
    manager, agent_ids = ensure_users()
    seeded = seed_if_needed(args, agent_ids)
    seed_case_work(agent_ids)
    if seeded is not None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE) accounts_task")
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        print(cursor.fetchone()[0].split(" on ")[0])

    print()
    before = on_the_fly(args.repeat)
    print()
    refresh_timings = refresh(args)
    print()

    client = Client()
    log_in(client, manager)
    results = []
    for page in pages():
        result = measure(client, page, args.repeat)
        results.append(result)
        report(result, args.explain)

    print()
    print(
        f"{args.customers:,} customers, {args.invoices:,} invoices; "
        f"median of {args.repeat} runs after one warm-up, as a Collections manager"
    )
    print()
    print("Before (first page of 50 computed on the fly, ORM query only, no page render):")
    print()
    print("| Query | Median ms |")
    print("|---|---:|")
    for label, ms in before:
        print(f"| {label} | {ms:.0f} |")
    print()
    print(
        "Full refresh: "
        + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in refresh_timings.items())
    )
    print()
    print(f"After (whole changelist page, target < {TARGET_MS:.0f} ms):")
    print()
    print(markdown_table(results))
    print()
    print(f"peak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
