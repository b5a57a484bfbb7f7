"""How the OpenAPI schema (drf-spectacular) describes our two ways into the API: the same
as the classes they extend, a session cookie and a knox token."""

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme


class VerifiedSessionScheme(SessionScheme):
    target_class = "staff.api_auth.VerifiedSessionAuthentication"


class ThrottledTokenScheme(KnoxTokenScheme):
    target_class = "staff.api_auth.ThrottledTokenAuthentication"
