"""What a parsed bank statement looks like, and a line's identity across re-imports.

Each parser (camt.053 XML, SWIFT MT940, CSV) turns a file's bytes into one
`ParsedStatement`: the statement's header and its entries, each either a `StatementLine`
or a `BadLine` carrying the reasons it could not be read. A file that cannot be read at
all (truncated XML, not a statement, undecodable text) raises `StatementUnreadable`.
"""

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal


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
    format: str
    account: str
    statement_ref: str
    currency: str
    lines: list[StatementLine | BadLine]
    opening_balance: Decimal | None = None
    closing_balance: Decimal | None = None
    from_on: dt.date | None = None
    to_on: dt.date | None = None


# Bank references that mean "none" in MT940 and camt.053.
NO_REFERENCE = {"", "NONREF", "NOTPROVIDED", "NONE"}


def decode_text(content: bytes) -> str:
    """Text formats arrive as UTF-8 (with or without BOM) or, from older bank portals,
    Windows-1252. Anything else (UTF-16, binary) is refused rather than guessed at."""
    if b"\x00" in content:
        raise StatementUnreadable(
            "the file is not text in UTF-8 or Windows-1252 (it contains NUL bytes; "
            "UTF-16 or a binary file?)"
        )
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return content.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise StatementUnreadable(
            f"the file is not text in UTF-8 or Windows-1252: byte {exc.start} cannot be read"
        ) from exc


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
