"""Classify an inbound e-mail: pure functions, no database, no clock.

- ``is_automatic``: RFC 3834 ``Auto-Submitted`` and the de-facto auto-reply headers,
  bounces, mailing lists and out-of-office subjects (en/de/fr/es).
- ``reply_token`` / ``references``: how a reply is threaded to its notice.
- ``visible_text``: the human part of the body, quoted history cut, bounded.
- ``extract_promise``: a promised payment date (and amount near it) in free text.
- ``mentions_dispute``: dispute words found, case- and accent-insensitive.

Ambiguous numeric dates (``03/04/2026``): a dot (``03.04.2026``) is always day-first;
a slash is day-first unless the text mentions ``$``/``USD`` or the default currency is
USD, then month-first (US style). When only one reading is a valid date it is used.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import codecs
import datetime
import email.message
import quopri
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from email.utils import getaddresses
from html.parser import HTMLParser

MAX_CHARS = 20_000
_MAX_BYTES = MAX_CHARS * 4  # at most 4 bytes per character in any charset we decode


def _fold(text: str) -> str:
    """Lower-case and strip accents, one output character per input character."""
    out = []
    for ch in text:
        low = ch.lower()[:1] or ch
        out.append(unicodedata.normalize("NFKD", low)[:1] or low)
    return "".join(out)


def _header(message, name: str) -> str:
    try:
        values = message.get_all(name) or []
    except Exception:  # a malformed header must not break classification
        return ""
    return " ".join(str(v) for v in values).replace("\r", " ").replace("\n", " ").strip()


# ---------------------------------------------------------------- automatic replies

_OOF_SUBJECT = re.compile(
    r"\b(out of (the )?office|automatic reply|auto[- ]?reply|autoresponse|auto[- ]?response"
    r"|abwesenheitsnotiz|automatische antwort|abwesend|absence du bureau|reponse automatique"
    r"|absent du bureau|respuesta automatica|fuera de la oficina|ausente|vacation reply)\b"
)
_HINT_SUBJECT = re.compile(r"\b(out of|away|vacation|holiday|urlaub|conge|vacaciones|absen\w*)\b")
_PRECEDENCE = {"auto_reply", "bulk", "junk", "list"}


def is_automatic(message: email.message.EmailMessage) -> str | None:
    """Why ``message`` is an automatic reply (a short reason), or None for a human one."""
    auto = _header(message, "Auto-Submitted").split(";")[0].strip().lower()
    if auto and auto != "no":
        return f"auto-submitted: {auto}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponder"):
        value = _header(message, name).lower()
        if value and value not in {"no", "false", "0"}:
            return name.lower()
    for name in ("Precedence", "X-Precedence"):
        value = _header(message, name).lower()
        if value in _PRECEDENCE:
            return f"{name.lower()}: {value}"
    if _header(message, "X-MS-Exchange-Generated-Message-Source"):
        return "exchange-generated"
    content_type = _header(message, "Content-Type").lower()
    if "multipart/report" in content_type and "delivery-status" in content_type:
        return "bounce"
    if _header(message, "Return-Path").replace(" ", "") == "<>":
        return "null return-path"
    if _header(message, "List-Id") or _header(message, "List-Unsubscribe"):
        return "mailing list"
    subject = _fold(_header(message, "Subject"))
    if _OOF_SUBJECT.search(subject):
        return "out-of-office subject"
    suppress = _header(message, "X-Auto-Response-Suppress").lower()
    if ("oof" in suppress or "autoreply" in suppress) and _HINT_SUBJECT.search(subject):
        return "out-of-office hint"
    return None


# ---------------------------------------------------------------- threading

_TOKEN_ADDRESS = re.compile(r"[^@+\s<>]+\+([A-Za-z0-9_-]{8,64})@[A-Za-z0-9.-]+")
_MESSAGE_ID = re.compile(r"<([^<>\s]{1,500})>")


def reply_token(message: email.message.EmailMessage) -> str | None:
    """The token of a ``local+token@domain`` address in To, Cc or Delivered-To."""
    for name in ("To", "Cc", "Delivered-To"):
        try:
            values = [str(v) for v in (message.get_all(name) or [])]
        except Exception:  # noqa: S112 - a malformed header is skipped
            continue
        for _, address in getaddresses(values):
            match = _TOKEN_ADDRESS.fullmatch(address.strip())
            if match:
                return match.group(1)
    return None


def references(message: email.message.EmailMessage) -> list[str]:
    """Message ids from In-Reply-To then References, in order, de-duplicated."""
    found: list[str] = []
    for name in ("In-Reply-To", "References"):
        for msgid in _MESSAGE_ID.findall(_header(message, name)):
            if msgid not in found:
                found.append(msgid)
            if len(found) >= 100:
                return found
    return found


# ---------------------------------------------------------------- visible text


class _HTMLText(HTMLParser):
    _BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table"}
    _SKIP = {"script", "style", "head", "title", "blockquote"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HTMLText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # noqa: S110 - keep what was parsed from broken HTML
        pass
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _decoded(part) -> str:
    raw = part.get_payload(decode=False)
    if not isinstance(raw, str):
        return ""
    raw = raw[: _MAX_BYTES * 2]
    cte = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if cte == "base64":
        cleaned = re.sub(r"[^A-Za-z0-9+/=]", "", raw)
        cleaned = cleaned[: len(cleaned) - len(cleaned) % 4]
        try:
            data = base64.b64decode(cleaned)
        except (binascii.Error, ValueError):
            data = b""
    elif cte == "quoted-printable":
        data = quopri.decodestring(raw.encode("ascii", "replace"))
    else:  # 7bit/8bit/binary: the parser keeps raw bytes as surrogates; decode=True returns them
        payload = part.get_payload(decode=True)
        data = payload[:_MAX_BYTES] if isinstance(payload, bytes) else b""
    charset = part.get_content_charset() or "utf-8"
    try:
        codecs.lookup(charset)
    except (LookupError, ValueError):
        charset = "utf-8"
    try:
        text = data[:_MAX_BYTES].decode(charset, errors="replace")
    except Exception:
        text = data[:_MAX_BYTES].decode("utf-8", errors="replace")
    return text[:MAX_CHARS]


def _body_part(message, content_type: str):
    for part in message.walk():
        if part.is_multipart() or part.get_content_type() != content_type:
            continue
        if str(part.get("Content-Disposition", "")).lower().startswith("attachment"):
            continue
        return part
    return None


_REPLY_HEADER = [
    re.compile(r"^\s*on\b.{0,300}\bwrote\s*:\s*$"),
    re.compile(r"^\s*am\b.{0,300}\bschrieb\b.{0,300}:\s*$"),
    re.compile(r"^\s*le\b.{0,300}\ba ecrit\s*:\s*$"),
    re.compile(r"^\s*el\b.{0,300}\bescribio\s*:\s*$"),
    re.compile(
        r"^\s*-{2,}\s*(original message|ursprungliche nachricht"
        r"|message d'origine|mensaje original)\s*-{2,}"
    ),
]
_FROM_LINE = re.compile(r"^\s*\**(from|von|de)\s*:")
_SENT_LINE = re.compile(r"^\s*\**(sent|date|gesendet|datum|envoye|enviado|fecha)\s*:")


def cut_quoted(text: str) -> str:
    """Cut quoted history: ``>`` lines and everything after a reply header."""
    lines = text.splitlines()
    kept: list[str] = []
    for index, line in enumerate(lines):
        folded = _fold(line)
        joined = folded + " " + _fold(lines[index + 1]) if index + 1 < len(lines) else folded
        if any(p.match(folded) for p in _REPLY_HEADER) or (
            folded.strip().startswith(("on ", "am ", "le ", "el "))
            and any(p.match(joined) for p in _REPLY_HEADER[:4])
        ):
            break
        if _FROM_LINE.match(folded) and any(
            _SENT_LINE.match(_fold(n)) for n in lines[index + 1 : index + 5]
        ):
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line.rstrip())
    return "\n".join(kept).strip()


def visible_text(message: email.message.EmailMessage) -> str:
    """The human part of the body: text/plain preferred, else HTML as text; history cut."""
    part = _body_part(message, "text/plain")
    if part is not None:
        text = _decoded(part)
    else:
        part = _body_part(message, "text/html")
        text = html_to_text(_decoded(part)) if part is not None else ""
    return cut_quoted(text.replace("\r\n", "\n").replace("\r", "\n"))


# ---------------------------------------------------------------- promises


@dataclass(frozen=True)
class Promise:
    promised_on: datetime.date
    amount: Decimal | None
    currency: str


_MONTHS = {
    **{
        m: i
        for i, m in enumerate(
            [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            [
                "januar",
                "februar",
                "marz",
                "april",
                "mai",
                "juni",
                "juli",
                "august",
                "september",
                "oktober",
                "november",
                "dezember",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            [
                "janvier",
                "fevrier",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "aout",
                "septembre",
                "octobre",
                "novembre",
                "decembre",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
        )
    },
    "sept": 9,
    "jänner": 1,
    "maerz": 3,
    "setiembre": 9,
}
_MONTH_RE = "|".join(sorted((re.escape(m) for m in _MONTHS), key=len, reverse=True))
_WEEKDAYS = {
    **{
        d: i
        for i, d in enumerate(
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        )
    },
    **{
        d: i
        for i, d in enumerate(
            ["montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag"]
        )
    },
    **{
        d: i
        for i, d in enumerate(
            ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"]
        )
    },
    **{
        d: i
        for i, d in enumerate(
            ["lunes", "martes", "miercoles", "jueves", "viernes", "sabado", "domingo"]
        )
    },
}
_WEEKDAY_RE = "|".join(_WEEKDAYS)

_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC = re.compile(r"\b(\d{1,2})([./])(\d{1,2})\2(\d{4}|\d{2})\b")
_DAY_MONTH = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:de\s+|of\s+)?({_MONTH_RE})\b\.?(?:,?\s+(?:de\s+)?(\d{{4}}))?"
)
_MONTH_DAY = re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?")
_NEXT_WEEKDAY = re.compile(
    rf"\b(?:next|nachsten|nachster|kommenden|el proximo|proximo)\s+({_WEEKDAY_RE})\b"
    rf"|\b({_WEEKDAY_RE})\s+prochain\b"
)
_END_OF_MONTH = re.compile(
    r"\b(end of (?:the |this )?month|ende (?:des|dieses) monats|monatsende"
    r"|fin (?:du|de ce) mois|fin de(?:l| este)? mes)\b"
)
_TOMORROW = re.compile(r"\b(tomorrow|morgen|demain|manana)\b")

_CODES = "EUR|USD|GBP|CHF|CAD|AUD|SEK|NOK|DKK|PLN|CZK|JPY"
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP"}
_NUMBER = r"\d{1,3}(?:[.,' \u00a0]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_AMOUNT_BEFORE = re.compile(rf"(?<![A-Za-z])({_CODES}|[€$£])\s?({_NUMBER})(?!\d)")
_AMOUNT_AFTER = re.compile(rf"(?<![\d.,])({_NUMBER})\s?({_CODES}|[€$£])(?![A-Za-z])")


def _parse_number(raw: str) -> Decimal | None:
    raw = raw.replace(" ", "").replace("\u00a0", "").replace("'", "")
    if "," in raw and "." in raw:
        decimal_sep = "," if raw.rfind(",") > raw.rfind(".") else "."
        thousands = "." if decimal_sep == "," else ","
        raw = raw.replace(thousands, "").replace(decimal_sep, ".")
    elif "," in raw or "." in raw:
        sep = "," if "," in raw else "."
        head, _, tail = raw.rpartition(sep)
        if raw.count(sep) == 1 and len(tail) in (1, 2):
            raw = head + "." + tail
        else:
            raw = raw.replace(sep, "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return None
    return value if value > 0 else None


def _safe_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None


def _add_year(day: datetime.date) -> datetime.date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)


def _without_year(today: datetime.date, month: int, day: int) -> datetime.date | None:
    candidate = _safe_date(today.year, month, day)
    if candidate is None or candidate < today:
        candidate = _safe_date(today.year + 1, month, day)
    return candidate


def _dates(folded: str, today: datetime.date, us_style: bool) -> list[tuple[int, datetime.date]]:
    found: list[tuple[int, datetime.date]] = []
    for m in _ISO.finditer(folded):
        d = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if d:
            found.append((m.start(), d))
    for m in _NUMERIC.finditer(folded):
        a, sep, b, year = int(m.group(1)), m.group(2), int(m.group(3)), int(m.group(4))
        year = year + 2000 if year < 100 else year
        day_first = _safe_date(year, b, a)
        month_first = _safe_date(year, a, b)
        if sep == "/" and us_style:
            d = month_first or day_first
        else:
            d = day_first or (month_first if sep == "/" else None)
        if d:
            found.append((m.start(), d))
    for m in _DAY_MONTH.finditer(folded):
        day, month = int(m.group(1)), _MONTHS[m.group(2)]
        d = (
            _safe_date(int(m.group(3)), month, day)
            if m.group(3)
            else _without_year(today, month, day)
        )
        if d:
            found.append((m.start(), d))
    for m in _MONTH_DAY.finditer(folded):
        day, month = int(m.group(2)), _MONTHS[m.group(1)]
        d = (
            _safe_date(int(m.group(3)), month, day)
            if m.group(3)
            else _without_year(today, month, day)
        )
        if d:
            found.append((m.start(), d))
    for m in _NEXT_WEEKDAY.finditer(folded):
        weekday = _WEEKDAYS[m.group(1) or m.group(2)]
        ahead = (weekday - today.weekday()) % 7 or 7
        found.append((m.start(), today + datetime.timedelta(days=ahead)))
    for m in _END_OF_MONTH.finditer(folded):
        last = calendar.monthrange(today.year, today.month)[1]
        found.append((m.start(), today.replace(day=last)))
    for m in _TOMORROW.finditer(folded):
        found.append((m.start(), today + datetime.timedelta(days=1)))
    found.sort(key=lambda item: item[0])
    return found


def _amounts(text: str) -> list[tuple[int, Decimal, str]]:
    found = []
    for m in _AMOUNT_BEFORE.finditer(text):
        value = _parse_number(m.group(2))
        if value is not None:
            found.append((m.start(), value, _SYMBOLS.get(m.group(1), m.group(1))))
    for m in _AMOUNT_AFTER.finditer(text):
        value = _parse_number(m.group(1))
        if value is not None:
            found.append((m.start(), value, _SYMBOLS.get(m.group(2), m.group(2))))
    return found


def extract_promise(text: str, *, today: datetime.date, default_currency: str) -> Promise | None:
    """The first promised date in ``[today, today + 1 year]`` and the amount nearest to it."""
    text = (text or "")[:MAX_CHARS]
    folded = _fold(text)
    us_style = default_currency.upper() == "USD" or "$" in text or "usd" in folded
    horizon = _add_year(today)
    dates = [(pos, d) for pos, d in _dates(folded, today, us_style) if today <= d <= horizon]
    if not dates:
        return None
    position, promised_on = dates[0]
    amounts = _amounts(text)
    if not amounts:
        return Promise(promised_on=promised_on, amount=None, currency=default_currency.upper())
    _, amount, currency = min(amounts, key=lambda item: abs(item[0] - position))
    return Promise(promised_on=promised_on, amount=amount, currency=currency)


# ---------------------------------------------------------------- disputes

DISPUTE_WORDS = [
    # en
    "dispute",
    "disputed",
    "incorrect",
    "wrong amount",
    "wrong invoice",
    "never received",
    "not received",
    "damaged",
    "not ordered",
    "credit note",
    "overcharged",
    "refund",
    "defective",
    # de
    "Reklamation",
    "reklamieren",
    "falsch",
    "falsche",
    "falschen",
    "nicht erhalten",
    "beschädigt",
    "nicht bestellt",
    "Gutschrift",
    "Widerspruch",
    "mangelhaft",
    # fr
    "litige",
    "contestation",
    "conteste",
    "erroné",
    "erronée",
    "pas reçu",
    "jamais reçu",
    "endommagé",
    "pas commandé",
    "facture d'avoir",
    # es
    "reclamación",
    "reclamo",
    "incorrecto",
    "incorrecta",
    "no recibido",
    "no recibimos",
    "dañado",
    "no pedido",
    "nota de crédito",
    "disputa",
]
_DISPUTE_PATTERNS = [
    (
        word,
        re.compile(r"(?<!\w)" + r"\s+".join(re.escape(p) for p in _fold(word).split()) + r"(?!\w)"),
    )
    for word in DISPUTE_WORDS
]


def mentions_dispute(text: str) -> list[str]:
    """The dispute words in ``text``: whole words, case- and accent-insensitive, in list order."""
    folded = _fold((text or "")[:MAX_CHARS])
    return [word for word, pattern in _DISPUTE_PATTERNS if pattern.search(folded)]
