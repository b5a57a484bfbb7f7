"""Policies chosen by risk band as well as segment: own policy, else (segment, band), else
(segment, any band)."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Customer, RiskBand
from cases import risk
from cases.models import PromiseToPay
from dunning import planner
from dunning.models import Notice, Policy, Step
from tests.clock import NOW, ON
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
WEEK_AGO = ON - dt.timedelta(days=7)


def firm_policy(segment="standard", band=RiskBand.HIGH, name="Standard, high band") -> Policy:
    """A policy for one band whose only step is a firm e-mail a week after the due date."""
    policy = Policy.objects.create(name=name, segment=segment, risk_band=band)
    Step.objects.create(
        policy=policy,
        name=f"{name}: firm notice",
        offset_days=7,
        channel="email",
        template=Step.objects.get(policy__name="Standard", offset_days=7, channel="email").template,
        tone="firm",
    )
    return policy


def policies_used(customer) -> set[str]:
    return set(
        Notice.objects.filter(customer=customer).values_list("step__policy__name", flat=True)
    )


def overdue_customer(**fields) -> Customer:
    customer = CustomerFactory(**fields)
    InvoiceFactory(customer=customer, due_on=WEEK_AGO)
    return customer


def test_own_policy_beats_segment_and_band_which_beats_segment_and_any_band():
    firm_policy()
    high = overdue_customer(segment="standard", risk_band="high")
    low = overdue_customer(segment="standard", risk_band="low")
    unscored = overdue_customer(segment="standard", risk_band="")
    own = overdue_customer(
        segment="standard", risk_band="high", dunning_policy=Policy.objects.get(name="Strategic")
    )
    strategic_high = overdue_customer(segment="strategic", risk_band="high")
    planner.plan(on=ON)
    assert policies_used(high) == {"Standard, high band"}
    assert policies_used(low) == {"Standard"}
    assert policies_used(unscored) == {"Standard"}
    assert policies_used(own) == {"Strategic"}
    assert policies_used(strategic_high) == {"Strategic"}  # the band policy is for standard


def test_an_inactive_band_policy_hands_its_customers_back_to_the_any_band_policy():
    policy = firm_policy()
    customer = overdue_customer(segment="standard", risk_band="high")
    Policy.objects.filter(pk=policy.pk).update(is_active=False)
    planner.plan(on=ON)
    assert policies_used(customer) == {"Standard"}


def test_without_an_any_band_policy_only_the_banded_customers_are_dunned():
    Policy.objects.filter(name="Standard").update(is_active=False)
    firm_policy()
    high = overdue_customer(segment="standard", risk_band="high")
    medium = overdue_customer(segment="standard", risk_band="medium")
    planner.plan(on=ON)
    assert policies_used(high) == {"Standard, high band"}
    assert policies_used(medium) == set()


def test_a_high_band_standard_customer_gets_the_band_policy_when_risk_does_not_move_segments(
    settings,
):
    settings.RISK_DRIVES_SEGMENT = False
    firm_policy()
    customer = CustomerFactory(segment="standard", credit_limit=Decimal("500.00"))
    InvoiceFactory(
        customer=customer,
        issued_on=ON - dt.timedelta(days=125),
        due_on=ON - dt.timedelta(days=95),
        amount=Decimal("1000.00"),
    )
    PromiseToPay.objects.create(
        customer=customer,
        amount=Decimal("50.00"),
        currency="USD",
        promised_on=ON - dt.timedelta(days=13),
        holds_until=ON - dt.timedelta(days=10),
        status=PromiseToPay.Status.BROKEN,
        resolved_at=NOW - dt.timedelta(days=10),
    )
    InvoiceFactory(customer=customer, number="RECENT", due_on=WEEK_AGO)
    risk.score_customers(customer_ids=[customer.pk], now=NOW)
    customer.refresh_from_db()
    assert (customer.segment, customer.risk_band) == ("standard", "high")
    planner.plan(on=ON)
    notice = Notice.objects.get(customer=customer, lines__invoice__number="RECENT")
    assert notice.step.name == "Standard, high band: firm notice"


def test_one_active_dunning_policy_per_segment_and_band():
    firm_policy()
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.create(name="Another", segment="standard", risk_band="high")
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.create(name="Second any band", segment="standard")
    # Another band of the segment, and inactive duplicates, are fine.
    Policy.objects.create(name="Standard, medium band", segment="standard", risk_band="medium")
    Policy.objects.create(name="Old", segment="standard", risk_band="high", is_active=False)
    duplicate = Policy(name="Form", segment="standard", risk_band="high")
    with pytest.raises(ValidationError, match="already applies to this segment and risk band"):
        duplicate.full_clean()


def test_a_risk_band_needs_a_segment():
    with pytest.raises(IntegrityError), transaction.atomic():
        Policy.objects.create(name="Band only", risk_band="high")


def test_the_admin_lists_and_filters_policies_by_segment_and_band(admin_client):
    firm_policy()
    url = reverse("admin:dunning_policy_changelist")
    page = admin_client.get(url).content.decode()
    assert "any band" in page and "Standard, high band" in page
    filtered = admin_client.get(url, {"risk_band": "high"})
    assert [p.name for p in filtered.context["cl"].result_list] == ["Standard, high band"]
    add = admin_client.post(
        reverse("admin:dunning_policy_add"),
        {
            "name": "Duplicate band",
            "segment": "standard",
            "risk_band": "high",
            "is_active": "on",
            "purpose": "dunning",
            "steps-TOTAL_FORMS": "0",
            "steps-INITIAL_FORMS": "0",
        },
    )
    assert add.status_code == 200  # refused, with the form again
    assert "already applies to this segment and risk band" in add.content.decode()
    assert not Policy.objects.filter(name="Duplicate band").exists()
