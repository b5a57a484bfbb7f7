"""Trained predictors: versioned, with their track record, stored so that loading one
cannot run code (skops, with an explicit list of trusted types; never pickle)."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class PredictorModel(models.Model):
    """One trained late-payment predictor: what it learnt from and how good it was.

    `figures` holds the evaluation made at training time on the most recent known
    outcomes (a time split): ROC AUC, Brier score, calibration bins and pay-date error of
    each candidate and of the baselines, the features that weigh most, and the medians
    used to explain a prediction. `blob` is a skops file of {"classifier", "regressor"}.
    At most one model is active: the nightly scoring uses it.
    """

    class Kind(models.TextChoices):
        LOGISTIC = "logistic", _("Logistic regression")
        BOOSTING = "boosting", _("Gradient boosting")
        LINEAR = "linear", _("Linear regression")

    version = models.PositiveIntegerField(_("version"), unique=True)
    created_at = models.DateTimeField(_("trained at"), auto_now_add=True)
    trained_as_of = models.DateField(_("outcomes known as of"))
    window_start = models.DateField(_("training window from"))
    window_end = models.DateField(_("training window until"))
    rows = models.PositiveIntegerField(_("training rows"))
    late_rows = models.PositiveIntegerField(_("of which late"))
    invoices = models.PositiveIntegerField(_("invoices"))
    classifier_kind = models.CharField(_("classifier"), max_length=12, choices=Kind)
    regressor_kind = models.CharField(_("pay-date model"), max_length=12, choices=Kind)
    features = models.JSONField(_("features"), default=list)
    figures = models.JSONField(_("evaluation"), default=dict)
    blob = models.BinaryField(_("model file (skops)"))
    blob_sha256 = models.CharField(max_length=64)
    is_active = models.BooleanField(_("active"), default=False)
    activated_at = models.DateTimeField(_("activated at"), null=True, blank=True)
    activated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("activated by"),
    )
    activation_note = models.CharField(_("why (de)activated"), max_length=300, blank=True)

    class Meta:
        verbose_name = _("late-payment model")
        verbose_name_plural = _("late-payment models")
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"], condition=Q(is_active=True), name="predictor_one_active"
            )
        ]
        permissions = [("activate_predictormodel", "Can activate a late-payment model")]

    def __str__(self):
        return f"v{self.version} ({self.get_classifier_kind_display()}, {self.trained_as_of})"

    @staticmethod
    def digest(blob: bytes) -> str:
        return hashlib.sha256(bytes(blob)).hexdigest()
