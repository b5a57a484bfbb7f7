"""The staff pages that the packages do not provide: verifying a second factor in a session
that is logged in but unverified, and the single sign-on entry points (off unless set)."""

from django.conf import settings
from django.http import Http404
from django_otp.views import LoginView as OTPLoginView
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)


class VerifyView(OTPLoginView):
    """django-otp's login view: for a logged-in user it asks only for a code from one of
    the user's devices (authenticator app or recovery code) and marks the session
    verified. Reached after single sign-on, where the provider did the password."""

    template_name = "admin/staff_verify.html"
    redirect_authenticated_user = False


def _single_sign_on(view_class):
    def view(request, *args, **kwargs):
        if not settings.OIDC_RP_CLIENT_ID:
            raise Http404("Single sign-on is not configured.")
        return view_class.as_view()(request, *args, **kwargs)

    return view


sso_start = _single_sign_on(OIDCAuthenticationRequestView)
sso_callback = _single_sign_on(OIDCAuthenticationCallbackView)
