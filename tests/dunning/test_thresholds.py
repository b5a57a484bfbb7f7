import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.urls import reverse

from dunning import planner
from dunning.models import HighValueThreshold, Notice
from tests.clock import ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
THRESHOLDS = reverse("admin:dunning_highvaluethreshold_changelist")


@pytest.fixture(autouse=True)
def _fallback(settings):
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "10000"


def owes(*balances: tuple[str, str]):
    """A customer whose invoices reach the +30 final letter (a "high value" step)."""
    customer = CustomerFactory()
    for currency, amount in balances:
        InvoiceFactory(
            customer=customer,
            due_on=ON - dt.timedelta(days=30),
            currency=currency,
            amount=Decimal(amount),
        )
    return customer


def letter_status(customer) -> str:
    return Notice.objects.get(customer=customer, channel="letter").status


def test_a_threshold_for_a_currency_changes_which_letters_wait_for_approval():
    eur = owes(("EUR", "3000.00"))
    usd = owes(("USD", "3000.00"))
    planner.plan(on=ON)
    assert (letter_status(eur), letter_status(usd)) == ("planned", "planned")
    Notice.objects.all().delete()
    HighValueThreshold.objects.create(currency="EUR", amount=Decimal("2500.00"))
    result = planner.plan(on=ON)
    assert letter_status(eur) == "awaiting_approval"
    assert letter_status(usd) == "planned"  # USD has no row: the setting (10000) applies
    assert result.awaiting_approval == 1


def test_the_threshold_is_reached_at_exactly_the_amount():
    HighValueThreshold.objects.create(currency="GBP", amount=Decimal("500.00"))
    at = owes(("GBP", "500.00"))
    below = owes(("GBP", "499.99"))
    planner.plan(on=ON)
    assert (letter_status(at), letter_status(below)) == ("awaiting_approval", "planned")


def test_currencies_are_compared_apart_never_added():
    HighValueThreshold.objects.create(currency="EUR", amount=Decimal("5000.00"))
    HighValueThreshold.objects.create(currency="USD", amount=Decimal("5000.00"))
    mixed = owes(("EUR", "4000.00"), ("USD", "4000.00"))  # 8000 "in total" is meaningless
    one_over = owes(("EUR", "100.00"), ("USD", "5000.00"))
    planner.plan(on=ON)
    assert letter_status(mixed) == "planned"
    assert letter_status(one_over) == "awaiting_approval"


def test_a_lower_threshold_for_one_currency_does_not_leak_into_another():
    HighValueThreshold.objects.create(currency="JPY", amount=Decimal("1000.00"))
    usd = owes(("USD", "5000.00"))
    planner.plan(on=ON)
    assert letter_status(usd) == "planned"


def test_without_rows_the_setting_still_decides(settings):
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "2000"
    customer = owes(("CHF", "2000.00"))
    planner.plan(on=ON)
    assert letter_status(customer) == "awaiting_approval"


def test_a_negative_threshold_is_refused_by_the_database():
    with pytest.raises(IntegrityError):
        HighValueThreshold.objects.create(currency="EUR", amount=Decimal("-1.00"))


def test_managers_edit_thresholds_in_the_admin_without_a_deploy(client, manager):
    client.force_login(manager)
    page = client.get(THRESHOLDS).content.decode()
    assert "DUNNING_HIGH_VALUE_THRESHOLD" in page  # says what applies without a row
    response = client.post(
        reverse("admin:dunning_highvaluethreshold_add"), {"currency": "EUR", "amount": "7500"}
    )
    assert response.status_code == 302
    assert HighValueThreshold.objects.get(currency="EUR").amount == Decimal("7500.00")
    refused = client.post(
        reverse("admin:dunning_highvaluethreshold_add"), {"currency": "EURO", "amount": "1"}
    )
    assert (
        refused.status_code == 200
        and not HighValueThreshold.objects.filter(currency="EURO").exists()
    )
    customer = owes(("EUR", "8000.00"))
    planner.plan(on=ON)
    assert letter_status(customer) == "awaiting_approval"


def test_agents_may_look_but_not_change(client, agent):
    row = HighValueThreshold.objects.create(currency="EUR", amount=Decimal("5000.00"))
    client.force_login(agent)
    assert client.get(THRESHOLDS).status_code == 200  # agents can view policies
    add = reverse("admin:dunning_highvaluethreshold_add")
    assert client.post(add, {"currency": "USD", "amount": "1"}).status_code == 403
    change = reverse("admin:dunning_highvaluethreshold_change", args=[row.pk])
    client.post(change, {"currency": "EUR", "amount": "1"})
    row.refresh_from_db()
    assert row.amount == Decimal("5000.00")
