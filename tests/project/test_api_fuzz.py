"""Schemathesis against /api/schema/: every operation, as each role, with generated input.

Requests go to the WSGI application in this process (no server), signed in by a session
of an agent, a manager and a finance user over a small ledger, so that lists return rows
and ids in paths often name real ones. Every response must be no server error and match
the schema (status codes the schema documents, body, content type, headers).

Bounded for `make test`: API_FUZZ_EXAMPLES examples per operation and role (default 20),
derandomized so a run is reproducible; raise it locally to dig deeper
(API_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/project/test_api_fuzz.py), and add the
coverage phase's boundary cases with API_FUZZ_PHASES (below).

pytest-django: the `db` fixture the schema fixture takes gives the whole run one test
transaction (as django-modern-rest does with schemathesis); Hypothesis's examples share
it, which is what a real client sees too, and nothing is written to Hypothesis's example
database.
"""

import datetime as dt
import json
import os

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.middleware.csrf import _get_new_csrf_string
from django.test import Client
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
)

from accounts import timeline
from accounts.models import Activity
from collections_mgmt.wsgi import application
from dunning import planner
from integrations.intake import batches
from tests.clock import ON
from tests.factories import (
    ContactFactory,
    CustomerFactory,
    InvoiceFactory,
    PaymentFactory,
    UserFactory,
)

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
# The coverage phase sends every boundary case the schema defines (about 1,500 requests
# per write operation, 10 minutes for the whole API): run it locally with
# API_FUZZ_PHASES=examples,coverage,fuzzing. `make test` runs the examples and fuzzing.
PHASES = os.environ.get("API_FUZZ_PHASES", "examples,fuzzing").split(",")
ROLES = {"agent": "Collections agent", "manager": "Collections manager", "finance": "Finance"}
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]


@pytest.fixture
def ledger(db):
    """A little of everything the API lists, system-made rows included (no actor, no user)."""
    users = {
        role: UserFactory(username=f"fuzz-{role}", role=group) for role, group in ROLES.items()
    }
    other = UserFactory(username="fuzz-other", role="Collections agent")
    for agent in (users["agent"], other, None):
        customer = CustomerFactory(assigned_agent=agent, credit_limit="1000.00")
        ContactFactory(customer=customer, is_primary=True)
        invoice = InvoiceFactory(customer=customer, due_on=ON - dt.timedelta(days=9))
        PaymentFactory(customer=customer)
        timeline.add(Activity.Kind.NOTE, customer=customer, invoice=invoice, by=None, text="system")
    planner.plan(on=ON)
    batch = batches.open_batch(source="api", kind="invoices")
    tally = batches.Tally()
    batches.reject(tally, batch, row_number=1, raw={"number": "X"}, errors={"amount": ["bad"]})
    batches.close_batch(batch, tally)
    return users


def api_schema() -> schemathesis.BaseSchema:
    """The schema /api/schema/ serves, generated here (it needs no database), its cases
    sent to the WSGI application in this process."""
    document = SchemaGenerator().get_schema(request=None, public=True)
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))
    loaded.app = application
    loaded.config.phases.update(phases=PHASES)
    return loaded


# Not schemathesis.pytest.from_fixture: its lazy loading fails under pytest 9.
schema = api_schema()


def signed_in(user) -> tuple[dict, dict]:
    """(cookies, headers) of a browser session: the session cookie and the CSRF pair."""
    client = Client()
    client.force_login(user)
    csrf = _get_new_csrf_string()
    cookies = {"sessionid": client.cookies["sessionid"].value, "csrftoken": csrf}
    return cookies, {"X-CSRFToken": csrf}


@pytest.fixture
def app(settings):
    """The WSGI application as the test's settings make it (the module-level one kept the
    HTTPS redirect its middleware read at import)."""
    settings.ALLOWED_HOSTS = ["localhost"]  # the host schemathesis's WSGI client sends
    # As Django's test client does: a request must not close the test's connection (and
    # with it the transaction the test runs in).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def sessions(ledger):
    return {role: signed_in(user) for role, user in ledger.items()}


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_as_its_schema_says(case, app, sessions):
    for cookies, headers in sessions.values():  # the same request from each role
        response = case.call_and_validate(app=app, cookies=cookies, headers=headers, checks=CHECKS)
        assert response.status_code not in (301, 302, 401), "every request reaches the API"
