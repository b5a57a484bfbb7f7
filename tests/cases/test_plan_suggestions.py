"""Payment-plan suggestions (cases/plan_suggestions.py): offered when the balance is large
against the customer's payments and the predictions say it will be paid late; sized to
what the customer usually pays; accepted in one click from the customer page."""

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Activity, Invoice
from cases import plans
from cases.models import Installment, PaymentPlan
from cases.plan_suggestions import suggest_plan, suggest_plans
from tests.clock import ON
from tests.factories import (
    CustomerFactory,
    InvoiceFactory,
    InvoicePredictionFactory,
    PaymentFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def rules(settings):
    settings.PREDICTED_LATE_THRESHOLD = 0.5
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "5000"


def month_ago(n: int) -> dt.date:
    return ON - dt.timedelta(days=30 * n)


def pays(customer, amounts, *, currency="USD"):
    """One payment a month, the last one a month ago."""
    for n, amount in enumerate(amounts, start=1):
        PaymentFactory(
            customer=customer, amount=D(amount), currency=currency, received_on=month_ago(n)
        )


def owes(customer, amounts, *, probability="0.8000", currency="USD"):
    invoices = []
    for amount in amounts:
        invoice = InvoiceFactory(
            customer=customer, amount=D(amount), currency=currency, due_on=ON + dt.timedelta(days=5)
        )
        if probability is not None:
            InvoicePredictionFactory(invoice=invoice, probability_late=D(probability))
        invoices.append(invoice)
    return invoices


@pytest.fixture
def struggling(agent):
    """Pays about 1,000 a month; owes 4,000, all predicted late."""
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["2500.00", "1500.00"])
    return customer


def test_suggests_installments_of_the_usual_monthly_payment(struggling):
    suggestion = suggest_plan(struggling, as_of=ON)
    assert suggestion is not None
    assert (suggestion.currency, suggestion.balance, suggestion.late_amount) == (
        "USD",
        D("4000.00"),
        D("4000.00"),
    )
    assert suggestion.usual_monthly_payment == D("1000.00")
    assert suggestion.installment_amount == D("1000.00")
    assert [amount for _d, amount in suggestion.installments] == [D("1000.00")] * 4
    assert [d for d, _a in suggestion.installments] == [
        dt.date(2026, 11, 30),
        dt.date(2026, 12, 30),
        dt.date(2027, 1, 30),
        dt.date(2027, 2, 28),
    ]
    assert not suggestion.needs_approval and not suggestion.is_stretched
    assert set(suggestion.invoice_ids) == set(
        Invoice.objects.filter(customer=struggling).values_list("pk", flat=True)
    )
    assert "predicted to be paid late" in " ".join(suggestion.reasons)


def test_installments_are_the_median_month_rounded_down_and_the_last_takes_the_rest(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1234.56", "1300.00", "900.00"])
    # Two payments in one month count as one month of 1,234.56.
    PaymentFactory(customer=customer, amount=D("0.44"), received_on=month_ago(1))
    owes(customer, ["3000.00", "1000.00"])
    suggestion = suggest_plan(customer, as_of=ON)
    assert suggestion.usual_monthly_payment == D("1235.00")  # median of 1,235 / 1,300 / 900
    assert suggestion.installment_amount == D("1200.00")  # two significant figures, down
    assert [a for _d, a in suggestion.installments] == [D("1200.00")] * 3 + [D("400.00")]
    assert sum(a for _d, a in suggestion.installments) == suggestion.balance


def test_no_suggestion_when_the_balance_is_small_against_the_history(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["1500.00", "500.00"])  # 2,000: not more than twice 1,000
    assert suggest_plan(customer, as_of=ON) is None


def test_no_suggestion_when_the_customer_once_paid_as_much_at_once(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 5 + ["5000.00"])
    owes(customer, ["2500.00", "1500.00"])
    assert suggest_plan(customer, as_of=ON) is None


@pytest.mark.parametrize("probability", ["0.2000", "0.4999", None])
def test_no_suggestion_when_the_predictions_say_on_time_or_nothing_is_scored(agent, probability):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["2500.00", "1500.00"], probability=probability)
    assert suggest_plan(customer, as_of=ON) is None


def test_no_suggestion_when_less_than_half_the_balance_is_predicted_late(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["1500.00"], probability="0.9000")
    owes(customer, ["2500.00"], probability="0.1000")
    assert suggest_plan(customer, as_of=ON) is None
    # Half or more is enough.
    owes(customer, ["1000.00"], probability="0.9000")
    assert suggest_plan(customer, as_of=ON).late_amount == D("2500.00")


def test_no_suggestion_without_enough_payment_history(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 2)
    owes(customer, ["2500.00", "1500.00"])
    assert suggest_plan(customer, as_of=ON) is None


def test_payments_after_the_day_are_not_history(struggling):
    PaymentFactory(customer=struggling, amount=D("9000.00"), received_on=ON + dt.timedelta(days=1))
    assert suggest_plan(struggling, as_of=ON) is not None
    assert suggest_plan(struggling, as_of=ON + dt.timedelta(days=1)) is None


def test_a_long_plan_is_capped_at_the_most_installments(agent, settings):
    settings.PLAN_SUGGESTION_MAX_INSTALLMENTS = 12
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["30000.00"])
    suggestion = suggest_plan(customer, as_of=ON)
    assert len(suggestion.installments) == 12
    assert suggestion.installment_amount == D("2500.00") and suggestion.is_stretched
    assert suggestion.needs_approval  # 30,000 is above the 5,000 approval threshold


def test_invoices_in_a_plan_or_disputed_are_left_out(struggling, agent):
    invoices = list(Invoice.objects.filter(customer=struggling).order_by("amount"))
    plans.propose_plan(
        customer=struggling,
        invoices=[invoices[0]],
        installments=[(ON + dt.timedelta(days=3), invoices[0].open_balance)],
        by=agent,
        today=ON,
    )
    disputed = owes(struggling, ["900.00"])[0]
    Invoice.objects.filter(pk=disputed.pk).update(status=Invoice.Status.DISPUTED)
    # Left: the 2,500 invoice, still more than twice the usual 1,000 a month.
    suggestion = suggest_plan(struggling, as_of=ON)
    assert suggestion.balance == D("2500.00")
    assert suggestion.invoice_ids == [invoices[1].pk]


def test_currencies_are_never_mixed(agent):
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    pays(customer, ["100.00"] * 6, currency="EUR")
    owes(customer, ["1500.00"])  # USD: small
    owes(customer, ["450.00"], currency="EUR")  # EUR: large against 100 a month
    assert [s.currency for s in suggest_plans(customer, as_of=ON)] == ["EUR"]
    assert suggest_plan(customer, as_of=ON, currency="USD") is None
    assert suggest_plan(customer, as_of=ON).installments[0][1] == D("100.00")


def test_no_suggestion_for_a_bankrupt_customer(struggling):
    struggling.is_bankrupt = True
    struggling.save()
    assert suggest_plan(struggling, as_of=ON) is None


# --- The customer page ---


def page(client, customer) -> str:
    response = client.get(reverse("admin:accounts_customer_change", args=[customer.pk]))
    assert response.status_code == 200
    return response.content.decode()


def accept(client, customer, suggestion, **overrides):
    data = {"currency": suggestion.currency, "key": suggestion.key, **overrides}
    return client.post(reverse("admin:cases_paymentplan_suggested", args=[customer.pk]), data)


def test_the_customer_page_proposes_the_plan_with_a_csrf_form(client, agent, struggling):
    client.force_login(agent)
    html = page(client, struggling)
    assert "Suggested payment plan: 4 monthly installments of USD 1,000.00" in html
    action = reverse("admin:cases_paymentplan_suggested", args=[struggling.pk])
    assert f'action="{action}"' in html and "csrfmiddlewaretoken" in html
    assert "Set up this plan" in html


def test_one_click_sets_up_the_suggested_plan(client, agent, struggling):
    suggestion = suggest_plan(struggling, as_of=ON)
    client.force_login(agent)
    response = accept(client, struggling, suggestion)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:accounts_customer_change", args=[struggling.pk])
    plan = PaymentPlan.objects.get(customer=struggling)
    assert (plan.status, plan.total_amount, plan.proposed_by) == (
        PaymentPlan.Status.ACTIVE,
        D("4000.00"),
        agent,
    )
    assert list(plan.installments.order_by("sequence").values_list("due_on", "amount")) == [
        (d, a) for d, a in suggestion.installments
    ]
    assert set(plan.invoices.values_list("pk", flat=True)) == set(suggestion.invoice_ids)
    assert Activity.objects.filter(customer=struggling, kind=Activity.Kind.PAYMENT_PLAN).exists()
    assert "Suggested from the predictions" in plan.note
    # Its invoices are in a plan now: nothing more to suggest.
    assert suggest_plan(struggling, as_of=ON) is None


def test_a_plan_above_the_threshold_waits_for_approval(client, agent, settings):
    settings.PAYMENT_PLAN_APPROVAL_THRESHOLD = "3000"
    customer = CustomerFactory(assigned_agent=agent)
    pays(customer, ["1000.00"] * 6)
    owes(customer, ["4000.00"])
    client.force_login(agent)
    assert "Propose this plan (for approval)" in page(client, customer)
    accept(client, customer, suggest_plan(customer, as_of=ON))
    assert PaymentPlan.objects.get(customer=customer).status == PaymentPlan.Status.PROPOSED


def test_a_suggestion_changed_since_the_page_proposes_nothing(client, agent, struggling):
    suggestion = suggest_plan(struggling, as_of=ON)
    owes(struggling, ["500.00"])  # a new invoice since the page was shown
    client.force_login(agent)
    response = accept(client, struggling, suggestion)
    assert response.status_code == 302
    assert not PaymentPlan.objects.exists()
    response = accept(client, struggling, suggestion, key="forged")
    assert not PaymentPlan.objects.exists()


def test_one_click_is_a_post(client, agent, struggling):
    client.force_login(agent)
    response = client.get(reverse("admin:cases_paymentplan_suggested", args=[struggling.pk]))
    assert response.status_code == 405
    assert not PaymentPlan.objects.exists()


def test_one_click_needs_the_csrf_token(agent, struggling):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    response = accept(client, struggling, suggest_plan(struggling, as_of=ON))
    assert response.status_code == 403
    assert not PaymentPlan.objects.exists()


def test_one_click_needs_the_right_to_propose_plans(client, finance, struggling):
    assert not finance.has_perm("cases.add_paymentplan")
    client.force_login(finance)
    html = page(client, struggling)
    assert "Suggested payment plan" in html  # finance sees it...
    assert "Set up this plan" not in html  # ...but gets no button
    response = accept(client, struggling, suggest_plan(struggling, as_of=ON))
    assert response.status_code == 403
    assert not PaymentPlan.objects.exists()


def test_one_click_refuses_another_agents_customer(client, struggling):
    other = UserFactory(role="Collections agent")
    client.force_login(other)
    response = accept(client, struggling, suggest_plan(struggling, as_of=ON))
    assert response.status_code == 403
    assert not PaymentPlan.objects.exists()
    assert not Installment.objects.exists()
