"""The console's side of the portal: staff download the files a debtor attached to a
dispute in the portal (kept in the default storage, never served to the public)."""

from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from accounts.models import Activity

from .actions import ATTACHMENT_DIR


def attachment(request, activity_id: int, index: int):
    """The `index`-th file of a portal dispute's timeline entry, for staff who may see
    disputes. The path must lie in that customer's own folder (the entry says where)."""
    if not request.user.has_perm("cases.view_dispute"):
        raise PermissionDenied
    entry = Activity.objects.filter(
        pk=activity_id, kind=Activity.Kind.PORTAL, details__action="dispute"
    ).first()
    files = (entry.details.get("attachments") or []) if entry else []
    if not 0 <= index < len(files):
        raise Http404
    row = files[index]
    path = str(row.get("path") or "")
    folder = f"{ATTACHMENT_DIR}/{entry.customer_id}/"
    if not path.startswith(folder) or ".." in path or not default_storage.exists(path):
        raise Http404
    return FileResponse(
        default_storage.open(path, "rb"),
        as_attachment=True,
        filename=str(row.get("name") or path.rsplit("/", 1)[-1]),
        content_type=str(row.get("content_type") or "application/octet-stream"),
    )
