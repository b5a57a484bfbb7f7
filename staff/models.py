"""The console's people: API tokens as the console shows them (django-rest-knox's hashed
tokens, one proxy) and each user's saved list filters."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.models import AuthToken


class ApiToken(AuthToken):
    """A knox token: only its SHA-512 digest and first characters are stored; it expires
    after API_TOKEN_TTL_DAYS (or sooner if its owner chose) and is revoked by deleting it."""

    class Meta:
        proxy = True
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        permissions = [("revoke_any_apitoken", _("Can see and revoke anyone's API tokens"))]

    def __str__(self) -> str:
        return f"{self.token_key}… ({self.user})"

    def is_expired(self) -> bool:
        return self.expiry is not None and self.expiry <= timezone.now()


class SavedFilter(models.Model):
    """A console list's query string (filters, search, order) saved under a name by one
    user, for that user alone: nobody else sees, uses or deletes it."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="saved_filters",
        db_index=False,  # saved_filter_name_per_list leads with it
    )
    list = models.CharField(_("list"), max_length=100, help_text=_("app_label.model_name"))
    name = models.CharField(_("name"), max_length=80)
    query = models.CharField(_("query"), max_length=2000, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("saved filter")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "list", "name"], name="saved_filter_name_per_list"
            )
        ]
        # Exporting any console list (accounts/list_exports.py) is a console right like
        # saving a filter, so it is declared here, at the bottom layer.
        permissions = [("export_lists", _("Can export console lists to CSV and XLSX"))]

    def __str__(self) -> str:
        return self.name
