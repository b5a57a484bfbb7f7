"""Money rules: ISO 4217 currencies, two-place Decimal amounts, per-currency totals, and
the one way an amount is shown to a person (its currency's minor units, the reader's locale)."""

from collections import defaultdict
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _

# Active ISO 4217 codes (2024 list), minus funds codes and precious metals.
ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR
    ZMW ZWG
    """.split()
)

CENT = Decimal("0.01")
# ISO 4217 minor units of the currencies above that do not have two (the exponent).
MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def minor_units(currency: str) -> int:
    """How many decimals the currency's smallest unit has (ISO 4217): JPY 0, EUR 2, KWD 3."""
    return MINOR_UNITS.get(currency.upper(), 2)


def quantize_to_currency(amount: Decimal, currency: str) -> Decimal:
    """`amount` rounded half up to the currency's minor units (JPY 1, EUR 0.01, KWD 0.001)."""
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def validate_currency(value: str) -> None:
    if value not in ISO_4217:
        raise ValidationError(
            _("%(value)s is not an ISO 4217 currency code (e.g. USD, EUR, GBP)."),
            code="invalid_currency",
            params={"value": value},
        )


def to_amount(value) -> Decimal:
    """Parse a money amount exactly; floats are refused because they already lost cents."""
    if isinstance(value, float):
        raise TypeError("money amounts must not be floats; pass a str or Decimal")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise ValidationError(
            _("%(value)s is not an amount."), code="invalid_amount", params={"value": value}
        ) from exc
    if not amount.is_finite():
        raise ValidationError(_("Amounts must be finite."), code="invalid_amount")
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def totals_by_currency(pairs: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    """Sum (currency, amount) pairs per currency, never across currencies."""
    totals: dict[str, Decimal] = defaultdict(lambda: Decimal("0.00"))
    for currency, amount in pairs:
        totals[currency] += amount
    return dict(sorted(totals.items()))


def format_amount(amount, currency: str) -> str:
    """`amount` as the reader expects it: rounded to the currency's minor units and grouped
    and punctuated by the active locale ("20,016.80" in English, "20.016,80" in German,
    "12,000" for JPY). No currency code; empty for None."""
    if amount is None or amount == "":
        return ""
    value = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    return number_format(
        quantize_to_currency(value, currency),
        decimal_pos=minor_units(currency),
        force_grouping=True,
    )


def format_money(amount, currency: str) -> str:
    """`amount` with its currency code in front: "EUR 20,016.80", "JPY 12,000"."""
    if amount is None or amount == "":
        return ""
    return f"{currency} {format_amount(amount, currency)}"
