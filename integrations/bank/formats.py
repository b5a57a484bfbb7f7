"""Bank statement formats: which one a file is, and the parser that reads it as a stream."""

import re
from collections.abc import Iterator
from typing import BinaryIO

from . import bai2, camt, csv_statement, mt940
from .statement import ParsedStatement, Sniffed, StatementUnreadable

FORMATS = ("camt053", "camt052", "camt054", "mt940", "mt942", "bai2", "csv")
PARSERS = {
    "camt053": camt.parse,
    "camt052": camt.parse,
    "camt054": camt.parse,
    "mt940": mt940.parse,
    "mt942": mt940.parse,
    "bai2": bai2.parse,
    "csv": csv_statement.parse,
}
# An MT940/MT942 tag at the start of a line, after an optional SWIFT envelope.
SWIFT_TAG = re.compile(rb"(^|[\r\n]|\{4:)\s*:(20|25|28C?|60[FM]|61|86|13D|34F):", re.MULTILINE)


def detect_format(head: bytes) -> str:
    """camt (052, 053 or 054 by the namespace) for XML, bai2 for a file starting with its
    01 record, mt940 for lines starting with SWIFT tags, csv for anything else (the CSV
    parser then refuses what is not a statement). The MT940 parser tells MT942 apart."""
    head = head.lstrip(b"\xef\xbb\xbf \t\r\n\x01")
    if head.startswith(b"<"):
        found = re.search(rb"camt\.05([234])\.", head)
        return f"camt05{found.group(1).decode()}" if found else "camt053"
    if re.match(rb"01,[^\r\n]*,[^\r\n]*,\d{6},", head):
        return "bai2"
    tags = {m.group(2) for m in SWIFT_TAG.finditer(head[:16384])}
    if tags:  # the MT940 parser then says what a fragment lacks
        return "mt940"
    return "csv"


def parse_statements(
    stream: BinaryIO, sniffed: Sniffed, format: str | None = None, **options
) -> Iterator[ParsedStatement]:
    """The statements of a file in `format` (detected when None), one at a time."""
    format = format or detect_format(sniffed.head)
    if format not in PARSERS:
        raise StatementUnreadable(f"unknown statement format {format!r}")
    if not sniffed.head.strip():
        raise StatementUnreadable("the file is empty")
    return PARSERS[format](stream, sniffed, **options)
