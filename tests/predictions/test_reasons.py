"""Plain-word reasons (predictions.reasons): the three strongest, in words a manager reads."""

from decimal import Decimal

import pytest

from predictions.features import FEATURES, invoice_features
from predictions.reasons import reasons
from tests.predictions.test_features import AS_OF, history  # noqa: F401 (fixture)

D = Decimal


def good_payer(**changes):
    features = dict.fromkeys(FEATURES, 0)
    features.update(
        settled_count=8,
        late_share=D("0"),
        mean_days_late=D("0.00"),
        recent_mean_days_late=D("0.00"),
        trend_days_late=D("0.00"),
        last_days_late=0,
        amount_ratio=D("1.0000"),
        credit_use=D("0.2000"),
        open_amount=D("100.00"),
        overdue_amount=D("0.00"),
    )
    features.update(changes)
    return features


def test_a_good_payer_has_no_reasons():
    assert reasons(good_payer()) == []


def test_the_three_strongest_first():
    assert reasons(good_payer(recent_late_count=4, amount_ratio=D("2.0000"), bounces=1)) == [
        "paid 4 of the last 5 invoices late",
        "twice the usual amount",
        "e-mails bounced 1 time in the last year",
    ]


def test_each_reason_in_words():
    features = good_payer(
        mean_days_late=D("12.40"),
        trend_days_late=D("8.00"),
        last_days_late=21,
        overdue_count=2,
        amount_ratio=D("3.2500"),
        promises_broken=2,
        disputes=1,
        payment_plans=1,
        credit_use=D("0.9500"),
        bounces=3,
    )
    assert reasons(features, limit=20) == [
        "3.3 times the usual amount",  # strength 1 (capped); ties keep the rules' order
        "broke 2 promises to pay in the last year",  # 1
        "e-mails bounced 3 times in the last year",  # 1
        "uses 95% of the credit limit",  # 0.9
        "paid the last invoice 21 days late",  # 0.7
        "2 invoices already overdue",  # 0.67
        "needed 1 payment plan in the last year",  # 0.5
        "pays 12 days late on average",  # 0.41
        "paying 8 days later than before",  # 0.4
        "raised 1 dispute in the last year",  # 0.33
    ]


def test_a_short_history_counts_all_of_it():
    assert reasons(good_payer(settled_count=1, recent_late_count=1), limit=1) == [
        "paid 1 of 1 past invoice late"
    ]
    assert reasons(good_payer(settled_count=3, recent_late_count=2), limit=1) == [
        "paid 2 of 3 past invoices late"
    ]


def test_no_history_says_so():
    features = good_payer(settled_count=0, mean_days_late=None, last_days_late=None)
    assert reasons(features) == ["no payment history yet"]


def test_a_models_contributions_set_the_order():
    features = good_payer(recent_late_count=4, disputes=1, bounces=1, amount_ratio=D("2"))
    contributions = {
        "bounces": 0.9,
        "disputes": 0.4,
        "amount_ratio": -0.2,  # pulls toward on time: not a reason
        "recent_late_count": 0.1,
    }
    assert reasons(features, contributions=contributions) == [
        "e-mails bounced 1 time in the last year",
        "raised 1 dispute in the last year",
        "paid 4 of the last 5 invoices late",
    ]


@pytest.mark.django_db
def test_reasons_of_features_computed_from_the_ledger(history):  # noqa: F811
    _customer, _overdue, target = history
    features = invoice_features([target.pk], AS_OF)[target.pk]
    assert reasons(features) == [
        "paid 4 of the last 5 invoices late",  # 0.8
        "paid the last invoice 15 days late",  # 0.5, first of the ties in rule order
        "broke 1 promise to pay in the last year",  # 0.5
    ]  # and then "1.8 times the usual amount" (0.375)
