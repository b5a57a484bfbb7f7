import datetime as dt
import zoneinfo

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.models import Customer
from dunning import contact_rules, planner, sender
from dunning.models import ContactRule, Notice, PublicHoliday
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, UserFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)
THANKSGIVING_10AM = dt.datetime(2026, 11, 26, 10, 0, tzinfo=CHICAGO)
RULES = reverse("admin:dunning_contactrule_changelist")
HOLIDAYS = reverse("admin:dunning_publicholiday_changelist")
LOAD = reverse("admin:dunning_publicholiday_load")


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture
def thanksgiving():
    return PublicHoliday.objects.create(
        country="US", date=dt.date(2026, 11, 26), name="Thanksgiving Day"
    )


def planned_email(**customer_fields) -> Notice:
    """A customer's +7 e-mail notice, planned on ON (its SMS twin removed)."""
    customer = CustomerFactory(**customer_fields)
    ContactFactory(customer=customer, email=f"ap{customer.pk}@example.com", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer, channel="sms").delete()
    return Notice.objects.get(customer=customer, channel="email")


def sent_before(notice: Notice, *moments: dt.datetime) -> None:
    for at in moments:
        Notice.objects.create(
            customer=notice.customer,
            step=notice.step,
            channel="email",
            planned_on=at.date(),
            status="sent",
            sent_at=at,
        )


def send(notice: Notice, now: dt.datetime) -> Notice:
    sender.send_next(now=now, notice_id=notice.pk)
    notice.refresh_from_db()
    return notice


def rule(country="", kind="", **fields) -> ContactRule:
    """The rule for that scope (the seeded ones included), changed as given."""
    found, _ = ContactRule.objects.update_or_create(
        country=country, customer_kind=kind, defaults=fields
    )
    return found


# Which rule applies


def test_the_seeded_rules_reproduce_the_old_defaults():
    default = ContactRule.objects.get(country="", customer_kind="")
    consumer = ContactRule.objects.get(country="", customer_kind="consumer")
    assert (default.from_hour, default.until_hour, default.no_contact_weekdays) == (8, 21, [6])
    assert (default.max_contacts_per_7_days, default.max_contacts_per_month) == (7, None)
    assert not default.observe_public_holidays
    assert (consumer.from_hour, consumer.until_hour, consumer.no_contact_weekdays) == (8, 21, [6])
    assert (consumer.max_contacts_per_7_days, consumer.max_contacts_per_month) == (7, 3)
    assert consumer.observe_public_holidays


def test_the_most_specific_active_rule_wins():
    us_consumer = rule("US", "consumer", from_hour=9)
    us = rule("US", from_hour=10)
    consumer = ContactRule.objects.get(country="", customer_kind="consumer")
    default = ContactRule.objects.get(country="", customer_kind="")

    def rule_of(**fields):
        return contact_rules.rule_for(CustomerFactory(**fields)).pk

    assert rule_of(country="US", kind="consumer") == us_consumer.pk
    assert rule_of(country="us", kind="consumer") == us_consumer.pk
    assert rule_of(country="US", kind="business") == us.pk
    assert rule_of(country="GB", kind="consumer") == consumer.pk
    assert rule_of(country="GB", kind="business") == default.pk
    assert rule_of(country="", kind="business") == default.pk
    us_consumer.is_active = False
    us_consumer.save()
    assert rule_of(country="US", kind="consumer") == us.pk  # inactive: the next one down


def test_a_rule_change_applies_at_the_next_notice():
    us = rule("US", from_hour=11)
    first = planned_email(country="US")
    assert send(first, MONDAY_10AM).reason == "deferred: quiet hours until 11:00 America/Chicago"
    us.from_hour = 9
    us.save()
    second = planned_email(country="US")
    assert send(second, MONDAY_10AM).status == "sent"


def test_the_rule_lookup_is_one_query_and_holidays_are_read_only_when_observed(
    django_assert_num_queries,
):
    business = CustomerFactory(kind=Customer.Kind.BUSINESS)
    consumer = CustomerFactory(kind=Customer.Kind.CONSUMER)
    with django_assert_num_queries(1):
        business_rule = contact_rules.rule_for(business)
    with django_assert_num_queries(0):
        contact_rules.next_contact(business, MONDAY_10AM, business_rule)
    consumer_rule = contact_rules.rule_for(consumer)
    with django_assert_num_queries(1):
        contact_rules.next_contact(consumer, MONDAY_10AM, consumer_rule)


def test_without_a_matching_rule_the_settings_apply(settings):
    ContactRule.objects.all().delete()
    settings.DUNNING_CONTACT_HOURS = (11, 17)
    settings.DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH = 2
    notice = planned_email()
    assert send(notice, MONDAY_10AM).reason == "deferred: quiet hours until 11:00 America/Chicago"
    consumer = contact_rules.rule_for(CustomerFactory(kind=Customer.Kind.CONSUMER))
    assert (consumer.pk, consumer.max_contacts_per_month) == (None, 2)
    assert contact_rules.rule_for(notice.customer).max_contacts_per_month is None


# Hours, weekdays and holidays


def test_contact_hours_are_the_customers_local_hours():
    rule("JP", from_hour=9, until_hour=18)
    notice = planned_email(country="JP", timezone="Asia/Tokyo")
    # Monday 10:00 in Chicago is Tuesday 01:00 in Tokyo.
    notice = send(notice, MONDAY_10AM)
    assert notice.reason == "deferred: quiet hours until 09:00 Asia/Tokyo"
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    assert notice.not_before_at == dt.datetime(2026, 11, 24, 9, 0, tzinfo=tokyo)
    assert send(notice, notice.not_before_at).status == "sent"


def test_contact_until_midnight():
    rule(until_hour=24)
    notice = planned_email()
    assert send(notice, dt.datetime(2026, 11, 23, 23, 30, tzinfo=CHICAGO)).status == "sent"


def test_a_no_contact_weekday_defers_to_the_next_allowed_morning():
    rule(no_contact_weekdays=[5, 6])  # no weekends
    notice = planned_email()
    saturday_noon = dt.datetime(2026, 11, 28, 12, 0, tzinfo=CHICAGO)
    notice = send(notice, saturday_noon)
    assert notice.status == "deferred"
    assert notice.not_before_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=CHICAGO)
    assert notice.reason == (
        "deferred: no contact on Saturday, then no contact on Sunday "
        "until 08:00 America/Chicago on 2026-11-30"
    )


def test_quiet_hours_before_a_sunday_name_both_guards():
    notice = planned_email()
    notice = send(notice, dt.datetime(2026, 11, 28, 21, 30, tzinfo=CHICAGO))
    assert notice.not_before_at == dt.datetime(2026, 11, 30, 8, 0, tzinfo=CHICAGO)
    assert notice.reason == (
        "deferred: quiet hours, then no contact on Sunday until 08:00 America/Chicago on 2026-11-30"
    )


def test_a_public_holiday_defers_to_the_next_allowed_morning(thanksgiving):
    notice = planned_email(kind=Customer.Kind.CONSUMER)  # the consumer rule observes holidays
    notice = send(notice, THANKSGIVING_10AM)
    assert notice.status == "deferred"
    assert notice.not_before_at == dt.datetime(2026, 11, 27, 8, 0, tzinfo=CHICAGO)
    assert notice.reason == (
        "deferred: public holiday (Thanksgiving Day) until 08:00 America/Chicago on 2026-11-27"
    )
    assert send(notice, notice.not_before_at).status == "sent"


def test_the_evening_before_a_holiday_names_quiet_hours_and_the_holiday(thanksgiving):
    notice = planned_email(kind=Customer.Kind.CONSUMER)
    notice = send(notice, dt.datetime(2026, 11, 25, 22, 0, tzinfo=CHICAGO))
    assert notice.reason == (
        "deferred: quiet hours, then public holiday (Thanksgiving Day) "
        "until 08:00 America/Chicago on 2026-11-27"
    )


def test_a_rule_that_does_not_observe_holidays_sends_on_a_holiday(thanksgiving):
    notice = planned_email(kind=Customer.Kind.BUSINESS)  # the default rule: holidays ignored
    assert send(notice, THANKSGIVING_10AM).status == "sent"
    assert len(mail.outbox) == 1


def test_only_the_customers_own_country_holidays_count(thanksgiving):
    notice = planned_email(kind=Customer.Kind.CONSUMER, country="CA", timezone="America/Toronto")
    assert send(notice, THANKSGIVING_10AM).status == "sent"


# Caps


def test_the_seven_day_cap_comes_from_the_rule():
    rule("US", max_contacts_per_7_days=2)
    notice = planned_email(country="US")
    first, second = MONDAY_10AM - dt.timedelta(days=5), MONDAY_10AM - dt.timedelta(days=1)
    sent_before(notice, first, second)
    notice = send(notice, MONDAY_10AM)
    assert notice.reason == "deferred: contact cap: 2 contacts in the last 7 days"
    assert notice.not_before_at == first + dt.timedelta(days=7)
    assert send(notice, notice.not_before_at).status == "sent"


def test_the_monthly_cap_comes_from_the_rule():
    rule("US", max_contacts_per_month=1)  # a business rule with a monthly cap
    notice = planned_email(country="US", kind=Customer.Kind.BUSINESS)
    sent_before(notice, dt.datetime(2026, 11, 2, 10, 0, tzinfo=CHICAGO))
    notice = send(notice, MONDAY_10AM)
    assert notice.reason == "deferred: monthly cap: 1 contacts this month"
    assert notice.not_before_at == dt.datetime(2026, 12, 1, 0, 0, tzinfo=CHICAGO)


def test_a_rule_without_a_monthly_cap_lets_a_fourth_contact_through():
    rule("US", "consumer", observe_public_holidays=True, max_contacts_per_month=None)
    notice = planned_email(country="US", kind=Customer.Kind.CONSUMER)
    sent_before(notice, *(dt.datetime(2026, 11, 2 + 7 * n, 10, tzinfo=CHICAGO) for n in range(3)))
    assert send(notice, MONDAY_10AM).status == "sent"


def test_the_seeded_consumer_rule_keeps_three_a_month():
    notice = planned_email(country="US", kind=Customer.Kind.CONSUMER)
    sent_before(notice, *(dt.datetime(2026, 11, 2 + 7 * n, 10, tzinfo=CHICAGO) for n in range(3)))
    notice = send(notice, MONDAY_10AM)
    assert notice.reason == "deferred: monthly cap: 3 contacts this month"


# Validation


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"from_hour": 21, "until_hour": 21}, "until_hour"),
        ({"from_hour": 22, "until_hour": 8}, "until_hour"),
        ({"until_hour": 25}, "until_hour"),
        ({"no_contact_weekdays": [7]}, "no_contact_weekdays"),
        ({"no_contact_weekdays": ["sunday"]}, "no_contact_weekdays"),
        ({"no_contact_weekdays": [6, 6]}, "no_contact_weekdays"),
        ({"no_contact_weekdays": [0, 1, 2, 3, 4, 5, 6]}, "no_contact_weekdays"),
        ({"max_contacts_per_7_days": 0}, "max_contacts_per_7_days"),
        ({"max_contacts_per_month": 0}, "max_contacts_per_month"),
        ({"country": "USA"}, "country"),
    ],
)
def test_invalid_rules_are_refused(fields, field):
    with pytest.raises(ValidationError) as refused:
        ContactRule(**{"country": "DE", **fields}).full_clean()
    assert field in refused.value.message_dict


def test_the_database_refuses_hours_that_end_before_they_start():
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactRule.objects.create(country="DE", from_hour=21, until_hour=8)


def test_one_rule_per_country_and_kind():
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactRule.objects.create(country="", customer_kind="")


# Public holidays


def test_loading_public_holidays_twice_adds_them_once():
    first = contact_rules.load_public_holidays(country="us", year=2026)
    days = dict(PublicHoliday.objects.filter(country="US").values_list("date", "name"))
    assert first.added == len(days) >= 10 and first.existing == 0
    assert days[dt.date(2026, 11, 26)] == "Thanksgiving Day"
    again = contact_rules.load_public_holidays(country="US", year=2026)
    assert (again.added, again.existing) == (0, first.added)
    assert PublicHoliday.objects.filter(country="US").count() == first.added


def test_loading_keeps_a_holiday_added_by_hand():
    PublicHoliday.objects.create(country="GB", date=dt.date(2026, 12, 25), name="Christmas")
    loaded = contact_rules.load_public_holidays(country="GB", year=2026)
    assert loaded.existing == 1
    assert PublicHoliday.objects.get(country="GB", date=dt.date(2026, 12, 25)).name == "Christmas"


@pytest.mark.parametrize("country", ["XX", "USA", "1A", ""])
def test_an_unknown_country_cannot_be_loaded(country):
    with pytest.raises(ValidationError) as refused:
        contact_rules.load_public_holidays(country=country, year=2026)
    assert "country" in refused.value.message_dict
    assert not PublicHoliday.objects.exists()


def test_one_holiday_per_country_and_day(thanksgiving):
    with pytest.raises(IntegrityError), transaction.atomic():
        PublicHoliday.objects.create(country="US", date=thanksgiving.date, name="Again")


# The admin


def test_managers_edit_rules_in_the_admin(client, manager):
    client.force_login(manager)
    page = client.get(RULES).content.decode()
    assert "most specific active rule" in page and "any country, any kind" in page
    assert client.get(reverse("admin:dunning_contactrule_add")).status_code == 200
    form = {
        "country": "gb",
        "customer_kind": "consumer",
        "from_hour": "9",
        "until_hour": "20",
        "no_contact_weekdays": ["5", "6"],
        "observe_public_holidays": "on",
        "max_contacts_per_7_days": "7",
        "max_contacts_per_month": "",
        "is_active": "on",
        "note": "UK consumers",
    }
    response = client.post(reverse("admin:dunning_contactrule_add"), form)
    assert response.status_code == 302
    saved = ContactRule.objects.get(country="GB", customer_kind="consumer")
    assert saved.no_contact_weekdays == [5, 6] and saved.max_contacts_per_month is None
    refused = client.post(
        reverse("admin:dunning_contactrule_add"), {**form, "country": "FR", "until_hour": "9"}
    )
    assert refused.status_code == 200 and "must end after it starts" in refused.content.decode()
    twice = client.post(reverse("admin:dunning_contactrule_add"), form)
    assert twice.status_code == 200 and ContactRule.objects.filter(country="GB").count() == 1


def test_managers_load_holidays_in_the_admin(client, manager):
    client.force_login(manager)
    assert client.get(LOAD).status_code == 200
    assert "Load public holidays" in client.get(HOLIDAYS).content.decode()
    response = client.post(LOAD, {"country": "US", "year": "2026"})
    assert response.status_code == 302
    listed = client.get(response["Location"]).content.decode()
    assert "Thanksgiving Day" in listed
    client.post(LOAD, {"country": "US", "year": "2026"})
    assert PublicHoliday.objects.filter(date=dt.date(2026, 11, 26)).count() == 1
    refused = client.post(LOAD, {"country": "XX", "year": "2026"})
    assert refused.status_code == 200 and "No public holiday calendar" in refused.content.decode()
    by_year = client.get(HOLIDAYS, {"year": "2025"}).content.decode()
    assert "Thanksgiving Day" not in by_year
    added = client.post(
        reverse("admin:dunning_publicholiday_add"),
        {"country": "us", "date": "2026-12-24", "name": "Christmas Eve (office closed)"},
    )
    assert added.status_code == 302
    assert PublicHoliday.objects.get(date=dt.date(2026, 12, 24)).country == "US"


def test_agents_may_view_rules_and_holidays_but_not_change_them(client, agent, thanksgiving):
    default = ContactRule.objects.get(country="", customer_kind="")
    client.force_login(agent)
    assert client.get(RULES).status_code == 200
    assert client.get(HOLIDAYS).status_code == 200
    assert "Load public holidays" not in client.get(HOLIDAYS).content.decode()
    assert (
        client.get(reverse("admin:dunning_contactrule_change", args=[default.pk])).status_code
        == 200
    )
    assert client.get(reverse("admin:dunning_contactrule_add")).status_code == 403
    assert client.post(LOAD, {"country": "US", "year": "2026"}).status_code == 403
    client.post(
        reverse("admin:dunning_contactrule_change", args=[default.pk]),
        {"from_hour": "0", "until_hour": "24", "max_contacts_per_7_days": "99"},
    )
    default.refresh_from_db()
    assert (default.from_hour, default.until_hour) == (8, 21)
    delete = reverse("admin:dunning_publicholiday_delete", args=[thanksgiving.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert PublicHoliday.objects.filter(pk=thanksgiving.pk).exists()


def test_staff_without_a_role_cannot_see_the_rules(client):
    client.force_login(UserFactory(username="nobody"))
    assert client.get(RULES).status_code == 403
    assert client.get(HOLIDAYS).status_code == 403


# --- Ambiguous time zones (Regulation F, 12 CFR 1006.6(b)(1)(i)) ---------------------------

UTC = dt.UTC
EASTERN = zoneinfo.ZoneInfo("America/New_York")


def ambiguous_us(**fields) -> Customer:
    return CustomerFactory(
        country="US", timezone="America/New_York", timezone_source="ambiguous", **fields
    )


def test_a_us_customer_of_unknown_zone_waits_until_every_us_zone_is_within_hours():
    customer = ambiguous_us()
    hours = contact_rules.rule_for(customer)
    assert (hours.from_hour, hours.until_hour) == (8, 21)
    eight_eastern = dt.datetime(2026, 11, 23, 8, 0, tzinfo=EASTERN)  # 05:00 Pacific
    moment, why = contact_rules.next_contact(customer, eight_eastern, hours)
    # The last zone to open is Hawaii's: 08:00 Honolulu is 13:00 Eastern, 10:00 Pacific.
    assert moment == dt.datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    assert moment.astimezone(zoneinfo.ZoneInfo("America/Los_Angeles")).hour == 10
    assert why.startswith("quiet hours until 08:00 ")  # Honolulu's (or Adak's: the same clock)
    assert why.endswith("(time zone unknown: within hours in all 8 zones of US)")
    # Inside the intersection: now. After 21:00 Eastern (the first to close): tomorrow's.
    one_pm = dt.datetime(2026, 11, 23, 13, 30, tzinfo=EASTERN)
    assert contact_rules.next_contact(customer, one_pm, hours) == (one_pm, "")
    late = dt.datetime(2026, 11, 23, 21, 30, tzinfo=EASTERN)  # 16:30 in Honolulu
    moment, _why = contact_rules.next_contact(customer, late, hours)
    assert moment == dt.datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def test_the_same_customer_with_a_given_zone_is_contacted_in_that_zone():
    customer = CustomerFactory(country="US", timezone="America/New_York")
    eight_eastern = dt.datetime(2026, 11, 23, 8, 0, tzinfo=EASTERN)
    rule_used = contact_rules.rule_for(customer)
    assert contact_rules.next_contact(customer, eight_eastern, rule_used) == (eight_eastern, "")


def test_a_texan_of_unknown_zip_waits_for_mountain_time():
    customer = CustomerFactory(
        country="US", timezone="America/Chicago", timezone_source="ambiguous"
    )
    customer.timezone_region = "US-TX"
    eight_central = dt.datetime(2026, 11, 23, 8, 0, tzinfo=CHICAGO)
    moment, why = contact_rules.next_contact(
        customer, eight_central, contact_rules.rule_for(customer)
    )
    assert moment == dt.datetime(2026, 11, 23, 8, 0, tzinfo=zoneinfo.ZoneInfo("America/Denver"))
    assert "America/Denver" in why


def test_a_sunday_in_any_zone_blocks_an_ambiguous_customer():
    customer = ambiguous_us()
    hours = rule("US", "", no_contact_weekdays=[6], is_active=True)
    # Saturday 19:00 in Honolulu is already Sunday 00:00 in New York.
    saturday_evening = dt.datetime(
        2026, 11, 28, 19, 0, tzinfo=zoneinfo.ZoneInfo("Pacific/Honolulu")
    )
    moment, why = contact_rules.next_contact(customer, saturday_evening, hours)
    assert moment == dt.datetime(2026, 11, 30, 18, 0, tzinfo=UTC)  # Monday, 08:00 Honolulu
    assert "no contact on Sunday" in why


def test_the_sender_defers_an_ambiguous_customers_notice_to_the_intersection():
    notice = planned_email(country="US", timezone="America/New_York", timezone_source="ambiguous")
    eight_eastern = dt.datetime(2026, 11, 23, 8, 0, tzinfo=EASTERN)
    notice = send(notice, eight_eastern)
    assert notice.status == "deferred" and not mail.outbox
    assert notice.not_before_at == dt.datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    assert "time zone unknown" in notice.reason
    notice = send(notice, dt.datetime(2026, 11, 23, 18, 0, tzinfo=UTC))
    assert notice.status == "sent" and len(mail.outbox) == 1
