"""Template context for the login pages: whether single sign-on is offered."""

from django.conf import settings


def single_sign_on(request) -> dict:
    if not settings.OIDC_RP_CLIENT_ID:
        return {}
    return {"sso_label": settings.OIDC_LOGIN_LABEL}
