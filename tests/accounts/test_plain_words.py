"""The console speaks to people: labels not codes, errors naming the field, no typo dates."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services
from accounts.models import Contact, Payment, normalize_phone
from tests.factories import ActivityFactory, CustomerFactory, PaymentFactory

pytestmark = pytest.mark.django_db

FAR_FUTURE = dt.date(2099, 1, 1)


def today():
    return timezone.localdate()


# --- a payment dated in the future is refused, naming the field -------------------------


def test_the_service_refuses_a_payment_dated_2099():
    with pytest.raises(ValidationError) as refused:
        services.record_payment(amount="10.00", currency="EUR", received_on=FAR_FUTURE)
    assert "received_on" in refused.value.message_dict
    assert not Payment.objects.exists()


def test_tomorrow_is_within_the_tolerance_and_the_day_after_is_not(settings):
    settings.PAYMENT_FUTURE_DAYS_ALLOWED = 1
    tomorrow = today() + dt.timedelta(days=1)
    services.record_payment(amount="10.00", currency="EUR", received_on=tomorrow)
    with pytest.raises(ValidationError):
        services.record_payment(
            amount="10.00", currency="EUR", received_on=tomorrow + dt.timedelta(days=1)
        )


def test_the_bulk_path_refuses_the_row_and_records_the_others():
    rows = [
        {"amount": "10.00", "currency": "EUR", "received_on": today()},
        {"amount": "20.00", "currency": "EUR", "received_on": FAR_FUTURE},
    ]
    first, second = services.record_payments(rows)
    assert isinstance(first, Payment)
    assert isinstance(second, ValidationError) and "received_on" in second.message_dict
    assert Payment.objects.count() == 1


def test_the_api_answers_400_naming_received_on(finance):
    api = APIClient()
    api.force_authenticate(finance)
    response = api.post(
        "/api/v1/payments/",
        {"amount": "10.00", "currency": "EUR", "received_on": "2099-01-01"},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "received_on" in response.json()
    assert not Payment.objects.exists()


def payment_form(client, finance, **values):
    client.force_login(finance)
    data = {
        "kind": "payment",
        "amount": "10.00",
        "currency": "EUR",
        "received_on": today().isoformat(),
        "method": "bank_transfer",
        "source": "manual",
        "refunded_amount": "0",
        **values,
    }
    return client.post(reverse("admin:accounts_payment_add"), data)


def test_the_console_form_refuses_a_date_in_2099(client, finance):
    response = payment_form(client, finance, received_on="2099-01-01")
    assert response.status_code == 200  # the form again, with the error
    assert "received_on" in response.context["adminform"].form.errors
    assert "is in the future" in response.content.decode()
    assert not Payment.objects.exists()


def test_a_zero_amount_is_refused_on_the_amount_not_by_the_constraint(client, finance):
    response = payment_form(client, finance, amount="0")
    errors = response.context["adminform"].form.errors
    assert "amount" in errors and "more than zero" in str(errors["amount"])
    assert "payment_amount_positive" not in response.content.decode()


# --- library errors in words -------------------------------------------------------------


def test_a_national_phone_without_a_country_says_what_to_do():
    with pytest.raises(ValidationError) as refused:
        normalize_phone("020 7946 0000", "")
    message = " ".join(refused.value.messages)
    assert "Missing or invalid default region" not in message and "(0)" not in message
    assert "020 7946 0000 has no country code" in message and "+" in message


def test_the_contact_form_names_the_phone_field():
    customer = CustomerFactory(country="")
    contact = Contact(customer=customer, name="AP", phone="020 7946 0000")
    with pytest.raises(ValidationError) as refused:
        contact.full_clean()
    assert "no country code" in " ".join(refused.value.message_dict["phone"])


# --- codes shown as labels ---------------------------------------------------------------


def test_the_timeline_shows_a_call_outcome_in_words(client, manager):
    customer = CustomerFactory()
    ActivityFactory(customer=customer, kind="call", outcome="no_answer", text="Rang twice")
    client.force_login(manager)
    page = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    timeline = page.content.decode().split('id="timeline"')[1]
    assert "(No answer)" in timeline and "no_answer" not in timeline


def test_a_payment_is_named_by_what_it_is():
    payment = PaymentFactory(amount=Decimal("1200.00"), currency="EUR", received_on=today())
    assert str(payment) == f"Payment EUR 1,200.00 on {today()}"
