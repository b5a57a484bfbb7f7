"""SWIFT MT940 statements and MT942 interim reports, read as a stream, statement by statement.

The file is read line by line and cut into its tags: each statement's header (:20: :25:
:28C: :60F:, or an MT942's :34F: :13D:), one block per :61: with the :86: after it, and
the footer (:62F: :64:). A statement is its own statement whatever its account (a file
with several accounts' statements is imported as several statements). Each :61: block is
parsed on its own with the `mt940` package (with a minimal header giving the currency): a
block that fails becomes a rejected line with the parser's reason, and the rest loads.
The header's tags are read here: they are simple, and a wrapped :28C: (a statement number
over two lines) or an MT942 without opening balance must not lose the statement.
"""

import datetime as dt
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from mt940.models import Transactions

from accounts.money import ISO_4217

from .statement import (
    BadLine,
    ParsedStatement,
    Sniffed,
    StatementLine,
    StatementUnreadable,
    text_lines,
)

# The package logs every failed match at ERROR, with the line's text (a payer's name and
# account) and its whole regular expression; the reason reaches the rejected line instead.
logging.getLogger("mt940").setLevel(logging.CRITICAL)
TAG = re.compile(r"^:(\d\d[A-Z]?|NS):")
FOOTER_TAGS = {"62F", "62M", "64", "65"}
# SWIFT envelope lines around the text block ({1:...}{2:...}{4:  and  -}), and separators.
ENVELOPE_END = re.compile(r"^\s*-(\}.*)?\s*$|^\{5:")
BALANCE = re.compile(r"^([CD])(\d{6})([A-Z]{3})(\d[\d,]*)$")
FLOOR_LIMIT = re.compile(r"^([A-Z]{3})")
# A :61: line as some banks write it past the SWIFT limits the package holds to (ASN Bank:
# the payer's IBAN, 18 characters, as the 16-character customer reference).
LENIENT_61 = re.compile(
    r"^(?P<date>\d{6})(?P<entry>\d{4})?(?P<mark>R?[CD])(?P<funds>[A-Z])?\n?"
    r"(?P<amount>\d[\d,]*)(?P<type>[A-Z][A-Z0-9]{3})(?P<customer>[^\n]*?)"
    r"(?://(?P<bank>[^\n]*))?(?:\n(?P<extra>.*))?$",
    re.DOTALL,
)
# German "Verwendungszweck" subfields (?20-?29, ?60-?63 remittance; ?31 account; ?32/33 name).
GERMAN_FIELD = re.compile(r"\?(\d\d)")
SWIFT_KEYS = "EREF|REMI|NAME|IBAN|CNTP|ORDP|BENM|MARF|CSID|BUSP|PURP|SVCL|ULTC|ULTD|RTRN|ADDR"
SWIFT_FIELD = re.compile(rf"/({SWIFT_KEYS})/")
IBAN = re.compile(r"^[A-Z]{2}\d{2}[A-Z0-9]{10,30}$")


def parse(stream: BinaryIO, sniffed: Sniffed, **options) -> Iterator[ParsedStatement]:
    tags = _Tags(text_lines(stream, sniffed))
    numbering = {"next": 1}
    count = 0
    while (tag := tags.peek()) is not None:
        if tag[0] != "20":
            tags.take()  # anything before a statement's :20: (a stray :86:, a file header)
            continue
        header = dict([tags.take()])
        while (tag := tags.peek()) is not None and tag[0] not in {"20", "61"} | FOOTER_TAGS:
            header.setdefault(*tags.take())
        statement = _statement(header)
        statement.lines = _lines(tags, header, statement, numbering)
        count += 1
        yield statement
        for _line in statement.lines:  # whatever the consumer left unread
            pass
    if count == 0:
        raise StatementUnreadable("not an MT940 statement: no :20: and :25: tags")


class _Tags:
    """The file's tags as (tag, value), continuation lines joined with newlines, the SWIFT
    envelope and control characters dropped; one tag of look-ahead."""

    def __init__(self, lines: Iterator[str]):
        self.items = self._read(lines)
        self.ahead = None

    def _read(self, lines: Iterator[str]) -> Iterator[tuple[str, str]]:
        tag, value = None, []
        for line in lines:
            line = line.rstrip("\r\n").strip("\x01\x03")
            if "{4:" in line:
                line = line.split("{4:", 1)[1]
            if ENVELOPE_END.match(line):
                if tag is not None:
                    yield tag, "\n".join(value).rstrip()
                tag, value = None, []
                continue
            found = TAG.match(line)
            if found:
                if tag is not None:
                    yield tag, "\n".join(value).rstrip()
                tag, value = found.group(1), [line[found.end() :]]
            elif tag is not None:
                value.append(line)
        if tag is not None:
            yield tag, "\n".join(value).rstrip()

    def peek(self) -> tuple[str, str] | None:
        if self.ahead is None:
            self.ahead = next(self.items, None)
        return self.ahead

    def take(self) -> tuple[str, str]:
        tag = self.peek()
        self.ahead = None
        return tag


def _statement(header: dict[str, str]) -> ParsedStatement:
    reference = header["20"].strip()
    account = "".join(header.get("25", "").split())[:64]
    if not account:
        raise StatementUnreadable(f"the MT940 statement {reference!r} names no account (:25:)")
    # The statement number, even when the bank wrapped it over two lines.
    number = "".join((header.get("28C") or header.get("28") or "").split()).split("/")[0]
    opening = _balance(header.get("60F") or header.get("60M"), "60F")
    is_interim = opening is None and ("34F" in header or "13D" in header)
    if opening is not None:
        currency = opening[2]
    elif found := FLOOR_LIMIT.match(header.get("34F", "").strip()):
        currency = found.group(1)
    else:
        raise StatementUnreadable(
            f"the MT940 statement {reference!r} has no opening balance (:60F:) "
            "and, unlike an MT942 report, no floor limit (:34F:) giving its currency"
        )
    if currency not in ISO_4217:
        raise StatementUnreadable(f"the statement's currency {currency!r} is not ISO 4217")
    return ParsedStatement(
        format="mt942" if is_interim else "mt940",
        account=account,
        statement_ref="/".join(filter(None, [reference, number]))[:100],
        currency=currency,
        opening_balance=opening[1] if opening else None,
        from_on=opening[0] if opening else _report_date(header.get("13D", "")),
    )


def _balance(value: str | None, tag: str) -> tuple[dt.date, Decimal, str] | None:
    """(date, signed amount, currency) of a :60F:/:62F: balance; None when absent."""
    if value is None:
        return None
    found = BALANCE.match("".join(value.split()))
    if not found:
        raise StatementUnreadable(f"the balance :{tag}:{value.strip()} cannot be read")
    mark, date, currency, amount = found.groups()
    try:
        on = dt.datetime.strptime(date, "%y%m%d").date()
    except ValueError as exc:
        raise StatementUnreadable(f"the balance :{tag}: has no valid date ({date})") from exc
    amount = Decimal(amount.replace(",", ".").rstrip(".") or "0").quantize(Decimal("0.01"))
    return on, -amount if mark == "D" else amount, currency


def _report_date(value: str) -> dt.date | None:
    """An MT942's :13D: date and time (YYMMDDhhmm+zzzz): its date."""
    try:
        return dt.datetime.strptime(value.strip()[:6], "%y%m%d").date()
    except ValueError:
        return None


def _lines(tags: _Tags, header, statement: ParsedStatement, numbering) -> Iterator:
    """The statement's :61: blocks as lines; then its closing balance from the footer."""
    footer: dict[str, str] = {}
    booked: list[dt.date] = []
    while (tag := tags.peek()) is not None and tag[0] != "20":
        name, value = tags.take()
        if name == "61" and not footer:
            details = []
            while (following := tags.peek()) is not None and following[0] == "86":
                details.append(tags.take()[1])
            line = _line(header, statement, value, details, numbering["next"])
            numbering["next"] += 1
            if isinstance(line, StatementLine):
                booked = [min([*booked, line.booked_on]), max([*booked, line.booked_on])]
            yield line
        elif name in FOOTER_TAGS:
            footer.setdefault(name, value)
    closing = _balance(footer.get("62F") or footer.get("62M"), "62F")
    if closing is not None:
        statement.closing_balance = closing[1]
    statement.to_on = closing[0] if closing else (booked[-1] if booked else statement.from_on)
    statement.from_on = statement.from_on or (booked[0] if booked else None)


def _line(header, statement, value: str, details: list[str], number: int):
    raw = {"61": value.strip(), "86": " ".join(d.strip() for d in details)}
    opening = header.get("60F") or header.get("60M") or f"C{value[:6]}{statement.currency}0,00"
    text = (
        f":20:{header['20'].strip()}\n:25:{statement.account}\n:60F:{opening.strip()}\n"
        f":61:{value}\n" + "".join(f":86:{d}\n" for d in details)
    )
    try:
        transactions = Transactions()
        transactions.parse(text)
    except (RuntimeError, ValueError) as exc:
        data = _lenient(value, statement.currency)
        if data is None:
            return BadLine(number, raw, {"61": [_reason(exc)]})
    else:
        if len(transactions) != 1:
            return BadLine(number, raw, {"61": ["The :61: line could not be read."]})
        data = transactions[0].data
    amount = data["amount"].amount
    if not isinstance(amount, Decimal) or amount == 0:
        return BadLine(number, raw, {"amount": ["The amount is zero or unreadable."]})
    detail = _details(raw["86"])
    customer_ref = (data.get("customer_reference") or "").strip()
    remittance = detail["remittance"]
    if customer_ref and customer_ref.upper() not in ("NONREF", "NOTPROVIDED"):
        remittance = (
            f"{remittance} {customer_ref}".strip() if customer_ref not in remittance else remittance
        )
    return StatementLine(
        line_number=number,
        booked_on=data.get("entry_date") or data["date"],
        value_on=data["date"],
        amount=amount,
        currency=data["amount"].currency,
        counterparty_name=detail["name"][:200],
        # Dutch banks (ASN) give the payer's IBAN as the customer reference.
        counterparty_account=(
            detail["account"] or (customer_ref if IBAN.match(customer_ref) else "")
        )[:64],
        remittance=remittance,
        bank_reference=(data.get("bank_reference") or "").strip()[:100],
        end_to_end_id=detail["end_to_end_id"][:100],
        raw=raw,
    )


class _Amount:
    def __init__(self, amount: Decimal, currency: str):
        self.amount, self.currency = amount, currency


def _lenient(value: str, currency: str) -> dict | None:
    """The :61: fields read by LENIENT_61 when the package refuses the line, in the shape
    of its data; None if even that cannot read it (the line is then rejected)."""
    found = LENIENT_61.match(value.strip())
    if not found:
        return None
    try:
        date = dt.datetime.strptime(found["date"], "%y%m%d").date()
        entry = None
        if found["entry"]:
            month, day = int(found["entry"][:2]), int(found["entry"][2:])
            year = date.year + (
                1 if month < date.month - 6 else -1 if month > date.month + 6 else 0
            )
            entry = dt.date(year, month, day)
        amount = Decimal(found["amount"].replace(",", ".")).quantize(Decimal("0.01"))
    except (ValueError, ArithmeticError):
        return None
    # D and RC (a credit reversed) take money out; C and RD put it in.
    sign = -1 if found["mark"] in ("D", "RC") else 1
    return {
        "date": date,
        "entry_date": entry,
        "amount": _Amount(sign * amount, currency),
        "customer_reference": (found["customer"] or "").strip(),
        "bank_reference": (found["bank"] or "").strip(),
    }


def _reason(exc: Exception) -> str:
    return str(exc.args[0] if exc.args else exc).splitlines()[0][:300]


def _details(text: str) -> dict:
    """Name, account, remittance and end-to-end id from an :86: line, structured or not."""
    text = text.replace("\n", "")
    result = {"name": "", "account": "", "remittance": "", "end_to_end_id": ""}
    if GERMAN_FIELD.search(text) and re.match(r"^\d{3}\?", text):
        fields: dict[str, list[str]] = {}
        parts = GERMAN_FIELD.split(text)[1:]
        for code, value in zip(parts[::2], parts[1::2], strict=False):
            fields.setdefault(code, []).append(value)
        purpose = [
            v for c in [*map(str, range(20, 30)), "60", "61", "62", "63"] for v in fields.get(c, [])
        ]
        remittance = "".join(purpose)
        eref = re.search(r"EREF\+(\S+)", remittance)
        result["end_to_end_id"] = eref.group(1) if eref else ""
        svwz = remittance.split("SVWZ+", 1)
        result["remittance"] = (svwz[1] if len(svwz) == 2 else remittance).strip()
        result["account"] = "".join(fields.get("31", [])).strip()
        result["name"] = "".join(fields.get("32", []) + fields.get("33", [])).strip()
        return result
    if SWIFT_FIELD.search(text):
        parts = SWIFT_FIELD.split(text)[1:]
        fields = dict(zip(parts[::2], (p.strip("/ ") for p in parts[1::2]), strict=False))
        result["remittance"] = fields.get("REMI", "")
        result["end_to_end_id"] = fields.get("EREF", "")
        result["name"] = fields.get("NAME", "")
        result["account"] = fields.get("IBAN", "")
        counterparty = fields.get("CNTP") or fields.get("ORDP") or ""
        if counterparty:  # account/BIC/name/city
            pieces = counterparty.split("/")
            result["account"] = result["account"] or pieces[0]
            result["name"] = result["name"] or (pieces[2] if len(pieces) > 2 else "")
        if result["remittance"].startswith("USTD//"):
            result["remittance"] = result["remittance"][6:]
        return result
    result["remittance"] = " ".join(text.split())
    return result
