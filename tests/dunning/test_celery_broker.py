"""The nightly dunning run through a real broker (Redis, RabbitMQ) and real Celery workers.

Two `celery worker --pool=solo` processes consume one private queue on the broker and
reach the test's PostgreSQL database by its name. The test publishes the nightly task the
way celery beat does; the workers plan, fan sending out in chunks and send through the
local outbox (a committed table, so the test can count what went out). Then the same
chunks are delivered twice to both workers at once, and a second nightly run plans
nothing. Every notice must go out exactly once and none may be left behind.

A broker that cannot be reached skips these tests locally and fails them under CI=true.
"""

import ast
import collections
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import Celery
from django.db import connection
from django.utils import timezone
from kombu import Connection

from accounts.crypto import lookup_hash
from dunning import planner
from dunning.models import ContactRule, Notice, OutboxMessage
from dunning.outbox import OutboxEmailBackend
from tests.factories import ContactFactory, CustomerFactory, InvoiceFactory

REDIS_URL = os.environ.get("TEST_CELERY_REDIS_URL", "redis://127.0.0.1:6379/14")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
BASE_DIR = Path(__file__).resolve().parents[2]
CHUNK = 5  # notices per sending task, so a small run still fans out into several tasks
WAIT_SECONDS = 30  # generous upper bound on a loaded machine; a run takes about a second

# `celery -A collections_mgmt worker`, plus a private default queue: the nightly task's
# fan-out (`send_due.delay()`) must land on the queue these workers consume, and no other
# worker on a shared broker may take it.
WORKER = """
import sys
from collections_mgmt.celery import app
queue, name = sys.argv[1:3]
app.conf.task_default_queue = queue
app.conf.worker_enable_remote_control = False
app.conf.broker_heartbeat = 0  # else a RabbitMQ worker takes 10 s to shut down
app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "--queues", queue,
                 "--hostname", name, "--without-gossip", "--without-mingle",
                 "--without-heartbeat"])
"""
TASK_DONE = re.compile(
    r"^\[([\d:, -]+): INFO/MainProcess\] "
    r"Task (dunning\.tasks\.\w+)\[([\w-]+)\] succeeded in [\d.e-]+s: (\{.*\})$",
    re.MULTILINE,
)
TASK_FAILED = re.compile(r"Task dunning\.tasks\.\w+\[[\w-]+\] (raised|retry)")


class SlowOutboxBackend(OutboxEmailBackend):
    """The local outbox, 30 ms slower per message, so the two workers' chunks overlap."""

    def send_messages(self, email_messages):
        time.sleep(0.03)
        return super().send_messages(email_messages)


@pytest.fixture(params=[REDIS_URL, RABBITMQ_URL], ids=["redis", "rabbitmq"])
def broker_url(request):
    """The broker, reachable: else skipped locally, failed under CI (.ci/run starts it)."""
    try:
        with Connection(request.param, connect_timeout=3) as probe:
            probe.ensure_connection(max_retries=1)
    except Exception as exc:
        reason = f"broker {request.param} unreachable: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return request.param


def zone_at_noon() -> str:
    """A fixed-offset zone where it is now 12:xx, well inside the contact hours."""
    offset = 12 - dt.datetime.now(dt.UTC).hour  # -11 .. +12 hours
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT-5 is UTC+5


def database_url() -> str:
    """The test database (test_<name>), which the worker processes must use too."""
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{quote(db['USER'] or 'postgres', safe='')}{password}@{host}/{db['NAME']}"


class Workers:
    """Two worker processes on one private queue, their logs, and a producer."""

    def __init__(self, broker: str, logs: Path, count: int = 2):
        self.broker = broker
        self.queue = f"dunning-broker-test-{uuid.uuid4().hex[:12]}"
        env = {
            **os.environ,
            "CELERY_BROKER_URL": broker,
            "DATABASE_URL": database_url(),
            "CELERY_TASK_ALWAYS_EAGER": "false",
            "DUNNING_SEND_CHUNK": str(CHUNK),
            "DUNNING_NO_CONTACT_WEEKDAYS": "",  # the test may run on a Sunday (no rule: this)
            "EMAIL_BACKEND": f"{__name__}.SlowOutboxBackend",
            "ALLOW_INSECURE_SECRET_KEY": "true",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("EMAIL_HOST", None)
        self.logs = [logs / f"worker{n}.log" for n in range(count)]
        self.processes = []
        for n, log in enumerate(self.logs):
            name = f"w{n}-{self.queue}@%h"
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(  # noqa: S603 (our interpreter, our arguments)
                        [sys.executable, "-c", WORKER, self.queue, name],
                        cwd=BASE_DIR,
                        env=env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        self.producer = Celery("broker-test-producer", broker=broker, set_as_current=False)
        self.producer.conf.task_default_queue = self.queue

    def wait_ready(self) -> None:
        self._wait(lambda: all(" ready." in text for text in self.texts()), "workers ready")

    def publish(self, task: str, task_id: str | None = None) -> None:
        self.producer.send_task(task, queue=self.queue, task_id=task_id)

    def texts(self) -> list[str]:
        return [log.read_text(errors="replace") for log in self.logs]

    def done(self) -> list[tuple[int, str, str, dict]]:
        """(worker, task name, task id, result) for every task the workers finished, in the
        order they finished."""
        finished = sorted(
            (match[1], n, match[2], match[3], ast.literal_eval(match[4]))
            for n, text in enumerate(self.texts())
            for match in TASK_DONE.finditer(text)
        )
        return [(n, task, task_id, result) for _, n, task, task_id, result in finished]

    def wait_done(self, task: str, count: int) -> list[tuple[int, str, str, dict]]:
        self._wait(lambda: sum(d[1] == task for d in self.done()) >= count, f"{count} {task}")
        return [d for d in self.done() if d[1] == task]

    def _wait(self, condition, what: str) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not condition():
            dead = [p.returncode for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"waiting for {what}: exit codes {dead}\n{self.report()}")
            time.sleep(0.05)

    def report(self) -> str:
        return "\n".join(f"--- worker {n} ---\n{text}" for n, text in enumerate(self.texts()))

    def stop(self) -> None:
        """Warm shutdown (nothing is running by now), then delete the private queue."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.producer.close()
        with Connection(self.broker, connect_timeout=3) as conn:
            channel = conn.default_channel
            channel.queue_delete(self.queue)
            if self.broker.startswith("amqp"):
                channel.exchange_delete(self.queue)
            else:  # the exchange's bindings, which kombu keeps in Redis sets
                channel.client.delete(
                    f"_kombu.binding.{self.queue}", f"_kombu.binding_permanent.{self.queue}"
                )


def overdue_customers(count: int, zone: str, due_on: dt.date) -> list[str]:
    """Customers with one or two invoices due today (the Standard "Due today" e-mail only)."""
    emails = []
    for n in range(count):
        customer = CustomerFactory(timezone=zone)
        contact = ContactFactory(customer=customer, is_primary=True)
        for _ in range(1 + n % 2):
            InvoiceFactory(customer=customer, due_on=due_on)
        emails.append(contact.email)
    return emails


def assert_each_sent_once(emails: list[str]) -> None:
    hashes = [lookup_hash("email", email) for email in emails]  # e-mails are encrypted
    notices = Notice.objects.filter(customer__contacts__email_hash__in=hashes)
    assert notices.count() == len(emails)
    assert set(notices.values_list("status", flat=True)) == {Notice.Status.SENT}
    kept = collections.Counter(
        OutboxMessage.objects.filter(recipient__in=emails).values_list("recipient", flat=True)
    )
    assert kept == dict.fromkeys(emails, 1), "an e-mail went out twice or not at all"
    message_ids = set(notices.values_list("provider_message_id", flat=True))
    assert message_ids == set(
        OutboxMessage.objects.filter(recipient__in=emails).values_list("message_id", flat=True)
    )


@pytest.mark.postgresql
@pytest.mark.real_clock  # the workers are other processes, on the real clock
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_nightly_run_through_a_real_broker_sends_each_notice_exactly_once(broker_url, tmp_path):
    workers = Workers(broker_url, tmp_path)  # they boot while the ledger is written
    try:
        # The test may run on a Sunday or a holiday: the workers read the rules committed here.
        ContactRule.objects.update(no_contact_weekdays=[], observe_public_holidays=False)
        today = timezone.localdate()
        zone = zone_at_noon()
        emails = overdue_customers(24, zone, today)
        workers.wait_ready()

        # 1. The nightly task as beat starts it: plan, fan out 24 / 5 = 5 chunks, send.
        workers.publish("dunning.tasks.run_nightly")
        [(_, _, _, nightly)] = workers.wait_done("dunning.tasks.run_nightly", 1)
        assert nightly == {
            "evaluated": 36,
            "planned": 24,
            "awaiting_approval": 0,
            "suppressed": 0,
        }
        chunks = workers.wait_done("dunning.tasks.send_due", 5)
        assert sum(result["sent"] for *_, result in chunks) == 24
        assert {result["deferred"] + result["failed"] for *_, result in chunks} == {0}
        busy = {worker for worker, *_, result in chunks if result["sent"]}
        assert busy == {0, 1}, "both workers should have sent part of the run"
        assert_each_sent_once(emails)

        # 2. The same chunks delivered twice, to both workers at once (a redelivered or
        #    retried message): SKIP LOCKED splits the notices, nothing goes out twice.
        later = overdue_customers(8, zone, today)
        assert planner.plan(on=today).planned == 8
        chunk_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
        for chunk_id in chunk_ids * 2:
            workers.publish("dunning.tasks.send_due", task_id=chunk_id)
        chunks = workers.wait_done("dunning.tasks.send_due", 5 + 4)
        chunks = [chunk for chunk in chunks if chunk[2] in chunk_ids]
        assert len(chunks) == 4
        assert sum(result["sent"] for *_, result in chunks) == 8
        assert_each_sent_once(later)

        # 3. A second nightly run the same night plans nothing and sends nothing.
        workers.publish("dunning.tasks.run_nightly")
        again = workers.wait_done("dunning.tasks.run_nightly", 2)[1][3]
        assert again["planned"] == again["awaiting_approval"] == 0
        workers.wait_done("dunning.tasks.send_due", 5 + 4 + 1)
        assert OutboxMessage.objects.count() == 24 + 8
        assert not TASK_FAILED.search("".join(workers.texts())), workers.report()
    finally:
        workers.stop()
    assert not Notice.objects.exclude(status=Notice.Status.SENT).exists()
