"""Contact rules at send time: which rule governs a customer, its allowed moments, holidays.

The sender asks `rule_for(customer)` once per notice (one query on a table of a few rows,
never cached, so a rule saved in the admin applies to every worker at its next notice),
then `next_contact(...)` for the first moment the rule allows and the reason it is not now.
Public holidays are read only for rules that observe them (one more query).

A customer no active rule matches falls back to the settings, as before the rules existed:
DUNNING_CONTACT_HOURS, DUNNING_NO_CONTACT_WEEKDAYS, DUNNING_MAX_CONTACTS_PER_7_DAYS, and
DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH for consumers.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass

import holidays
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts import timezones
from accounts.models import Customer

from .models import WEEKDAY_NAMES, ContactRule, PublicHoliday

QUIET_HOURS = "quiet hours"
# How far ahead the sender looks for an allowed day; the rules always leave a weekday, so
# only a year of back-to-back holidays could exhaust it.
SEARCH_DAYS = 366


def rule_for(customer) -> ContactRule:
    """The most specific active rule for the customer, else an unsaved one from the settings.

    Country and kind beat country, which beats kind, which beats any country and kind.
    """
    country = (customer.country or "").upper()
    candidates = ContactRule.objects.filter(
        is_active=True, country__in={country, ""}, customer_kind__in={customer.kind, ""}
    )
    best = max(candidates, key=ContactRule.specificity, default=None)
    return best or fallback_rule(customer)


def fallback_rule(customer) -> ContactRule:
    """The settings as a rule: what applies to a customer no active rule matches."""
    start, end = settings.DUNNING_CONTACT_HOURS
    is_consumer = customer.kind == Customer.Kind.CONSUMER
    return ContactRule(
        from_hour=start,
        until_hour=end,
        no_contact_weekdays=list(settings.DUNNING_NO_CONTACT_WEEKDAYS),
        observe_public_holidays=False,
        max_contacts_per_7_days=settings.DUNNING_MAX_CONTACTS_PER_7_DAYS,
        max_contacts_per_month=(
            settings.DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH if is_consumer else None
        ),
        note="settings",
    )


def hours_on(rule: ContactRule, day: dt.date, zone: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    """When contact opens and closes on `day` in `zone` (until 24: the next midnight)."""
    opens = dt.datetime.combine(day, dt.time(rule.from_hour), tzinfo=zone)
    closes = dt.datetime.combine(
        day + dt.timedelta(days=rule.until_hour // 24), dt.time(rule.until_hour % 24), tzinfo=zone
    )
    return opens, closes


def holidays_between(country: str, first: dt.date, last: dt.date) -> dict[dt.date, str]:
    """The country's public holidays from `first` to `last`, by date."""
    if not country:
        return {}
    return dict(
        PublicHoliday.objects.filter(
            country=country.upper(), date__gte=first, date__lte=last
        ).values_list("date", "name")
    )


def next_contact(customer, now: dt.datetime, rule: ContactRule) -> tuple[dt.datetime, str]:
    """The first moment from `now` the rule allows contact, and why not earlier ("" if now).

    The reason names every guard passed on the way, in order: "quiet hours until 08:00
    America/Chicago"; "public holiday (Thanksgiving Day) until 08:00 America/Chicago on
    2026-11-27"; "quiet hours, then no contact on Sunday until 08:00 ... on 2026-11-30".

    A customer whose zone was not given and whose place is ambiguous (a US row without a
    state) may be in any of several zones (accounts.timezones.contact_zones): the moment
    must then be allowed in every one of them (Regulation F, 12 CFR 1006.6(b)(1)(i)).
    1. Ask each zone for its first allowed moment from the candidate (at first `now`).
    2. The latest of them is the next candidate; when every zone answers the candidate
       itself, it is allowed in all of them. A zone closing before another opens answers
       with its next day, so the candidate only moves forward, to the intersection.
    """
    zones = [zoneinfo.ZoneInfo(name) for name in timezones.contact_zones(customer)]
    closed_days = {}
    if rule.observe_public_holidays:
        first = min(now.astimezone(zone).date() for zone in zones)
        last = first + dt.timedelta(days=SEARCH_DAYS + 1)
        closed_days = {
            day: f"public holiday ({name})"
            for day, name in holidays_between(customer.country, first, last).items()
        }
    if len(zones) == 1:
        return _next_in_zone(customer, now, rule, zones[0], closed_days)
    moment, reasons = now, []
    for _round in range(4 * len(zones) + 8):
        answers = [_next_in_zone(customer, moment, rule, zone, closed_days) for zone in zones]
        latest, why = max(answers, key=lambda answer: answer[0])
        if latest == moment:
            if moment == now:
                return now, ""
            guards = "; ".join(dict.fromkeys(reasons))
            place = customer.timezone_region or customer.country
            why = f"{guards} (time zone unknown: within hours in all {len(zones)} zones of {place})"
            return moment, why[-250:]  # the notice's reason holds 300 characters
        moment = latest
        reasons.append(why)
    raise RuntimeError(f"{rule}: the contact hours of {customer}'s zones never overlap")


def _next_in_zone(
    customer, now: dt.datetime, rule: ContactRule, zone: dt.tzinfo, closed_days: dict
) -> tuple[dt.datetime, str]:
    """`next_contact` in one zone, with the country's closed days already read."""
    local = now.astimezone(zone)
    today = local.date()
    blocked_weekdays = set(rule.no_contact_weekdays)
    passed: list[str] = []
    day = today
    for offset in range(SEARCH_DAYS):
        closed = closed_days.get(day) or (
            f"no contact on {WEEKDAY_NAMES[day.weekday()]}"
            if day.weekday() in blocked_weekdays
            else ""
        )
        if closed:
            passed.append(closed)
        else:
            opens, closes = hours_on(rule, day, zone)
            if local < closes:
                if now >= opens:
                    return now, ""
                if offset == 0:
                    passed.append(QUIET_HOURS)  # early morning
                return opens, _explain(passed, opens, str(zone))
            passed.append(QUIET_HOURS)  # later today; only day 0 can close before `local`
        day += dt.timedelta(days=1)
    raise RuntimeError(f"{rule}: no day to contact {customer} within {SEARCH_DAYS} days")


def _explain(passed: list[str], opens: dt.datetime, zone: str) -> str:
    guards = ", then ".join(dict.fromkeys(passed))
    if passed == [QUIET_HOURS]:
        return f"{guards} until {opens:%H:%M} {zone}"
    return f"{guards} until {opens:%H:%M} {zone} on {opens:%Y-%m-%d}"


@dataclass
class HolidayLoad:
    added: int = 0
    existing: int = 0


def load_public_holidays(*, country: str, year: int) -> HolidayLoad:
    """Store a country's public holidays for a year from the `holidays` package, once.

    Dates already stored (loaded before, or added by hand) keep their row and name; loading
    again adds only what is missing. Names are in English where the package has them.
    """
    country = (country or "").strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise ValidationError({"country": _("A two-letter country code (US, GB, DE).")})
    if country not in holidays.list_supported_countries():
        raise ValidationError(
            {"country": _("No public holiday calendar for “%(code)s”.") % {"code": country}}
        )
    calendar_days = holidays.country_holidays(country, years=year)
    if "en_US" in calendar_days.supported_languages:
        calendar_days = holidays.country_holidays(country, years=year, language="en_US")
    days = dict(sorted(calendar_days.items()))
    with transaction.atomic():
        existing = set(
            PublicHoliday.objects.filter(country=country, date__year=year).values_list(
                "date", flat=True
            )
        )
        missing = [
            PublicHoliday(country=country, date=day, name=name[:200])
            for day, name in days.items()
            if day not in existing
        ]
        # A load at the same moment in another window may add the same days: keep theirs.
        PublicHoliday.objects.bulk_create(missing, ignore_conflicts=True)
    return HolidayLoad(added=len(missing), existing=len(days) - len(missing))
