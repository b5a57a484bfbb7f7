"""Conversion through the ECB's euro rates: crosses, the latest rate on or before a date,
rounding to the target's minor units, and a missing rate said, never guessed."""

import datetime as dt
from decimal import Decimal

import pytest

from accounts import fx
from accounts.models import FxRate
from accounts.money import minor_units, quantize_to_currency

pytestmark = pytest.mark.django_db
D = Decimal
FRIDAY = dt.date(2026, 11, 20)
MONDAY = dt.date(2026, 11, 23)


@pytest.fixture
def rates():
    for day, values in {
        FRIDAY - dt.timedelta(days=1): {"USD": "1.1601", "GBP": "0.8802"},
        FRIDAY: {"USD": "1.1634", "GBP": "0.87915", "JPY": "181.42", "KWD": "0.3571"},
        MONDAY: {"USD": "1.1700"},
    }.items():
        for currency, rate in values.items():
            FxRate.objects.create(rate_on=day, currency=currency, rate=D(rate))


def test_minor_units_follow_iso_4217():
    assert [minor_units(code) for code in ("EUR", "usd", "JPY", "KRW", "KWD", "BHD")] == [
        2,
        2,
        0,
        0,
        3,
        3,
    ]
    assert quantize_to_currency(D("1234.5"), "JPY") == D("1235")  # half up
    assert str(quantize_to_currency(D("1.0005"), "KWD")) == "1.001"


def test_a_weekend_day_uses_fridays_rate(rates):
    saturday = FRIDAY + dt.timedelta(days=1)
    conversion = fx.convert(D("100.00"), "EUR", "USD", on=saturday)
    assert conversion.amount == D("116.34")
    assert conversion.rate_dates == (FRIDAY,)


def test_a_rate_published_after_the_date_is_never_used(rates):
    assert fx.convert(D("100.00"), "EUR", "USD", on=FRIDAY).amount == D("116.34")
    assert fx.convert(D("100.00"), "EUR", "USD", on=MONDAY).amount == D("117.00")


def test_two_currencies_convert_through_the_euro(rates):
    # 100 USD = 100 / 1.1634 EUR = 85.9549... EUR; in GBP * 0.87915 = 75.5672... GBP.
    conversion = fx.convert(D("100.00"), "USD", "GBP", on=FRIDAY)
    assert conversion.amount == D("75.57")
    assert conversion.cross_rate.quantize(D("0.000001")) == D("0.755673")
    # To yen: no minor unit, rounded half up to a whole yen (15,593.95... -> 15,594).
    assert fx.convert(D("100.00"), "USD", "JPY", on=FRIDAY).amount == D("15594")
    # To dinars: three places (30.69451... -> 30.695).
    assert fx.convert(D("100.00"), "USD", "KWD", on=FRIDAY).amount == D("30.695")


def test_a_missing_rate_is_shown_as_missing_never_guessed(rates):
    before_any = fx.convert(D("100.00"), "USD", "EUR", on=dt.date(2020, 1, 1))
    assert before_any.is_missing and before_any.amount is None
    assert before_any.missing == ("USD",)
    unknown = fx.convert(D("100.00"), "MXN", "USD", on=FRIDAY)
    assert unknown.is_missing and unknown.missing == ("MXN",)


def test_the_same_currency_needs_no_rate():
    conversion = fx.convert(D("10.005"), "MXN", "MXN", on=FRIDAY)
    assert conversion.amount == D("10.01") and not conversion.is_missing


def test_floats_are_refused(rates):
    with pytest.raises(TypeError):
        fx.convert(100.0, "USD", "EUR", on=FRIDAY)


def test_a_rate_table_reads_all_its_rates_in_one_query(rates, django_assert_num_queries):
    table = fx.RateTable(on=FRIDAY)
    with django_assert_num_queries(1):
        table.preload(["USD", "GBP", "JPY", "MXN", "EUR"])
        assert table.convert(D("1.00"), "GBP", "USD").amount == D("1.32")
        assert table.rate("MXN") is None
    assert table.rate("USD").rate_on == FRIDAY
