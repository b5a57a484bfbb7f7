"""Bank statements exported as CSV: one row per entry, money in positive, money out negative.

Columns are found by their headers (case- and space-insensitive): date, amount, currency,
name or counterparty, reference or description, and optionally the counterparty's IBAN,
the bank's reference and the own account. Amounts may use a decimal comma (1.234,56) as
German and French exports do; dates may be 2026-11-20, 20.11.2026, 20/11/2026 or 20261120.
"""

import csv
import datetime as dt
import functools
import hashlib
import io
import re
from decimal import Decimal

from django.core.exceptions import ValidationError

from accounts.money import ISO_4217, to_amount

from .statement import BadLine, ParsedStatement, StatementLine, StatementUnreadable, decode_text

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
DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%d/%m/%Y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%y")


def parse(content: bytes, *, account: str = "", **options) -> ParsedStatement:
    text = decode_text(content)
    first_line = text.split("\n", 1)[0]
    delimiter = max([";", ",", "\t", "|"], key=first_line.count)
    if first_line.count(delimiter) == 0:
        raise StatementUnreadable("not a CSV statement: the first line has no column separator")
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    try:
        headers = next(reader)
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
    comma_decimal = delimiter != ","
    lines: list[StatementLine | BadLine] = []
    own_accounts = set()
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            raw = {headers[i].strip() or f"column {i + 1}": cell for i, cell in enumerate(row)}
            line = _line(row, positions, len(lines) + 1, raw, comma_decimal)
            lines.append(line)
            if "account" in positions and positions["account"] < len(row):
                own_accounts.add(row[positions["account"]].replace(" ", ""))
    except csv.Error as exc:
        raise StatementUnreadable(
            f"the CSV cannot be read at line {reader.line_num}: {exc}"
        ) from exc
    own_accounts.discard("")
    if len(own_accounts) > 1:
        raise StatementUnreadable("the CSV holds several own accounts; import one at a time")
    account = (account or (own_accounts.pop() if own_accounts else "") or "csv")[:64]
    good = [line for line in lines if isinstance(line, StatementLine)]
    currencies = sorted({line.currency for line in good})
    return ParsedStatement(
        format="csv",
        account=account,
        statement_ref="csv-" + hashlib.sha256(content).hexdigest()[:16],
        currency=currencies[0] if currencies else "EUR",  # per line; the first when mixed
        lines=lines,
        from_on=min((line.booked_on for line in good), default=None),
        to_on=max((line.booked_on for line in good), default=None),
    )


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
