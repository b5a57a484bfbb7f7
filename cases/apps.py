"""The case-work app: what people do on accounts (see cases/models.py)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "cases"
    verbose_name = _("Case work")

    def ready(self):
        # Imported here, once the models are loaded (Django's documented place for it).
        from accounts.signals import allocations_applied, call_logged

        from .receivers import on_allocations_applied, on_call_logged

        allocations_applied.connect(on_allocations_applied, dispatch_uid="cases.receivers")
        call_logged.connect(on_call_logged, dispatch_uid="cases.receivers.call_logged")
