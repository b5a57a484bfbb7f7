"""The dashboard's cash forecast section: 13 weeks ahead beside the weeks received, the
base-currency totals, and the WAPE of past snapshots against the naive forecast."""

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import FxRate
from predictions.models import ForecastSnapshot
from reporting import dashboard
from tests.factories import CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
D = Decimal
URL = "/admin/reporting/dashboard/"


def section(page: str) -> str:
    return page.split('id="cash-forecast"')[1].split('<div class="module" id="largest">')[0]


def cells(html: str, label: str) -> list[str]:
    """The cells of the table row whose header starts with `label`."""
    row = re.search(rf"<th scope=\"row\">{re.escape(label)}.*?</tr>", html, re.S)
    assert row, label
    return [cell.strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)]


def test_a_manager_sees_the_forecast_beside_the_cash_received(client, manager, settings):
    settings.BASE_CURRENCY = "EUR"
    today = timezone.localdate()  # the suite's Monday, 2026-11-23
    monday = today - dt.timedelta(days=today.weekday())
    customer = CustomerFactory()
    InvoiceFactory(
        customer=customer, currency="EUR", amount=D("1234.50"), due_on=monday + dt.timedelta(days=9)
    )  # week 2
    overdue = today - dt.timedelta(days=3)
    InvoiceFactory(customer=customer, currency="EUR", amount=D("300.00"), due_on=overdue)
    InvoiceFactory(currency="USD", amount=D("220.00"), due_on=monday + dt.timedelta(days=9))
    InvoiceFactory(currency="GBP", amount=D("10.00"), due_on=monday + dt.timedelta(days=9))
    FxRate.objects.create(currency="USD", rate=D("1.1000"), rate_on=today - dt.timedelta(days=3))
    PaymentFactory(currency="EUR", amount=D("4321.00"), received_on=monday - dt.timedelta(days=5))
    # A snapshot made four weeks ago: its first weeks have passed.
    made_on = monday - dt.timedelta(weeks=4)
    for week in range(1, 14):
        ForecastSnapshot.objects.create(
            made_on=made_on, week_start=made_on + dt.timedelta(weeks=week - 1), week=week,
            currency="EUR", expected_amount=D("4000.00") if week == 4 else D("0.00"),
            naive_amount=D("0.00"),
        )  # fmt: skip

    client.force_login(manager)
    page = client.get(URL + "?currency=EUR").content.decode()
    html = section(page)

    assert "Cash forecast, EUR" in html
    assert "Cash in per week, EUR" in html  # the chart
    last_week = (monday - dt.timedelta(weeks=1)).isoformat()
    assert cells(html, last_week)[0] == "4,321.00"  # received
    assert cells(html, monday.isoformat())[1] == "300.00"  # week 1: the overdue invoice
    week2 = cells(html, (monday + dt.timedelta(weeks=1)).isoformat())
    assert (week2[1], week2[4]) == ("1,234.50", "1,234.50")  # expected, naive
    # Base currency: EUR 1,234.50 + USD 220 / 1.1 = 1,434.50; GBP has no rate.
    base = html.split('id="cash-forecast-base-currency"')[1]
    assert "1,434.50" in base
    assert "No ECB rate for GBP" in base
    # Accuracy: week 4 of that snapshot expected 4,000.00, 4,321.00 came: WAPE 7.4 %;
    # naive 0 -> 100 %.
    accuracy = html.split('id="cash-forecast-accuracy"')[1]
    weeks13 = re.search(r"weeks 1-13</td>(.*?)</tr>", accuracy, re.S).group(1)
    assert re.findall(r'<td class="num">(.*?)</td>', weeks13) == ["4", "4,321.00", "7.4", "100.0"]


def test_the_section_renders_on_an_empty_ledger(client, manager):
    client.force_login(manager)
    page = client.get(URL).content.decode()
    assert 'id="cash-forecast"' in page
    assert "No snapshot has a week that has ended yet" in page


def test_the_section_lists_the_past_weeks_then_the_weeks_ahead():
    as_of = dt.date(2026, 11, 25)
    result = dashboard.cash_forecast_section(as_of, "EUR")
    assert [row.week for row in result.rows] == [None] * 8 + list(range(1, 14))
    assert result.chart == ""  # nothing to draw


def test_the_forecast_is_computed_once_per_cache_period_not_per_view(monkeypatch):
    """It reads every open invoice: the dashboard computes it once for everyone that day."""
    import datetime as dt

    from predictions import forecast
    from reporting import dashboard

    calls = []
    real = forecast.cash_forecast

    def counted(as_of, *args, **kwargs):
        calls.append(as_of)
        return real(as_of, *args, **kwargs)

    monkeypatch.setattr(forecast, "cash_forecast", counted)
    day = dt.date(2026, 11, 23)
    dashboard.cash_forecast_section(day, "USD")
    dashboard.cash_forecast_section(day, "EUR")
    assert calls == [day]
    dashboard.cash_forecast_section(day + dt.timedelta(days=1), "USD")
    assert len(calls) == 2  # a new day, a new forecast
