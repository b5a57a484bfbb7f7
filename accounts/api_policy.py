"""API-wide policy, the default classes in settings.REST_FRAMEWORK: permissions that follow
the roles (the same rights the console and the services check), pagination that never
counts (and refuses a forged cursor), 405 before 403, and the control characters no
text of ours may hold.

Kept apart from the API modules and free of model imports: REST framework imports these
defaults while its own modules load, before any app's models are ready.
"""

import re

from rest_framework.exceptions import MethodNotAllowed, NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import DjangoModelPermissions

# Characters no text field of ours holds: C0 controls but tab, newline and carriage return
# (NUL makes PostgreSQL raise, the others are illegal in XML and so in an XLSX export),
# lone surrogates (not encodable as UTF-8) and the non-characters U+FFFE and U+FFFF.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# The largest id a cursor may carry: PostgreSQL's bigint.
MAX_ID = 2**63 - 1


class StrictModelPermissions(DjangoModelPermissions):
    """The API's default: model permissions for writes *and* reads (listing needs the view
    permission), the same role rights the console checks."""

    perms_map = {
        **DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }


class NewestFirstPagination(CursorPagination):
    """Cursor pagination by id: constant time on a million rows, no COUNT(*)."""

    ordering = "-id"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """REST framework checks a cursor's offset but hands its position (an id here) to
        the query as it is: a forged one would fail in the database. Refused as invalid."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and int(position) <= MAX_ID):
                raise NotFound(self.invalid_cursor_message)
        return cursor


class MethodCheckedFirst:
    """Answer 405 for a method the view lacks before checking permissions (which says 403).

    The timeline, for instance, has no update or delete at all: saying so is clearer than
    suggesting a permission might allow it.
    """

    def initial(self, request, *args, **kwargs):
        if request.method.upper() not in self._allowed_methods():
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
