"""The project itself as an app: the one schedule (migration and command) and its tasks."""

from django.apps import AppConfig


class CollectionsMgmtConfig(AppConfig):
    name = "collections_mgmt"
    verbose_name = "Collections Management"
