"""Staff login: lockout, the second factor (who needs it, the login wizard, enrolment,
verification after single sign-on), the API's session rule and the idle timeout."""

import datetime as dt
import time
from base64 import b32decode

import pytest
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from tests.conftest import verify_second_factor

pytestmark = pytest.mark.django_db
PASSWORD = "pw-for-tests-only"  # tests.factories.UserFactory's
LOGIN = "/account/login/"


def code_for(key: bytes, *, step: int = 30, digits: int = 6) -> str:
    totp = TOTP(key, step=step, digits=digits)
    totp.time = time.time()
    return str(totp.token()).zfill(digits)


def device_code(device: TOTPDevice) -> str:
    return code_for(device.bin_key, step=device.step, digits=device.digits)


def password_step(client, username, password, **extra):
    return client.post(
        LOGIN,
        {
            "login_view-current_step": "auth",
            "auth-username": username,
            "auth-password": password,
        },
        **extra,
    )


@pytest.fixture(autouse=True)
def _quick_password_hashing(settings):
    """Real hashing makes each login attempt take a second on this machine."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Lockout (django-axes) ---------------------------------------------------------------


def test_the_admin_login_page_leads_to_the_two_factor_login(client):
    response = client.get("/admin/login/?next=/admin/accounts/customer/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_a_right_password_logs_an_agent_in_without_a_second_factor(client, agent):
    response = password_step(client, "agent", PASSWORD)
    assert response.status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_failures_in_a_row_lock_the_username_from_that_address(client, agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = password_step(client, "agent", "wrong")
        assert response.status_code == 200  # the form again, with its error
    assert password_step(client, "agent", "wrong").status_code == 429  # the last one locks
    response = password_step(client, "agent", PASSWORD)
    assert response.status_code == 429
    assert b"locked" in response.content
    assert b"Access attempts" in response.content  # says who can unlock it
    assert client.get(reverse("admin:index")).status_code == 302  # not logged in
    # The same user from another address is not locked out (username + IP).
    other = client_class_from(client)
    assert password_step(other, "agent", PASSWORD, REMOTE_ADDR="10.0.0.9").status_code == 302


def client_class_from(client):
    return client.__class__()


def test_the_lock_ends_after_the_cool_off(client, agent, settings, clock):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        password_step(client, "agent", "wrong")
    assert password_step(client, "agent", PASSWORD).status_code == 429
    clock.shift(settings.AXES_COOLOFF_TIME + dt.timedelta(minutes=1))
    assert password_step(client, "agent", PASSWORD).status_code == 302


def test_a_manager_unlocks_a_login_from_the_console(client, agent, manager, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        password_step(client, "agent", "wrong")
    assert password_step(client, "agent", PASSWORD).status_code == 429

    console = client_class_from(client)
    console.force_login(manager)
    changelist = reverse("admin:axes_accessattempt_changelist")
    page = console.get(changelist)
    assert page.status_code == 200
    assert b"agent" in page.content
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(username="agent")
    response = console.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert password_step(client, "agent", PASSWORD).status_code == 302


def test_an_agent_cannot_unlock_logins(client, agent):
    client.force_login(agent)
    assert client.get(reverse("admin:axes_accessattempt_changelist")).status_code == 403


# The second factor ----------------------------------------------------------------------


@pytest.mark.real_second_factor
@pytest.mark.parametrize("role", ["manager", "finance", "superuser"])
def test_a_role_that_needs_a_second_factor_is_held_at_enrolment(client, request, role):
    user = request.getfixturevalue(role)
    client.force_login(user)
    for page in (reverse("admin:index"), reverse("admin:accounts_customer_changelist")):
        response = client.get(page)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("two_factor:setup"))
    verify_second_factor(client, user)
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 200


@pytest.mark.real_second_factor
def test_an_agent_needs_no_second_factor_unless_the_setting_says_so(client, agent, settings):
    client.force_login(agent)
    assert client.get(reverse("admin:index")).status_code == 200
    settings.MFA_REQUIRED_FOR_AGENTS = True
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("two_factor:setup"))


@pytest.mark.real_second_factor
def test_a_manager_with_a_device_verifies_it_before_the_console(client, manager, clock):
    device = TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    client.force_login(manager)  # e.g. through single sign-on: the password is done
    response = client.get(reverse("admin:accounts_customer_changelist"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("staff:verify"))
    # Nor may the unverified session enrol another device.
    response = client.get(reverse("two_factor:setup"))
    assert response["Location"].startswith(reverse("staff:verify"))

    wrong = client.post(
        reverse("staff:verify"), {"otp_device": device.persistent_id, "otp_token": "000000"}
    )
    assert wrong.status_code == 200
    assert client.get(reverse("admin:index")).status_code == 302
    clock.shift(dt.timedelta(seconds=2))  # django-otp refuses any code for 1 s after a miss

    right = client.post(
        reverse("staff:verify"),
        {"otp_device": device.persistent_id, "otp_token": device_code(device)},
    )
    assert right.status_code == 302
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 200


@pytest.mark.real_second_factor
def test_a_recovery_code_verifies_once(client, manager):
    TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)
    backup = StaticDevice.objects.create(user=manager, name="backup")
    backup.token_set.create(token="rcv12345")
    client.force_login(manager)
    data = {"otp_device": backup.persistent_id, "otp_token": "rcv12345"}
    assert client.post(reverse("staff:verify"), data).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200

    again = client_class_from(client)
    again.force_login(manager)
    assert again.post(reverse("staff:verify"), data).status_code == 200  # used up
    assert again.get(reverse("admin:index")).status_code == 302


def test_the_login_wizard_asks_an_enrolled_manager_for_the_code(client, manager):
    device = TOTPDevice.objects.create(user=manager, name="default", confirmed=True)
    response = password_step(client, "manager", PASSWORD)
    assert response.status_code == 200  # the token step, not logged in yet
    assert client.get(reverse("admin:index")).status_code == 302
    response = client.post(
        LOGIN, {"login_view-current_step": "token", "token-otp_token": device_code(device)}
    )
    assert response.status_code == 302
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 200


def test_a_new_manager_enrols_an_authenticator_app_at_first_login(client, manager):
    assert password_step(client, "manager", PASSWORD).status_code == 302
    held = client.get(reverse("admin:index"))
    assert held["Location"].startswith(reverse("two_factor:setup"))

    setup = reverse("two_factor:setup")
    client.get(setup)
    methods = client.post(setup, {"setup_view-current_step": "welcome"}).content.decode()
    assert 'value="generator"' in methods and 'value="webauthn"' in methods  # app or passkey
    page = client.post(setup, {"setup_view-current_step": "method", "method-method": "generator"})
    assert page.status_code == 200
    key = b32decode(client.session["django_two_factor-qr_secret_key"])
    done = client.post(
        setup, {"setup_view-current_step": "generator", "generator-token": code_for(key)}
    )
    assert done.status_code == 302
    assert TOTPDevice.objects.filter(user=manager, confirmed=True).exists()
    assert client.get(reverse("admin:accounts_customer_changelist")).status_code == 200
    # Recovery codes are one page away.
    assert client.get(reverse("two_factor:backup_tokens")).status_code == 200


@pytest.mark.real_second_factor
def test_the_api_refuses_a_session_without_its_second_factor(manager):
    api = APIClient()
    api.force_login(manager)
    response = api.get("/api/v1/customers/")
    assert response.status_code == 403
    assert "second factor" in response.json()["detail"]
    verify_second_factor(api, manager)
    assert api.get("/api/v1/customers/").status_code == 200


# Sessions ---------------------------------------------------------------------------------


def test_a_session_ends_after_the_idle_timeout_but_not_while_in_use(client, manager, clock):
    client.force_login(manager)
    page = reverse("admin:accounts_customer_changelist")
    for _ in range(3):  # 3 x 20 minutes of activity: longer than the timeout in total
        clock.shift(dt.timedelta(minutes=20))
        assert client.get(page).status_code == 200
    clock.shift(dt.timedelta(minutes=31))
    response = client.get(page)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_session_cookie_lasts_the_idle_timeout(settings):
    assert settings.SESSION_COOKIE_AGE == settings.SESSION_IDLE_TIMEOUT_MINUTES * 60 == 1800
    assert settings.SESSION_SAVE_EVERY_REQUEST


def test_webhooks_need_no_session_or_second_factor(client, settings):
    settings.PAYMENTS_WEBHOOK_SECRET = ""
    # Unconfigured, the generic webhook answers 503 by itself: no login page in the way.
    response = client.post("/integrations/payments/webhook/", b"{}", content_type="x")
    assert response.status_code == 503
