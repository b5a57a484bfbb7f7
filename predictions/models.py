"""What the predictions app keeps: the weekly snapshots of the cash forecast."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import MONEY
from accounts.money import validate_currency


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
