"""Benchmark: invoice intake finding existing customers by normalised name at 200,000 customers.

Seeds a ledger of --customers customers (COPY through accounts.bulk, names like "Cedar
Logistics 000123 GmbH", the normalised name derived by the writer) in a scratch PostgreSQL
database, then loads an invoice CSV of --rows rows naming --named of those customers as
another system writes them ("CEDAR LOGISTICS 000123", no legal form, no reference
column), so that every row's customer is found by its normalised name (accounts/customer_names.py):

  (a) with the index on the normalised name (the product);
  (b) the same load with that index dropped (what the index buys).

Prints rows/s and the time of the name lookup itself (EXPLAIN ANALYZE of one chunk's
lookup of every name of the file, and of a small file's 20 names). Each load runs in a
fresh copy of the ledger (a template database).

    .venv/bin/python bench/customer_matching.py                   # 200k customers, 20k rows
    .venv/bin/python bench/customer_matching.py --customers 20000 --rows 2000   # smoke
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_matching"
WORDS = "Acme Bolt Cedar Delta Ember Falcon Granite Harbor Iris Juniper Kestrel Lumen".split()
KINDS = "Dental Logistics Bakery Studio Partners Clinics Motors Foods Labs Supply".split()
FORMS = ["GmbH", "SA", "Ltd", "Inc.", "S.A.S.", "B.V.", "AB", "LLC"]


def name_of(n: int) -> str:
    return f"{WORDS[n % len(WORDS)]} {KINDS[n // 7 % len(KINDS)]} {n:06d} {FORMS[n % len(FORMS)]}"


def env_for(url: str) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "ALLOW_INSECURE_SECRET_KEY": "true",
        "DJANGO_SETTINGS_MODULE": "collections_mgmt.settings",
    }


def admin_url(url: str) -> str:
    return url.rsplit("/", 1)[0] + "/postgres"


def recreate(url: str, template: str | None = None) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        if template:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def seed(url: str, customers: int) -> None:
    recreate(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=BASE_DIR,
        env=env_for(url),
        check=True,
    )
    subprocess.run(  # noqa: S603
        [sys.executable, "-c", SEED, str(customers)],
        cwd=BASE_DIR,
        env=env_for(url),
        check=True,
    )


SEED = """
import sys
import django
django.setup()
from django.db import connection
from accounts import bulk
from accounts.models import Customer
from bench.customer_matching import name_of
columns = ("name", "source", "external_ref", "country", "currency", "timezone")
rows = (
    (name_of(n), "erp", f"E-{n:06d}", "DE", "EUR", "Europe/Berlin")
    for n in range(int(sys.argv[1]))
)
bulk.insert_rows(Customer, columns, rows, returning=False)  # normalized_name derived
with connection.cursor() as cursor:
    cursor.execute("ANALYZE accounts_customer")
"""


def write_file(path: Path, rows: int, named: int, customers: int) -> None:
    step = max(customers // named, 1)
    with path.open("w") as out:
        out.write("Invoice Number,Customer,Invoice Date,Due Date,Currency,Amount\n")
        for n in range(rows):
            customer = (n % named) * step
            written = name_of(customer).rsplit(" ", 1)[0].upper()  # no legal form
            out.write(f"M-{n:07d},{written},2026-10-01,2026-10-31,EUR,{100 + n % 900}.00\n")


LOAD = """
import json, sys, time
import django
django.setup()
from django.db import connection
from integrations.intake import spreadsheets
from integrations.models import ImportProfile
from accounts.models import Customer
before = Customer.objects.count()
started = time.perf_counter()
with open(sys.argv[1], "rb") as stream:
    batch = spreadsheets.import_invoices(
        stream, filename="m.csv", profile=ImportProfile.objects.get(name="generic-csv")
    )
seconds = time.perf_counter() - started
names = sorted({line.split(",")[1] for line in open(sys.argv[1]).read().splitlines()[1:]})
from accounts.customer_names import normalized_name
wanted = sorted({normalized_name(n) for n in names})
def lookup_ms(names):
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id, external_ref, name"
            " FROM accounts_customer WHERE normalized_name = ANY(%s)", [names]
        )
        return round(cursor.fetchone()[0][0]["Execution Time"], 1)
print(json.dumps({
    "rows": batch.rows_read, "created": batch.created, "rejected": batch.rejected,
    "new_customers": Customer.objects.count() - before,
    "seconds": round(seconds, 2), "rows_per_s": round(batch.rows_read / seconds),
    "names": len(wanted), "name_lookup_ms": lookup_ms(wanted),
    "lookup_ms_20_names": lookup_ms(wanted[:20]),
}))
"""


def load(url: str, path: Path) -> dict:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", LOAD, str(path)],
        cwd=BASE_DIR,
        env=env_for(url),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--named", type=int, default=5_000, help="distinct customers named")
    parser.add_argument("--database-url", default=DEFAULT_DATABASE_URL)
    args = parser.parse_args()
    template = args.database_url.rsplit("/", 1)[1] + "_seed"
    template_url = args.database_url.rsplit("/", 1)[0] + "/" + template
    started = time.perf_counter()
    seed(template_url, args.customers)
    print(f"seeded {args.customers} customers in {time.perf_counter() - started:.0f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "invoices.csv"
        write_file(path, args.rows, args.named, args.customers)
        recreate(args.database_url, template)
        print("(a) with the index:", json.dumps(load(args.database_url, path)))
        recreate(args.database_url, template)
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute("DROP INDEX customer_normalized_name")
        print("(b) without it:   ", json.dumps(load(args.database_url, path)))
    for url in (args.database_url, template_url):
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(admin_url(url), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
