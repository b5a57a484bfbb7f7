"""The ECB's euro foreign exchange reference rate files, read into (day, currency, rate).

The ECB publishes the same rates in several files (https://www.ecb.europa.eu/stats/
policy_and_exchange_rates/euro_reference_exchange_rates/html/index.en.html):

- XML, `eurofxref-daily.xml`, `eurofxref-hist-90d.xml`, `eurofxref-hist.xml`: a
  gesmes:Envelope whose `Cube` holds one `Cube time="YYYY-MM-DD"` per day, each holding
  one `Cube currency="USD" rate="1.0705"` per currency.
- CSV in a zip, `eurofxref.zip` (eurofxref.csv: a `Date, USD, JPY, ...,` header and one
  line dated like `28 June 2024`, values after a comma and a space) and
  `eurofxref-hist.zip` (eurofxref-hist.csv: `Date,USD,JPY,...,` then one line a day,
  newest first, ISO dates, `N/A` or nothing where a currency had no rate that day). Both
  end every line with a comma. The plain .csv files are accepted too.

Rates are "units of the currency per euro" with up to six significant digits. Currencies
that are no longer ISO 4217 codes (the hist file's CYP, EEK, ROL, TRL, SIT, HRK...) are
skipped and counted, as are the days a currency had no rate; anything else that is not a
date, a code or a positive number refuses the whole file, naming where.
"""

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.money import ISO_4217

NAMESPACE = "{http://www.ecb.int/vocabulary/2002-08-01/eurofxref}"
NOT_AVAILABLE = {"", "N/A", "NA", "-"}
MAX_RATE = Decimal("1e12")  # DecimalField(max_digits=18, decimal_places=6)


@dataclass(frozen=True)
class RateLine:
    rate_on: dt.date
    currency: str
    rate: Decimal


@dataclass
class ParsedRates:
    """What a file held: the rates, and what was skipped (and why, counted)."""

    rates: list[RateLine] = field(default_factory=list)
    skipped_not_available: int = 0
    skipped_currencies: set[str] = field(default_factory=set)
    skipped_retired: int = 0

    @property
    def days(self) -> list[dt.date]:
        return sorted({line.rate_on for line in self.rates})


def parse(content: bytes, *, name: str = "") -> ParsedRates:
    """Read an ECB file (XML, CSV, or a zip holding one CSV) from its bytes."""
    if content.startswith(b"PK\x03\x04"):
        inner, inner_name = _unzip(content, name=name)
        return parse(inner, name=f"{name}: {inner_name}" if name else inner_name)
    text = _decode(content, name)
    if text.lstrip().startswith("<"):
        return _parse_xml(text, name)
    return _parse_csv(text, name)


def _unzip(content: bytes, *, name: str) -> tuple[bytes, str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = [m for m in archive.infolist() if m.filename.lower().endswith((".csv", ".xml"))]
    except zipfile.BadZipFile as exc:
        raise _error(name, _("it is not a readable zip file.")) from exc
    if len(members) != 1:
        raise _error(name, _("the zip file must hold exactly one .csv (or .xml) file."))
    member = members[0]
    # A reference rate file is a few MB; refuse a zip bomb before inflating it.
    if member.file_size > 50 * 1024 * 1024:
        raise _error(name, _("the file in the zip is larger than 50 MB."))
    return archive.read(member), member.filename


def _decode(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _error(name, _("it is not UTF-8 text.")) from exc


def _error(name: str, message: str) -> ValidationError:
    where = name or _("the rate file")
    return ValidationError(_("%(where)s: %(message)s") % {"where": where, "message": message})


def _rate(value: str, where: str, name: str) -> Decimal | None:
    value = value.strip()
    if value.upper() in NOT_AVAILABLE:
        return None
    try:
        rate = Decimal(value)
    except InvalidOperation:
        rate = None
    if rate is None or not rate.is_finite() or rate <= 0 or rate >= MAX_RATE:
        raise _error(
            name,
            _("%(where)s: %(value)r is not a rate (a positive number of units per euro).")
            % {"where": where, "value": value},
        )
    return rate


def _currency(value: str, name: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise _error(name, _("%(value)r is not a currency code.") % {"value": value.strip()})
    return code


def _add(parsed: ParsedRates, day: dt.date, code: str, rate: Decimal | None) -> None:
    if code not in ISO_4217 or code == "EUR":
        parsed.skipped_currencies.add(code)
        parsed.skipped_retired += 1
    elif rate is None:
        parsed.skipped_not_available += 1
    else:
        parsed.rates.append(RateLine(day, code, rate))


def _parse_xml(text: str, name: str) -> ParsedRates:
    try:
        root = fromstring(text)
    except (ParseError, DefusedXmlException) as exc:
        raise _error(name, _("it is not well-formed XML (%(error)s).") % {"error": exc}) from exc
    parsed, seen = ParsedRates(), set()
    days = [cube for cube in root.iter(f"{NAMESPACE}Cube") if cube.get("time") is not None]
    if not days:
        raise _error(name, _("no <Cube time=...> element: it is not an ECB rate file."))
    for day_cube in days:
        try:
            day = dt.date.fromisoformat(day_cube.get("time").strip())
        except ValueError as exc:
            raise _error(
                name, _("%(value)r is not a date.") % {"value": day_cube.get("time")}
            ) from exc
        for cube in day_cube.findall(f"{NAMESPACE}Cube"):
            code = _currency(cube.get("currency", ""), name)
            where = f"{day} {code}"
            if (day, code) in seen:
                raise _error(name, _("%(where)s appears twice.") % {"where": where})
            seen.add((day, code))
            _add(parsed, day, code, _rate(cube.get("rate", ""), where, name))
    return parsed


def _csv_date(value: str, line: int, name: str) -> dt.date:
    value = value.strip()
    for parse_date in (dt.date.fromisoformat, lambda v: dt.datetime.strptime(v, "%d %B %Y").date()):
        try:
            return parse_date(value)
        except ValueError:
            continue
    raise _error(
        name,
        _("line %(line)s: %(value)r is not a date (YYYY-MM-DD or like 28 June 2024).")
        % {"line": line, "value": value},
    )


def _parse_csv(text: str, name: str) -> ParsedRates:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header or header[0].strip().lower() != "date":
        raise _error(name, _("the first column must be Date: it is not an ECB rate file."))
    # Every line ends with a comma: the last, nameless column is always empty.
    codes = [_currency(cell, name) if cell.strip() else None for cell in header[1:]]
    parsed, seen_days = ParsedRates(), set()
    for line, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        day = _csv_date(cells[0], line, name)
        if day in seen_days:
            raise _error(
                name, _("line %(line)s: %(day)s appears twice.") % {"line": line, "day": day}
            )
        seen_days.add(day)
        values = cells[1:]
        if any(cell.strip() for cell in values[len(codes) :]):
            raise _error(name, _("line %(line)s has more values than the header.") % {"line": line})
        for code, value in zip(codes, values, strict=False):
            if code is not None:
                _add(parsed, day, code, _rate(value, f"line {line}, {code}", name))
    if not seen_days:
        raise _error(name, _("it holds no day of rates."))
    return parsed
