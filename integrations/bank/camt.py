"""ISO 20022 bank-to-customer XML: camt.053 statements, camt.052 intraday reports and
camt.054 debit/credit notifications, versions 001.02 to 001.13, read as a stream.

The document is read with iterparse (through defusedxml: no DTD entity expansion, no
external entities), one entry (Ntry) at a time: each entry is turned into lines and then
dropped from the tree, so a file of any size is held one entry at a time. Each statement
(Stmt, Rpt or Ntfctn) is its own statement, whatever its account; one without entries is
an empty statement, imported as such.
"""

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse
from django.core.exceptions import ValidationError

from accounts.money import ISO_4217, to_amount

from .statement import (
    NO_REFERENCE,
    BadLine,
    ParsedStatement,
    Sniffed,
    StatementLine,
    StatementUnreadable,
)

NAMESPACE = re.compile(
    r"^\{(urn:iso:std:iso:20022:tech:xsd:camt\.05([234])\.001\.(0[2-9]|1[0-3]))\}Document$"
)
# Message and statement elements of each kind.
CONTAINERS = {
    "3": ("BkToCstmrStmt", "Stmt"),
    "2": ("BkToCstmrAcctRpt", "Rpt"),
    "4": ("BkToCstmrDbtCdtNtfctn", "Ntfctn"),
}


class _Xml:
    """Namespace-qualified lookups: `find(elem, "NtryDtls/TxDtls")` in the document's ns."""

    def __init__(self, namespace: str):
        self.ns = namespace

    def path(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{step}" for step in path.split("/"))

    def find(self, elem: Element | None, path: str) -> Element | None:
        return None if elem is None else elem.find(self.path(path))

    def findall(self, elem: Element | None, path: str) -> list[Element]:
        return [] if elem is None else elem.findall(self.path(path))

    def text(self, elem: Element | None, *paths: str) -> str:
        """The stripped text of the first of `paths` that exists."""
        for path in paths:
            found = self.find(elem, path)
            if found is not None and (found.text or "").strip():
                return found.text.strip()
        return ""

    def date(self, elem: Element | None, path: str) -> dt.date | None:
        """An ISODate (Dt) or ISODateTime (DtTm) under `path`; ValueError if malformed."""
        value = self.text(elem, f"{path}/Dt", f"{path}/DtTm")
        return dt.date.fromisoformat(value[:10]) if value else None


def parse(stream: BinaryIO, sniffed: Sniffed, **options) -> Iterator[ParsedStatement]:
    return _readable(_statements(iterparse(stream, events=("start", "end"))))


def _readable(items: Iterator) -> Iterator:
    """The XML parser's errors, wherever the reading stops, as the file's reason."""
    try:
        yield from items
    except ParseError as exc:
        raise StatementUnreadable(f"the XML cannot be read: {exc}") from exc
    except DefusedXmlException as exc:
        raise StatementUnreadable(f"the XML uses forbidden constructs: {exc}") from exc


def _statements(events) -> Iterator[ParsedStatement]:
    """Each statement once its header (account, balances) is read, before its entries."""
    _event, root = next(events)
    found = NAMESPACE.match(root.tag)
    if not found:
        raise StatementUnreadable(
            f"not a camt.053, camt.052 or camt.054 document (root element {root.tag}); "
            "versions 001.02 to 001.13 are supported"
        )
    namespace, kind = found.group(1), found.group(2)
    xml = _Xml(namespace)
    message_tag, statement_tag = (xml.path(tag) for tag in CONTAINERS[kind])
    entry_tag = xml.path("Ntry")
    numbering = {"next": 1}
    message = None
    count = 0
    for event, elem in events:
        if event == "start" and elem.tag == message_tag:
            message = elem
        if event != "start" or elem.tag != statement_tag:
            continue
        stmt, first_entry = elem, None
        for event, elem in events:  # the header: everything before the first entry
            if event == "start" and elem.tag == entry_tag:
                first_entry = elem
                break
            if event == "end" and elem is stmt:
                break
        statement = _header(xml, stmt, f"camt05{kind}")
        statement.lines = _readable(_entries(events, xml, stmt, first_entry, statement, numbering))
        count += 1
        yield statement
        for _line in statement.lines:  # whatever the consumer left unread
            pass
        if message is not None:
            message.remove(stmt)
    if count == 0:
        raise StatementUnreadable(
            f"the camt.05{kind} document holds no statement ({CONTAINERS[kind][1]})"
        )


def _header(xml: "_Xml", stmt: Element, format: str) -> ParsedStatement:
    account = _account(xml, stmt)
    if not account:
        raise StatementUnreadable(
            f"the statement {xml.text(stmt, 'Id')!r} names no account (Acct/Id)"
        )
    opening = _balance(xml, stmt, ("OPBD", "PRCD", "OPAV"))
    amount = next(
        (
            found.get("Ccy", "")
            for bal in xml.findall(stmt, "Bal")
            if (found := xml.find(bal, "Amt")) is not None
        ),
        "",
    )
    return ParsedStatement(
        format=format,
        account=account,
        statement_ref=xml.text(stmt, "Id")[:100],
        currency=xml.text(stmt, "Acct/Ccy") or amount,
        opening_balance=opening[0] if opening else None,
        from_on=_period(xml, stmt, "FrDtTm") or (opening[1] if opening else None),
        to_on=_period(xml, stmt, "ToDtTm"),
    )


def _entries(
    events, xml: "_Xml", stmt: Element, first_entry, statement: ParsedStatement, numbering
) -> Iterator[StatementLine | BadLine]:
    """The statement's lines, entry by entry; then its closing balance and period."""
    entry_tag = xml.path("Ntry")
    booked = []
    if first_entry is not None:
        for event, elem in events:
            if event == "end" and elem.tag == entry_tag:
                for line in _entry_lines(xml, elem, first_number=numbering["next"]):
                    numbering["next"] += 1
                    if isinstance(line, StatementLine):
                        booked.append(line.booked_on)
                        booked[:] = [min(booked), max(booked)]
                        statement.currency = statement.currency or line.currency
                    yield line
                stmt.remove(elem)  # the entry is done: drop it from the tree
            elif event == "end" and elem is stmt:
                break
    if statement.currency not in ISO_4217:
        raise StatementUnreadable(
            f"the statement's currency {statement.currency!r} is not ISO 4217"
            if statement.currency
            else f"the statement {statement.statement_ref!r} names no currency (Acct/Ccy)"
        )
    closing = _balance(xml, stmt, ("CLBD", "CLAV"))
    statement.closing_balance = closing[0] if closing else None
    statement.from_on = statement.from_on or (booked[0] if booked else None)
    statement.to_on = (
        statement.to_on or (closing[1] if closing else None) or (booked[-1] if booked else None)
    )


def _account(xml: _Xml, stmt: Element) -> str:
    return xml.text(stmt, "Acct/Id/IBAN", "Acct/Id/Othr/Id").replace(" ", "")[:64]


def _period(xml: _Xml, stmt: Element, which: str) -> dt.date | None:
    value = xml.text(stmt, f"FrToDt/{which}")
    try:
        return dt.date.fromisoformat(value[:10]) if value else None
    except ValueError:
        return None


def _balance(xml: _Xml, stmt: Element, codes: tuple[str, ...]):
    """(signed amount, date) of the first balance whose type is one of `codes`."""
    for code in codes:
        for bal in xml.findall(stmt, "Bal"):
            if xml.text(bal, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry") != code:
                continue
            try:
                amount = to_amount(xml.text(bal, "Amt"))
                on = xml.date(bal, "Dt")
            except (ValidationError, ValueError):
                return None
            sign = -1 if xml.text(bal, "CdtDbtInd") == "DBIT" else 1
            return sign * amount, on
    return None


def _entry_lines(xml: _Xml, entry: Element, first_number: int) -> list[StatementLine | BadLine]:
    """One line per entry, or one per transaction when a batched entry (several TxDtls)
    carries each transaction's own amount: each is a separate payment to match."""
    amt = xml.find(entry, "Amt")
    raw = {
        "Amt": xml.text(entry, "Amt"),
        "Ccy": amt.get("Ccy", "") if amt is not None else "",
        "CdtDbtInd": xml.text(entry, "CdtDbtInd"),
        "BookgDt": xml.text(entry, "BookgDt/Dt", "BookgDt/DtTm"),
        "AcctSvcrRef": xml.text(entry, "AcctSvcrRef"),
    }
    errors: dict[str, list[str]] = {}
    amount = _amount(raw["Amt"], errors, "amount")
    currency = raw["Ccy"]
    if currency not in ISO_4217:
        errors.setdefault("currency", []).append(f"{currency!r} is not an ISO 4217 currency.")
    direction = raw["CdtDbtInd"]
    if direction not in ("CRDT", "DBIT"):
        errors.setdefault("direction", []).append(f"CdtDbtInd {direction!r} is not CRDT or DBIT.")
    booked_on = value_on = None
    try:
        booked_on = xml.date(entry, "BookgDt") or xml.date(entry, "ValDt")
        value_on = xml.date(entry, "ValDt")
    except ValueError:
        errors.setdefault("date", []).append("The booking or value date is not a date.")
    if booked_on is None and "date" not in errors:
        errors.setdefault("date", []).append("The entry has no booking date.")
    if errors:
        return [BadLine(first_number, raw, errors)]
    sign = 1 if direction == "CRDT" else -1
    details = xml.findall(entry, "NtryDtls/TxDtls")
    entry_ref = raw["AcctSvcrRef"]
    split = len(details) > 1 and _split_amounts(xml, details, currency, amount)
    if not split:
        parts = [_details(xml, details, direction)]
        return [
            StatementLine(
                line_number=first_number,
                booked_on=booked_on,
                value_on=value_on,
                amount=sign * amount,
                currency=currency,
                bank_reference=_reference(entry_ref, parts[0]["tx_ref"]),
                raw=raw,
                **{k: v for k, v in parts[0].items() if k != "tx_ref"},
            )
        ]
    lines = []
    for index, (tx, tx_amount) in enumerate(zip(details, split, strict=True)):
        part = _details(xml, [tx], direction)
        reference = part["tx_ref"] or (f"{entry_ref}/{index + 1}" if entry_ref else "")
        lines.append(
            StatementLine(
                line_number=first_number + index,
                booked_on=booked_on,
                value_on=value_on,
                amount=sign * tx_amount,
                currency=currency,
                bank_reference=reference if reference.upper() not in NO_REFERENCE else "",
                raw={**raw, "TxDtls": index + 1},
                **{k: v for k, v in part.items() if k != "tx_ref"},
            )
        )
    return lines


def _reference(entry_ref: str, tx_ref: str) -> str:
    for ref in (entry_ref, tx_ref):
        if ref.upper() not in NO_REFERENCE:
            return ref
    return ""


def _amount(value: str, errors: dict, name: str) -> Decimal | None:
    try:
        amount = to_amount(value)
    except ValidationError:
        errors.setdefault(name, []).append(f"{value!r} is not an amount.")
        return None
    if amount <= 0:
        errors.setdefault(name, []).append("An entry's amount must be more than zero.")
        return None
    return amount


def _split_amounts(xml: _Xml, details: list[Element], currency: str, total: Decimal):
    """Each transaction's amount when all of them state one in the entry's currency and
    they add up to the entry; otherwise None (the entry stays one line)."""
    amounts = []
    for tx in details:
        amt = xml.find(tx, "Amt")
        if amt is None:  # an Element with no children is falsy: compare with None
            amt = xml.find(tx, "AmtDtls/TxAmt/Amt")
        if amt is None or amt.get("Ccy") != currency:
            return None
        try:
            amounts.append(to_amount(amt.text or ""))
        except ValidationError:
            return None
    if sum(amounts) != total or any(a <= 0 for a in amounts):
        return None
    return amounts


def _details(xml: _Xml, details: list[Element], direction: str) -> dict:
    """Counterparty, remittance and references of the transactions under one line."""
    party = "Dbtr" if direction == "CRDT" else "Cdtr"
    names, accounts, remittance, end_to_end, tx_refs = [], [], [], [], []
    for tx in details:
        # v.08 nests the party one level deeper (Dbtr/Pty/Nm).
        name = xml.text(tx, f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm")
        if not name:
            name = xml.text(tx, "RltdPties/UltmtDbtr/Nm", "RltdPties/UltmtDbtr/Pty/Nm")
        account = xml.text(
            tx, f"RltdPties/{party}Acct/Id/IBAN", f"RltdPties/{party}Acct/Id/Othr/Id"
        )
        names.append(name)
        accounts.append(account.replace(" ", ""))
        for ustrd in xml.findall(tx, "RmtInf/Ustrd"):
            if (ustrd.text or "").strip():
                remittance.append(ustrd.text.strip())
        for strd in xml.findall(tx, "RmtInf/Strd"):
            ref = xml.text(strd, "CdtrRefInf/Ref")
            if ref:
                remittance.append(ref)
            for doc in xml.findall(strd, "RfrdDocInf"):
                number = xml.text(doc, "Nb")
                if number:
                    remittance.append(number)
        e2e = xml.text(tx, "Refs/EndToEndId")
        if e2e.upper() not in NO_REFERENCE:
            end_to_end.append(e2e)
        tx_ref = xml.text(tx, "Refs/AcctSvcrRef")
        if tx_ref:
            tx_refs.append(tx_ref)
    return {
        "counterparty_name": _one(names)[:200],
        "counterparty_account": _one(accounts)[:64],
        "remittance": " ".join(dict.fromkeys(remittance)),
        "end_to_end_id": " ".join(end_to_end)[:100],
        "tx_ref": tx_refs[0] if len(tx_refs) == 1 else "",
    }


def _one(values: list[str]) -> str:
    """The value when every transaction agrees on it, else empty (a batch of payers)."""
    distinct = {v for v in values if v}
    return distinct.pop() if len(distinct) == 1 else ""
