"""BAI2 (BAI Cash Management Balance Reporting Specification, version 2), the US banks'
format, read as a stream, one account (03 ... 49) at a time.

Records: 01 file header, 02 group header (as-of date, currency), 03 account identifier
and summary (opening ledger 010, closing ledger 015), 16 transaction detail (type code,
amount, funds type, bank and customer references, free text), 49 account trailer,
98 group trailer, 99 file trailer; 88 continues the record before it. Amounts are whole
numbers in the currency's minor unit (cents: 12345 is 123.45) without a decimal point.
Type codes 100-399 are credits and 400-699 debits (plus the loan and foreign-payment
codes listed below); 890 carries no money and is skipped; another code is a rejected line
with the reason. Each account of the file is its own statement. The `bai2` package on
PyPI reads a whole file into objects at once; this reader keeps one record in memory.
"""

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from accounts.money import ISO_4217

from .statement import (
    BadLine,
    ParsedStatement,
    Sniffed,
    StatementLine,
    StatementUnreadable,
    text_lines,
)

CREDIT_CODES = {706, 708, *range(720, 729), 827, 829}
DEBIT_CODES = {760, 828}
NON_MONETARY = {890}
OPENING_LEDGER, CLOSING_LEDGER = "010", "015"
# BAI2 has no payer field; US banks write the sender into the free text under one of these
# labels (ACH: "ORIG CO NAME:", wires: "B/O:", "BY ORDER OF:", "ORIGINATOR:"). The name runs
# to the next label of one or two words ("ORIG ID:", "DESC:") or the end of the text.
PAYER_LABEL = re.compile(
    r"(?:ORIG(?:INATOR)? CO NAME|ORIGINATOR(?: NAME)?|SENDER(?: NAME)?|BY ORDER OF|B/O)"
    r"\s*[:=]\s*(?P<name>.+?)(?=\s+[A-Z/]+(?:\s[A-Z/]+)?\s*[:=]|\s*$)",
    re.IGNORECASE,
)
PAYER_ACCOUNT_LABEL = re.compile(
    r"(?:ORIG(?:INATOR)? (?:ACCT|ACCOUNT)|SENDER (?:ACCT|ACCOUNT))\s*(?:NO\.?)?\s*[:=]\s*"
    r"(?P<account>[A-Z0-9]{4,34})",
    re.IGNORECASE,
)
# Minor units of the currencies that do not have two (ISO 4217).
MINOR_UNITS = {
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def parse(stream: BinaryIO, sniffed: Sniffed, **options) -> Iterator[ParsedStatement]:
    records = _Records(text_lines(stream, sniffed))
    code, fields = records.take() or ("", [])
    if code != "01":
        raise StatementUnreadable("not a BAI2 file: it does not start with a file header (01)")
    file_ref = "/".join(filter(None, [fields[3] if len(fields) > 3 else "", _at(fields, 5)]))
    group_currency, as_of = "USD", None
    numbering = {"next": 1}
    ended = False
    while (record := records.take()) is not None:
        code, fields = record
        if code == "02":
            group_currency = _at(fields, 5) or "USD"
            as_of = _date(_at(fields, 3), "02 as-of date")
        elif code == "03":
            if as_of is None:
                raise StatementUnreadable("the BAI2 account (03) comes before any group (02)")
            statement = _account(fields, group_currency, as_of, file_ref)
            statement.lines = _transactions(records, statement, numbering)
            yield statement
            for _line in statement.lines:  # whatever the consumer left unread
                pass
        elif code == "99":
            ended = True
        elif code not in ("49", "98", "16"):
            raise StatementUnreadable(f"the BAI2 file has an unknown record type {code!r}")
    if not ended:
        raise StatementUnreadable("the BAI2 file ends without its file trailer (99): truncated?")


class _Records:
    """(record code, fields) with 88 continuations joined on; one record of look-ahead.
    A 16 record keeps its continuations apart: they carry its free text."""

    def __init__(self, lines: Iterator[str]):
        self.items = self._read(lines)
        self.ahead = None

    @staticmethod
    def _read(lines: Iterator[str]) -> Iterator[tuple[str, list[str]]]:
        current: tuple[str, list[str]] | None = None
        for number, line in enumerate(lines, start=1):
            line = line.strip()
            if not line:
                continue
            code, _comma, rest = line.partition(",")
            if code == "88":
                if current is None:
                    raise StatementUnreadable(f"line {number}: a continuation (88) follows nothing")
                current[1].append(rest)
                continue
            if not (len(code) == 2 and code.isdigit()):
                raise StatementUnreadable(
                    f"not a BAI2 file: line {number} starts with {code[:20]!r}, not a record code"
                )
            if current is not None:
                yield current
            current = (code, [rest])
        if current is not None:
            yield current

    def take(self) -> tuple[str, list[str]] | None:
        if self.ahead is not None:
            record, self.ahead = self.ahead, None
            return _fields(record)
        record = next(self.items, None)
        return None if record is None else _fields(record)

    def peek_code(self) -> str | None:
        if self.ahead is None:
            self.ahead = next(self.items, None)
        return None if self.ahead is None else self.ahead[0]


def _fields(record: tuple[str, list[str]]) -> tuple[str, list[str]]:
    """Split a record's fields; a 16 record stays as its segments (see `_transaction`)."""
    code, segments = record
    if code == "16":
        return code, segments
    return code, ",".join(s.strip().removesuffix("/") for s in segments).split(",")


def _at(fields: list[str], index: int) -> str:
    return fields[index].strip() if index < len(fields) else ""


def _date(value: str, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(value, "%y%m%d").date()
    except ValueError as exc:
        raise StatementUnreadable(f"the BAI2 {what} {value!r} is not a date (YYMMDD)") from exc


def _money(value: str, currency: str) -> Decimal | None:
    """A BAI2 amount (whole minor units, optional sign) as Decimal; None when blank."""
    value = value.strip()
    if not value:
        return None
    if not value.lstrip("+-").isdigit():
        raise ValueError(value)
    places = MINOR_UNITS.get(currency, 2)
    return (Decimal(value).scaleb(-places)).quantize(Decimal("0.01"))


def _account(fields: list[str], group_currency: str, as_of: dt.date, file_ref: str):
    account = _at(fields, 0).replace(" ", "")[:64]
    if not account:
        raise StatementUnreadable("a BAI2 account identifier (03) names no account")
    currency = _at(fields, 1) or group_currency
    if currency not in ISO_4217:
        raise StatementUnreadable(
            f"the BAI2 account {account}'s currency {currency!r} is not ISO 4217"
        )
    balances: dict[str, Decimal | None] = {}
    summary = fields[2:]
    position = 0
    while position < len(summary) and summary[position].strip():
        type_code = summary[position].strip()
        amount = summary[position + 1] if position + 1 < len(summary) else ""
        funds = summary[position + 3].strip() if position + 3 < len(summary) else ""
        position += 4 + _funds_fields(funds, summary[position + 4 :])
        if type_code in (OPENING_LEDGER, CLOSING_LEDGER):
            try:
                balances[type_code] = _money(amount, currency)
            except ValueError as exc:
                raise StatementUnreadable(
                    f"the BAI2 account {account}: balance {type_code} {amount!r} is not an amount"
                ) from exc
    return ParsedStatement(
        format="bai2",
        account=account,
        statement_ref=f"{file_ref}/{as_of:%y%m%d}"[:100],
        currency=currency,
        opening_balance=balances.get(OPENING_LEDGER),
        closing_balance=balances.get(CLOSING_LEDGER),
        from_on=as_of,
        to_on=as_of,
    )


def _funds_fields(funds: str, after: list[str]) -> int:
    """How many fields the funds type's details take (S: 3, V: 2, D: 1 + 2 per day)."""
    if funds == "S":
        return 3
    if funds == "V":
        return 2
    if funds == "D":
        count = after[0].strip() if after else ""
        return 1 + 2 * int(count) if count.isdigit() else 1
    return 0


def _transactions(records: _Records, statement: ParsedStatement, numbering) -> Iterator:
    """The account's 16 records as lines, up to its trailer (49)."""
    while (code := records.peek_code()) is not None and code not in ("49", "03", "98", "99"):
        code, segments = records.take()
        if code != "16":
            continue
        line = _transaction(segments, statement, numbering["next"])
        if line is None:
            continue
        numbering["next"] += 1
        yield line
    if records.peek_code() == "49":
        records.take()


def _transaction(segments: list[str], statement: ParsedStatement, number: int):
    """16,type code,amount,funds type[,funds details],bank ref,customer ref,text: the text
    runs to the end of the record (commas included) and on through its 88 records."""
    queue = segments[0].strip().removesuffix("/").split(",")
    more = [s.strip() for s in segments[1:]]

    def take() -> str:
        while not queue and more:
            queue.extend(more.pop(0).removesuffix("/").split(","))
        return queue.pop(0).strip() if queue else ""

    type_code, amount_text, funds = take(), take(), take()
    details = [take() for _ in range(_funds_fields(funds, [queue[0]] if queue else []))]
    bank_ref, customer_ref = take(), take()
    text = " ".join(filter(None, [",".join(queue).strip().removesuffix("/").strip(), *more]))
    raw = {"16": ",".join(segments), "type code": type_code, "amount": amount_text}
    if type_code.isdigit() and int(type_code) in NON_MONETARY:
        return None
    errors: dict[str, list[str]] = {}
    sign = _direction(type_code)
    if sign is None:
        errors["type code"] = [
            f"{type_code!r} is not a BAI2 credit (100-399) or debit (400-699) type code."
        ]
    try:
        amount = _money(amount_text, statement.currency)
    except ValueError:
        amount = None
        errors["amount"] = [f"{amount_text!r} is not an amount in minor units (cents)."]
    else:
        if not amount:
            errors["amount"] = ["The amount is zero or missing."]
    value_on = None
    if funds == "V" and details and details[0]:
        try:
            value_on = _date(details[0], "value date")
        except StatementUnreadable:
            errors["value date"] = [f"{details[0]!r} is not a date (YYMMDD)."]
    if errors:
        return BadLine(number, raw, errors)
    remittance = " ".join(filter(None, [text, customer_ref if customer_ref not in text else ""]))
    payer = PAYER_LABEL.search(text)
    payer_account = PAYER_ACCOUNT_LABEL.search(text)
    return StatementLine(
        line_number=number,
        booked_on=statement.from_on,
        value_on=value_on,
        amount=sign * amount,
        currency=statement.currency,
        counterparty_name=payer["name"][:200] if payer else "",
        counterparty_account=payer_account["account"][:64] if payer_account else "",
        remittance=remittance,
        bank_reference=bank_ref[:100],
        raw=raw,
    )


def _direction(type_code: str) -> int | None:
    if not (len(type_code) == 3 and type_code.isdigit()):
        return None
    code = int(type_code)
    if 100 <= code <= 399 or code in CREDIT_CODES:
        return 1
    if 400 <= code <= 699 or code in DEBIT_CODES:
        return -1
    return None
