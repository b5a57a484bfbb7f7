"""Reading intake rows: which column holds which field, and what each cell says.

One module for every kind of row (customers, contacts, invoices, payments) from every
source (spreadsheets, the REST API):

- `ColumnMap.bind(headers, columns=..., required=...)` matches a file's headers to ledger
  fields through their aliases (case-, space- and leading-`*`-insensitive), and refuses a
  file that lacks a required column before any row is read;
- `Cells` reads one cell as a date, an amount, a currency, an e-mail address, a country or
  yes/no, in the formats of an import profile (or a kind's fixed ones), and raises
  ValueError with the message finance sees on the rejected row; `text` and `phone` need no
  formats. Dates, e-mail addresses, countries and phone numbers are remembered per distinct
  value: a file repeats its dates and its customers' contacts.
"""

import datetime as dt
import functools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

from accounts.models import normalize_phone
from accounts.money import ISO_4217, to_amount

CACHE_SIZE = 100_000  # distinct dates, e-mails and countries remembered per reader
MAX_AMOUNT = Decimal("999999999999.99")  # DecimalField(max_digits=14, decimal_places=2)
COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS)
COUNTRY_NAMES = {
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
    "united kingdom": "GB",
    "uk": "GB",
    "great britain": "GB",
    "england": "GB",
    "australia": "AU",
    "new zealand": "NZ",
    "canada": "CA",
    "ireland": "IE",
    "germany": "DE",
    "deutschland": "DE",
    "france": "FR",
    "spain": "ES",
    "italy": "IT",
    "netherlands": "NL",
    "belgium": "BE",
    "switzerland": "CH",
    "austria": "AT",
    "sweden": "SE",
    "norway": "NO",
    "denmark": "DK",
    "south africa": "ZA",
    "singapore": "SG",
    "india": "IN",
    "japan": "JP",
    "mexico": "MX",
    "brazil": "BR",
}
YES = frozenset({"1", "true", "yes", "y", "x"})
NO = frozenset({"", "0", "false", "no", "n"})


# --- headers ---------------------------------------------------------------------------


class MissingColumns(Exception):
    """The file lacks a required column: no row of it can be read."""

    def __init__(self, missing: list[str], found: list[str]):
        self.missing, self.found = missing, found
        super().__init__(
            _("Missing required columns: %(missing)s. Headers found: %(found)s.")
            % {
                "missing": ", ".join(missing),
                "found": ", ".join(repr(h) for h in found) or _("none"),
            }
        )


def normalize_header(header) -> str:
    """'  Invoice  Number ', '*InvoiceNumber' and 'invoicenumber' all compare equal."""
    return re.sub(r"\s+", "", str(header or "")).lstrip("*").lower()


@dataclass(frozen=True)
class ColumnMap:
    """Which column of the file holds which ledger field."""

    headers: tuple[str, ...]
    positions: dict[str, int]  # ledger field -> column index

    @classmethod
    def bind(
        cls,
        headers: Iterable,
        *,
        columns: Mapping[str, Sequence[str]],
        required: Iterable[str],
    ) -> "ColumnMap":
        """Match `headers` to the fields of `columns` ({field: [header aliases]})."""
        headers = tuple("" if h is None else str(h).strip() for h in headers)
        by_name: dict[str, int] = {}
        for index, header in enumerate(headers):
            by_name.setdefault(normalize_header(header), index)
        positions = {}
        for ledger_field, aliases in columns.items():
            for alias in aliases:
                index = by_name.get(normalize_header(alias))
                if index is not None:
                    positions[ledger_field] = index
                    break
        missing = [name for name in required if name not in positions]
        if missing:
            raise MissingColumns(
                [_column_names(name, columns.get(name, [name])) for name in missing],
                [h for h in headers if h],
            )
        return cls(headers=headers, positions=positions)

    @functools.cached_property
    def _cells(self) -> Callable[[list], tuple]:
        """The mapped cells of a full row, in `positions` order, in one C call."""
        indexes = tuple(self.positions.values())
        if len(indexes) < 2:  # itemgetter of one index returns the cell, not a tuple
            return lambda values: tuple(values[index] for index in indexes)
        return operator.itemgetter(*indexes)

    def raw(self, values) -> dict:
        """The row as {header: value}, for the dead-letter list and the retry form."""
        return {
            header or f"column {index + 1}": "" if value is None else value
            for index, (header, value) in enumerate(zip(self.headers, values, strict=False))
        }

    def fields(self, values) -> dict:
        if len(values) >= len(self.headers):  # the usual, full row: no bounds checks
            return dict(zip(self.positions, self._cells(values), strict=True))
        return {
            name: values[index] if index < len(values) else None
            for name, index in self.positions.items()
        }


def _column_names(name: str, aliases: Sequence[str]) -> str:
    """'number (Invoice Number / InvoiceNumber)', or just 'external_ref' when that is its
    only header."""
    if [normalize_header(alias) for alias in aliases] == [normalize_header(name)]:
        return name
    return f"{name} ({' / '.join(aliases)})"


class RawRow(Mapping):
    """`ColumnMap.raw(values)`, built only when read: most rows are never rejected."""

    __slots__ = ("_raw", "columns", "values")

    def __init__(self, columns: ColumnMap, values):
        self.columns, self.values, self._raw = columns, values, None

    def _dict(self) -> dict:
        if self._raw is None:
            self._raw = self.columns.raw(self.values)
        return self._raw

    def __getitem__(self, key):
        return self._dict()[key]

    def __iter__(self):
        return iter(self._dict())

    def __len__(self) -> int:
        return len(self._dict())


# --- cells -----------------------------------------------------------------------------


def text(value) -> str:
    """A cell as stripped text; a workbook's float as its shortest repr (what was typed)."""
    if value.__class__ is str:
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value).strip()


def whole_text(value) -> str:
    """`text`, but a workbook's whole float (5.0) as 5: how customers', contacts' and
    payments' keys have always been read, so a file loaded again finds the same rows."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return text(value)


@functools.lru_cache(maxsize=50_000)
def phone(raw: str, region: str) -> tuple[str, tuple[str, ...]]:
    """E.164 or the reasons it is not (the region is the customer's country); cached, as
    every invoice row repeats its customer's contact."""
    try:
        return normalize_phone(raw, region), ()
    except ValidationError as exc:
        return "", tuple(exc.messages)


def yes_no(value) -> bool:
    """1, true, yes, y or x; 0, false, no, n or empty (any case)."""
    word = str(value if value is not None else "").strip().lower()
    if word in YES:
        return True
    if word in NO:
        return False
    raise ValueError(_("%(value)r is not yes or no.") % {"value": value})


def _format_label(pattern: str) -> str:
    return (
        pattern.replace("%d", "DD")
        .replace("%m", "MM")
        .replace("%Y", "YYYY")
        .replace("%y", "YY")
        .replace("%b", "Mon")
    )


def _date_regex(pattern: str) -> re.Pattern | None:
    """A regex for day/month/4-digit-year patterns (much faster than strptime), else None."""
    if sorted(re.findall(r"%.", pattern)) != ["%Y", "%d", "%m"] or "%%" in pattern:
        return None
    parts = re.split(r"(%[dmY])", pattern)
    groups = {"%d": r"(?P<d>\d{1,2})", "%m": r"(?P<m>\d{1,2})", "%Y": r"(?P<Y>\d{4})"}
    return re.compile("".join(groups.get(part, re.escape(part)) for part in parts))


class Cells:
    """Reads cells in one set of formats: dates, amounts, currencies, e-mails, countries.

    `exact_cents`: an amount with more than two decimals is refused rather than rounded
    (payments and credit limits: money received is never silently changed). Invoice
    amounts are rounded half up to cents, as they always were.
    """

    def __init__(
        self,
        *,
        date_formats: Sequence[str] = ("%Y-%m-%d",),
        decimal_separator: str = ".",
        thousands_separator: str = "",
        exact_cents: bool = False,
    ):
        self.date_formats = list(date_formats) or ["%Y-%m-%d"]
        self.date_patterns = [(_date_regex(p), p) for p in self.date_formats]
        self.formats_label = _(" or ").join(_format_label(p) for p in self.date_formats)
        self.decimal = decimal_separator or "."
        self.thousands = thousands_separator or ""
        self.exact_cents = exact_cents
        grouped = re.escape(self.thousands) if self.thousands else None
        self.grouping = re.compile(rf"^\d{{1,3}}({grouped}\d{{3}})+$") if grouped else None
        # The common amount, "1,234.56" or "99": read without the general path below.
        integer = rf"\d{{1,3}}(?:{grouped}\d{{3}})+|\d+" if grouped else r"\d+"
        self.plain_amount = re.compile(rf"({integer})(?:{re.escape(self.decimal)}(\d\d))?")
        self.thousands_table = str.maketrans("", "", self.thousands)
        # Per distinct value: a file repeats its dates and its customers' e-mails.
        self.dates: dict[str, dt.date] = {}
        self.valid_emails: set[str] = set()
        self.countries: dict[str, str] = {}  # a column of a few distinct values
        self.currencies: dict[str, str] = {}  # as typed -> its code

    # -- dates --------------------------------------------------------------------------

    def date(self, value) -> dt.date:
        if value.__class__ is str:
            date = self.dates.get(value)
            if date is None:
                date = self._parse_date(value)
                if len(self.dates) >= CACHE_SIZE:
                    self.dates.clear()
                self.dates[value] = date
            return date
        return self._parse_date(value)

    def _parse_date(self, value) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        cell = text(value)
        for regex, pattern in self.date_patterns:
            try:
                if regex is None:
                    return dt.datetime.strptime(cell, pattern).date()
                match = regex.fullmatch(cell)
                if match:
                    return dt.date(int(match["Y"]), int(match["m"]), int(match["d"]))
            except ValueError:
                continue
        raise ValueError(
            _("'%(value)s' is not a date in the format %(formats)s.")
            % {"value": cell, "formats": self.formats_label}
        )

    # -- money --------------------------------------------------------------------------

    def amount(self, value) -> Decimal:
        if value.__class__ is str:
            match = self.plain_amount.fullmatch(value)
            if match is not None:  # digits, separators in place, no or two decimals
                integer, cents = match.groups()
                if self.thousands:
                    integer = integer.translate(self.thousands_table)
                amount = Decimal(f"{integer}.{cents or '00'}")  # exact: no quantize needed
                if amount > MAX_AMOUNT:
                    raise ValueError(_("%(value)s is too large for an amount.") % {"value": amount})
                return amount
        if isinstance(value, Decimal | int):
            plain = str(value)
            amount = to_amount(value)
            negative = False
        else:
            original = text(value)
            cell = original.replace("\u00a0", "").replace(" ", "")
            cell = cell.lstrip("$€£¥").rstrip("$€£¥")
            negative = cell.startswith("(") and cell.endswith(")")
            if negative:
                cell = cell[1:-1]
            is_cell_number = not isinstance(value, str)  # a workbook number: already plain
            if is_cell_number:
                integer, fraction = cell, ""
            else:
                integer, _sep, fraction = cell.partition(self.decimal)
            if not is_cell_number and self.thousands and self.thousands in integer:
                digits = integer.lstrip("-+")
                if not self.grouping.match(digits):
                    raise ValueError(_("'%(value)s' is not an amount.") % {"value": original})
                integer = integer.replace(self.thousands, "")
            plain = f"{integer}.{fraction}" if fraction else integer
            if not re.fullmatch(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?", plain):
                raise ValueError(_("'%(value)s' is not an amount.") % {"value": original})
            try:
                amount = to_amount(plain)
            except ValidationError as exc:
                raise ValueError(_("'%(value)s' is not an amount.") % {"value": original}) from exc
        if self.exact_cents and amount != Decimal(plain):
            raise ValueError(
                _("%(value)s has more decimals than the ledger keeps (two).")
                % {"value": text(value)}
            )
        if negative:
            amount = -amount
        if abs(amount) > MAX_AMOUNT:
            raise ValueError(_("%(value)s is too large for an amount.") % {"value": amount})
        return amount

    def currency(self, value) -> str:
        """An ISO 4217 code, upper case; empty stays empty (the caller's default applies)."""
        code = self.currencies.get(value)
        if code is None:
            code = text(value).upper()
            if code and code not in ISO_4217:
                raise ValueError(_("%(value)s is not an ISO 4217 currency code.") % {"value": code})
            if value.__class__ is str and len(self.currencies) < CACHE_SIZE:
                self.currencies[value] = code
        return code

    # -- contacts -----------------------------------------------------------------------

    def email(self, value: str) -> str:
        """The address as given, once it has the form of one."""
        if value and value not in self.valid_emails:
            try:
                validate_email(value)
            except ValidationError as exc:
                raise ValueError(
                    _("%(value)s is not an e-mail address.") % {"value": value}
                ) from exc
            if len(self.valid_emails) >= CACHE_SIZE:
                self.valid_emails.clear()
            self.valid_emails.add(value)
        return value

    def country(self, value: str) -> str:
        """An ISO 3166 code from a code or a common country name; anything else is ""."""
        country = self.countries.get(value)
        if country is None:
            country = parse_country(value)
            if len(self.countries) < CACHE_SIZE:
                self.countries[value] = country
        return country


def parse_country(value: str) -> str:
    """An ISO 3166 code, or a common country name; anything else leaves it unset."""
    if not value:
        return ""
    if len(value) == 2 and value.upper() in COUNTRY_CODES:
        return value.upper()
    return COUNTRY_NAMES.get(value.lower(), "")
