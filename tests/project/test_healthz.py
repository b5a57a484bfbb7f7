import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.db.backends.base.base import BaseDatabaseWrapper

pytestmark = pytest.mark.django_db
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")


def test_healthz_up_with_the_embedded_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["status"] == "up"
    assert body["broker"]["status"] == "up"


@pytest.mark.parametrize("broker_url", [REDIS_URL, RABBITMQ_URL], ids=["redis", "rabbitmq"])
def test_healthz_up_with_a_real_broker(client, settings, broker_url):
    settings.CELERY_BROKER_URL = broker_url
    response = client.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["broker"]["status"] == "up"


def test_healthz_503_when_the_broker_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["broker"]["status"] == "down"
    assert body["database"]["status"] == "up"


def test_healthz_503_when_the_database_is_down(client, monkeypatch):
    def refuse(self, *args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(BaseDatabaseWrapper, "cursor", refuse)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == {"status": "down", "error": "OperationalError"}


def test_production_settings_pass_check_deploy():
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "false",
        "SECRET_KEY": "a-long-random-production-key-" + "x7Q9z" * 10,
        "ALLOWED_HOSTS": "collections.example.com",
        "DATABASE_URL": "sqlite:////tmp/check-deploy.sqlite3",
        "FIELD_ENCRYPTION_KEYS": "q2Vn0mYJ3wV4wq9Q8g0m2O3Kp1sYbV7c5xT6uZ4aR8E=",
        "FIELD_HASH_KEY": "a-long-random-hash-key-" + "k3P8w" * 8,
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
    # Without the field keys, personal data would be encrypted under SECRET_KEY: refused.
    del env["FIELD_ENCRYPTION_KEYS"], env["FIELD_HASH_KEY"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "accounts.E001" in result.stderr and "accounts.E003" in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = {"PATH": os.environ["PATH"], "DEBUG": "false"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
