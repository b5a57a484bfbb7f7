"""Upload limits: the one place every uploaded file (spreadsheets, bank files, and later
the portal's attachments) is measured before anything reads it.

Each limit is a setting read from the environment (README, "Configuration"); a file over
a limit is refused with `UploadRefused`, whose message names the limit and how to change
it, before a batch is opened or a byte is parsed.
"""

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _


class UploadRefused(ValueError):
    """The file is over one of the upload limits; the message says which."""


def check_size(size: int | None, *, limit: int | None = None) -> None:
    """Refuse a file of `size` bytes over UPLOAD_MAX_BYTES (or the given limit)."""
    limit = settings.UPLOAD_MAX_BYTES if limit is None else limit
    if size is not None and size > limit:
        raise UploadRefused(
            _("The file is %(size)s; files of up to %(limit)s are accepted (UPLOAD_MAX_BYTES).")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )
