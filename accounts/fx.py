"""Currency conversion through the ECB's euro reference rates (accounts.models.FxRate).

Every rate is "units of a currency per euro", so any two currencies convert through the
euro: `amount / rate(from) * rate(to)`. The rate used for a date is the latest one on or
before it (the ECB publishes on TARGET working days only); when there is none the
conversion says so (`rate is None`), it never guesses. Decimal throughout; the result is
rounded once, half up, to the target currency's minor units (ISO 4217).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from django.conf import settings
from django.db.models import OuterRef, Subquery

from .models import FxRate
from .money import quantize_to_currency

EURO = "EUR"


@dataclass(frozen=True)
class Rate:
    """One currency's rate per euro, and the day it was published (the euro: 1, any day)."""

    currency: str
    per_euro: Decimal
    rate_on: dt.date | None  # None for the euro itself: no publication involved


@dataclass(frozen=True)
class Conversion:
    """An amount converted (or not: `amount` None when a rate is missing)."""

    source_currency: str
    target_currency: str
    on: dt.date
    amount: Decimal | None
    cross_rate: Decimal | None  # units of target per unit of source
    rate_dates: tuple[dt.date, ...] = ()  # the publication days used (one or two)
    missing: tuple[str, ...] = ()  # currencies without a rate on or before `on`

    @property
    def is_missing(self) -> bool:
        return self.amount is None


def latest_rate(currency: str, on: dt.date) -> Rate | None:
    """The currency's rate on `on`, or else the latest before it; None when there is none."""
    currency = currency.upper()
    if currency == EURO:
        return Rate(EURO, Decimal(1), None)
    row = (
        FxRate.objects.filter(currency=currency, rate_on__lte=on)
        .order_by("-rate_on")
        .values_list("rate", "rate_on")
        .first()
    )
    return Rate(currency, row[0], row[1]) if row else None


@dataclass
class RateTable:
    """The rates of one day for a few currencies, each read once (a report's conversions).

    `RateTable(on=...)` then `table.convert(amount, "USD", "EUR")` as often as needed.
    """

    on: dt.date
    _rates: dict[str, Rate | None] = field(default_factory=dict)

    def preload(self, currencies: Iterable[str]) -> "RateTable":
        """Read the rates of `currencies` in one query (then `rate` reads none)."""
        codes = {code.upper() for code in currencies} - {EURO} - set(self._rates)
        if codes:
            latest_day = (
                FxRate.objects.filter(currency=OuterRef("currency"), rate_on__lte=self.on)
                .order_by("-rate_on")
                .values("rate_on")[:1]
            )
            found = {
                currency: Rate(currency, rate, rate_on)
                for currency, rate, rate_on in FxRate.objects.filter(
                    currency__in=codes, rate_on=Subquery(latest_day)
                ).values_list("currency", "rate", "rate_on")
            }
            for code in codes:
                self._rates[code] = found.get(code)
        return self

    def rate(self, currency: str) -> Rate | None:
        currency = currency.upper()
        if currency not in self._rates:
            self._rates[currency] = latest_rate(currency, self.on)
        return self._rates[currency]

    def cross_rate(self, source: str, target: str) -> Decimal | None:
        """Units of `target` per unit of `source` (unrounded), or None when a rate is missing."""
        if source.upper() == target.upper():
            return Decimal(1)
        source_rate, target_rate = self.rate(source), self.rate(target)
        if source_rate is None or target_rate is None:
            return None
        with localcontext() as context:
            context.prec = 28
            return target_rate.per_euro / source_rate.per_euro

    def convert(self, amount: Decimal, source: str, target: str) -> Conversion:
        source, target = source.upper(), target.upper()
        if isinstance(amount, float):
            raise TypeError("money amounts must not be floats; pass a str or Decimal")
        if source == target:  # no rate involved, none needed
            return Conversion(
                source, target, self.on, quantize_to_currency(Decimal(amount), target), Decimal(1)
            )
        rates = {code: self.rate(code) for code in (source, target)}
        missing = tuple(code for code, rate in rates.items() if rate is None)
        dates = tuple(sorted({rate.rate_on for rate in rates.values() if rate and rate.rate_on}))
        if missing:
            return Conversion(source, target, self.on, None, None, dates, missing)
        with localcontext() as context:
            context.prec = 28
            # Divide last: amount * target / source keeps every digit the rates have.
            exact = Decimal(amount) * rates[target].per_euro / rates[source].per_euro
        return Conversion(
            source,
            target,
            self.on,
            quantize_to_currency(exact, target),
            self.cross_rate(source, target),
            dates,
        )

    def rate_dates(self, currencies: Iterable[str]) -> dict[dt.date, list[str]]:
        """The publication day used for each of `currencies` (not the euro), day by day."""
        days: dict[dt.date, list[str]] = {}
        for currency in sorted({code.upper() for code in currencies}):
            rate = self.rate(currency)
            if rate is not None and rate.rate_on is not None:
                days.setdefault(rate.rate_on, []).append(currency)
        return dict(sorted(days.items()))


def convert(amount: Decimal, source: str, target: str, *, on: dt.date) -> Conversion:
    """`amount` in `source` as `target`, at the latest rates on or before `on`."""
    return RateTable(on=on).convert(amount, source, target)


def base_currency() -> str:
    """The currency reports convert into (setting BASE_CURRENCY, default EUR)."""
    return settings.BASE_CURRENCY
