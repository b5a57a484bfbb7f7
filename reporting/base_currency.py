"""Per-currency totals converted into the base currency (BASE_CURRENCY), for reports.

Each currency's bucket amounts are converted at the ECB rates of the report's date (the
latest on or before it, accounts.fx) and rounded to the base currency's minor units; a
converted total is the sum of its converted buckets, so every converted row adds up on
paper. A currency without a rate is listed as missing and left out of the total, which
then says it is incomplete: nothing is guessed. The caption names the rates' date(s).
"""

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.utils.translation import gettext as _

from accounts import fx


@dataclass
class ConvertedRow:
    currency: str
    buckets: list[Decimal] | None  # None: no rate
    disputed: Decimal | None
    cross_rate: Decimal | None  # base units per unit of `currency`

    @property
    def total(self) -> Decimal | None:
        return None if self.buckets is None else sum(self.buckets, Decimal(0))

    @property
    def is_missing(self) -> bool:
        return self.buckets is None

    @property
    def rate_text(self) -> str:
        return rate_text(self.cross_rate)


def rate_text(rate: Decimal | None) -> str:
    """A cross rate with the six significant digits the ECB gives: 0.859550, 181.42."""
    if rate is None:
        return ""
    if rate < 1:  # 0.0000571847, never 5.7e-05
        return f"{rate.quantize(Decimal(1).scaleb(rate.adjusted() - 5)):f}"
    return f"{rate.quantize(Decimal('0.000001')).normalize():f}"


@dataclass
class BaseCurrencyTotals:
    base_currency: str
    as_of: dt.date
    rows: list[ConvertedRow]
    buckets: list[Decimal]
    disputed: Decimal
    rate_dates: dict[dt.date, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, Decimal(0))

    @property
    def missing(self) -> list[str]:
        return [row.currency for row in self.rows if row.is_missing]

    @property
    def is_complete(self) -> bool:
        return not self.missing

    @property
    def oldest_rate_on(self) -> dt.date | None:
        return min(self.rate_dates, default=None)

    @property
    def is_stale(self) -> bool:
        oldest = self.oldest_rate_on
        return oldest is not None and (
            (self.as_of - oldest).days > settings.FX_RATES_STALE_AFTER_DAYS
        )

    @property
    def caption(self) -> str:
        """'Converted into EUR at ECB rates of 2026-12-04' (each date when they differ)."""
        if not self.rate_dates:
            if self.rows and all(row.currency == self.base_currency for row in self.rows):
                return _("All amounts are in %(base)s.") % {"base": self.base_currency}
            return _("Converted into %(base)s: no ECB rates on or before %(as_of)s.") % {
                "base": self.base_currency,
                "as_of": self.as_of.isoformat(),
            }
        if len(self.rate_dates) == 1:
            dates = next(iter(self.rate_dates)).isoformat()
        else:
            dates = "; ".join(
                f"{day.isoformat()} ({', '.join(codes)})" for day, codes in self.rate_dates.items()
            )
        return _("Converted into %(base)s at ECB rates of %(dates)s") % {
            "base": self.base_currency,
            "dates": dates,
        }

    @property
    def warnings(self) -> list[str]:
        messages = []
        if self.missing:
            messages.append(
                _(
                    "No ECB rate on or before %(as_of)s for %(codes)s: not converted and not in "
                    "the %(base)s total, which is incomplete."
                )
                % {
                    "as_of": self.as_of.isoformat(),
                    "codes": ", ".join(self.missing),
                    "base": self.base_currency,
                }
            )
        if self.is_stale:
            messages.append(
                _(
                    "The rates are from %(day)s, %(days)s days before %(as_of)s: load newer "
                    "ones (manage.py load_fx_rates)."
                )
                % {
                    "day": self.oldest_rate_on.isoformat(),
                    "days": (self.as_of - self.oldest_rate_on).days,
                    "as_of": self.as_of.isoformat(),
                }
            )
        return messages


def convert_totals(
    totals: Iterable[tuple[str, list[Decimal], Decimal | None]],
    *,
    as_of: dt.date,
    base_currency: str | None = None,
) -> BaseCurrencyTotals:
    """(currency, bucket amounts, disputed or None) per currency, in the base currency."""
    base = (base_currency or fx.base_currency()).upper()
    totals = list(totals)
    table = fx.RateTable(on=as_of).preload([base, *(currency for currency, *_ in totals)])
    rows, used = [], set()
    summed: list[Decimal] | None = None
    disputed_sum = Decimal(0)
    for currency, buckets, disputed in totals:
        if summed is None:
            summed = [Decimal(0)] * len(buckets)
        conversions = [table.convert(amount, currency, base) for amount in buckets]
        if any(conversion.is_missing for conversion in conversions):
            rows.append(ConvertedRow(currency, None, None, None))
            continue
        if currency != base:
            used.update({currency, base} - {fx.EURO})
        converted = [conversion.amount for conversion in conversions]
        converted_disputed = (
            table.convert(disputed, currency, base).amount if disputed is not None else None
        )
        rows.append(
            ConvertedRow(currency, converted, converted_disputed, table.cross_rate(currency, base))
        )
        summed = [a + b for a, b in zip(summed, converted, strict=True)]
        disputed_sum += converted_disputed or Decimal(0)
    return BaseCurrencyTotals(
        base_currency=base,
        as_of=as_of,
        rows=rows,
        buckets=summed or [],
        disputed=disputed_sum,
        rate_dates=table.rate_dates(used),
    )


def convert_summary(report_summary) -> BaseCurrencyTotals:
    """An aging report's totals per currency (reporting.aging.Summary), converted."""
    return convert_totals(
        (
            (amounts.currency, amounts.buckets, amounts.disputed)
            for amounts in report_summary.totals.values()
        ),
        as_of=report_summary.report.as_of,
    )
