"""The model card: every trained late-payment model, its training window, its track record
against the baselines, its calibration and the features that weigh most; managers choose
which one is active (predictions.activate_predictormodel)."""

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from . import registry
from .card import model_card
from .models import PredictorModel

ACTIVATE = "predictions.activate_predictormodel"


@admin.register(PredictorModel)
class PredictorModelAdmin(admin.ModelAdmin):
    list_display = (
        "version",
        "is_active",
        "classifier_kind",
        "trained_as_of",
        "rows",
        "held_out_roc_auc",
        "risk_score_roc_auc",
        "held_out_brier",
        "pay_days_off",
    )
    list_display_links = ("version",)
    list_filter = ("is_active", "classifier_kind")
    change_form_template = "admin/predictions/predictormodel/change_form.html"
    exclude = ("blob",)

    def has_add_permission(self, request):
        return False  # models come from train_predictor, never typed in

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the track record stays

    def get_queryset(self, request):
        return super().get_queryset(request).defer("blob")

    def _chosen(self, obj) -> dict:
        return obj.figures.get("candidates", {}).get(obj.classifier_kind, {})

    @admin.display(description=gettext_lazy("ROC AUC (held out)"))
    def held_out_roc_auc(self, obj):
        return self._chosen(obj).get("roc_auc")

    @admin.display(description=gettext_lazy("Risk score's ROC AUC"))
    def risk_score_roc_auc(self, obj):
        return obj.figures.get("baselines", {}).get("risk_score", {}).get("roc_auc")

    @admin.display(description=gettext_lazy("Brier score"))
    def held_out_brier(self, obj):
        return self._chosen(obj).get("brier")

    @admin.display(description=gettext_lazy("Pay date: days off"))
    def pay_days_off(self, obj):
        return obj.figures.get("pay_date", {}).get(obj.regressor_kind, {}).get("mean_days_off")

    def get_urls(self):
        return [
            path(
                "<int:pk>/activate/",
                self.admin_site.admin_view(self.activate_view),
                name="predictions_predictormodel_activate",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # get_object answers None for an id that is not one (the admin then says so).
        record = self.get_object(request, unquote(object_id))
        if record is not None:
            extra_context = {
                **(extra_context or {}),
                "card": model_card(record),
                "can_activate": request.user.has_perm(ACTIVATE) and not record.is_active,
                "activate_url": reverse(
                    "admin:predictions_predictormodel_activate", args=[record.pk]
                ),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def activate_view(self, request, pk):
        return _activate(request, pk)


@require_POST
def _activate(request, pk):
    if not request.user.has_perm(ACTIVATE):
        raise PermissionDenied
    record = get_object_or_404(PredictorModel.objects.defer("blob"), pk=pk)
    who = request.user.get_full_name() or request.user.get_username()
    registry.activate(record, by=request.user, note=_("activated by %(who)s") % {"who": who})
    messages.success(
        request,
        _("Model v%(version)s is active: tonight's scoring uses it.") % {"version": record.version},
    )
    return redirect("admin:predictions_predictormodel_change", record.pk)
