"""Exactly once through a crash: a real sender process, killed with SIGKILL at random
moments, against a local SMTP server (aiosmtpd) that records every message it accepts.

Each round starts a sender (`run_dunning`, forked from a process that has Django loaded, see
forking_sender.py) on the test database, waits until the server has accepted a random
number of new messages (or for a random moment in its start), waits a random few
milliseconds more, and kills it with SIGKILL. The last run is `manage.py run_dunning`,
left to finish. After it, no message may have been delivered twice, and every notice is
sent (delivered once, under its own Message-ID) or uncertain (delivered at most once,
waiting for a manager): none lost, none left sending.

The randomness is seeded and every wait bounded. CRASH_KILL_ROUNDS sets the rounds (25 by
default; bench/crash_kill.py runs hundreds and prints the figures).
"""

import datetime as dt
import email
import logging
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

from dunning import planner
from dunning.models import Notice
from tests.clock import ON
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("CRASH_KILL_ROUNDS", "25"))
SEED = int(os.environ.get("CRASH_KILL_SEED", "15"))
SEND_AT = "2026-11-23T16:00:00+00:00"  # 10:00 in Chicago: inside contact hours
WAIT_SECONDS = 30  # the longest wait for a process or for a delivery
# What each killed round runs: run_dunning (plan, then send: the command that sent twice
# before), or send_due (sending alone: bench/crash_kill.py's hundreds of rounds).
COMMAND = os.environ.get("CRASH_KILL_COMMAND", "run_dunning")


class Recorder:
    """An aiosmtpd handler keeping (Message-ID, recipients) of every message accepted."""

    def __init__(self):
        self.lock = threading.Lock()
        self.messages: list[tuple[str, tuple[str, ...]]] = []

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        with self.lock:
            self.messages.append((message["Message-ID"], tuple(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp():
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield recorder, controller.port
    controller.stop()


def sender_env(port: int) -> dict:
    """The test's environment, pointed at the test database and the local SMTP server."""
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:"
            f"{db['PORT'] or 5432}/{db['NAME']}"
        ),
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_HOST_USER": "",
        # One sender at a time here: what it left sending was cut off by the kill.
        "DUNNING_SENDING_TIMEOUT_SECONDS": "0",
        "DUNNING_CLAIM_LEASE_SECONDS": "0",
        "DUNNING_CLAIM_BATCH": "3",
        "PYTHONUNBUFFERED": "1",
    }


def start_sender(env: dict) -> subprocess.Popen:
    """`manage.py COMMAND` as a fresh process (the last run, left to finish)."""
    dated = ["--date", ON.isoformat()] if COMMAND == "run_dunning" else []
    return subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
        [sys.executable, "manage.py", COMMAND, *dated, "--at", SEND_AT],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


class ForkingSender:
    """forking_sender.py as a subprocess: `start()` forks one sender run, `kill()` ends it."""

    def __init__(self, env: dict):
        self.process = subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
            [
                sys.executable,
                "-m",
                "tests.dunning.forking_sender",
                ON.isoformat(),
                SEND_AT,
                COMMAND,
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.pid = 0
        self.exited = False

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.split())

    def _next(self) -> list[str]:
        return self.lines.get(timeout=WAIT_SECONDS)

    def start(self) -> None:
        self.process.stdin.write("run\n")
        self.process.stdin.flush()
        word, pid = self._next()
        assert word == "pid"
        self.pid, self.exited = int(pid), False

    def has_exited(self) -> bool:
        if not self.exited:
            try:
                word, _pid, _status = self.lines.get_nowait()
                self.exited = word == "exit"
            except queue.Empty:
                pass
        return self.exited

    def kill(self) -> bool:
        """SIGKILL the run if it is still going (True), then wait until it is gone."""
        killed = not self.has_exited()
        if killed:
            os.kill(self.pid, signal.SIGKILL)
            word, _pid, _status = self._next()
            assert word == "exit"
        self.exited = True
        return killed

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=WAIT_SECONDS)


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.002)
    return False


def plan_emails(count: int) -> list[int]:
    """`count` customers, each with one overdue invoice and one e-mail notice planned."""
    for n in range(count):
        customer = CustomerFactory(name=f"Crash {n}")
        ContactFactory(customer=customer, email=f"crash{n}@example.test", is_primary=True)
        InvoiceFactory(customer=customer, number=f"CR-{n}", due_on=ON - dt.timedelta(days=7))
    planner.plan(on=ON)
    Notice.objects.exclude(channel="email").delete()  # e-mail is what the server sees
    return list(Notice.objects.values_list("pk", flat=True))


def crash_rounds(recorder: Recorder, env: dict, rounds: int, seed: int) -> dict:
    """Start and kill the sender `rounds` times; the figures of the run."""
    rng = random.Random(seed)
    kills = 0
    sender = ForkingSender(env)
    try:
        for _round in range(rounds):
            before = recorder.count()
            sender.start()
            if rng.random() < 0.2:  # somewhere in planning, the sweep or the first claim
                time.sleep(rng.uniform(0.0, 0.3))
            else:  # in the middle of sending: after a few more messages were accepted
                target = before + rng.randint(1, 4)
                wait_for(lambda t=target: recorder.count() >= t or sender.has_exited(), 20)
                time.sleep(rng.uniform(0.0, 0.02))
            kills += sender.kill()
    finally:
        sender.close()
    return {"rounds": rounds, "kills": kills}


@pytest.mark.real_clock
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_killing_the_sender_at_random_moments_never_sends_twice_nor_loses_a_notice(smtp):
    recorder, port = smtp
    notice_ids = plan_emails(max(40, ROUNDS * 3))
    env = sender_env(port)

    figures = crash_rounds(recorder, env, ROUNDS, SEED)
    delivered_mid_run = Counter(to for _id, (to,) in recorder.messages)
    address = dict(
        Notice.objects.filter(pk__in=notice_ids).values_list("pk", "customer__contacts__email")
    )
    # After the kills: a notice still to send has had nothing delivered (none lost, none
    # about to go twice); one cut off while sending went out at most once.
    for pk, status in Notice.objects.filter(pk__in=notice_ids).values_list("pk", "status"):
        if status in ("planned", "approved", "deferred"):
            assert delivered_mid_run[address[pk]] == 0, (pk, status)
        else:
            assert delivered_mid_run[address[pk]] <= 1, (pk, status)
    # A last run, left to finish: whatever is still sendable goes out now.
    final = start_sender(env)
    assert final.wait(timeout=max(120, len(notice_ids))) == 0

    per_recipient = Counter(to for _id, (to,) in recorder.messages)
    per_message_id = Counter(message_id for message_id, _to in recorder.messages)
    notices = {n.pk: n for n in Notice.objects.filter(pk__in=notice_ids).select_related("contact")}
    statuses = Counter(n.status for n in notices.values())
    twice = sorted(to for to, n in per_recipient.items() if n > 1)
    figures.update(
        notices=len(notices),
        delivered=len(recorder.messages),
        delivered_before_the_last_run=sum(delivered_mid_run.values()),
        uncertain=statuses["uncertain"],
        sent=statuses["sent"],
        delivered_twice=len(twice),
    )
    print(f"\ncrash-kill figures: {figures}")

    assert twice == [], f"delivered twice to {twice[:5]}"
    assert max(per_message_id.values()) == 1
    # Every notice is sent or uncertain: none lost, none still sending or sendable.
    assert set(statuses) <= {"sent", "uncertain"}, statuses
    for notice in notices.values():
        if notice.status == "sent":
            # Delivered once, under the Message-ID the notice records.
            assert per_recipient[address[notice.pk]] == 1, notice.recipient
            assert per_message_id[notice.provider_message_id] == 1, notice.pk
        else:  # uncertain: delivered at most once, and waiting for a manager
            assert per_recipient[address[notice.pk]] <= 1
    # Everything delivered belongs to one of these notices.
    assert set(per_recipient) <= set(address.values())
    assert figures["kills"] >= ROUNDS // 2  # the rounds did kill mid-run
