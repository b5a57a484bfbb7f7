"""Bank statements exported as CSV: one row per entry, money in positive, money out negative.

Columns are found by their headers (case- and space-insensitive): date, amount, currency,
name or counterparty, reference or description, and optionally the counterparty's IBAN,
the bank's reference and the own account. Amounts may use a decimal comma (1.234,56) as
German and French exports do; dates may be 2026-11-20, 20.11.2026, 20/11/2026 or 20261120.
The file is read row by row; its period and currency are known once the rows are read.
"""

import csv
import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO

from django.core.exceptions import ValidationError

from accounts.money import ISO_4217, to_amount

from .statement import (
    BadLine,
    ParsedStatement,
    Sniffed,
    StatementLine,
    StatementUnreadable,
    text_lines,
)

COLUMNS = {
    "date": ["date", "booking date", "booked on", "booked", "entry date", "buchungstag", "datum"],
    "value_date": ["value date", "valuta", "value"],
    "amount": ["amount", "betrag", "montant", "importe"],
    "currency": ["currency", "ccy", "währung", "waehrung", "devise", "moneda"],
    "direction": ["credit/debit", "debit/credit", "dc", "type", "direction", "cdtdbtind"],
    "name": [
        "name",
        "counterparty",
        "counterparty name",
        "payer",
        "payer name",
        "beneficiary",
        "auftraggeber",
        "auftraggeber/empfänger",
    ],
    "counterparty_account": [
        "iban",
        "counterparty iban",
        "counterparty account",
        "payer iban",
        "account number",
        "kontonummer",
    ],
    "remittance": [
        "reference",
        "description",
        "remittance",
        "remittance information",
        "memo",
        "details",
        "verwendungszweck",
        "purpose",
        "libellé",
    ],
    "bank_reference": ["bank reference", "transaction id", "id", "transaction reference"],
    "account": ["account", "own account", "statement account", "our iban"],
}
REQUIRED = ("date", "amount", "currency")
PEEK_ROWS = 1000  # rows read ahead to find the own account
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%y")


def parse(
    stream: BinaryIO, sniffed: Sniffed, *, account: str = "", **options
) -> Iterator[ParsedStatement]:
    rows = text_lines(stream, sniffed, newline="")
    first_line = next(rows, "")
    delimiter = max([";", ",", "\t", "|"], key=first_line.count)
    if first_line.count(delimiter) == 0:
        raise StatementUnreadable("not a CSV statement: the first line has no column separator")
    try:
        headers = next(csv.reader([first_line], delimiter=delimiter))
    except (StopIteration, csv.Error) as exc:
        raise StatementUnreadable(f"not a CSV statement: {exc}") from exc
    positions = _positions(headers)
    missing = [name for name in REQUIRED if name not in positions]
    if missing:
        raise StatementUnreadable(
            "not a CSV statement: no column for {} (headers found: {})".format(
                ", ".join(missing), ", ".join(h.strip() for h in headers)
            )
        )
    reader = csv.reader(rows, delimiter=delimiter)
    peeked: list[list[str]] = []
    own = ""
    if not account and "account" in positions:
        # The own account is a column: named by the first rows (bounded read-ahead).
        at = positions["account"]
        try:
            for row in reader:
                peeked.append(row)
                if at < len(row) and row[at].strip():
                    own = row[at].replace(" ", "")
                    break
                if len(peeked) >= PEEK_ROWS:
                    break
        except csv.Error as exc:
            raise StatementUnreadable(
                f"the CSV cannot be read at line {reader.line_num + 1}: {exc}"
            ) from exc
    statement = ParsedStatement(
        format="csv",
        account=(account or own or "csv")[:64],
        statement_ref="csv-" + sniffed.sha256[:16],
        currency="",
    )
    statement.lines = _lines(
        reader, itertools.chain(peeked, reader), headers, positions, delimiter != ",", statement
    )
    yield statement


def _lines(reader, rows, headers, positions, comma_decimal, statement) -> Iterator:
    """The rows as lines; then the statement's period and currency (the first when mixed)."""
    number = 0
    currencies: set[str] = set()
    first_on = last_on = None
    own_accounts: set[str] = set()
    try:
        for row in rows:
            if not any(cell.strip() for cell in row):
                continue
            number += 1
            raw = {headers[i].strip() or f"column {i + 1}": cell for i, cell in enumerate(row)}
            line = _line(row, positions, number, raw, comma_decimal)
            if "account" in positions and positions["account"] < len(row):
                own = row[positions["account"]].replace(" ", "")
                if own:
                    own_accounts.add(own)
                    if len(own_accounts) > 1:
                        raise StatementUnreadable(
                            "the CSV holds several own accounts "
                            f"({', '.join(sorted(own_accounts))}); import one at a time"
                        )
            if isinstance(line, StatementLine):
                statement.currency = statement.currency or line.currency
                currencies.add(line.currency)
                first_on = min(first_on or line.booked_on, line.booked_on)
                last_on = max(last_on or line.booked_on, line.booked_on)
            yield line
    except csv.Error as exc:
        raise StatementUnreadable(
            f"the CSV cannot be read at line {reader.line_num + 1}: {exc}"
        ) from exc
    statement.currency = min(currencies) if currencies else "EUR"
    statement.from_on, statement.to_on = first_on, last_on


def _normalise(header: str) -> str:
    return " ".join(header.replace("_", " ").strip().lower().split())


def _positions(headers: list[str]) -> dict[str, int]:
    normalised = [_normalise(h) for h in headers]
    positions = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if alias in normalised:
                positions[name] = normalised.index(alias)
                break
    return positions


# The form most exports use ("1234.56", "-2.50"): read as it is, nothing to rewrite.
PLAIN_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?").fullmatch


def parse_amount(value: str, comma_decimal: bool) -> Decimal:
    """'1.234,56' / '-1,234.56' / '1234,5' / '(12.00)' -> Decimal; ValidationError if not."""
    if PLAIN_AMOUNT(value):
        return to_amount(value)
    text = value.strip().replace("\u00a0", "").replace(" ", "").replace("'", "")
    negative = text.startswith("(") and text.endswith(")")
    text = re.sub(r"[^\d,.\-+]", "", text.strip("()"))
    if "," in text and "." in text:
        decimal_mark = "," if text.rfind(",") > text.rfind(".") else "."
    elif "," in text:
        decimal_mark = "," if comma_decimal or re.search(r",\d{1,2}$", text) else "."
    else:
        decimal_mark = "."
    thousands = "." if decimal_mark == "," else ","
    text = text.replace(thousands, "").replace(decimal_mark, ".")
    amount = to_amount(text)
    return -amount if negative else amount


@functools.lru_cache(maxsize=4096)  # a statement repeats a few dates on every line
def parse_date(value: str) -> dt.date:
    value = value.strip()
    for pattern in DATE_FORMATS:
        try:
            return dt.datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    raise ValueError(value)


def _line(row, positions, number, raw, comma_decimal) -> StatementLine | BadLine:
    def cell(name: str) -> str:
        at = positions.get(name)
        return row[at].strip() if at is not None and at < len(row) else ""

    errors: dict[str, list[str]] = {}
    booked_on = value_on = amount = None
    try:
        booked_on = parse_date(cell("date"))
    except ValueError:
        errors["date"] = [f"{cell('date')!r} is not a date (use YYYY-MM-DD or DD.MM.YYYY)."]
    if cell("value_date"):
        try:
            value_on = parse_date(cell("value_date"))
        except ValueError:
            errors["value_date"] = [f"{cell('value_date')!r} is not a date."]
    try:
        amount = parse_amount(cell("amount"), comma_decimal)
    except (ValidationError, TypeError):
        errors["amount"] = [f"{cell('amount')!r} is not an amount."]
    if amount == 0:
        errors["amount"] = ["The amount is zero."]
    currency = cell("currency").upper()
    if currency not in ISO_4217:
        errors["currency"] = [f"{cell('currency')!r} is not an ISO 4217 currency code."]
    direction = cell("direction").upper()
    if amount is not None and direction in ("D", "DR", "DBIT", "DEBIT", "S", "SOLL"):
        amount = -abs(amount)
    if errors:
        return BadLine(number, raw, errors)
    return StatementLine(
        line_number=number,
        booked_on=booked_on,
        value_on=value_on,
        amount=amount,
        currency=currency,
        counterparty_name=cell("name")[:200],
        counterparty_account=cell("counterparty_account").replace(" ", "")[:64],
        remittance=cell("remittance"),
        bank_reference=cell("bank_reference")[:100],
        raw=raw,
    )
