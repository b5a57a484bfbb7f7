"""Who needs a second factor, and the middleware that holds the console until it is given.

The login itself is django-two-factor-auth's wizard (password, then TOTP, passkey or a
recovery code); django-otp marks the session verified. This module only says who must
have one (superusers, MFA_REQUIRED_GROUPS, every staff user with MFA_REQUIRED_FOR_AGENTS,
and anyone who enrolled) and sends a logged-in but unverified user of the console to
enrolment (no device yet) or to verification (a device, e.g. after single sign-on).
The API's session authentication asks the same question (staff.api_auth).
"""

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_otp import user_has_device


def requires_second_factor(user) -> bool:
    """True when this user's role makes a second factor mandatory."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or (settings.MFA_REQUIRED_FOR_AGENTS and user.is_staff):
        return True
    return user.groups.filter(name__in=settings.MFA_REQUIRED_GROUPS).exists()


def is_held_for_second_factor(user) -> bool:
    """A logged-in user who must verify a second factor before going on: the role needs
    one, or the user enrolled one (then it is always asked), and this session has not
    verified it. `user.is_verified` comes from django_otp's OTPMiddleware."""
    if not user.is_authenticated or user.is_verified():
        return False
    return user_has_device(user) or requires_second_factor(user)


class SecondFactorMiddleware:
    """Keeps an unverified user who needs a second factor out of the console.

    Only the console is guarded here (/admin/ and the enrolment pages, where a user who
    already has a device must not add another before verifying); the API refuses such a
    session in its authentication class, and webhooks, the pay page and the health check
    have no session to guard.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.admin_prefix = None

    def __call__(self, request):
        if self.admin_prefix is None:
            self.admin_prefix = reverse("admin:index")
            self.setup_prefix = reverse("two_factor:profile")
            self.exempt = {reverse("admin:logout"), reverse("staff:verify")}
        path = request.path
        guarded = path.startswith((self.admin_prefix, self.setup_prefix))
        if guarded and path not in self.exempt and is_held_for_second_factor(request.user):
            return self.hold(request)
        return self.get_response(request)

    def hold(self, request):
        user = request.user
        if user_has_device(user):
            target = reverse("staff:verify")
        elif request.path.startswith(self.setup_prefix):
            return self.get_response(request)  # enrolling: the setup wizard itself
        else:
            messages.warning(
                request,
                _(
                    "Your role needs a second factor. Set up an authenticator app (or a "
                    "passkey) to continue; you will get recovery codes at the end."
                ),
            )
            target = reverse("two_factor:setup")
        return redirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
