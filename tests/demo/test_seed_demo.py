"""seed_demo: a deterministic, self-consistent demo portfolio and the demo logins."""

import datetime as dt
import io
import re
import stat
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from accounts.aging import BUCKETS
from accounts.models import (
    Activity,
    Allocation,
    Contact,
    Customer,
    Invoice,
    Payment,
    normalize_phone,
)
from cases.models import Task
from demo.portfolio import HISTORY_DAYS
from dunning.models import PublicHoliday
from tests.clock import NOW
from tests.factories import TODAY, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "demo-password-for-tests"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def demo_settings(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    settings.PASSWORD_HASHERS = FAST_HASHERS
    monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
    return settings


def seed(*options: str, customers: int = 30, seed: int = 42) -> str:
    out = io.StringIO()
    call_command(
        "seed_demo",
        f"--customers={customers}",
        f"--seed={seed}",
        f"--today={TODAY.isoformat()}",
        *options,
        stdout=out,
    )
    return out.getvalue()


class Rollback(Exception):
    pass


def without_ids(text: str) -> str:
    """Case work names its rows (#12) and the moment it ran (09:30): neither is seeded."""
    return re.sub(r"\d\d:\d\d", "HH:MM", re.sub(r"#\d+", "#N", text))


def start_of_today() -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(TODAY, dt.time()))


def seeded_rows(**kwargs) -> dict[str, list]:
    """Seed in a savepoint, read every row back without ids, then roll it all back.

    Rolling back is the only way to empty the timeline again: it is append-only.
    """
    with pytest.raises(Rollback), transaction.atomic():
        seed(**kwargs)
        rows = {
            "customers": list(
                Customer.objects.order_by("external_ref").values_list(
                    "external_ref", "name", "segment", "kind", "country", "timezone",
                    "currency", "credit_limit", "assigned_agent__username",
                    "dunning_paused_until", "do_not_contact", "is_in_dispute",
                )
            ),
            "contacts": sorted(
                Contact.objects.values_list(
                    "customer__external_ref", "name", "email", "phone", "is_primary"
                )
            ),
            "invoices": list(
                Invoice.objects.order_by("number").values_list(
                    "number", "customer__external_ref", "amount", "issued_on", "due_on",
                    "open_balance", "status",
                )
            ),
            "payments": list(
                Payment.objects.order_by("external_id").values_list(
                    "external_id", "customer__external_ref", "kind", "amount",
                    "unallocated_amount", "received_on", "method", "remittance_reference",
                )
            ),
            "allocations": sorted(
                Allocation.objects.values_list(
                    "payment__external_id", "invoice__number", "amount", "allocated_on", "rule"
                )
            ),
            # The ledger's history; the case work seeded on top happens now (below).
            "activities": sorted(
                Activity.objects.filter(occurred_at__lt=start_of_today()).values_list(
                    "customer__external_ref", "kind", "outcome", "text", "occurred_at"
                )
            ),
            "tasks": sorted(
                (ref, kind, without_ids(title), status)
                for ref, kind, title, status in Task.objects.values_list(
                    "customer__external_ref", "kind", "title", "status"
                )
            ),
            "case_work": sorted(
                (ref, kind, without_ids(text))
                for ref, kind, text in Activity.objects.filter(
                    occurred_at__gte=start_of_today()
                ).values_list("customer__external_ref", "kind", "text")
            ),
            "holidays": sorted(PublicHoliday.objects.values_list("country", "date")),
        }  # fmt: skip
        raise Rollback
    assert not Customer.objects.exists()
    return rows


def test_same_seed_and_today_give_the_same_portfolio():
    first, second = seeded_rows(), seeded_rows()

    assert first == second
    assert len(first["customers"]) == 30
    assert len(first["invoices"]) > 300
    # The customers' countries' holidays, this year and next, for the consumer contact rule.
    countries = {row[4] for row in first["customers"] if row[4]}
    assert {country for country, _day in first["holidays"]} == countries
    assert {day.year for _country, day in first["holidays"]} == {TODAY.year, TODAY.year + 1}


def test_another_seed_gives_another_portfolio():
    assert seeded_rows(customers=5, seed=42) != seeded_rows(customers=5, seed=7)


def test_existing_users_keep_their_password_without_demo_password(monkeypatch, demo_settings):
    monkeypatch.delenv("DEMO_PASSWORD")
    agent = UserFactory(username="agent", role="Collections agent")

    output = seed(customers=1)

    agent.refresh_from_db()
    assert agent.check_password("pw-for-tests-only")
    line = (demo_settings.VAR_DIR / "demo-credentials.txt").read_text().strip()
    assert line.startswith("Logins: manager / finance / admin — password: ")
    password = line.rsplit(" ", 1)[1]
    assert get_user_model().objects.get(username="manager").check_password(password)
    assert line in output


def test_if_empty_skips_any_database_with_customers(monkeypatch):
    CustomerFactory()
    monkeypatch.delenv("DEMO_PASSWORD")

    seed("--if-empty", customers=1)

    assert Customer.objects.count() == 1
    assert not get_user_model().objects.exists()


def test_if_empty_with_demo_password_still_resets_the_logins(demo_settings):
    CustomerFactory()

    output = seed("--if-empty", customers=1)

    assert Customer.objects.count() == 1
    assert "already there" in output
    assert get_user_model().objects.get(username="agent").check_password(PASSWORD)
    assert PASSWORD in (demo_settings.VAR_DIR / "demo-credentials.txt").read_text()


@dataclass
class Seeded:
    output: str
    var_dir: Path


@pytest.fixture(scope="class")
def seeded(django_db_setup, django_db_blocker, tmp_path_factory):
    """One 30-customer portfolio for the read-only tests of a class, rolled back after it."""
    var_dir = tmp_path_factory.mktemp("var")
    with (
        time_machine.travel(NOW),  # class-scoped: set up before each test's own clock
        django_db_blocker.unblock(),
        override_settings(VAR_DIR=var_dir, PASSWORD_HASHERS=FAST_HASHERS),
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        monkeypatch.setenv("DEMO_PASSWORD", PASSWORD)
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            yield Seeded(output=seed(), var_dir=var_dir)
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


class TestSeededPortfolio:
    def test_balances_and_unallocated_amounts_match_the_allocations(self, seeded):
        by_invoice, by_payment = defaultdict(Decimal), defaultdict(Decimal)
        for allocation in Allocation.objects.select_related("payment", "invoice"):
            by_invoice[allocation.invoice_id] += allocation.amount
            by_payment[allocation.payment_id] += allocation.amount
            assert allocation.payment.currency == allocation.invoice.currency
            assert allocation.payment.customer_id == allocation.invoice.customer_id
        for invoice in Invoice.objects.select_related("customer"):
            assert invoice.amount - invoice.open_balance == by_invoice[invoice.pk], invoice.number
            assert invoice.amount.as_tuple().exponent == -2
            assert invoice.currency == invoice.customer.currency
            assert TODAY - dt.timedelta(days=HISTORY_DAYS) <= invoice.issued_on <= TODAY
            if invoice.open_balance == 0:
                assert invoice.status == Invoice.Status.PAID
            elif invoice.status != Invoice.Status.DISPUTED:
                assert invoice.status == invoice.status_for_balance(invoice.open_balance)
        for payment in Payment.objects.all():
            assert payment.amount - payment.unallocated_amount == by_payment[payment.pk]

    def test_every_customer_has_a_postal_address_for_letters(self, seeded):
        addresses = [customer.postal_address for customer in Customer.objects.all()]
        assert addresses and all("\n" in address for address in addresses)

    def test_invoices_mix_paid_partly_paid_disputed_and_open(self, seeded):
        statuses = set(Invoice.objects.values_list("status", flat=True))
        buckets = set(
            Invoice.objects.outstanding().with_aging(TODAY).values_list("aging_bucket", flat=True)
        )

        assert statuses == {"paid", "partially_paid", "disputed", "open"}
        assert buckets == {bucket.key for bucket in BUCKETS}
        assert Invoice.objects.filter(status="paid").count() > Invoice.objects.outstanding().count()
        for bucket in BUCKETS:
            assert bucket.key in seeded.output

    def test_payments_include_credit_notes_unapplied_money_and_an_unknown_payer(self, seeded):
        unallocated = Payment.objects.filter(allocations__isnull=True)

        assert Payment.objects.filter(kind=Payment.Kind.CREDIT_NOTE).count() == 2
        assert unallocated.filter(customer__isnull=False).count() == 3
        assert unallocated.filter(customer__isnull=True).count() == 1
        assert Payment.objects.filter(customer__isnull=True).count() == 1

    def test_contacts_have_one_primary_and_valid_e164_phones(self, seeded):
        for customer in Customer.objects.prefetch_related("contacts"):
            contacts = list(customer.contacts.all())
            assert 1 <= len(contacts) <= 3
            assert sum(contact.is_primary for contact in contacts) == 1
            for contact in contacts:
                assert contact.phone.startswith("+")
                assert normalize_phone(contact.phone) == contact.phone
                assert contact.email.endswith(".example")

    def test_some_customers_have_holds_and_strategic_ones_go_to_the_manager(self, seeded):
        paused = Customer.objects.filter(dunning_paused_until__isnull=False)

        assert paused.exists()
        for customer in paused:
            assert customer.dunning_pause_reason
            assert TODAY < customer.dunning_paused_until <= TODAY + dt.timedelta(days=14)
        assert Customer.objects.filter(do_not_contact=True).exists()
        assert Customer.objects.filter(is_in_dispute=True).count() == 1
        assert set(
            Customer.objects.filter(segment="strategic").values_list(
                "assigned_agent__username", flat=True
            )
        ) <= {"manager"}

    def test_every_payment_and_allocation_is_on_the_timeline(self, seeded):
        start_of_today = timezone.make_aware(dt.datetime.combine(TODAY, dt.time()))
        calls = Activity.objects.filter(kind=Activity.Kind.CALL)

        assert (
            Activity.objects.filter(kind="payment").count()
            == Payment.objects.filter(customer__isnull=False).count()
        )
        assert Activity.objects.filter(kind="allocation").count() == Allocation.objects.count()
        assert calls.exists()
        assert Activity.objects.filter(kind=Activity.Kind.NOTE, actor__username="agent").exists()
        assert not calls.exclude(channel="phone").exists()
        assert not calls.exclude(outcome__in=Activity.CallOutcome.values).exists()
        history = ("payment", "allocation", "call", "note", "email", "sms", "letter")
        assert not Activity.objects.filter(
            occurred_at__gte=start_of_today, kind__in=history
        ).exists()

    def test_the_last_allocation_entry_of_an_invoice_tells_its_balance(self, seeded):
        last_entry = {}
        for entry in (
            Activity.objects.filter(kind=Activity.Kind.ALLOCATION)
            .select_related("invoice")
            .order_by("occurred_at", "id")
        ):
            last_entry[entry.invoice_id] = entry

        assert last_entry
        for entry in last_entry.values():
            if entry.invoice.disputes.exists():
                continue  # the demo's case work disputed it after its last allocation
            assert entry.text.endswith(f"; {entry.invoice.open_balance} open")
            assert entry.details["status"] == entry.invoice.status

    def test_demo_users_get_their_roles_and_the_logins_file(self, seeded):
        User = get_user_model()
        credentials = seeded.var_dir / "demo-credentials.txt"

        for username, group in [
            ("agent", "Collections agent"),
            ("manager", "Collections manager"),
            ("finance", "Finance"),
        ]:
            user = User.objects.get(username=username)
            assert list(user.groups.values_list("name", flat=True)) == [group]
            assert user.is_staff and not user.is_superuser
            assert user.check_password(PASSWORD)
        assert User.objects.get(username="admin").is_superuser
        assert credentials.read_text() == (
            f"Logins: agent / manager / finance / admin — password: {PASSWORD}\n"
        )
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert f"password: {PASSWORD}" in seeded.output

    def test_if_empty_leaves_a_seeded_database_alone(self, seeded):
        counts = [model.objects.count() for model in (Customer, Invoice, Payment, Activity)]

        output = seed("--if-empty")

        assert "already there" in output
        assert [model.objects.count() for model in (Customer, Invoice, Payment, Activity)] == counts

    def test_seeding_twice_without_if_empty_is_refused(self, seeded):
        with pytest.raises(CommandError, match="already has demo data"):
            seed(customers=1)


# Just after midnight the nightly case work of "today" (01:30) has not happened yet; just
# before midnight every history row must still be dated up to now, in the server's zone.
@pytest.mark.parametrize("clock_at", ["00:05", "01:29", "23:55"])
@pytest.mark.parametrize("zone", ["UTC", "Pacific/Auckland", "America/Los_Angeles"])
def test_seeding_writes_nothing_dated_after_the_moment_it_runs(clock, settings, clock_at, zone):
    settings.TIME_ZONE = zone
    hour, minute = map(int, clock_at.split(":"))
    started = timezone.make_aware(dt.datetime.combine(TODAY, dt.time(hour, minute)))
    clock.move_to(started, tick=False)
    today = timezone.localdate()

    call_command("seed_demo", "--customers=30", stdout=io.StringIO())

    assert Activity.objects.count() > 100
    assert not Activity.objects.filter(occurred_at__gt=started)
    assert Activity.objects.filter(occurred_at__date__gte=today - dt.timedelta(days=7)).exists()
    assert not Invoice.objects.filter(issued_on__gt=today)
    assert not Payment.objects.filter(received_on__gt=today)
    assert not Allocation.objects.filter(allocated_on__gt=today)
    for model in (Customer, Contact, Invoice, Payment, Task):
        assert not model.objects.filter(created_at__gt=started), model.__name__
    assert not Customer.objects.filter(risk_scored_at__gt=started)


def test_a_demo_anchored_in_the_future_is_refused():
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    with pytest.raises(CommandError, match="after today"):
        call_command("seed_demo", "--customers=1", f"--today={tomorrow}", stdout=io.StringIO())

    assert not Customer.objects.exists()
