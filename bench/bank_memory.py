"""Benchmark: peak memory and time of `manage.py import_bank_statement` on large bank files.

Writes a bank CSV of --csv-mb megabytes (default 200) and a camt.053 of --camt-mb
megabytes (default 100) under /tmp/bank_memory/, then imports each with the command, as
a separate process under `/usr/bin/time -v`, and prints the process's peak RSS (maximum
resident set size) and wall-clock seconds. Bank lines, statements, payments made from the
bank and their timeline entries left from an earlier run are removed before each import,
so every run loads the whole file: point DATABASE_URL at a throw-away bench database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bank_memory.py
    # the same against another checkout (e.g. main before a change), same files:
    .venv/bin/python bench/bank_memory.py --repo /path/to/other/checkout --reuse-files

The command runs with --no-reconcile (matching is measured by bench/reconcile.py) and
with UPLOAD_MAX_BYTES and UPLOAD_MAX_ROWS raised for the run, so the files are read
rather than refused at the door. The target is a peak under 400 MB whatever the file.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path("/tmp/bank_memory")  # noqa: S108 (the brief: generated under /tmp)
TARGET_MB = 400
# A throw-away bench database only (as bench/reconcile.py): the timeline's append-only
# trigger is set aside for the one DELETE of the payments' entries.
CLEAN = (
    "from django.db import connection\n"
    "with connection.cursor() as c:\n"
    "    c.execute('TRUNCATE integrations_matchproposal, integrations_bankline, "
    "integrations_bankstatement, integrations_rejection, integrations_intakebatch, "
    "accounts_allocation, accounts_payment CASCADE')\n"
    "    c.execute('ALTER TABLE accounts_activity DISABLE TRIGGER accounts_activity_append_only')\n"
    "    c.execute(\"DELETE FROM accounts_activity WHERE kind IN ('payment', 'allocation')\")\n"
    "    c.execute('ALTER TABLE accounts_activity ENABLE TRIGGER accounts_activity_append_only')\n"
)


def write_csv(path: Path, megabytes: int) -> int:
    """Half credits, half debits; remittance texts as long as SEPA allows (140)."""
    rng = random.Random(15)
    target = megabytes * 1024 * 1024
    written = lines = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("date;amount;currency;name;iban;reference;bank reference\n")
        while written < target:
            lines += 1
            amount = f"{rng.randint(100, 2_000_000) / 100:.2f}".replace(".", ",")
            sign = "" if lines % 2 else "-"
            invoices = " ".join(f"INV-{rng.randint(1, 999_999):07d}" for _ in range(3))
            text = f"Payment {invoices} customer {rng.randint(1, 99_999)} thank you " + (
                "x" * rng.randint(20, 60)
            )
            row = (
                f"2026-{rng.randint(1, 11):02d}-{rng.randint(1, 28):02d};{sign}{amount};EUR;"
                f"Customer {rng.randint(1, 99_999)} GmbH & Co. KG Handelsgesellschaft;"
                f"DE{rng.randint(10, 99)}{rng.randint(10**17, 10**18 - 1)};{text};"
                f"BR{lines:012d}\n"
            )
            out.write(row)
            written += len(row)
    return lines


CAMT_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
<BkToCstmrStmt><GrpHdr><MsgId>BENCH</MsgId><CreDtTm>2026-11-20T18:00:00</CreDtTm></GrpHdr>
<Stmt><Id>BENCH-1</Id><CreDtTm>2026-11-20T18:00:00</CreDtTm>
<Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">0.00</Amt>
<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-01</Dt></Dt></Bal>
"""
CAMT_ENTRY = """<Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>{direction}</CdtDbtInd><Sts>BOOK</Sts>
<BookgDt><Dt>2026-11-{day:02d}</Dt></BookgDt><ValDt><Dt>2026-11-{day:02d}</Dt></ValDt>
<AcctSvcrRef>BR{n:012d}</AcctSvcrRef>
<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
<NtryDtls><TxDtls><Refs><EndToEndId>E2E-{n}</EndToEndId></Refs>
<RltdPties><Dbtr><Nm>Customer {customer} GmbH</Nm></Dbtr>
<DbtrAcct><Id><IBAN>DE02120300000000{customer:06d}</IBAN></Id></DbtrAcct></RltdPties>
<RmtInf><Ustrd>Invoice INV-{invoice:07d} and INV-{invoice2:07d}, customer {customer}</Ustrd>
</RmtInf>
</TxDtls></NtryDtls></Ntry>
"""
CAMT_TAIL = "</Stmt></BkToCstmrStmt></Document>\n"


def write_camt(path: Path, megabytes: int) -> int:
    rng = random.Random(53)
    target = megabytes * 1024 * 1024
    written = entries = 0
    with path.open("w", encoding="utf-8") as out:
        out.write(CAMT_HEAD)
        while written < target:
            entries += 1
            entry = CAMT_ENTRY.format(
                amount=f"{rng.randint(100, 2_000_000) / 100:.2f}",
                direction="CRDT" if entries % 2 else "DBIT",
                day=rng.randint(1, 28),
                n=entries,
                customer=rng.randint(1, 99_999),
                invoice=rng.randint(1, 999_999),
                invoice2=rng.randint(1, 999_999),
            )
            out.write(entry)
            written += len(entry)
        out.write(CAMT_TAIL)
    return entries


def run(repo: Path, path: Path, python: str) -> dict:
    env = {
        **os.environ,
        "UPLOAD_MAX_BYTES": str(2 * 1024**3),
        "UPLOAD_MAX_ROWS": str(100_000_000),
        "ALLOW_INSECURE_SECRET_KEY": os.environ.get("ALLOW_INSECURE_SECRET_KEY", "true"),
    }
    clean = [python, "manage.py", "shell", "-c", CLEAN]
    subprocess.run(clean, cwd=repo, env=env, check=True)  # noqa: S603
    started = time.perf_counter()
    command = ["/usr/bin/time", "-v", python, "manage.py", "import_bank_statement", str(path)]
    done = subprocess.run(  # noqa: S603
        [*command, "--no-reconcile"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    peak = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    return {
        "exit": done.returncode,
        "peak_mb": int(peak.group(1)) / 1024 if peak else float("nan"),
        "seconds": seconds,
        "summary": last,
        "error": "" if done.returncode == 0 else done.stderr.strip().splitlines()[-25:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout whose manage.py runs")
    parser.add_argument("--python", default=None, help="interpreter (default: <repo>/.venv)")
    parser.add_argument("--csv-mb", type=int, default=200)
    parser.add_argument("--camt-mb", type=int, default=100)
    parser.add_argument("--reuse-files", action="store_true", help="keep files already written")
    parser.add_argument("--only", choices=["csv", "camt053"], help="run one of the two")
    args = parser.parse_args()
    python = args.python or str(args.repo / ".venv" / "bin" / "python")
    OUT.mkdir(exist_ok=True)
    files = {
        "csv": (OUT / "statement.csv", write_csv, args.csv_mb),
        "camt053": (OUT / "statement.xml", write_camt, args.camt_mb),
    }
    subprocess.run(  # noqa: S603
        [python, "manage.py", "migrate", "--verbosity", "0"],
        cwd=args.repo,
        env={**os.environ, "ALLOW_INSECURE_SECRET_KEY": "true"},
        check=True,
    )
    verdict = 0
    for name, (path, write, megabytes) in files.items():
        if args.only and name != args.only:
            continue
        if not (args.reuse_files and path.exists()):
            started = time.perf_counter()
            count = write(path, megabytes)
            print(
                f"{name}: wrote {path} ({path.stat().st_size / 1e6:.0f} MB, {count:,} lines) "
                f"in {time.perf_counter() - started:.0f} s",
                flush=True,
            )
        outcome = run(args.repo, path, python)
        ok = outcome["exit"] == 0 and outcome["peak_mb"] < TARGET_MB
        verdict |= not ok
        print(
            f"{name}: {path.stat().st_size / 1e6:.0f} MB file, "
            f"peak RSS {outcome['peak_mb']:.0f} MB, "
            f"{outcome['seconds']:.0f} s, exit {outcome['exit']} "
            f"[{'PASS' if ok else 'FAIL'} < {TARGET_MB} MB] {outcome['summary']}"
        )
        if outcome["error"]:
            print("\n".join(outcome["error"]))
    return verdict


if __name__ == "__main__":
    sys.exit(main())
