"""Benchmark: hostile uploads through the real command and the console, memory and time.

Generates, under a temporary folder:

  - bomb.xlsx      a ~1 MB workbook whose one shared string expands to 1 GiB;
  - rows.xlsx      a workbook of 3,000,000 one-cell rows (every row bad);
  - lying.xlsx     a workbook whose zip headers declare a sheet of 2 KB that inflates to 1 GiB;
  - laughs.xlsx    a workbook whose sheet XML declares nested entities (billion laughs);
  - big.csv        an invoice CSV just under UPLOAD_MAX_BYTES (long notes, valid rows);
  - over.csv       the same, 20 MB over UPLOAD_MAX_BYTES;

then runs each, in a subprocess under `/usr/bin/time -v`, through

  (cmd)      `manage.py import_invoices FILE` (a real load);
  (console)  a `manage.py runserver` process given the upload page's preview (and, when the
             preview offers it, the confirmation) with curl, as a browser would.

and prints peak RSS, seconds, the outcome and what it left in the database (running
batches, rejected rows). `--repo` runs another checkout's code (e.g. main, for "before"),
with its own .venv; each process is capped (`--cap-gb` of address space, `--timeout`) so a
bomb cannot take the machine down: a capped run is reported as such.

    .venv/bin/python bench/uploads.py                       # this checkout
    .venv/bin/python bench/uploads.py --repo /work/main     # before
    .venv/bin/python bench/uploads.py --only bomb,rows      # some files
    .venv/bin/python bench/uploads.py --only bomb,rows \
        --env UPLOAD_MAX_COMPRESSION_RATIO=100000 --env UPLOAD_MAX_DECOMPRESSED_BYTES=2147483648
                                    # past the declared-size checks, to the streaming ones
"""

import argparse
import os
import re
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/collections_bench_uploads"
GIB = 1 << 30
MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
HEADER = ["Invoice Number", "Customer", "Invoice Date", "Due Date", "Currency", "Amount"]

CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.'
    'openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    f'<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="{MAIN_NS}" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)


def _header_row() -> str:
    cells = "".join(
        f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(HEADER)
    )
    return f'<row r="1">{cells}</row>'


def _workbook(path: Path, sheet_chunks, shared_chunks) -> None:
    """An .xlsx whose sheet and shared strings are written from iterables of str chunks."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", CONTENT_TYPES)
        archive.writestr("_rels/.rels", ROOT_RELS)
        archive.writestr("xl/workbook.xml", WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        for name, chunks in (
            ("xl/sharedStrings.xml", shared_chunks),
            ("xl/worksheets/sheet1.xml", sheet_chunks),
        ):
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk.encode())


def _sheet(rows) -> list:
    return [
        f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{MAIN_NS}"><sheetData>',
        _header_row(),
        *rows,
        "</sheetData></worksheet>",
    ]


def _one_string(size: int):
    yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{MAIN_NS}" count="1" uniqueCount="1">'
    yield "<si><t>"
    block = "A" * (1 << 20)
    for _ in range(size // len(block)):
        yield block
    yield "</t></si></sst>"


def make_bomb(path: Path) -> None:
    row = '<row r="2"><c r="A2" t="s"><v>0</v></c><c r="B2" t="s"><v>0</v></c></row>'
    _workbook(path, _sheet([row]), _one_string(GIB))


def make_rows(path: Path, count: int = 3_000_000) -> None:
    """As the probe's: rows without numbers, each the same one cell (so ~400 KB zipped)."""

    def rows():
        for _ in range(count // 1000):
            yield "<row><c><v>1</v></c></row>" * 1000

    _workbook(path, _sheet(rows()), _one_string(0))


def make_lying(path: Path) -> None:
    """A sheet that inflates to 1 GiB, its sizes in the zip's headers rewritten to 2 KB."""

    def rows():
        yield '<row r="2"><c r="A2" t="inlineStr"><is><t>'
        block = "B" * (1 << 20)
        for _ in range(1024):
            yield block
        yield "</t></is></c></row>"

    _workbook(path, _sheet(rows()), _one_string(0))
    data = bytearray(path.read_bytes())
    lie = 2048
    # Central directory entries (PK\1\2): uncompressed size at +24; zip64 extra field too.
    for match in re.finditer(rb"PK\x01\x02", bytes(data)):
        at = match.start()
        name_len, extra_len = struct.unpack_from("<HH", data, at + 28)
        name = bytes(data[at + 46 : at + 46 + name_len])
        if name != b"xl/worksheets/sheet1.xml":
            continue
        if struct.unpack_from("<I", data, at + 24)[0] == 0xFFFFFFFF:
            extra = at + 46 + name_len
            end = extra + extra_len
            while extra < end:
                tag, size = struct.unpack_from("<HH", data, extra)
                if tag == 1:
                    struct.pack_into("<Q", data, extra + 4, lie)  # uncompressed first
                extra += 4 + size
        else:
            struct.pack_into("<I", data, at + 24, lie)
    path.write_bytes(bytes(data))


def make_laughs(path: Path) -> None:
    entities = '<!ENTITY a0 "lol">' + "".join(
        f'<!ENTITY a{i} "{("&a" + str(i - 1) + ";") * 10}">' for i in range(1, 10)
    )
    sheet = [
        f'<?xml version="1.0" encoding="UTF-8"?><!DOCTYPE worksheet [{entities}]>'
        f'<worksheet xmlns="{MAIN_NS}"><sheetData>',
        _header_row(),
        '<row r="2"><c r="A2" t="inlineStr"><is><t>&a9;</t></is></c></row>',
        "</sheetData></worksheet>",
    ]
    _workbook(path, sheet, _one_string(0))


def make_big_csv(path: Path, target: int) -> None:
    """Valid invoices with a long notes column, up to `target` bytes."""
    notes = "x" * 1900
    with path.open("w") as out:
        out.write(",".join([*HEADER, "Notes"]) + "\n")
        n = 0
        while out.tell() < target - 3000:
            n += 1
            out.write(f"BIG-{n},Customer {n % 500},2026-10-01,2026-10-31,USD,{n}.00,{notes}\n")


FILES = {
    "bomb": ("bomb.xlsx", make_bomb),
    "rows": ("rows.xlsx", make_rows),
    "lying": ("lying.xlsx", make_lying),
    "laughs": ("laughs.xlsx", make_laughs),
    "big": ("big.csv", None),
    "over": ("over.csv", None),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", default=str(BASE_DIR), help="checkout whose code runs")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    )
    parser.add_argument(
        "--workdir", default=str(Path(tempfile.gettempdir()) / "bench-uploads"), help="files"
    )
    parser.add_argument("--only", default=",".join(FILES), help="comma-separated file names")
    parser.add_argument("--paths", default="cmd,console", help="cmd, console or both")
    parser.add_argument("--cap-gb", type=float, default=4.0, help="address-space cap per run")
    parser.add_argument("--timeout", type=int, default=240, help="seconds per run")
    parser.add_argument("--max-bytes", type=int, default=100 * 1024 * 1024)
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        help="KEY=VALUE for the runs, e.g. UPLOAD_MAX_COMPRESSION_RATIO=100000 to reach the "
        "limits checked while reading",
    )
    return parser.parse_args()


def environment(args, media: Path) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": args.database_url,
        "ALLOW_INSECURE_SECRET_KEY": "true",
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "MEDIA_ROOT": str(media),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **dict(pair.split("=", 1) for pair in args.env),
    }


def python(args) -> list:
    return [str(Path(args.repo) / ".venv/bin/python"), str(Path(args.repo) / "manage.py")]


def timed(args, command: list) -> list:
    cap = int(args.cap_gb * GIB)
    return ["/usr/bin/time", "-v", "prlimit", f"--as={cap}", *command]


def rusage(stderr: str) -> tuple[float, float]:
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", stderr)
    seconds = 0.0
    if wall:
        for part in wall.group(1).split(":"):
            seconds = seconds * 60 + float(part)
    return (int(rss.group(1)) / 1024 if rss else 0.0), seconds


def django_shell(args, env, code: str) -> str:
    done = subprocess.run(  # noqa: S603
        [*python(args), "shell", "-v", "0", "-c", code],
        env=env,
        cwd=args.repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return (done.stdout.strip().splitlines() or [""])[-1]  # after the shell's own chatter


STATE = (
    "from integrations.models import IntakeBatch, Rejection;"
    "from accounts.models import Invoice;"
    "print(IntakeBatch.objects.filter(status='running').count(),"
    " IntakeBatch.objects.filter(status='failed').count(),"
    " Rejection.objects.count(), Invoice.objects.count())"
)
RESET = (
    "from integrations.models import IntakeBatch;from accounts.models import *;"
    "from django.db import connection;"
    "c=connection.cursor();"
    "c.execute('TRUNCATE accounts_allocation, accounts_activity, accounts_payment,"
    " accounts_invoice, accounts_contact, integrations_rejection, integrations_intakebatch"
    " RESTART IDENTITY CASCADE')"
)
LOGIN = (
    "from django.contrib.auth import get_user_model, SESSION_KEY, BACKEND_SESSION_KEY,"
    " HASH_SESSION_KEY;from importlib import import_module;from django.conf import settings;"
    "from integrations.models import ImportProfile;"
    "U=get_user_model();u=U.objects.filter(username='bench-uploads').first() or "
    "U.objects.create_superuser('bench-uploads','b@example.com','x');"
    "s=import_module(settings.SESSION_ENGINE).SessionStore();s[SESSION_KEY]=str(u.pk);"
    "s[BACKEND_SESSION_KEY]='django.contrib.auth.backends.ModelBackend';"
    "s[HASH_SESSION_KEY]=u.get_session_auth_hash();s.create();"
    "print(s.session_key, ImportProfile.objects.get(name='generic-csv').pk)"
)


def state(args, env) -> tuple:
    return tuple(int(v) for v in django_shell(args, env, STATE).split())


def run_command(args, env, path: Path) -> dict:
    command = timed(args, [*python(args), "import_invoices", str(path)])
    process = subprocess.Popen(  # noqa: S603
        command, env=env, cwd=args.repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = process.communicate(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        # Stop the command, not `time` (its parent), which then reports its usage.
        subprocess.run(["/usr/bin/pkill", "-TERM", "-P", str(process.pid)])  # noqa: S603
        out, err = process.communicate()
        rss, _ = rusage(err)
        return {"rss": rss, "seconds": args.timeout, "outcome": f"killed after {args.timeout} s"}
    done = subprocess.CompletedProcess(command, process.returncode, out, err)
    rss, seconds = rusage(done.stderr)
    lines = [
        line
        for line in done.stderr.split("\tCommand being timed")[0].strip().splitlines()
        if not line.startswith(("Command exited", "Command terminated"))
    ]
    message = lines[-1].strip() if lines else ""
    if done.returncode == 0:
        message = done.stdout.strip().splitlines()[-1]
    outcome = f"exit {done.returncode}: {message[:160]}"
    if "MemoryError" in done.stderr:
        outcome = f"exit {done.returncode} (MemoryError at the {args.cap_gb} GB cap): {message}"
    elif "Command terminated by signal" in done.stderr:
        outcome = f"killed by a signal: {message[:120]}"
    return {"rss": rss, "seconds": seconds, "outcome": outcome}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _curl(args, url: str, cookies: str, fields: list, deadline: float) -> tuple[int, str]:
    command = ["/usr/bin/curl", "-s", "-o", "-", "-w", "\n%{http_code}", "-b", cookies]
    command += ["-H", f"Referer: {url}", "--max-time", str(max(1, int(deadline - time.time())))]
    for field in fields:
        command += ["-F", field]
    done = subprocess.run([*command, url], capture_output=True, text=True)  # noqa: S603
    body, _, code = done.stdout.rpartition("\n")
    return int(code or 0), body


def _said(body: str) -> str:
    for pattern in (
        r'<ul class="errorlist[^"]*"[^>]*><li>(.*?)</li>',
        r'<p class="errornote">\s*(.*?)\s*</p>',
        r'<p id="preview-total">\s*(.*?)\s*</p>',
        r'<ul class="messagelist">\s*<li[^>]*>(.*?)</li>',
        r"<title>(.*?)</title>",
    ):
        found = re.search(pattern, body, re.S)
        if found:
            return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()
    return body[:120]


def run_console(args, env, path: Path) -> dict:
    session, profile = django_shell(args, env, LOGIN).split()
    token = secrets.token_hex(16)
    cookies = f"sessionid={session}; csrftoken={token}"
    port = _free_port()
    url = f"http://127.0.0.1:{port}/admin/integrations/intakebatch/import/"
    command = [*python(args), "runserver", "--noreload", "--nothreading", f"127.0.0.1:{port}"]
    server = subprocess.Popen(  # noqa: S603
        timed(args, command),
        env=env,
        cwd=args.repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + args.timeout
    try:
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        started = time.time()
        fields = [f"csrfmiddlewaretoken={token}", f"profile={profile}", "encoding="]
        code, body = _curl(args, url, cookies, [*fields, f"file=@{path}"], deadline)
        outcome = f"preview {code or 'timeout'}: {_said(body)[:140]}"
        confirm = re.search(r'name="token" value="([^"]+)"', body)
        if confirm and code == 200:
            code, body = _curl(
                args,
                url,
                cookies,
                [f"csrfmiddlewaretoken={token}", f"token={confirm.group(1)}"],
                deadline,
            )
            outcome += f" | confirm {code or 'timeout'}"
        elapsed = time.time() - started
    finally:
        # Stop the server, not `time` (its parent), which then reports the server's usage.
        subprocess.run(["/usr/bin/pkill", "-TERM", "-P", str(server.pid)])  # noqa: S603
        try:
            _, err = server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            subprocess.run(["/usr/bin/pkill", "-KILL", "-P", str(server.pid)])  # noqa: S603
            _, err = server.communicate()
    rss, _ = rusage(err)
    if "MemoryError" in err:
        outcome += f" (MemoryError at the {args.cap_gb} GB cap)"
    return {"rss": rss, "seconds": elapsed, "outcome": outcome}


def main() -> None:
    args = parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    media = Path(tempfile.mkdtemp(prefix="media-", dir=workdir))
    env = environment(args, media)
    subprocess.run(  # noqa: S603
        [*python(args), "migrate", "--no-input", "-v", "0"], env=env, cwd=args.repo, check=True
    )
    wanted = args.only.split(",")
    for name in wanted:
        filename, make = FILES[name]
        path = workdir / filename
        if not path.exists():
            started = time.perf_counter()
            if name == "big":
                make_big_csv(path, args.max_bytes - 1024 * 1024)
            elif name == "over":
                make_big_csv(path, args.max_bytes + 20 * 1024 * 1024)
            else:
                make(path)
            print(
                f"made {filename}: {path.stat().st_size / 2**20:.1f} MB"
                f" in {time.perf_counter() - started:.0f} s",
                file=sys.stderr,
            )
    commit = subprocess.run(  # noqa: S603
        ["/usr/bin/git", "-C", args.repo, "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"code: {args.repo} ({commit}) {' '.join(args.env)}")
    print()
    print(
        "| File | Path | Peak RSS MB | Seconds | Outcome |"
        " Left: running, failed batches, rejected rows, invoices |"
    )
    print("|---|---|---:|---:|---|---|")
    for name in wanted:
        path = workdir / FILES[name][0]
        for kind in args.paths.split(","):
            django_shell(args, env, RESET)
            figures = (run_command if kind == "cmd" else run_console)(args, env, path)
            left = state(args, env)
            print(
                f"| {path.name} ({path.stat().st_size / 2**20:.1f} MB) | {kind} |"
                f" {figures['rss']:.0f} | {figures['seconds']:.1f} |"
                f" {figures['outcome'].replace('|', '/')} | {', '.join(map(str, left))} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
