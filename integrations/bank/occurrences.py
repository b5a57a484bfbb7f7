"""How many times a line's content (or reference) came before in the same file, in bounded
memory: counted in a dict up to a few hundred thousand keys, then in a throw-away SQLite
file, so a file of millions of lines is counted exactly without holding them all.

The fingerprint of a line without a bank reference hashes its content with this count
(two equal transfers on one day are two payments); a repeated reference gets a suffix.
Both must come out the same on every import of the same file, or a re-import would book
the payments twice, so the count is exact, never sampled.
"""

import hashlib
import sqlite3
import tempfile

IN_MEMORY_KEYS = 200_000
SQLITE_BATCH = 500  # keys per SELECT ... IN (...), under SQLite's variable limit


class Occurrences:
    """`take(keys)`: for each key, how many times it was taken before (earlier in the same
    list included), then count them. Close it (or use `with`) to drop the spill file."""

    def __init__(self, in_memory_keys: int | None = None):
        self.limit = IN_MEMORY_KEYS if in_memory_keys is None else in_memory_keys
        self.counts: dict[bytes, int] = {}
        self.db: sqlite3.Connection | None = None
        self.directory: tempfile.TemporaryDirectory | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None
        if self.directory is not None:
            self.directory.cleanup()
            self.directory = None

    def take(self, keys: list[bytes]) -> list[int]:
        digests = [hashlib.blake2b(key, digest_size=16).digest() for key in keys]
        if self.db is None and len(self.counts) + len(digests) > self.limit:
            self._spill()
        if self.db is None:
            before = []
            for digest in digests:
                seen = self.counts.get(digest, 0)
                before.append(seen)
                self.counts[digest] = seen + 1
            return before
        known: dict[bytes, int] = {}
        distinct = list(dict.fromkeys(digests))
        for start in range(0, len(distinct), SQLITE_BATCH):
            part = distinct[start : start + SQLITE_BATCH]
            marks = ",".join("?" * len(part))  # placeholders only: the keys are parameters
            query = f"SELECT k, n FROM seen WHERE k IN ({marks})"  # noqa: S608
            known.update(self.db.execute(query, part))
        before = []
        for digest in digests:
            seen = known.get(digest, 0)
            before.append(seen)
            known[digest] = seen + 1
        self.db.executemany(
            "INSERT INTO seen (k, n) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET n = excluded.n",
            [(digest, known[digest]) for digest in distinct],
        )
        return before

    def _spill(self) -> None:
        self.directory = tempfile.TemporaryDirectory(prefix="bank-occurrences-")
        self.db = sqlite3.connect(f"{self.directory.name}/seen.sqlite3")
        self.db.execute("PRAGMA journal_mode = OFF")
        self.db.execute("PRAGMA synchronous = OFF")
        self.db.execute("PRAGMA cache_size = -16000")  # 16 MB of pages at most
        self.db.execute("CREATE TABLE seen (k BLOB PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID")
        self.db.executemany("INSERT INTO seen (k, n) VALUES (?, ?)", self.counts.items())
        self.counts = {}
