"""Operational endpoints that belong to no app: the health check, the site icon."""

import logging

from django.conf import settings
from django.db import connections
from django.http import HttpResponse, JsonResponse
from django.views.decorators.cache import cache_control, never_cache
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


# The console's icon: browsers ask every site for /favicon.ico, and a 404 there is an error
# in every page's browser log (the browser tests check those). A small SVG, served as is.
FAVICON = (
    b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    b'<rect width="32" height="32" rx="6" fill="#417690"/>'
    b'<text x="16" y="23" font-family="sans-serif" font-size="18" font-weight="bold" '
    b'text-anchor="middle" fill="#fff">C</text></svg>'
)


@require_safe
@cache_control(max_age=86400, public=True)
def favicon(request):
    return HttpResponse(FAVICON, content_type="image/svg+xml")
