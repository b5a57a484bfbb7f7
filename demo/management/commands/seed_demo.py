"""seed_demo: build the deterministic demo portfolio and the demo logins (see demo/portfolio.py)."""

import argparse
import datetime as dt
import os
import time
from collections import Counter
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import reset_queries, transaction
from django.utils import timezone

from accounts.aging import BUCKETS, aging_bucket, days_past_due
from accounts.models import Customer, InvoiceQuerySet, Payment
from demo.case_work import seed_case_work
from demo.portfolio import (
    DEMO_USERS,
    ROW_KINDS,
    SOURCE,
    ensure_users,
    plan_portfolio,
    write_chunk,
    write_credentials,
)
from dunning.contact_rules import load_public_holidays
from integrations.fx import loading as fx_loading

# The ECB's reference rates of one real day, so the reports can show totals in
# BASE_CURRENCY offline; `manage.py load_fx_rates` (and the daily task) fetch current ones.
DEMO_FX_RATES = Path(__file__).resolve().parents[2] / "eurofxref-daily.xml"


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"use YYYY-MM-DD, not {value!r}") from exc


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = (
        "Seed a deterministic demo portfolio (customers, invoices, payments, timeline) and logins."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=_positive, default=500, help="how many (default: 500)"
        )
        parser.add_argument("--seed", type=int, default=42, help="random seed (default: 42)")
        parser.add_argument(
            "--today", type=_date, default=None, help="anchor date YYYY-MM-DD (default: today)"
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing when any customer exists"
        )

    def handle(self, *args, customers: int, seed: int, today: dt.date | None, **options):
        if options["if_empty"] and Customer.objects.exists():
            self.stdout.write("Demo data is already there (the database has customers); skipped.")
            self.load_fx_rates()
            if os.environ.get("DEMO_PASSWORD"):
                self.report_logins(*ensure_users()[1:])
            return
        if (
            Customer.objects.filter(source=SOURCE).exists()
            or Payment.objects.filter(source=SOURCE).exists()
        ):
            raise CommandError(
                "This database already has demo data; use --if-empty or a fresh database."
            )
        if today and today > timezone.localdate():
            raise CommandError(
                f"--today {today} is after today ({timezone.localdate()}): "
                "the demo's history cannot be dated in the future."
            )
        today = today or timezone.localdate()
        started = time.perf_counter()
        totals, buckets = Counter(), Counter()
        # One transaction: an interrupted run leaves nothing behind, so --if-empty stays true.
        with transaction.atomic():
            users, password, has_password = ensure_users()
            for chunk in plan_portfolio(
                customers=customers, seed=seed, today=today, tz=timezone.get_default_timezone()
            ):
                write_chunk(chunk, users)
                reset_queries()  # with DEBUG on, every INSERT's SQL would pile up in memory
                for name in ROW_KINDS:
                    totals[name] += len(getattr(chunk, name))
                buckets.update(
                    aging_bucket(days_past_due(row["due_on"], today))
                    for row in chunk.invoices
                    if row["status"] in InvoiceQuerySet.OPEN_STATUSES
                )
            case_work = seed_case_work(today=today, seed=seed)
            holidays = seed_public_holidays(today)
        elapsed = time.perf_counter() - started

        open_count = sum(buckets.values())
        per_bucket = ", ".join(f"{b.key} {buckets[b.key]:,}" for b in BUCKETS)
        self.stdout.write(
            f"Seeded the demo portfolio as of {today} (seed {seed}) in {elapsed:.1f} s:"
        )
        for name in ROW_KINDS:
            extra = f"  ({open_count:,} open: {per_bucket})" if name == "invoices" else ""
            self.stdout.write(f"  {name:<12} {totals[name]:>9,}{extra}")
        self.stdout.write(
            "  case work    "
            + ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in case_work.items())
        )
        self.stdout.write(
            f"  public holidays {holidays:,} (this year and next, customers' countries)"
        )
        self.load_fx_rates()
        self.report_logins(password, has_password)

    def load_fx_rates(self) -> None:
        """The shipped ECB rates (idempotent: a second load changes nothing)."""
        self.stdout.write("  FX rates: " + fx_loading.load_file(DEMO_FX_RATES).describe())

    def report_logins(self, password: str, has_password: list[str]) -> None:
        everyone = [user[0] for user in DEMO_USERS]
        if has_password:
            line = f"Logins: {' / '.join(has_password)} — password: {password}"
            path = write_credentials(line, replace=has_password == everyone)
            self.stdout.write(f"{line}\n  (saved in {path})")
            self.stdout.write(
                "  manager, finance and admin set up a second factor at their first login "
                "(an authenticator app or a passkey; recovery codes follow); agent needs none."
            )
        else:
            self.stdout.write(
                f"Logins: {' / '.join(everyone)} — passwords unchanged "
                "(set DEMO_PASSWORD to reset them)."
            )


def seed_public_holidays(today: dt.date) -> int:
    """This year's and next year's holidays for every country the demo customers are in,
    so the consumer contact rule (which observes them) has days to observe."""
    added = 0
    countries = Customer.objects.exclude(country="").values_list("country", flat=True).distinct()
    for country in sorted(set(countries)):
        for year in (today.year, today.year + 1):
            try:
                added += load_public_holidays(country=country, year=year).added
            except ValidationError:
                continue  # a country without a calendar in the package
    return added
