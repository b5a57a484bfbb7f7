"""Bank statement formats: which one a file is, and the parser that reads it."""

from . import camt053, csv_statement, mt940
from .statement import ParsedStatement, StatementUnreadable

FORMATS = ("camt053", "mt940", "csv")


def detect_format(content: bytes) -> str:
    """camt053 for XML, mt940 for SWIFT tags, csv for anything else (the CSV parser then
    refuses what is not a statement)."""
    head = content[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        return "camt053"
    text = head.decode("latin-1")
    if ":20:" in text and (":25:" in text or ":60F:" in text or ":61:" in text):
        return "mt940"
    return "csv"


def parse_statement(content: bytes, format: str | None = None, **options) -> ParsedStatement:
    """Parse a statement file in `format` (detected when None)."""
    format = format or detect_format(content)
    parsers = {"camt053": camt053.parse, "mt940": mt940.parse, "csv": csv_statement.parse}
    if format not in parsers:
        raise StatementUnreadable(f"unknown statement format {format!r}")
    if not content.strip():
        raise StatementUnreadable("the file is empty")
    return parsers[format](content, **options)
