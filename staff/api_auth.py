"""How the API authenticates staff: a session only once its second factor is verified where
needed, or a django-rest-knox token, with failed tokens throttled per client address."""

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.throttling import SimpleRateThrottle

from staff.second_factor import is_held_for_second_factor


class VerifiedSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, refused (403 naming the reason) for a session whose
    user must give a second factor and has not: the console's rule holds for the API."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and is_held_for_second_factor(result[0]):
            raise exceptions.PermissionDenied(
                _("Verify your second factor in the console first (or use an API token).")
            )
        return result


class FailedTokenThrottle(SimpleRateThrottle):
    """Counts failed token attempts per client address (rate: the "failed_token" scope).

    DRF's throttles run after authentication, which is too late for a token guesser: a bad
    token fails authentication first. So this throttle is asked by the authentication
    class itself: `is_blocked` before the token is looked up, `record_failure` after it
    failed. Successful requests are not counted."""

    scope = "failed_token"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _load(self, request):
        self.key = self.get_cache_key(request, None)
        self.now = self.timer()
        self.history = [
            moment for moment in self.cache.get(self.key, []) if moment > self.now - self.duration
        ]

    def is_blocked(self, request) -> bool:
        self._load(request)
        return len(self.history) >= self.num_requests

    def record_failure(self, request) -> None:
        self._load(request)
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class ThrottledTokenAuthentication(TokenAuthentication):
    """Knox tokens (`Authorization: Token <key>`). After too many bad tokens from one
    address, further token attempts answer 429 with Retry-After until the window passes,
    whether or not the token is right (so the guesser learns nothing more)."""

    def authenticate(self, request):
        throttle = FailedTokenThrottle()
        if self._offers_token(request) and throttle.is_blocked(request):
            raise exceptions.Throttled(
                wait=throttle.wait(),
                detail=gettext("Too many invalid API tokens from this address; try again later."),
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise

    def _offers_token(self, request) -> bool:
        header = request.META.get("HTTP_AUTHORIZATION", "").split()
        return bool(header) and header[0].lower() == self.authenticate_header(request).lower()
