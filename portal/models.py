"""One-time sign-in codes: the second way into the portal, beside the link."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import Contact


class AccessCode(models.Model):
    """A six-digit code e-mailed to a contact who asked for access (with a new link).

    Only a keyed hash of the code is kept. A code works once, for PORTAL_CODE_MINUTES, and
    for PORTAL_CODE_ATTEMPTS wrong tries, whichever ends first.
    """

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="access_codes")
    code_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    attempts = models.PositiveSmallIntegerField(default=0)
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("portal access code")
        indexes = [models.Index(fields=["contact", "-expires_at"], name="access_code_contact")]

    def __str__(self):
        return f"code for {self.contact_id} until {self.expires_at:%Y-%m-%d %H:%M}"
