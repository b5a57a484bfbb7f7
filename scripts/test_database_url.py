"""Print the database URL `make test` should use: PostgreSQL if reachable, else SQLite.

DATABASE_URL wins when set. Otherwise PostgreSQL at 127.0.0.1:5432 is tried; if it cannot
be reached this says so loudly on stderr and falls back to SQLite, except under CI=true,
where it exits 1 because CI must test on PostgreSQL.
"""

import os
import socket
import sys

DEFAULT = "postgres://postgres@127.0.0.1:5432/collections"


def main() -> int:
    url = os.environ.get("DATABASE_URL") or DEFAULT
    if not url.startswith("postgres"):
        print(url)
        return 0
    host, port = "127.0.0.1", 5432
    try:
        import dj_database_url

        parsed = dj_database_url.parse(url)
        host, port = parsed["HOST"] or host, int(parsed["PORT"] or port)
        with socket.create_connection((host, port), timeout=3):
            pass
    except OSError as exc:
        banner = "=" * 72
        print(
            f"\n{banner}\nPostgreSQL is NOT reachable at {host}:{port} ({exc}).",
            file=sys.stderr,
        )
        if os.environ.get("CI", "").lower() == "true":
            print("CI=true: refusing to fall back to SQLite.\n" + banner, file=sys.stderr)
            return 1
        print(
            "Falling back to SQLite: PostgreSQL-only tests will be skipped.\n" + banner,
            file=sys.stderr,
        )
        print("sqlite:///var/test.sqlite3")
        return 0
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
