"""Shared fixtures.

Run the suite in one process (as `make test` does): Django flushes the database after a
transactional test, and pytest-django runs those last so that the data migrations' rows
(the roles) are there for every other test. Every transactional test says
`serialized_rollback=True` (enforced below), so it gets those rows too.
"""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.client import ClientMixin
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.clock import NOW
from tests.factories import UserFactory


def pytest_collection_modifyitems(config, items):
    """Check the transactional-test rule, and skip `postgresql` tests on SQLite (loudly).

    A transactional test must say serialized_rollback=True: only then does Django skip
    post_migrate after its flush. Otherwise the flush recreates content types under new
    ids, and the next serialized test's restore collides with them (order-dependent).
    """
    for item in items:
        marker = item.get_closest_marker("django_db")
        if (
            marker
            and marker.kwargs.get("transaction")
            and not marker.kwargs.get("serialized_rollback")
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: transactional tests need serialized_rollback=True"
            )
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (make test fell back to SQLite)")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "real_clock: runs on the real clock (it talks to processes the test cannot freeze)",
    )
    config.addinivalue_line(
        "markers",
        "real_second_factor: client.force_login leaves the second factor unverified",
    )


@pytest.fixture(autouse=True)
def clock(request, time_machine):
    """Every test starts at tests.clock.NOW (ticking), unless it asks for another moment
    with @pytest.mark.time_machine(...) or for the real clock with @pytest.mark.real_clock.
    Returns time-machine's fixture: `clock.move_to(moment)`, `clock.shift(timedelta)`."""
    marked = request.node.get_closest_marker
    if not marked("real_clock") and not marked("time_machine"):
        time_machine.move_to(NOW)
    return time_machine


@pytest.fixture
def agent(db):
    return UserFactory(username="agent", role="Collections agent")


@pytest.fixture
def manager(db):
    return UserFactory(username="manager", role="Collections manager")


@pytest.fixture
def finance(db):
    return UserFactory(username="finance", role="Finance")


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_superuser=True)


@pytest.fixture(autouse=True)
def _plain_http_test_client(settings):
    """Production settings redirect to HTTPS; the test client speaks plain HTTP."""
    settings.SECURE_SSL_REDIRECT = False


def verify_second_factor(client, user) -> TOTPDevice:
    """Mark the client's session as having passed the second factor, as the login wizard
    does after a right code: the user gets a confirmed TOTP device (made once) and the
    session names it (django_otp's DEVICE_ID_SESSION_KEY). Returns the device."""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="tests", defaults={"confirmed": True}
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return device


@pytest.fixture(autouse=True)
def _force_login_verifies_the_second_factor(request):
    """`client.force_login(user)` logs in as after the whole login wizard, second factor
    included, so tests of the console need not care that managers must use one. A test of
    the second factor itself says @pytest.mark.real_second_factor and calls
    `verify_second_factor(client, user)` when it wants it. Patched through its own
    MonkeyPatch, so a test's `monkeypatch.undo()` leaves it in place."""
    if request.node.get_closest_marker("real_second_factor"):
        yield
        return
    plain_force_login = ClientMixin.force_login

    def force_login(self, user, backend=None):
        plain_force_login(self, user, backend)
        verify_second_factor(self, user)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ClientMixin, "force_login", force_login)
        yield


@pytest.fixture(autouse=True)
def _empty_cache():
    """API throttles and lockout counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()
