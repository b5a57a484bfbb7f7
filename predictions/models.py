"""What the predictions app keeps: trained predictors (versioned, with their track record,
stored so that loading one cannot run code: skops with an explicit list of trusted types,
never pickle) and the weekly snapshots of the cash forecast."""

import hashlib

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY
from accounts.money import validate_currency


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


class ForecastSnapshot(models.Model):
    """One week of one currency in the cash forecast made on `made_on` (predictions.forecast).

    Kept so the dashboard can show how good past forecasts were (WAPE against the cash
    that came in), beside the naive forecast made the same day. One row per (made_on,
    week_start, currency): re-running the snapshot on the same day replaces the rows.
    """

    made_on = models.DateField(_("made on"))
    week_start = models.DateField(_("week starting"), help_text=_("A Monday."))
    week = models.PositiveSmallIntegerField(
        _("week"), help_text=_("1 is the week containing the day the forecast was made.")
    )
    currency = models.CharField(_("currency"), max_length=3, validators=[validate_currency])
    expected_amount = models.DecimalField(_("expected"), **MONEY)
    naive_amount = models.DecimalField(
        _("naive"), **MONEY, help_text=_("Every open invoice paid on its due date.")
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("cash forecast snapshot")
        ordering = ["-made_on", "currency", "week_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["made_on", "week_start", "currency"], name="forecast_snapshot_once"
            ),
            models.CheckConstraint(
                condition=Q(expected_amount__gte=0) & Q(naive_amount__gte=0),
                name="forecast_snapshot_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(week__gte=1) & Q(week__lte=53), name="forecast_snapshot_week_in_range"
            ),
        ]
        indexes = [models.Index(fields=["week_start", "currency"], name="forecast_snapshot_week")]

    def __str__(self):
        return f"{self.made_on}: {self.currency} week of {self.week_start}"
