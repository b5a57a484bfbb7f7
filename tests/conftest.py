"""Shared fixtures.

Run the suite in one process (as `make test` does): Django flushes the database after a
transactional test, and pytest-django runs those last so that the data migrations' rows
(the roles) are there for every other test. Every transactional test says
`serialized_rollback=True` (enforced below), so it gets those rows too.
"""

import pytest
from django.db import connection

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
