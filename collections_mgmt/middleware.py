"""Request guards that hold for every page, the API and the console alike."""

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _


class RefuseNulInQueryString:
    """A query parameter holding a NUL character is refused with 400, naming it.

    PostgreSQL text cannot hold NUL, so `?status=%00` on any changelist or list endpoint
    would otherwise fail inside the database (a 500). Form fields are guarded by Django's
    own form validation and JSON bodies by the serializers; this covers the query string,
    which reaches list filters and search before any form sees it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        for key, values in request.GET.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                name = key.replace("\x00", "\\0")
                message = _("Null characters are not allowed.")
                if request.path.startswith("/api/"):
                    return JsonResponse({name: [message]}, status=400)
                return HttpResponseBadRequest(
                    _("The query parameter “%(name)s” is refused: %(why)s")
                    % {"name": name, "why": message},
                    content_type="text/plain; charset=utf-8",
                )
        return self.get_response(request)
