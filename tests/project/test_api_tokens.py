"""API tokens (django-rest-knox through the console): hashed, expiring, several per user,
revocable by their owner and by managers; bad tokens are throttled per address."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from staff.models import ApiToken

pytestmark = pytest.mark.django_db
ADD = "admin:staff_apitoken_add"
LIST = "admin:staff_apitoken_changelist"


def new_token(client, days=30) -> str:
    response = client.post(reverse(ADD), {"days": days})
    assert response.status_code == 200
    match = re.search(r'<code id="new-api-token">([^<]+)</code>', response.content.decode())
    assert match, "the new token is shown once on the page"
    return match.group(1)


def api(token: str, address: str = "127.0.0.1") -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_user_creates_tokens_in_the_console_and_the_api_takes_them(client, finance):
    client.force_login(finance)
    first, second = new_token(client), new_token(client)
    assert first != second
    for token in (first, second):
        assert api(token).get("/api/v1/invoices/").status_code == 200
    assert ApiToken.objects.filter(user=finance).count() == 2


def test_a_token_is_stored_only_as_a_hash(client, finance):
    client.force_login(finance)
    token = new_token(client)
    with connection.cursor() as cursor:
        cursor.execute("SELECT digest, token_key FROM knox_authtoken")
        rows = cursor.fetchall()
    assert rows and all(token not in column for row in rows for column in row)
    # The list shows its first characters and its expiry, never the token.
    page = client.get(reverse(LIST)).content.decode()
    assert token not in page
    assert token[:8] in page


def test_a_token_expires_after_the_days_chosen(client, finance, clock):
    client.force_login(finance)
    token = new_token(client, days=7)
    clock.shift(dt.timedelta(days=6))
    assert api(token).get("/api/v1/invoices/").status_code == 200
    clock.shift(dt.timedelta(days=2))
    assert api(token).get("/api/v1/invoices/").status_code == 401


def test_no_token_lives_longer_than_the_setting(client, finance, settings):
    client.force_login(finance)
    response = client.post(reverse(ADD), {"days": settings.API_TOKEN_TTL_DAYS + 1})
    assert b'id="new-api-token"' not in response.content
    assert b"errorlist" in response.content
    assert not ApiToken.objects.exists()


def test_the_owner_revokes_a_token(client, finance):
    client.force_login(finance)
    token = new_token(client)
    row = ApiToken.objects.get(user=finance)
    response = client.post(
        reverse(LIST), {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert api(token).get("/api/v1/invoices/").status_code == 401


def test_an_agent_sees_and_revokes_only_their_own_tokens(client, agent, finance):
    theirs, _ = ApiToken.objects.create(user=finance, expiry=dt.timedelta(days=1))
    client.force_login(agent)
    new_token(client)
    page = client.get(reverse(LIST))
    assert page.status_code == 200
    assert theirs.token_key not in page.content.decode()
    response = client.post(
        reverse(LIST), {"action": "delete_selected", "_selected_action": [theirs.pk], "post": "yes"}
    )
    assert ApiToken.objects.filter(pk=theirs.pk).exists()
    assert response.status_code in (200, 302)


def test_a_manager_revokes_anyones_token(client, manager, agent):
    agents, token = ApiToken.objects.create(user=agent, expiry=dt.timedelta(days=1))
    client.force_login(manager)
    assert agents.token_key in client.get(reverse(LIST)).content.decode()
    client.post(
        reverse(LIST), {"action": "delete_selected", "_selected_action": [agents.pk], "post": "yes"}
    )
    assert not ApiToken.objects.filter(pk=agents.pk).exists()
    assert api(token).get("/api/v1/customers/").status_code == 401


def test_bad_tokens_from_one_address_are_throttled(agent, settings):
    _, good = ApiToken.objects.create(user=agent, expiry=dt.timedelta(days=1))
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["failed_token"].split("/")[0])
    for attempt in range(limit):
        response = api(f"guess{attempt:059d}").get("/api/v1/customers/")
        assert response.status_code == 401
    blocked = api("guess-once-more").get("/api/v1/customers/")
    assert blocked.status_code == 429
    assert "Retry-After" in blocked
    # Even the right token waits: the guesser learns nothing from this address...
    assert api(good).get("/api/v1/customers/").status_code == 429
    # ...while another address is not held up.
    assert api(good, address="10.1.2.3").get("/api/v1/customers/").status_code == 200


def test_good_tokens_are_not_counted_as_failures(agent, settings):
    _, good = ApiToken.objects.create(user=agent, expiry=dt.timedelta(days=1))
    limit = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["failed_token"].split("/")[0])
    for _ in range(limit + 2):
        assert api(good).get("/api/v1/customers/").status_code == 200


def test_the_old_plain_text_token_app_is_gone(settings):
    assert "rest_framework.authtoken" not in settings.INSTALLED_APPS
    assert "authtoken_token" not in connection.introspection.table_names()
