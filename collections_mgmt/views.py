"""Operational endpoints that belong to no app: the health check."""

import logging

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from kombu import Connection

logger = logging.getLogger(__name__)


def database_status() -> dict:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        logger.warning("healthz: database unreachable: %s", exc)
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "up", "vendor": connections["default"].vendor}


def broker_status() -> dict:
    url = settings.CELERY_BROKER_URL
    transport_options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
    try:
        with Connection(url, connect_timeout=2, transport_options=transport_options) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            transport = conn.transport_cls
    except Exception as exc:
        logger.warning("healthz: broker unreachable: %s", exc)
        return {"status": "down", "error": exc.__class__.__name__}
    return {"status": "up", "transport": str(transport)}


@never_cache
@require_safe
def healthz(request):
    checks = {"database": database_status(), "broker": broker_status()}
    healthy = all(check["status"] == "up" for check in checks.values())
    body = {"status": "ok" if healthy else "unavailable", **checks}
    return JsonResponse(body, status=200 if healthy else 503)
