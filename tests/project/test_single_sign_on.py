"""Single sign-on through OpenID Connect, with the provider's two endpoints mocked: a
verified e-mail address logs in as the staff account that has it; nobody else gets in,
nobody is created, superusers never, and the second factor is still asked."""

import time
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from mozilla_django_oidc import auth as oidc_auth

from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.real_second_factor]
SECRET = "client-secret-for-tests-" + "x" * 24
AUTHORIZE = "https://idp.example.com/authorize"


@pytest.fixture
def provider(settings, monkeypatch):
    """Single sign-on switched on, against a provider whose token and user-info endpoints
    answer from `provider["claims"]` (the user-info claims the test sets)."""
    settings.OIDC_RP_CLIENT_ID = "collections"
    settings.OIDC_RP_CLIENT_SECRET = SECRET
    settings.OIDC_RP_SIGN_ALGO = "HS256"
    settings.OIDC_OP_AUTHORIZATION_ENDPOINT = AUTHORIZE
    settings.OIDC_OP_TOKEN_ENDPOINT = "https://idp.example.com/token"
    settings.OIDC_OP_USER_ENDPOINT = "https://idp.example.com/userinfo"
    settings.AUTHENTICATION_BACKENDS = [
        *settings.AUTHENTICATION_BACKENDS,
        "staff.oidc.StaffOIDCBackend",
    ]
    state = {"claims": {}, "nonce": None, "token_requests": 0}

    class Answer:
        def __init__(self, body):
            self.status_code, self.body, self.headers = 200, body, {}

        def json(self):
            return self.body

        def raise_for_status(self):
            pass

    def token_endpoint(url, data, **kwargs):
        state["token_requests"] += 1
        assert data["code"] == "the-code"
        now = int(time.time())
        id_token = jwt.encode(
            {
                "sub": "idp-1",
                "aud": "collections",
                "iat": now,
                "exp": now + 300,
                "nonce": state["nonce"],
            },
            SECRET,
            algorithm="HS256",
        )
        return Answer({"id_token": id_token, "access_token": "access-1"})

    def userinfo_endpoint(url, headers, **kwargs):
        assert headers["Authorization"] == "Bearer access-1"
        return Answer(state["claims"])

    monkeypatch.setattr(oidc_auth.requests, "post", token_endpoint)
    monkeypatch.setattr(oidc_auth.requests, "get", userinfo_endpoint)
    return state


def sign_on(client, provider, **claims):
    start = client.get(reverse("oidc_authentication_init"))
    assert start.status_code == 302
    assert start["Location"].startswith(AUTHORIZE)
    query = parse_qs(urlparse(start["Location"]).query)
    provider["nonce"] = query["nonce"][0]
    provider["claims"] = {"sub": "idp-1", **claims}
    return client.get(
        reverse("oidc_authentication_callback"), {"code": "the-code", "state": query["state"][0]}
    )


def session_user(client):
    return client.session.get("_auth_user_id")


def test_a_verified_address_logs_in_as_its_staff_account(client, provider, agent):
    response = sign_on(client, provider, email="AGENT@example.com", email_verified=True)
    assert response.status_code == 302
    assert session_user(client) == str(agent.pk)
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_manager_signed_on_still_gives_the_second_factor(client, provider, manager):
    sign_on(client, provider, email="manager@example.com", email_verified=True)
    assert session_user(client) == str(manager.pk)
    held = client.get(reverse("admin:index"))
    assert held.status_code == 302
    assert held["Location"].startswith(reverse("two_factor:setup"))


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "nobody@example.com", "email_verified": True},  # no such staff account
        {"email": "agent@example.com", "email_verified": False},  # the provider won't vouch
        {"email": "agent@example.com"},  # nor here
        {"email_verified": True},  # no address at all
    ],
    ids=["unknown", "unverified", "unsaid", "no-email"],
)
def test_nobody_else_gets_in_and_nobody_is_created(client, provider, agent, claims):
    users = get_user_model().objects.count()
    sign_on(client, provider, **claims)
    assert session_user(client) is None
    assert get_user_model().objects.count() == users


def test_superusers_never_sign_on(client, provider, superuser):
    sign_on(client, provider, email=superuser.email, email_verified=True)
    assert session_user(client) is None


def test_inactive_or_non_staff_accounts_never_sign_on(client, provider):
    UserFactory(username="gone", is_active=False)
    UserFactory(username="outsider", is_staff=False)
    for name in ("gone", "outsider"):
        sign_on(client, provider, email=f"{name}@example.com", email_verified=True)
        assert session_user(client) is None


def test_single_sign_on_is_off_unless_configured(client, settings):
    settings.OIDC_RP_CLIENT_ID = ""
    assert client.get(reverse("oidc_authentication_init")).status_code == 404
    assert client.get(reverse("oidc_authentication_callback")).status_code == 404
    assert b"Single sign-on" not in client.get(reverse("two_factor:login")).content


def test_the_login_page_offers_it_when_configured(client, provider):
    page = client.get(reverse("two_factor:login")).content.decode()
    assert reverse("oidc_authentication_init") in page
