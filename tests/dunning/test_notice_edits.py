"""A manager rewrites a notice in the approval queue: the edit, its checks, and the sending."""

import datetime as dt
import zoneinfo
from decimal import Decimal

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from accounts import services as ledger
from accounts.models import Activity, Customer
from cases import promises
from dunning import planner, sender, services
from dunning.models import Notice, Step
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory, PaymentFactory

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=zoneinfo.ZoneInfo("America/Chicago"))
US_NOTICE = "This is an attempt to collect a debt by Example Supplies Ltd"
NEW_TEXT = "Dear Dana,\n\nAs agreed on the phone, please pay {numbers} by Friday.\n\nKind regards"


@pytest.fixture(autouse=True)
def _locmem_mail(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.COMPANY_NAME = "Example Supplies Ltd"
    settings.DUNNING_HIGH_VALUE_THRESHOLD = "1000"  # the +7 e-mail waits for a manager


def waiting_email(*, invoices=2, **customer_fields) -> Notice:
    """The +7 e-mail, its step set to wait for a manager above the high-value threshold."""
    Step.objects.filter(template__name="firm-overdue", channel="email").update(
        approval=Step.Approval.HIGH_VALUE
    )
    customer = CustomerFactory(**customer_fields)
    ContactFactory(customer=customer, name="Dana", email="dana@acme.example", is_primary=True)
    for n in range(invoices):
        InvoiceFactory(
            customer=customer,
            number=f"E-{customer.pk}-{n}",
            due_on=ON - dt.timedelta(days=7),
            amount=Decimal("1500.00"),
        )
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer).exclude(channel="email").delete()
    notice = Notice.objects.get(customer=customer, channel="email")
    assert notice.status == "awaiting_approval"
    return notice


def text_for(notice) -> str:
    numbers = ", ".join(
        notice.lines.order_by("invoice__number").values_list("invoice__number", flat=True)
    )
    return NEW_TEXT.format(numbers=numbers)


def test_draft_starts_from_the_rendered_template_with_the_invoices(manager):
    notice = waiting_email()
    draft = services.draft(notice)
    assert draft["subject"] == "Overdue: please pay now"
    assert f"E-{notice.customer_id}-0" in draft["body_text"]
    assert [i.number for i in draft["invoices"]] == [
        f"E-{notice.customer_id}-0",
        f"E-{notice.customer_id}-1",
    ]
    assert not draft["error"]


def test_edit_and_approve_sends_exactly_the_managers_text_and_logs_it(manager):
    notice = waiting_email()
    text = text_for(notice)
    services.edit_notice(
        notice,
        by=manager,
        subject="Your account",
        body_text=text,
        reason="Agreed by phone",
        approve=True,
    )
    notice.refresh_from_db()
    assert (notice.status, notice.decided_by, notice.edited_by) == ("approved", manager, manager)
    entry = Activity.objects.get(kind="override", customer=notice.customer)
    assert entry.actor == manager
    assert "Edited and approved" in entry.text and "Agreed by phone" in entry.text
    assert entry.details["text"] == text and entry.details["subject"] == "Your account"

    assert sender.send_due(now=NOW).sent == 1
    [message] = mail.outbox
    assert message.subject == "Your account"
    assert message.body.strip() == text
    html = message.alternatives[0][0]
    assert "As agreed on the phone" in html and "<p>" in html
    notice.refresh_from_db()
    assert notice.status == "sent" and notice.body_text == message.body


def test_saving_without_approving_keeps_it_in_the_queue(manager):
    notice = waiting_email()
    services.edit_notice(
        notice, by=manager, subject="S", body_text=text_for(notice), reason="Wording"
    )
    notice.refresh_from_db()
    assert notice.status == "awaiting_approval" and notice.edited_at
    assert sender.send_due(now=NOW).sent == 0 and not mail.outbox


def test_text_is_taken_literally_never_rendered_as_a_template(manager):
    notice = waiting_email(invoices=1)
    text = "Pay {{ totals }} {% if x %}now{% endif %} <b>please</b>"
    services.edit_notice(notice, by=manager, subject="S", body_text=text, reason="r", approve=True)
    sender.send_due(now=NOW)
    [message] = mail.outbox
    assert message.body.strip() == text
    assert "&lt;b&gt;please&lt;/b&gt;" in message.alternatives[0][0]  # escaped in the HTML


def test_the_required_disclosure_and_unsubscribe_line_come_back_if_deleted(manager):
    notice = waiting_email(invoices=1, kind=Customer.Kind.CONSUMER, country="US")
    assert US_NOTICE in services.draft(notice)["body_text"]
    services.edit_notice(
        notice, by=manager, subject="S", body_text="Please pay.", reason="r", approve=True
    )
    sender.send_due(now=NOW)
    [message] = mail.outbox
    assert message.body.startswith("Please pay.")
    assert US_NOTICE in message.body and "/dunning/unsubscribe/" in message.body
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_kept_disclosure_and_link_are_not_added_twice(manager):
    notice = waiting_email(invoices=1, kind=Customer.Kind.CONSUMER, country="US")
    draft = services.draft(notice)["body_text"]
    edited = "Hello again.\n\n" + draft
    services.edit_notice(
        notice, by=manager, subject="S", body_text=edited, reason="r", approve=True
    )
    sender.send_due(now=NOW)
    body = mail.outbox[0].body
    assert body.count(US_NOTICE) == 1
    assert body.count("/dunning/unsubscribe/") == 1


def test_a_payment_after_the_edit_sends_it_back_for_approval(manager):
    notice = waiting_email(invoices=2)
    services.edit_notice(
        notice, by=manager, subject="S", body_text=text_for(notice), reason="r", approve=True
    )
    first = notice.lines.order_by("invoice__number").first().invoice
    payment = PaymentFactory(customer=first.customer, amount=first.amount)
    ledger.allocate(payment=payment, invoice=first)
    result = sender.send_due(now=NOW)
    assert (result.sent, result.awaiting_approval) == (0, 1) and not mail.outbox
    notice.refresh_from_db()
    assert notice.status == "awaiting_approval"
    assert "invoices changed since the text was edited" in notice.reason
    # Edited again for what is left, it goes.
    services.edit_notice(
        notice, by=manager, subject="S", body_text="Only one left.", reason="r2", approve=True
    )
    assert sender.send_due(now=NOW).sent == 1
    assert first.number not in mail.outbox[0].body


def test_an_invoice_put_on_hold_after_the_edit_sends_it_back_too(manager):
    notice = waiting_email(invoices=2)
    services.edit_notice(
        notice, by=manager, subject="S", body_text=text_for(notice), reason="r", approve=True
    )
    first = notice.lines.order_by("invoice__number").first().invoice
    promises.record_promise(
        customer=first.customer,
        invoices=[first],
        amount=first.open_balance,
        promised_on=ON + dt.timedelta(days=5),
        channel="phone",
        by=manager,
        today=ON,
    )
    assert sender.send_due(now=NOW).awaiting_approval == 1


def test_sms_edits_are_checked_for_length_and_keep_the_stop_line(manager):
    customer = CustomerFactory()
    ContactFactory(customer=customer, phone="+15555550100", is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7), amount=Decimal("5000"))
    planner.plan(on=ON)
    notice = Notice.objects.get(customer=customer, channel="sms")
    with pytest.raises(ValidationError) as error:
        services.edit_notice(notice, by=manager, subject="", body_text="x" * 1600, reason="r")
    assert "segments" in str(error.value.message_dict["body_text"])
    services.edit_notice(notice, by=manager, subject="", body_text="Call us today.", reason="r")
    notice.refresh_from_db()
    assert notice.status == "planned"  # a notice no one had to approve stays planned
    assert sender.send_next(now=NOW, notice_id=notice.pk) == "sent"
    notice.refresh_from_db()
    assert notice.body_text == "Call us today.\nReply STOP to opt out."


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"subject": "S", "body_text": "  ", "reason": "r"}, "body_text"),
        ({"subject": "", "body_text": "Text", "reason": "r"}, "subject"),
        ({"subject": "S", "body_text": "Text", "reason": " "}, "reason"),
    ],
)
def test_empty_fields_are_refused_by_name(manager, fields, field):
    notice = waiting_email(invoices=1)
    with pytest.raises(ValidationError) as error:
        services.edit_notice(notice, by=manager, **fields)
    assert field in error.value.message_dict
    notice.refresh_from_db()
    assert notice.edited_at is None


def test_sent_notices_and_tasks_cannot_be_edited(manager):
    notice = waiting_email(invoices=1)
    Notice.objects.filter(pk=notice.pk).update(status="sent")
    with pytest.raises(ValidationError):
        services.edit_notice(notice, by=manager, subject="S", body_text="T", reason="r")


def test_agents_may_not_edit(agent):
    notice = waiting_email(invoices=1)
    with pytest.raises(PermissionDenied):
        services.edit_notice(notice, by=agent, subject="S", body_text="T", reason="r")


def test_the_edit_page_for_a_manager(client, manager):
    notice = waiting_email(invoices=1)
    client.force_login(manager)
    changelist = client.get(reverse("admin:dunning_notice_changelist"))
    edit_url = reverse("admin:dunning_notice_edit", args=[notice.pk])
    assert edit_url in changelist.content.decode()
    page = client.get(edit_url)
    assert page.status_code == 200
    assert page.context["form"].initial["subject"] == "Overdue: please pay now"
    assert "Save and approve" in page.content.decode()
    response = client.post(
        edit_url,
        {"subject": "New", "body_text": "Please pay.", "reason": "Tone", "_approve": "1"},
    )
    assert response.status_code == 302
    notice.refresh_from_db()
    assert (notice.status, notice.subject) == ("approved", "New")


def test_the_edit_page_names_a_missing_field(client, manager):
    notice = waiting_email(invoices=1)
    client.force_login(manager)
    edit_url = reverse("admin:dunning_notice_edit", args=[notice.pk])
    page = client.post(edit_url, {"subject": "", "body_text": "Please pay.", "reason": "Tone"})
    assert page.status_code == 200
    assert "subject" in page.context["form"].errors


def test_agents_get_no_edit_link_and_a_403(client, agent):
    notice = waiting_email(invoices=1)
    client.force_login(agent)
    edit_url = reverse("admin:dunning_notice_edit", args=[notice.pk])
    assert edit_url not in client.get(reverse("admin:dunning_notice_changelist")).content.decode()
    assert client.get(edit_url).status_code == 403
