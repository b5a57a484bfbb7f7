"""Engagement features (issue #18): replies, portal visits and portal actions, point in time,
and the reasons that name them."""

import datetime as dt
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from accounts import timeline
from accounts.models import Activity
from accounts.portal_links import portal_url
from predictions.features import invoice_features
from predictions.frame import FEATURES, PORTAL_VISIT, Ledger, day_number, feature_matrix
from predictions.reasons import reasons
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
AS_OF = dt.date(2026, 10, 15)
AFTER = dt.date(2026, 10, 20)
ENGAGEMENT = ("portal_visits_90_days", "portal_actions_90_days", "days_since_engagement")


def at(when: dt.date | dt.datetime, hour=12) -> dt.datetime:
    """Noon (or `hour`) of a local day; a datetime as it is."""
    if isinstance(when, dt.datetime):
        return when
    return timezone.make_aware(dt.datetime.combine(when, dt.time(hour)))


def visit(customer, on, hour=12):
    timeline.add(
        Activity.Kind.PORTAL,
        customer=customer,
        channel=Activity.Channel.PORTAL,
        text="Ann opened the portal (link)",
        details={"action": PORTAL_VISIT, "via": "link"},
        at=at(on, hour),
    )


def action(customer, on, what="promise"):
    timeline.add(
        Activity.Kind.PORTAL,
        customer=customer,
        channel=Activity.Channel.PORTAL,
        details={"action": what},
        at=at(on),
    )


def reply(customer, on):
    timeline.add(Activity.Kind.REPLY, customer=customer, at=at(on))


def target_of(customer):
    return InvoiceFactory(
        customer=customer,
        amount=Decimal("250.00"),
        issued_on=dt.date(2026, 10, 1),
        due_on=dt.date(2026, 10, 31),
    )


def engagement(invoice, as_of=AS_OF) -> dict:
    features = invoice_features([invoice.pk], as_of)[invoice.pk]
    return {name: features[name] for name in (*ENGAGEMENT, "replies")}


def test_visits_and_actions_count_over_the_90_days_up_to_the_as_of_day():
    customer = CustomerFactory()
    target = target_of(customer)
    visit(customer, AS_OF - dt.timedelta(days=100))  # before the window
    visit(customer, AS_OF - dt.timedelta(days=89))
    visit(customer, AS_OF - dt.timedelta(days=30))
    visit(customer, AS_OF, hour=23)  # late on the as-of day itself still counts
    action(customer, AS_OF - dt.timedelta(days=30), "pay")
    action(customer, AS_OF - dt.timedelta(days=120), "dispute")  # before the window
    reply(customer, AS_OF - dt.timedelta(days=200))

    assert engagement(target) == {
        "portal_visits_90_days": 3,
        "portal_actions_90_days": 1,
        "days_since_engagement": 0,  # the visit on the as-of day
        "replies": 1,  # replies keep their year
    }


def test_days_since_engagement_is_missing_without_replies_or_portal_entries():
    customer = CustomerFactory()
    target = target_of(customer)
    # Other kinds of timeline entries and other customers' portal use are not engagement.
    timeline.add(Activity.Kind.EMAIL, customer=customer, at=at(AS_OF - dt.timedelta(days=3)))
    visit(CustomerFactory(), AS_OF - dt.timedelta(days=3))
    assert engagement(target) == {
        "portal_visits_90_days": 0,
        "portal_actions_90_days": 0,
        "days_since_engagement": None,
        "replies": 0,
    }
    reply(customer, AS_OF - dt.timedelta(days=40))
    assert engagement(target)["days_since_engagement"] == 40
    action(customer, AS_OF - dt.timedelta(days=12), "dispute")
    assert engagement(target)["days_since_engagement"] == 12


def test_engagement_after_the_as_of_day_changes_nothing():
    customer = CustomerFactory()
    target = target_of(customer)
    visit(customer, AS_OF - dt.timedelta(days=20))
    reply(customer, AS_OF - dt.timedelta(days=50))
    before = engagement(target)
    assert before["days_since_engagement"] == 20

    # The first minute of the next local day, and a later day: none of it is known yet.
    next_day = timezone.make_aware(dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time()))
    for moment in (next_day, at(AFTER)):
        visit(customer, moment)
        action(customer, moment, "pay")
        reply(customer, moment)

    assert engagement(target) == before
    # ...while the later day sees them (the test would prove nothing otherwise).
    assert engagement(target, AFTER) == {
        "portal_visits_90_days": 3,
        "portal_actions_90_days": 2,
        "days_since_engagement": 0,
        "replies": 3,
    }


def test_the_frame_answers_each_as_of_day_of_many_pairs_on_its_own():
    """Training asks for one invoice at several moments in one matrix: each line sees only
    its own day's past."""
    customer = CustomerFactory()
    target = target_of(customer)
    other = target_of(CustomerFactory())
    visit(customer, dt.date(2026, 10, 5))
    action(customer, dt.date(2026, 10, 8))
    ledger = Ledger.load()
    row, other_row = ledger.rows([target.pk, other.pk])
    days = [day_number(d) for d in (dt.date(2026, 10, 4), dt.date(2026, 10, 6), AS_OF, AS_OF)]
    matrix = feature_matrix(ledger, [row, row, row, other_row], days)
    visits, actions, since = (matrix[:, FEATURES.index(name)] for name in ENGAGEMENT)
    assert list(visits) == [0, 1, 1, 0]
    assert list(actions) == [0, 0, 1, 0]
    assert since[1] == 1 and since[2] == 7
    assert all(v != v for v in (since[0], since[3]))  # nan: nothing before that day


def test_reasons_name_a_debtor_who_went_quiet():
    customer = CustomerFactory()
    target = target_of(customer)
    reply(customer, AS_OF - dt.timedelta(days=95))
    said = reasons(invoice_features([target.pk], AS_OF)[target.pk])
    assert "no reply or portal visit for 95 days" in said


def test_reasons_name_portal_visits_without_any_action():
    customer = CustomerFactory()
    target = target_of(customer)
    for days_ago in (2, 9, 30):
        visit(customer, AS_OF - dt.timedelta(days=days_ago))
    said = reasons(invoice_features([target.pk], AS_OF)[target.pk])
    assert "visited the portal 3 times in the last 90 days without paying or acting there" in said

    # A debtor who acts in the portal is not "only looking", and one who was there two days
    # ago has not gone quiet.
    action(customer, AS_OF - dt.timedelta(days=1), "promise")
    said = reasons(invoice_features([target.pk], AS_OF)[target.pk])
    assert not any("portal" in text for text in said)


def test_a_visit_through_a_portal_link_counts_as_a_visit(client):
    """The portal's own login entry (portal.session.login) is what the frame reads as a
    visit; a payment announced there is an action."""
    customer = CustomerFactory()
    contact = ContactFactory(customer=customer)
    target = InvoiceFactory(customer=customer, issued_on=ON - dt.timedelta(days=10))
    link = urlsplit(portal_url(contact)).path
    assert client.get(link).status_code == 302
    features = invoice_features([target.pk], ON)[target.pk]
    assert features["portal_visits_90_days"] == 1
    assert features["portal_actions_90_days"] == 0
    assert features["days_since_engagement"] == 0
