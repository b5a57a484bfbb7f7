"""Single sign-on through OpenID Connect (mozilla-django-oidc), mapped onto staff accounts.

A provider's user becomes the one active staff account with the same e-mail address, and
only when the provider says that address is verified. Nobody is created or updated, and
superusers never log in this way (their password and second factor stay the only way in).
The second factor is still asked afterwards where the role needs one.
"""

from django.contrib.auth import get_user_model
from mozilla_django_oidc.auth import OIDCAuthenticationBackend


class StaffOIDCBackend(OIDCAuthenticationBackend):
    def verify_claims(self, claims):
        return (
            super().verify_claims(claims)
            and bool(claims.get("email"))
            and claims.get("email_verified") is True
        )

    def filter_users_by_claims(self, claims):
        email = claims.get("email")
        if not email:
            return self.UserModel.objects.none()
        return get_user_model().objects.filter(
            email__iexact=email, is_active=True, is_staff=True, is_superuser=False
        )

    def create_user(self, claims):  # OIDC_CREATE_USER is off; never reached, never allowed
        return None

    def update_user(self, user, claims):
        return user
