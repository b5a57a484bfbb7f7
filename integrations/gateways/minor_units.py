"""Amounts in a provider's minor units (cents, yen, fils) and back, never losing a cent."""

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from accounts.money import to_amount

# Currencies whose smallest unit is the whole unit (Stripe's list of zero-decimal currencies).
ZERO_DECIMAL_CURRENCIES = frozenset(
    "BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF".split()
)
# Currencies Stripe counts in thousandths; the ledger keeps cents, so the last digit must be 0.
THREE_DECIMAL_CURRENCIES = frozenset("BHD JOD KWD OMR TND".split())


def minor_unit_exponent(currency: str) -> int:
    currency = currency.upper()
    if currency in ZERO_DECIMAL_CURRENCIES:
        return 0
    if currency in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def from_minor_units(value: int, currency: str) -> Decimal:
    """Stripe's integer amount (cents, yen, fils) as a ledger amount with two places."""
    amount = Decimal(value).scaleb(-minor_unit_exponent(currency))
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError(
            _("%(amount)s %(currency)s has more decimals than the ledger keeps.")
            % {"amount": amount, "currency": currency}
        )
    return to_amount(amount)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """A ledger amount as the provider's integer amount; refuses amounts it cannot express."""
    minor = Decimal(amount).scaleb(minor_unit_exponent(currency))
    if minor != minor.to_integral_value():
        raise ValidationError(
            _("%(amount)s cannot be charged in %(currency)s, which has no such fractions.")
            % {"amount": amount, "currency": currency}
        )
    return int(minor)
