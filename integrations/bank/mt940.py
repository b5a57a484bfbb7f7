"""SWIFT MT940 statements, read with the `mt940` package one transaction at a time.

The package raises on the first malformed :61: line, which would lose the whole file for
one bad entry. So the file is cut into its tags first: the header (:20: :25: :28C: :60F:),
one block per :61: with its :86:, and the footer (:62F: :64:), and each block is parsed
on its own (with the header, which gives it the currency). A block that fails becomes a
rejected line with the parser's reason; the rest loads.
"""

import re
from decimal import Decimal

import mt940
from mt940.models import Transactions

from accounts.money import ISO_4217

from .statement import BadLine, ParsedStatement, StatementLine, StatementUnreadable, decode_text

TAG = re.compile(r"^:(\d\d[A-Z]?):", re.MULTILINE)
HEADER_TAGS = {"20", "21", "25", "28", "28C", "60F", "60M", "13D"}
FOOTER_TAGS = {"62F", "62M", "64", "65"}
# German "Verwendungszweck" subfields (?20-?29, ?60-?63 remittance; ?31 account; ?32/33 name).
GERMAN_FIELD = re.compile(r"\?(\d\d)")
SWIFT_KEYS = "EREF|REMI|NAME|IBAN|CNTP|ORDP|BENM|MARF|CSID|BUSP|PURP|SVCL|ULTC|ULTD|RTRN|ADDR"
SWIFT_FIELD = re.compile(rf"/({SWIFT_KEYS})/")


def parse(content: bytes, **options) -> ParsedStatement:
    text = decode_text(content).replace("\r\n", "\n").replace("\r", "\n")
    statements = _split(text)
    if not statements:
        raise StatementUnreadable("not an MT940 statement: no :20:, :25: and :61:/:60F: tags")
    header_data = []
    for header, _blocks, footer in statements:
        try:
            data = mt940.parse(_join(header + footer)).data
        except RuntimeError as exc:
            raise StatementUnreadable(f"the MT940 header cannot be read: {_reason(exc)}") from exc
        header_data.append(data)
    accounts = {str(d.get("account_identification") or "").replace(" ", "") for d in header_data}
    if len(accounts) != 1 or not next(iter(accounts)):
        raise StatementUnreadable(
            "the MT940 file names no account (:25:) or several; import one account at a time"
        )
    account = accounts.pop()[:64]
    opening = header_data[0].get("final_opening_balance") or header_data[0].get("opening_balance")
    closing = header_data[-1].get("final_closing_balance") or header_data[-1].get("closing_balance")
    if opening is None:
        raise StatementUnreadable("the MT940 statement has no opening balance (:60F:)")
    currency = opening.amount.currency
    if currency not in ISO_4217:
        raise StatementUnreadable(f"the statement's currency {currency!r} is not ISO 4217")
    lines: list[StatementLine | BadLine] = []
    for header, blocks, _footer in statements:
        for block in blocks:
            lines.append(_line(header, block, number=len(lines) + 1))
    refs = [
        "/".join(filter(None, [d.get("transaction_reference"), d.get("statement_number")]))
        for d in header_data
    ]
    return ParsedStatement(
        format="mt940",
        account=account,
        statement_ref="+".join(refs)[:100],
        currency=currency,
        lines=lines,
        opening_balance=opening.amount.amount,
        closing_balance=closing.amount.amount if closing is not None else None,
        from_on=opening.date,
        to_on=closing.date if closing is not None else None,
    )


def _split(text: str) -> list[tuple[list, list, list]]:
    """[(header tags, [transaction blocks], footer tags)] per statement in the file."""
    found = list(TAG.finditer(text))
    tags = [
        (m.group(1), text[m.start() : found[i + 1].start() if i + 1 < len(found) else len(text)])
        for i, m in enumerate(found)
    ]
    statements: list[tuple[list, list, list]] = []
    header: list[str] = []
    blocks: list[list[str]] = []
    footer: list[str] = []
    for tag, chunk in tags:
        if tag == "20" and (blocks or footer):
            statements.append((header, blocks, footer))
            header, blocks, footer = [], [], []
        if tag == "61" and not footer:
            blocks.append([chunk])
        elif tag == "86" and blocks and not footer:
            blocks[-1].append(chunk)
        elif tag in FOOTER_TAGS or footer:
            footer.append(chunk)
        elif tag in HEADER_TAGS or tag == "86":
            header.append(chunk)
    if header or blocks:
        statements.append((header, blocks, footer))
    return [
        s
        for s in statements
        if any(c.startswith(":25:") for c in s[0]) and any(c.startswith(":20:") for c in s[0])
    ]


def _join(chunks: list[str]) -> str:
    return "".join(c if c.endswith("\n") else c + "\n" for c in chunks)


def _reason(exc: Exception) -> str:
    return str(exc.args[0] if exc.args else exc).splitlines()[0][:300]


def _line(header: list[str], block: list[str], number: int) -> StatementLine | BadLine:
    raw = {"61": block[0].strip()[4:], "86": " ".join(c.strip()[4:] for c in block[1:])}
    minimal = [c for c in header if c[:4] in (":20:", ":25:") or c.startswith(":60")]
    try:
        transactions = Transactions()
        transactions.parse(_join(minimal + block))
    except (RuntimeError, ValueError) as exc:
        return BadLine(number, raw, {"61": [_reason(exc)]})
    if len(transactions) != 1:
        return BadLine(number, raw, {"61": ["The :61: line could not be read."]})
    data = transactions[0].data
    amount = data["amount"].amount
    if not isinstance(amount, Decimal) or amount == 0:
        return BadLine(number, raw, {"amount": ["The amount is zero or unreadable."]})
    details = _details(raw["86"])
    customer_ref = (data.get("customer_reference") or "").strip()
    remittance = details["remittance"]
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
        counterparty_name=details["name"][:200],
        counterparty_account=details["account"][:64],
        remittance=remittance,
        bank_reference=(data.get("bank_reference") or "").strip()[:100],
        end_to_end_id=details["end_to_end_id"][:100],
        raw=raw,
    )


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
