"""Shared fixtures.

Run the suite in one process (as `make test` does): Django flushes the database after a
transactional test, and pytest-django runs those last so that the data migrations' rows
(the roles) are there for every other test. A transactional test that needs them itself
says `serialized_rollback=True`.
"""

import pytest
from django.db import connection

from tests.factories import UserFactory


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgresql` are skipped (loudly) when the suite runs on SQLite."""
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (make test fell back to SQLite)")
    for item in items:
        if "postgresql" in item.keywords:
            item.add_marker(skip)


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
