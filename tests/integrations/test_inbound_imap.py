"""IMAP polling: each message in the folder read once (by UID, under its UIDVALIDITY), an
oversize one stored from its headers, off without a host; the command and the schedule."""

import email.message
import email.policy
from email.utils import format_datetime

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from accounts.models import Activity
from collections_mgmt import schedule
from integrations import tasks
from integrations.inbound import imap
from integrations.models import ImapCursor, InboundEmail
from tests.clock import NOW
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _imap(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.INBOUND_IMAP_HOST = "imap.example.com"
    settings.INBOUND_IMAP_USER = "replies@example.com"
    settings.INBOUND_IMAP_FOLDER = "INBOX"
    settings.INBOUND_MAX_REQUEST_BYTES = 5000


def raw_mail(n: int, *, body="We pay on Friday.", message_id=True) -> bytes:
    message = email.message.EmailMessage(policy=email.policy.default)
    message["From"] = "pat@acme.example"
    message["To"] = "replies@example.com"
    message["Subject"] = f"Re: reminder {n}"
    message["Date"] = format_datetime(NOW)
    if message_id:
        message["Message-ID"] = f"<imap-{n}@acme.example>"
    message.set_content(body)
    return message.as_bytes()


class FakeImap:
    """The imaplib calls the poll makes, over a dict of UID -> raw message."""

    def __init__(self, messages: dict[int, bytes], validity: int = 7):
        self.messages, self.validity = messages, validity
        self.fetched: list[str] = []
        self.selected_readonly = None
        self.logged_out = False

    def select(self, folder, readonly=False):
        self.selected_readonly = readonly
        return "OK", [str(len(self.messages)).encode()]

    def response(self, code):
        return code, [str(self.validity).encode()]

    def uid(self, command, *args):
        if command == "SEARCH":
            low = int(args[1].split()[1].split(":")[0])
            found = [uid for uid in sorted(self.messages) if uid >= low]
            if not found and self.messages:  # n:* always names the highest UID
                found = [max(self.messages)]
            return "OK", [" ".join(str(uid) for uid in found).encode()]
        uid, what = int(args[0]), args[1]
        self.fetched.append(f"{uid} {what}")
        raw = self.messages[uid]
        if what == "(RFC822.SIZE)":
            return "OK", [f"1 (UID {uid} RFC822.SIZE {len(raw)})".encode()]
        if what == "(BODY.PEEK[HEADER])":
            head = raw.split(b"\n\n", 1)[0] + b"\n\n"
            return "OK", [(f"1 (UID {uid} BODY[HEADER] {{{len(head)}}}".encode(), head), b")"]
        return "OK", [(f"1 (UID {uid} BODY[] {{{len(raw)}}}".encode(), raw), b")"]

    def logout(self):
        self.logged_out = True


def test_each_message_is_read_once_and_later_ones_on_the_next_poll():
    ContactFactory(email="pat@acme.example")
    mailbox = FakeImap({3: raw_mail(3), 5: raw_mail(5)})

    first = imap.poll(connector=lambda: mailbox)
    again = imap.poll(connector=lambda: mailbox)
    mailbox.messages[9] = raw_mail(9)
    later = imap.poll(connector=lambda: mailbox)

    assert (first.read, first.stored, first.last_uid) == (2, 2, 5)
    assert (again.read, again.stored) == (0, 0)
    assert (later.read, later.stored, later.last_uid) == (1, 1, 9)
    assert [f for f in mailbox.fetched if "PEEK[]" in f] == [
        "3 (BODY.PEEK[])",
        "5 (BODY.PEEK[])",
        "9 (BODY.PEEK[])",
    ]
    assert mailbox.selected_readonly is True and mailbox.logged_out
    assert InboundEmail.objects.filter(source="imap").count() == 3
    assert Activity.objects.filter(kind="reply").count() == 3


def test_a_new_uidvalidity_reads_again_from_the_start_without_storing_twice():
    imap.poll(connector=lambda: FakeImap({1: raw_mail(1)}, validity=7))

    result = imap.poll(connector=lambda: FakeImap({1: raw_mail(1), 2: raw_mail(2)}, validity=8))

    assert (result.read, result.stored) == (2, 1)
    cursor = ImapCursor.objects.get()
    assert (cursor.uid_validity, cursor.last_uid) == (8, 2)


def test_a_message_without_message_id_is_known_by_its_uid():
    imap.poll(connector=lambda: FakeImap({4: raw_mail(4, message_id=False)}))

    assert InboundEmail.objects.get().message_id == "imap-7-4"


def test_an_oversize_message_is_stored_from_its_headers_with_the_body_refused():
    mailbox = FakeImap({6: raw_mail(6, body="x" * 6000)})

    imap.poll(connector=lambda: mailbox)

    assert "6 (BODY.PEEK[])" not in mailbox.fetched
    inbound = InboundEmail.objects.get()
    assert inbound.subject == "Re: reminder 6" and inbound.text == ""
    refused = inbound.attachments.get()
    assert refused.filename == "(the whole message)" and "larger than" in refused.refused_reason


def test_polling_is_off_without_a_host(settings):
    settings.INBOUND_IMAP_HOST = ""

    def never():
        raise AssertionError("no connection without a host")

    assert imap.poll(connector=never).configured is False
    assert tasks.poll_inbound_imap() == "IMAP polling is off (INBOUND_IMAP_HOST is empty)"


def test_the_command_says_when_polling_is_off(settings, capsys):
    settings.INBOUND_IMAP_HOST = ""

    call_command("poll_inbound_imap")

    assert "INBOUND_IMAP_HOST is empty" in capsys.readouterr().out


def test_the_task_is_declared_and_seeded_every_five_minutes():
    job = next(j for j in schedule.JOBS if j.task == "integrations.tasks.poll_inbound_imap")
    assert job.every_minutes == 5

    row = PeriodicTask.objects.get(task="integrations.tasks.poll_inbound_imap")

    assert row.name == schedule.INBOUND_IMAP and row.interval.every == 5


def test_the_command_and_the_task_read_the_configured_mailbox(monkeypatch, capsys):
    mailbox = FakeImap({1: raw_mail(1), 2: raw_mail(2)})
    monkeypatch.setattr(imap, "connect", lambda: mailbox)

    call_command("poll_inbound_imap")
    mailbox.messages[3] = raw_mail(3)
    said = tasks.poll_inbound_imap()

    assert "Read 2 message(s), 2 new; last UID 2." in capsys.readouterr().out
    assert said == "read 1, stored 1, last UID 3"
