"""API-wide policy, the default classes in settings.REST_FRAMEWORK: permissions that follow
the roles (the same rights the console and the services check), pagination that never
counts, and 405 before 403.

Kept apart from the API modules and free of model imports: REST framework imports these
defaults while its own modules load, before any app's models are ready.
"""

from rest_framework.exceptions import MethodNotAllowed
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import DjangoModelPermissions


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


class MethodCheckedFirst:
    """Answer 405 for a method the view lacks before checking permissions (which says 403).

    The timeline, for instance, has no update or delete at all: saying so is clearer than
    suggesting a permission might allow it.
    """

    def initial(self, request, *args, **kwargs):
        if request.method.upper() not in self._allowed_methods():
            raise MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
