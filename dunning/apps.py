from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DunningConfig(AppConfig):
    name = "dunning"
    verbose_name = _("Dunning")

    def ready(self):
        # Imported here, once the models are loaded (as cases/apps.py does).
        from cases.signals import plan_approved, plan_proposed

        from .receivers import on_plan_approved, on_plan_proposed

        plan_proposed.connect(on_plan_proposed, dispatch_uid="dunning.receivers.plan_proposed")
        plan_approved.connect(on_plan_approved, dispatch_uid="dunning.receivers.plan_approved")
