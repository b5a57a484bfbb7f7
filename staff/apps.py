"""The staff app: wiring for django-otp, two-factor-auth, axes, knox and OIDC."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StaffConfig(AppConfig):
    name = "staff"
    verbose_name = _("Staff login")

    def ready(self):
        from staff import schema  # noqa: F401  (registers the schema extensions)
