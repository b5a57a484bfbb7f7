"""What a parsed bank statement looks like, how a file is read as a stream, and a line's
identity across re-imports.

Each parser (camt.052/053/054 XML, SWIFT MT940/MT942, BAI2, CSV) reads a file as a stream
and yields one `ParsedStatement` per statement it holds (one account's statement for one
period), whose `lines` are produced one at a time: each either a `StatementLine` or a
`BadLine` carrying the reasons it could not be read. Nothing holds the whole file: the
importer consumes a statement's lines before asking for the next statement, and what only
the end of a statement says (MT940's closing balance, a CSV's period) is set on the
statement once its lines are exhausted. A file that cannot be read at all (truncated XML,
not a statement, undecodable text) raises `StatementUnreadable`, possibly after some lines.
"""

import codecs
import contextlib
import datetime as dt
import hashlib
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import BinaryIO

BLOCK = 1024 * 1024  # bytes read at a time when hashing and sniffing


class StatementUnreadable(Exception):
    """The whole file is not a statement we can read; the message says why."""


@dataclass
class StatementLine:
    """One entry. `amount` is signed: positive for money in (credit), negative for out."""

    line_number: int
    booked_on: dt.date
    amount: Decimal
    currency: str
    value_on: dt.date | None = None
    counterparty_name: str = ""
    counterparty_account: str = ""
    remittance: str = ""
    bank_reference: str = ""
    end_to_end_id: str = ""
    raw: dict = field(default_factory=dict)

    @property
    def is_credit(self) -> bool:
        return self.amount > 0


@dataclass
class BadLine:
    """An entry that could not be read, kept with its raw values and a reason per field."""

    line_number: int
    raw: dict
    errors: dict[str, list[str]]


@dataclass
class ParsedStatement:
    """One account's statement. `lines` is consumed once; fields the file gives only after
    the lines (closing balance, the period of a CSV) are final once it is exhausted."""

    format: str
    account: str
    statement_ref: str
    currency: str
    lines: Iterable[StatementLine | BadLine] = ()
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    from_on: dt.date | None = None
    to_on: dt.date | None = None


# Bank references that mean "none" in MT940 and camt.053.
NO_REFERENCE = {"", "NONREF", "NOTPROVIDED", "NONE"}


@dataclass
class Sniffed:
    """What one pass over the file's bytes tells before any parsing."""

    size: int
    sha256: str
    head: bytes
    encoding: str | None  # for text formats: utf-8-sig or cp1252; None if neither reads it
    unreadable_at: int | None = None  # the first byte neither encoding reads
    has_nul: bool = False


def sniff(stream: BinaryIO) -> Sniffed:
    """Hash the file, keep its first 64 KB, and find the text encoding that reads all of it,
    block by block (UTF-8, with or without BOM, else Windows-1252). Rewinds the stream."""
    stream.seek(0)
    digest = hashlib.sha256()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    is_utf8, is_cp1252, has_nul = True, True, False
    unreadable_at = None
    size = 0
    head = b""
    while block := stream.read(BLOCK):
        digest.update(block)
        if len(head) < 65536:
            head += block[: 65536 - len(head)]
        has_nul = has_nul or b"\x00" in block
        if is_utf8:
            try:
                utf8.decode(block)
            except UnicodeDecodeError:
                is_utf8 = False
        if is_cp1252:
            for byte in (0x81, 0x8D, 0x8F, 0x90, 0x9D):  # the five bytes cp1252 leaves undefined
                at = block.find(bytes([byte]))
                if at >= 0:
                    is_cp1252 = False
                    unreadable_at = size + at
                    break
        size += len(block)
    if is_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            is_utf8 = False
    stream.seek(0)
    encoding = "utf-8-sig" if is_utf8 else "cp1252" if is_cp1252 else None
    return Sniffed(size, digest.hexdigest(), head, encoding, unreadable_at, has_nul)


def text_lines(stream: BinaryIO, sniffed: Sniffed, *, newline: str | None = None) -> Iterator[str]:
    """The file's text, line by line, in the encoding `sniff` found. `newline=""` keeps
    line ends as they are (for the csv module); the default turns CRLF and CR into LF."""
    if sniffed.has_nul:
        raise StatementUnreadable(
            "the file is not text in UTF-8 or Windows-1252 (it contains NUL bytes; "
            "UTF-16 or a binary file?)"
        )
    if sniffed.encoding is None:
        raise StatementUnreadable(
            "the file is not text in UTF-8 or Windows-1252: "
            f"byte {sniffed.unreadable_at} cannot be read"
        )
    stream.seek(0)
    wrapper = io.TextIOWrapper(stream, encoding=sniffed.encoding, newline=newline)
    try:
        yield from wrapper
    finally:
        with contextlib.suppress(ValueError):  # ValueError: the caller closed it already
            wrapper.detach()  # leave the caller's stream open


def fingerprint(
    line: StatementLine, *, account: str, occurrence: int, reference: str | None = None
) -> str:
    """The line's identity across re-imports: the bank's reference when it gave one,
    otherwise a hash of what the line says plus how many identical lines came before it
    in the same file (two equal transfers on one day are two payments)."""
    reference = (line.bank_reference if reference is None else reference).strip()
    if reference.upper() not in NO_REFERENCE:
        if len(reference) <= 64:
            return reference
        return hashlib.sha256(reference.encode()).hexdigest()
    return hashlib.sha256(content_key(line, account=account, occurrence=occurrence)).hexdigest()


def content_key(line: StatementLine, *, account: str, occurrence: int = 0) -> bytes:
    parts = [
        account,
        line.booked_on.isoformat(),
        f"{line.amount:.2f}",
        line.currency,
        line.counterparty_name.strip().casefold(),
        " ".join(line.remittance.split()).casefold(),
        str(occurrence),
    ]
    return "|".join(parts).encode()
