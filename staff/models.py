"""API tokens as the console shows them: django-rest-knox's hashed tokens, one proxy."""

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
