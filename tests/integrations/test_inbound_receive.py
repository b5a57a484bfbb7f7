"""The receive path of a debtor's message: threaded to its notice and customer, stored once
with its attachments, on the timeline; a human reply pauses chasing and gives the agent a
task; an automatic one changes nothing; the portal's messages take the same path."""

import datetime as dt
import email.message
import email.policy
import zoneinfo
from decimal import Decimal
from email.utils import format_datetime, make_msgid

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Activity, Customer
from cases.models import Task
from dunning import holds, planner, sender
from dunning.models import Notice
from integrations.inbound import receive as receive_path
from integrations.inbound.receive import from_portal, receive_email
from integrations.models import InboundEmail
from tests.clock import NOW, ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    SentNoticeFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
CHICAGO = zoneinfo.ZoneInfo("America/Chicago")
PDF = b"%PDF-1.7 remittance advice"


@pytest.fixture(autouse=True)
def _inbound(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.EMAIL_BACKEND = "dunning.outbox.OutboxEmailBackend"
    settings.INBOUND_REPLY_ADDRESS = "replies@in.example.com"
    settings.INBOUND_REPLY_PAUSE_DAYS = 3
    settings.INBOUND_MAX_ATTACHMENTS = 3
    settings.INBOUND_MAX_ATTACHMENT_BYTES = 1000
    settings.INBOUND_ATTACHMENT_TYPES = ["application/pdf", "image/png"]


@pytest.fixture
def customer():
    agent = UserFactory(username="alice", role="Collections agent")
    customer = CustomerFactory(name="Acme Ltd", assigned_agent=agent)
    ContactFactory(customer=customer, name="Pat Payables", email="pat@acme.example")
    return customer


def mail(
    *,
    sender="pat@acme.example",
    to="collections@example.com",
    subject="Re: Payment reminder",
    body="Thanks, we are looking into it.",
    headers=None,
    message_id=None,
    attachments=(),
):
    message = email.message.EmailMessage(policy=email.policy.default)
    message["From"] = f"Pat <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(NOW)
    message["Message-ID"] = message_id or make_msgid(domain="acme.example")
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for filename, content_type, content in attachments:
        maintype, subtype = content_type.split("/")
        message.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return message


def receive(message, source=InboundEmail.Source.IMAP):
    return receive_email(source=source, message=message)


def sent_notice(customer):
    invoice = InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    return SentNoticeFactory(customer=customer, invoices=[invoice])


# --- threading ---------------------------------------------------------------------------


def test_a_reply_to_the_token_address_threads_to_its_notice_whoever_sends_it(customer):
    notice = sent_notice(customer)
    to = sender.reply_address_for(notice.pk)
    assert to.startswith("replies+n") and to.endswith("@in.example.com")

    inbound, created = receive(mail(sender="colleague@elsewhere.example", to=to))

    assert created
    assert (inbound.customer, inbound.notice, inbound.matched_by) == (customer, notice, "token")


def test_a_forged_token_does_not_thread_and_the_mail_is_kept_unmatched(customer):
    notice = sent_notice(customer)
    forged = f"replies+n{notice.pk}-{'0' * 20}@in.example.com"

    inbound, _ = receive(mail(sender="stranger@elsewhere.example", to=forged))

    assert inbound.customer is None and inbound.notice is None
    assert inbound.matched_by == ""
    assert not Activity.objects.filter(kind=Activity.Kind.REPLY).exists()
    assert not Task.objects.exists()


def test_a_token_made_before_a_secret_key_rotation_still_threads(customer, settings):
    notice = sent_notice(customer)
    to = sender.reply_address_for(notice.pk)
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-" + "x" * 40
    assert sender.reply_address_for(notice.pk) != to

    inbound, _ = receive(mail(sender="colleague@elsewhere.example", to=to))

    assert (inbound.notice, inbound.matched_by) == (notice, "token")


def test_in_reply_to_a_notices_message_id_threads_to_it(customer):
    notice = sent_notice(customer)
    reply = mail(
        sender="ap-team@acme-group.example",
        headers={"In-Reply-To": sender.message_id_for(notice.pk)},
    )

    inbound, _ = receive(reply)

    assert (inbound.notice, inbound.matched_by) == (notice, "references")
    assert inbound.in_reply_to == sender.message_id_for(notice.pk)


def test_a_notice_id_under_another_domain_is_not_ours(customer):
    notice = sent_notice(customer)
    reply = mail(
        sender="stranger@elsewhere.example",
        headers={"References": f"<notice-{notice.pk}@evil.example>"},
    )

    inbound, _ = receive(reply)

    assert inbound.notice is None and inbound.customer is None


def test_the_senders_address_finds_the_customer_when_nothing_else_does(customer):
    inbound, _ = receive(mail(sender="PAT@Acme.Example"))

    assert (inbound.customer, inbound.matched_by) == (customer, "sender")
    assert inbound.contact.name == "Pat Payables"
    assert inbound.sender == "PAT@Acme.Example"


def test_a_sender_who_is_a_contact_of_two_customers_is_left_for_managers(customer):
    ContactFactory(customer=CustomerFactory(), email="pat@acme.example")

    inbound, _ = receive(mail())

    assert inbound.customer is None
    assert "2 customers" in inbound.match_note


def test_the_sender_address_is_encrypted_at_rest(customer):
    from django.db import connection

    inbound, _ = receive(mail())

    with connection.cursor() as cursor:
        cursor.execute("SELECT sender FROM integrations_inboundemail WHERE id = %s", [inbound.pk])
        stored = cursor.fetchone()[0]
    assert "pat@acme.example" not in stored


# --- once, and what a reply does ---------------------------------------------------------


def test_the_same_message_received_twice_is_stored_and_acted_on_once(customer):
    message = mail(message_id="<same-1@acme.example>")

    first, created = receive(message)
    again, created_again = receive(message)

    assert (created, created_again) == (True, False)
    assert first.pk == again.pk
    assert Activity.objects.filter(kind=Activity.Kind.REPLY).count() == 1
    assert Task.objects.count() == 1


def test_the_same_message_id_from_two_sources_is_two_messages(customer):
    message = mail(message_id="<same-2@acme.example>")

    receive(message, source=InboundEmail.Source.IMAP)
    receive(message, source=InboundEmail.Source.MAILGUN)

    assert InboundEmail.objects.count() == 2


def test_a_human_reply_is_on_the_timeline_pauses_chasing_and_gives_the_agent_a_task(customer):
    notice = sent_notice(customer)
    reply = mail(
        body="Hello,\nwe will pay next week.\n\nOn Mon, someone wrote:\n> Your invoice is due",
        headers={"In-Reply-To": sender.message_id_for(notice.pk)},
    )

    inbound, _ = receive(reply)

    entry = Activity.objects.get(kind=Activity.Kind.REPLY)
    assert entry.channel == Activity.Channel.EMAIL
    assert entry.text == "E-mail reply from Pat Payables: Hello, we will pay next week."
    assert entry.details["inbound_email"] == inbound.pk
    customer.refresh_from_db()
    assert customer.reply_paused_until == ON + dt.timedelta(days=3) == inbound.paused_until
    assert "replied by e-mail" in customer.reply_pause_reason
    assert customer.dunning_paused_until is None  # a person's pause is theirs alone
    task = Task.objects.get()
    assert task == inbound.task
    assert (task.assignee.username, task.kind, task.source) == (
        "alice",
        "email",
        f"inbound:{inbound.pk}",
    )
    assert task.details["inbound_email"] == inbound.pk
    assert task.details["url"] == f"/admin/integrations/inboundemail/{inbound.pk}/change/"
    assert Activity.objects.filter(kind=Activity.Kind.HOLD_CHANGE, customer=customer).exists()


@pytest.mark.parametrize(
    "headers, subject",
    [
        ({"Auto-Submitted": "auto-replied"}, "Re: Payment reminder"),
        ({}, "Out of office: back on Monday"),
        ({"Return-Path": "<>"}, "Undeliverable: Payment reminder"),
    ],
)
def test_an_automatic_reply_is_recorded_and_changes_nothing(customer, headers, subject):
    inbound, _ = receive(mail(subject=subject, headers=headers, body="I will pay on 2026-12-04"))

    assert inbound.is_automatic and inbound.automatic_reason
    entry = Activity.objects.get(kind=Activity.Kind.REPLY)
    assert entry.text.startswith("Automatic reply from Pat Payables")
    customer.refresh_from_db()
    assert customer.reply_paused_until is None
    assert not Task.objects.exists()
    assert inbound.promised_on is None


def test_a_longer_reply_pause_is_kept(customer):
    Customer.objects.filter(pk=customer.pk).update(
        reply_paused_until=ON + dt.timedelta(days=10), reply_pause_reason="earlier reply"
    )

    inbound, _ = receive(mail())

    customer.refresh_from_db()
    assert customer.reply_paused_until == ON + dt.timedelta(days=10) == inbound.paused_until
    assert customer.reply_pause_reason == "earlier reply"


def test_no_pause_when_the_pause_is_set_to_zero_days(customer, settings):
    settings.INBOUND_REPLY_PAUSE_DAYS = 0

    receive(mail())

    customer.refresh_from_db()
    assert customer.reply_paused_until is None
    assert Task.objects.count() == 1


def test_the_promised_date_amount_and_dispute_words_are_found(customer):
    inbound, _ = receive(
        mail(body="We never received invoice 12; the rest, USD 250.00, we pay on 2026-12-04.")
    )

    assert inbound.promised_on == dt.date(2026, 12, 4)
    assert (inbound.promised_amount, inbound.promised_currency) == (Decimal("250.00"), "USD")
    assert inbound.dispute_words == ["never received"]
    assert Task.objects.get().details["promised_on"] == "2026-12-04"


# --- chasing respects the pause ------------------------------------------------------------


def test_the_planner_leaves_a_customer_who_just_replied_alone(customer):
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    other = CustomerFactory()
    ContactFactory(customer=other, email="ap@other.example", is_primary=True)
    InvoiceFactory(customer=other, due_on=ON - dt.timedelta(days=7))
    receive(mail())

    planner.plan(on=ON)

    assert not Notice.objects.filter(customer=customer).exists()
    assert Notice.objects.filter(customer=other).exists()
    customer.refresh_from_db()
    assert holds.hold_reason(customer, ON).startswith(
        f"chasing paused until {ON + dt.timedelta(days=3)}"
    )
    assert not holds.hold_reason(customer, ON + dt.timedelta(days=4)).startswith("chasing")


def test_the_sender_defers_a_planned_notice_after_the_reply_with_its_reason(customer):
    customer.contacts.update(is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    notice = Notice.objects.get(customer=customer, channel="email")
    receive(mail())

    sender.send_due(now=dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO))

    notice.refresh_from_db()
    assert notice.status == Notice.Status.DEFERRED
    assert "chasing paused until 2026-11-26" in notice.reason
    assert notice.not_before_at.astimezone(CHICAGO).date() == ON + dt.timedelta(days=4)


def test_a_sent_notice_carries_a_reply_to_that_threads_the_reply(customer):
    from dunning.models import OutboxMessage

    customer.contacts.update(is_primary=True)
    InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.filter(customer=customer).exclude(channel="email").delete()
    sender.send_due(now=dt.datetime(2026, 11, 23, 10, 0, tzinfo=CHICAGO))
    kept = OutboxMessage.objects.get(channel="email")
    notice = Notice.objects.get(customer=customer)
    assert kept.headers["Reply-To"] == sender.reply_address_for(notice.pk)

    inbound, _ = receive(mail(sender="boss@acme-holding.example", to=kept.headers["Reply-To"]))

    assert (inbound.notice, inbound.matched_by) == (notice, "token")


def test_without_a_reply_address_no_reply_to_is_added(settings):
    settings.INBOUND_REPLY_ADDRESS = ""
    content = {"subject": "s", "body_text": "b", "body_html": "", "headers": {"X": "1"}}

    assert sender.with_reply_to(content, 7) == content


# --- attachments and hostile input ---------------------------------------------------------


def test_attachments_within_bounds_are_kept_and_the_others_recorded_as_refused(customer):
    message = mail(
        attachments=[
            ("remittance.pdf", "application/pdf", PDF),
            ("setup.exe", "application/octet-stream", b"MZ..."),
            ("scan.png", "image/png", b"x" * 2000),
            ("fourth.pdf", "application/pdf", PDF),
        ]
    )

    inbound, _ = receive(message)

    kept, exe, big, fourth = inbound.attachments.order_by("id")
    assert kept.refused_reason == "" and default_storage.open(kept.file.name).read() == PDF
    assert "not accepted" in exe.refused_reason and not exe.file
    assert "larger than 1000 bytes" in big.refused_reason and big.size == 2000
    assert "more than 3 attachments" in fourth.refused_reason


def test_a_nul_character_in_the_text_is_stored_visibly(customer):
    inbound, _ = receive(mail(body="pay\x00 soon", subject="Re: \x00"))

    inbound.refresh_from_db()
    assert inbound.text == "pay\\u0000 soon"


# --- the portal ------------------------------------------------------------------------------


def test_a_portal_message_takes_the_path_of_a_human_reply(customer):
    contact = customer.contacts.get()
    upload = SimpleUploadedFile("proof.pdf", PDF, content_type="application/pdf")

    inbound = from_portal(
        customer=customer,
        contact=contact,
        subject="About invoice 12",
        text="We paid EUR 100 on 2026-11-20, see the proof.",
        attachments=[upload],
    )

    assert (inbound.source, inbound.matched_by, inbound.customer) == ("portal", "portal", customer)
    assert inbound.attachments.get().file.read() == PDF
    entry = Activity.objects.get(kind=Activity.Kind.REPLY)
    assert entry.channel == Activity.Channel.PORTAL
    assert entry.text.startswith("Portal message from Pat Payables: We paid EUR 100")
    customer.refresh_from_db()
    assert customer.reply_paused_until == ON + dt.timedelta(days=3)
    assert Task.objects.get().title == "Answer the portal message from Pat Payables"


@pytest.mark.parametrize(
    "upload, why",
    [
        (SimpleUploadedFile("virus.exe", b"MZ", content_type="application/x-msdownload"), "type"),
        (SimpleUploadedFile("big.pdf", b"x" * 1001, content_type="application/pdf"), "larger"),
    ],
)
def test_a_bad_portal_attachment_is_refused_naming_the_field(customer, upload, why):
    with pytest.raises(ValidationError) as refused:
        from_portal(customer=customer, contact=None, subject="", text="hi", attachments=[upload])

    assert why in " ".join(refused.value.message_dict["attachments"])
    assert not InboundEmail.objects.exists() and not Task.objects.exists()


def test_an_empty_portal_message_is_refused_naming_the_field(customer):
    with pytest.raises(ValidationError) as refused:
        from_portal(customer=customer, contact=None, subject="x", text="  ", attachments=[])

    assert "text" in refused.value.message_dict


def test_a_portal_message_from_another_customers_contact_is_refused(customer):
    stranger = ContactFactory()
    with pytest.raises(ValidationError) as refused:
        from_portal(customer=customer, contact=stranger, subject="", text="hi", attachments=[])

    assert "contact" in refused.value.message_dict


def test_files_of_reads_the_attachments_of_a_parsed_message():
    message = mail(attachments=[("a.pdf", "application/pdf", PDF)])

    (found,) = receive_path.files_of(message)

    assert (found.filename, found.content_type, found.size, found.content) == (
        "a.pdf",
        "application/pdf",
        len(PDF),
        PDF,
    )


def test_erasing_a_customer_erases_its_messages_and_those_from_its_addresses(customer):
    from integrations.inbound.erasure import erase_messages

    matched, _ = receive(mail(attachments=[("remittance.pdf", "application/pdf", PDF)]))
    ContactFactory(customer=CustomerFactory(), email="pat@acme.example")  # now ambiguous
    unmatched, _ = receive(mail(body="from pat, unmatched"))
    other, _ = receive(mail(sender="someone@else.example", body="keep me"))
    path = matched.attachments.get().file.name

    counts = erase_messages(customer=customer, emails=["Pat@acme.example"])

    assert counts == {"inbound_messages": 2, "inbound_files": 1}
    for inbound in (matched, unmatched):
        inbound.refresh_from_db()
        assert (inbound.text, inbound.subject, inbound.sender) == ("[erased]", "[erased]", "")
    assert not default_storage.exists(path)
    other.refresh_from_db()
    assert other.text == "keep me"


def test_a_reply_read_days_late_pauses_from_today(customer):
    message = mail()
    message.replace_header("Date", format_datetime(NOW - dt.timedelta(days=5)))

    inbound, _ = receive(message)

    assert inbound.received_at == NOW - dt.timedelta(days=5)
    customer.refresh_from_db()
    assert customer.reply_paused_until == ON + dt.timedelta(days=3)
    assert "replied by e-mail on 2026-11-18" in customer.reply_pause_reason
    assert Task.objects.get().due_at.date() >= ON + dt.timedelta(days=1)
