"""WSGI entry point (gunicorn collections_mgmt.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_mgmt.settings")
application = get_wsgi_application()
