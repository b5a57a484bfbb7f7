"""Crash-safe sending in one process: a worker "dies" (an exception no handler catches, as
a kill leaves the rows) at each step of the protocol, and the next run does the right thing."""

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import mail

from accounts.models import Activity, Customer
from cases import case_tasks, plans
from cases.models import Installment, Task
from dunning import channels, letters, planner, sender, tasks
from dunning.models import ContactRule, Notice, NoticeInvoice, OutboxMessage
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
MONDAY_10AM = dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO)
AFTER_TIMEOUT = dt.timedelta(seconds=901)  # DUNNING_SENDING_TIMEOUT_SECONDS is 900


class Killed(BaseException):
    """What a SIGKILL does to the worker: no except clause of the sender sees it."""


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.DUNNING_SENDING_TIMEOUT_SECONDS = 900
    settings.DUNNING_CLAIM_LEASE_SECONDS = 300


def planned(channel="email", count=1) -> Notice:
    """`count` customers with one overdue invoice each; the (last) notice on `channel`."""
    for _n in range(count):
        customer = CustomerFactory()
        ContactFactory(customer=customer, email=f"ap{customer.pk}@example.com", is_primary=True)
        InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.exclude(channel=channel).delete()
    return Notice.objects.get(customer=customer, channel=channel)


def die_after(monkeypatch, module, name):
    """The provider takes the message, then the worker dies before recording it."""
    real = getattr(module, name)

    def deliver_then_die(*args, **kwargs):
        real(*args, **kwargs)
        raise Killed

    monkeypatch.setattr(module, name, deliver_then_die)


def test_email_carries_a_message_id_derived_from_the_notice():
    notice = planned()
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    [message] = mail.outbox
    notice.refresh_from_db()
    assert message.extra_headers["Message-ID"] == f"<notice-{notice.pk}@collections.example.com>"
    assert notice.provider_message_id == message.extra_headers["Message-ID"]
    assert (notice.status, notice.attempts, notice.claim_token) == ("sent", 1, "")
    assert notice.sending_at is not None


def test_a_worker_dying_during_the_provider_call_leaves_an_uncertain_notice_never_resent(
    monkeypatch, clock
):
    notice = planned()
    die_after(monkeypatch, channels, "send_email")
    with pytest.raises(Killed):
        sender.send_due(now=MONDAY_10AM)
    notice.refresh_from_db()
    assert notice.status == "sending" and notice.recipient == notice.contact.email
    assert len(mail.outbox) == 1
    monkeypatch.undo()
    # A run inside the timeout leaves it to the (maybe still living) worker.
    assert sender.send_due(now=MONDAY_10AM).uncertain == 0
    clock.shift(AFTER_TIMEOUT)
    result = sender.send_due(now=MONDAY_10AM)
    assert (result.uncertain, result.sent) == (1, 0)
    notice.refresh_from_db()
    assert notice.status == "uncertain" and "a manager decides" in notice.reason
    assert len(mail.outbox) == 1  # never sent again blindly
    alert = Activity.objects.get(kind="alert", details__notice=notice.pk)
    assert "may or may not have gone out" in alert.text
    assert sender.send_due(now=MONDAY_10AM).sent == 0 and len(mail.outbox) == 1


def test_an_sms_cut_off_mid_send_becomes_uncertain_too(monkeypatch, clock):
    notice = planned(channel="sms")
    die_after(monkeypatch, channels, "send_sms")
    with pytest.raises(Killed):
        sender.send_due(now=MONDAY_10AM)
    monkeypatch.undo()
    clock.shift(AFTER_TIMEOUT)
    assert sender.send_due(now=MONDAY_10AM).uncertain == 1
    notice.refresh_from_db()
    assert notice.status == "uncertain"
    assert OutboxMessage.objects.filter(channel="sms").count() == 1


def test_uncertain_notices_count_against_the_contact_caps(monkeypatch, clock):
    ContactRule.objects.update(max_contacts_per_7_days=1)
    first = planned()
    die_after(monkeypatch, channels, "send_email")
    with pytest.raises(Killed):
        sender.send_due(now=MONDAY_10AM)
    monkeypatch.undo()
    clock.shift(AFTER_TIMEOUT)
    sender.send_due(now=MONDAY_10AM)
    first.refresh_from_db()
    assert first.status == "uncertain"
    # Another e-mail for the same customer at another step: the uncertain one counts.
    step = first.step.policy.steps.exclude(pk=first.step_id).filter(channel="email").first()
    invoice = InvoiceFactory(customer=first.customer, due_on=ON - dt.timedelta(days=7))
    second = Notice.objects.create(
        customer=first.customer, step=step, channel="email", planned_on=ON
    )
    NoticeInvoice.objects.create(notice=second, invoice=invoice, step=step)
    assert sender.send_next(now=MONDAY_10AM, notice_id=second.pk) == "deferred"
    second.refresh_from_db()
    assert "contact cap: 1 contacts in the last 7 days" in second.reason
    assert len(mail.outbox) == 1


def test_a_worker_dying_after_its_claim_leaves_nothing_sent_and_the_lease_runs_out(clock):
    notice = planned()
    batch = sender.claim(now=MONDAY_10AM, size=10)  # ... and the worker dies here
    assert [n.pk for n in batch.notices] == [notice.pk]
    assert sender.send_due(now=MONDAY_10AM).sent == 0  # leased: another worker skips it
    assert not mail.outbox
    clock.shift(dt.timedelta(seconds=301))
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    assert len(mail.outbox) == 1


def test_a_redelivered_celery_task_sends_nothing_twice(settings):
    settings.DUNNING_SEND_CHUNK = 50
    planned(count=2)
    assert tasks.send_due()["sent"] == 2
    assert tasks.send_due()["sent"] == 0  # acks_late: the same task delivered again
    assert len(mail.outbox) == 2


def test_a_letter_retried_after_a_crash_is_one_file(monkeypatch, clock, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    customer = CustomerFactory(postal_address="Hauptstraße 5\n10115 Berlin", country="DE")
    InvoiceFactory(customer=customer, number="LTR-9", due_on=ON - dt.timedelta(days=30))
    planner.plan(on=ON)
    letter = Notice.objects.get(customer=customer, channel="letter")
    noon = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
    die_after(monkeypatch, letters, "store")  # stored, then the worker dies
    with pytest.raises(Killed):
        sender.send_next(now=noon, notice_id=letter.pk)
    monkeypatch.undo()
    clock.shift(AFTER_TIMEOUT)
    result = sender.send_due(now=noon)
    letter.refresh_from_db()
    assert result.uncertain == 0 and letter.status == "sent"
    files = list(Path(tmp_path, "letters").rglob("*.pdf"))
    assert [f.name for f in files] == [f"letter-{letter.pk}.pdf"]
    assert letter.document.name == f"letters/letter-{letter.pk}.pdf"
    assert Activity.objects.filter(kind="letter", details__notice=letter.pk).count() == 1


def test_a_task_step_dying_mid_commit_raises_its_task_once(monkeypatch, clock, agent):
    customer = CustomerFactory(segment=Customer.Segment.STANDARD, assigned_agent=agent)
    InvoiceFactory(customer=customer, number="CALL-1", due_on=ON - dt.timedelta(days=15))
    planner.plan(on=ON)
    night = dt.datetime(2026, 11, 23, 2, 0, tzinfo=CHICAGO)
    real = case_tasks.create_task

    def create_then_die(**kwargs):
        real(**kwargs)
        raise Killed

    monkeypatch.setattr(case_tasks, "create_task", create_then_die)
    with pytest.raises(Killed):
        sender.send_due(now=night)
    monkeypatch.undo()
    assert not Task.objects.exists()  # one commit: the task went with the notice's record
    clock.shift(dt.timedelta(seconds=301))  # the dead worker's lease runs out
    assert sender.send_due(now=night).sent == 1
    assert Task.objects.filter(customer=customer).count() == 1


def make_uncertain(monkeypatch, clock) -> Notice:
    notice = planned()
    die_after(monkeypatch, channels, "send_email")
    with pytest.raises(Killed):
        sender.send_due(now=MONDAY_10AM)
    monkeypatch.undo()
    clock.shift(AFTER_TIMEOUT)
    sender.sweep_stale_sending()
    notice.refresh_from_db()
    assert notice.status == "uncertain"
    return notice


def test_managers_see_uncertain_notices_and_mark_one_sent(client, manager, monkeypatch, clock):
    notice = make_uncertain(monkeypatch, clock)
    client.force_login(manager)
    page = client.get("/admin/dunning/notice/")
    assert "1 uncertain notice" in page.content.decode()
    listed = client.get("/admin/dunning/notice/?status__exact=uncertain")
    assert str(notice.customer) in listed.content.decode()
    response = client.post(
        f"/admin/dunning/notice/{notice.pk}/mark-sent/",
        {"reason": "The customer replied to it", "apply": "1"},
    )
    assert response.status_code == 302
    notice.refresh_from_db()
    assert notice.status == "sent" and notice.decided_by == manager
    entry = Activity.objects.get(kind="override", details__notice=notice.pk)
    assert "Marked as sent" in entry.text and "The customer replied to it" in entry.text
    assert Activity.objects.filter(kind="email", details__notice=notice.pk).count() == 1
    assert len(mail.outbox) == 1


def test_send_again_needs_a_reason_and_sends_once_more_with_the_same_message_id(
    client, manager, agent, monkeypatch, clock
):
    notice = make_uncertain(monkeypatch, clock)
    client.force_login(agent)
    assert client.post(f"/admin/dunning/notice/{notice.pk}/send-again/").status_code == 403
    client.force_login(manager)
    refused = client.post(
        f"/admin/dunning/notice/{notice.pk}/send-again/", {"reason": "", "apply": "1"}
    )
    assert refused.status_code == 200  # the form, asking why
    client.post(
        f"/admin/dunning/notice/{notice.pk}/send-again/",
        {"reason": "The provider's log has no such message", "apply": "1"},
    )
    notice.refresh_from_db()
    assert notice.status == "approved"
    entry = Activity.objects.get(kind="override", details__notice=notice.pk)
    assert "Sent again" in entry.text and "no such message" in entry.text
    assert sender.send_due(now=MONDAY_10AM).sent == 1
    assert len(mail.outbox) == 2
    assert mail.outbox[0].extra_headers["Message-ID"] == mail.outbox[1].extra_headers["Message-ID"]


def test_an_installment_reminder_cut_off_mid_send_is_uncertain_and_not_marked_reminded(
    monkeypatch, clock
):
    customer = CustomerFactory(timezone="America/Chicago", country="US")
    ContactFactory(customer=customer, email="plan@example.com", is_primary=True)
    invoice = InvoiceFactory(customer=customer, amount=Decimal("300.00"))
    plan = plans.propose_plan(
        customer=customer,
        invoices=[invoice],
        installments=[(ON + dt.timedelta(days=7 + 30 * n), Decimal("100.00")) for n in range(3)],
        by=None,
        today=ON,
    )
    day = ON + dt.timedelta(days=4)  # three days before the first installment
    planner.plan(on=day)
    reminder = Notice.objects.get(installment__plan=plan)
    die_after(monkeypatch, channels, "send_email")
    with pytest.raises(Killed):
        sender.send_due(now=dt.datetime.combine(day, dt.time(10), tzinfo=CHICAGO))
    monkeypatch.undo()
    clock.shift(AFTER_TIMEOUT)
    result = sender.send_due(now=dt.datetime.combine(day, dt.time(11), tzinfo=CHICAGO))
    assert (result.uncertain, result.sent) == (1, 0)
    reminder.refresh_from_db()
    assert reminder.status == "uncertain" and len(mail.outbox) == 1
    assert not Installment.objects.filter(plan=plan, reminded_at__isnull=False).exists()
