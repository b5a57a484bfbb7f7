"""Benchmark: loading a 100,000-row invoice CSV through the intake pipeline on PostgreSQL.

Generates the file (generic profile, ~20,000 customers), then measures, each in its own
subprocess so that peak RSS belongs to that load alone:

  (a) the pipeline end to end (parse, validate, upsert) into an empty ledger;
  (b) the same file again: every row unchanged;
  (c) django-import-export's plain (non-bulk) import through a ModelResource on Invoice,
      over the first --ie-rows rows, extrapolated (a yardstick: skipped unless that package
      is installed; the product does not use it);
  (d) PostgreSQL COPY of the same rows into a scratch table (the floor).

    .venv/bin/python bench/intake.py                      # 100k rows, 20k customers
    .venv/bin/python bench/intake.py --rows 10000 --customers 2000   # smoke
"""

import argparse
import csv
import datetime as dt
import importlib.util
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_intake"
HEADER = [
    "Invoice Number",
    "Customer ID",
    "Customer",
    "Email",
    "Phone",
    "Country",
    "Invoice Date",
    "Due Date",
    "Currency",
    "Amount",
    "Reference",
]
MARKETS = [
    ("US", "USD", "+1 415 555 {:04d}", "%Y-%m-%d"),
    ("GB", "GBP", "+44 20 7946 {:04d}", "%d/%m/%Y"),
    ("DE", "EUR", "+49 30 901{:04d}", "%d.%m.%Y"),
    ("AU", "AUD", "+61 2 9374 {:04d}", "%d/%m/%Y"),
]
WORDS = "Acme Bolt Cedar Delta Ember Falcon Granite Harbor Iris Juniper Kestrel Lumen".split()
KINDS = "Dental Logistics Bakery Studio Partners Clinics Motors Foods Labs Supply".split()
TARGET_ROWS_PER_S = 10_000
TARGET_RSS_MB = 300


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--ie-rows", type=int, default=5_000, help="rows for (c)")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--phase", choices=["pipeline", "import-export", "copy"], help=argparse.SUPPRESS
    )
    parser.add_argument("--file", help=argparse.SUPPRESS)
    return parser.parse_args()


def generate(path: Path, *, rows: int, customers: int, seed: int) -> None:
    """Invoices in customer order-of-issue, 1-60 per customer, log-normal amounts."""
    rng = random.Random(seed)
    start = dt.date(2025, 6, 1)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(HEADER)
        for n in range(rows):
            c = rng.randrange(customers) if n >= customers else n
            country, currency, phone, date_format = MARKETS[c % len(MARKETS)]
            name = f"{WORDS[c % len(WORDS)]} {KINDS[(c // 12) % len(KINDS)]} {c:05d}"
            issued = start + dt.timedelta(days=n * 540 // rows)
            amount = Decimal(str(round(rng.lognormvariate(6, 1.1), 2))).quantize(Decimal("0.01"))
            amount = max(amount, Decimal("1.00"))
            writer.writerow(
                [
                    f"INV-{n + 1:07d}",
                    f"C{c:06d}",
                    name,
                    f"ap{c}@example.com" if c % 5 else "",
                    phone.format(c % 10_000) if c % 3 == 0 else "",
                    country,
                    issued.strftime(date_format if date_format != "%d.%m.%Y" else "%Y-%m-%d"),
                    (issued + dt.timedelta(days=rng.choice([14, 30, 30, 45, 60]))).isoformat(),
                    currency,
                    f"{amount:,.2f}",
                    f"PO-{rng.randrange(10**6):06d}" if rng.random() < 0.4 else "",
                ]
            )


def configure_django(database_url: str) -> None:
    sys.path.insert(0, str(BASE_DIR))
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
            "DATABASE_URL": database_url,
            "DEBUG": "false",  # DEBUG keeps every query in memory
            "ALLOW_INSECURE_SECRET_KEY": "true",
            "LOG_LEVEL": "WARNING",
        }
    )
    import django

    django.setup()


def ensure_database(database_url: str) -> None:
    import dj_database_url

    db = dj_database_url.parse(database_url)
    if "bench" not in db["NAME"]:
        sys.exit("refusing to empty a database whose name does not contain 'bench'")
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


def reset_ledger() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE accounts_activity, accounts_allocation, accounts_payment, "
            "accounts_invoice, accounts_contact, accounts_customer, "
            "integrations_rejection, integrations_intakebatch RESTART IDENTITY CASCADE"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_intake_copy")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_pipeline(path: Path) -> dict:
    from integrations.intake import spreadsheets
    from integrations.models import ImportProfile

    profile = ImportProfile.objects.get(name="generic-csv")
    started = time.perf_counter()
    with path.open("rb") as stream:
        batch = spreadsheets.import_invoices(stream, filename=path.name, profile=profile)
    seconds = time.perf_counter() - started
    return {"rows": batch.rows_read, "seconds": seconds, "counts": batch.counts()}


def phase_import_export(path: Path, limit: int) -> dict:
    import tablib
    from import_export import fields, resources, widgets

    from accounts.models import Customer, Invoice

    class InvoiceResource(resources.ModelResource):
        number = fields.Field(attribute="number", column_name="Invoice Number")
        customer = fields.Field(
            attribute="customer",
            column_name="Customer ID",
            widget=widgets.ForeignKeyWidget(Customer, field="external_ref"),
        )
        issued_on = fields.Field(
            attribute="issued_on", column_name="Invoice Date", widget=widgets.DateWidget()
        )
        due_on = fields.Field(
            attribute="due_on", column_name="Due Date", widget=widgets.DateWidget()
        )
        currency = fields.Field(attribute="currency", column_name="Currency")
        amount = fields.Field(
            attribute="amount", column_name="Amount", widget=widgets.DecimalWidget()
        )
        open_balance = fields.Field(
            attribute="open_balance", column_name="Amount", widget=widgets.DecimalWidget()
        )
        source = fields.Field(attribute="source", column_name="source")
        reference = fields.Field(attribute="reference", column_name="Reference")

        class Meta:
            model = Invoice
            import_id_fields = ("source", "number")
            fields = (
                "number",
                "customer",
                "issued_on",
                "due_on",
                "currency",
                "amount",
                "open_balance",
                "source",
                "reference",
            )

    dataset = tablib.Dataset(headers=[*HEADER, "source"])
    with path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream)
        next(reader)
        for n, row in enumerate(reader):
            if n >= limit:
                break
            row[9] = row[9].replace(",", "")
            row[6] = _iso(row[6])
            dataset.append([*row, "import-export"])
    started = time.perf_counter()
    result = InvoiceResource().import_data(dataset, dry_run=False, raise_errors=True)
    seconds = time.perf_counter() - started
    created = result.totals.get("new", 0)
    return {"rows": len(dataset), "seconds": seconds, "counts": {"created": created}}


def _iso(text: str) -> str:
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return dt.datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    return text


def phase_copy(path: Path) -> dict:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_intake_copy (number text, customer_ref text, customer text,"
            " email text, phone text, country text, issued text, due date, currency text,"
            " amount text, reference text)"
        )
        raw = cursor.cursor
        copy_sql = "COPY bench_intake_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
        with raw.copy(copy_sql) as copy, path.open("rb") as stream:
            while block := stream.read(1 << 20):
                copy.write(block)
        cursor.execute("SELECT count(*) FROM bench_intake_copy")
        rows = cursor.fetchone()[0]
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": seconds, "counts": {}}


def run_phase(args, phase: str) -> dict:
    command = [
        sys.executable,
        __file__,
        "--phase",
        phase,
        "--file",
        args.file,
        "--database-url",
        args.database_url,
        "--ie-rows",
        str(args.ie_rows),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        sys.exit(f"phase {phase} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.phase:
        configure_django(args.database_url)
        path = Path(args.file)
        if args.phase == "pipeline":
            figures = phase_pipeline(path)
        elif args.phase == "import-export":
            figures = phase_import_export(path, args.ie_rows)
        else:
            figures = phase_copy(path)
        print(json.dumps({**figures, "rss_mb": peak_rss_mb()}))
        return

    ensure_database(args.database_url)
    configure_django(args.database_url)
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    reset_ledger()
    workdir = Path(tempfile.mkdtemp(prefix="bench-intake-"))
    path = workdir / "invoices.csv"
    started = time.perf_counter()
    generate(path, rows=args.rows, customers=args.customers, seed=args.seed)
    print(
        f"generated {args.rows:,} rows for {args.customers:,} customers in "
        f"{time.perf_counter() - started:.1f} s ({path.stat().st_size / 2**20:.1f} MB)"
    )
    args.file = str(path)
    results = []
    for label, phase in [
        ("(a) pipeline, empty ledger", "pipeline"),
        ("(b) pipeline, same file again (all unchanged)", "pipeline"),
        ("(c) django-import-export, plain import", "import-export"),
        ("(d) PostgreSQL COPY into a scratch table", "copy"),
    ]:
        if phase == "import-export" and importlib.util.find_spec("import_export") is None:
            # The product no longer uses it; it stays a yardstick where it is installed.
            print(f"{label}: skipped (pip install django-import-export==4.4.3 to compare)")
            continue
        figures = run_phase(args, phase)
        print(f"{label}: {json.dumps(figures)}")
        results.append((label, figures))
    path.unlink()
    workdir.rmdir()

    print()
    print("| Load | Rows | Seconds | Rows/s | Peak RSS MB | Counts |")
    print("|---|---:|---:|---:|---:|---|")
    for label, figures in results:
        rate = figures["rows"] / figures["seconds"] if figures["seconds"] else 0
        counts = figures["counts"]
        shown = ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("batch", "read"))
        if label.startswith("(c)") and figures["rows"] < args.rows:
            shown += f"; {args.rows:,} rows would take ~{args.rows / rate:.0f} s"
        print(
            f"| {label} | {figures['rows']:,} | {figures['seconds']:.1f} | {rate:,.0f} |"
            f" {figures['rss_mb']:.0f} | {shown} |"
        )
    a = results[0][1]
    verdict = a["rows"] / a["seconds"] >= TARGET_ROWS_PER_S and a["rss_mb"] < TARGET_RSS_MB
    print(
        f"\n(a) target {TARGET_ROWS_PER_S:,} rows/s and < {TARGET_RSS_MB} MB: "
        + ("PASS" if verdict else "FAIL")
    )


if __name__ == "__main__":
    main()
