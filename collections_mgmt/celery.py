"""The Celery application shared by every worker and the single beat scheduler."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "collections_mgmt.settings")

app = Celery("collections_mgmt")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
