"""Upload limits: the one place every uploaded file (spreadsheets, bank files, and later
the portal's attachments) is measured before anything reads it.

Each limit is a setting read from the environment (README, "Configuration"); a file over
a limit is refused with `UploadRefused`, whose message names the limit and how to change
it, before a batch is opened or a byte is parsed. What is here:

- `check_size`: the file's bytes (UPLOAD_MAX_BYTES); `limit_uploads` and
  `LimitedUploadHandler` enforce it while a request is still being received;
- `RowCounter`: rows and cells as a reader goes (UPLOAD_MAX_ROWS, UPLOAD_MAX_CELLS);
- `open_zip` and `BoundedReader`: a zip's members (count, each member's and the total
  inflated size, the compression ratio), checked on what the zip declares and again on
  the bytes actually inflated (UPLOAD_MAX_DECOMPRESSED_BYTES and the others);
- `xml_parser` and `parse_xml`: expat with every DTD refused (defusedxml's exceptions),
  so no entity expansion (billion laughs) and no external entity;
- `LongRunGuard`: no XML token and no CSV line longer than MAX_TOKEN_BYTES, since a
  parser holds one whole.
"""

import functools
import io
import zipfile
from xml.parsers import expat

from defusedxml import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http.multipartparser import MultiPartParserError
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect


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


# Excel's own limits: no genuine workbook has wider rows or longer cells than these.
MAX_COLUMNS = 16_384
MAX_CELL_CHARS = 32_767
# An XML tag, or a CSV line, longer than this is not a spreadsheet's (a row of 16,384 cells
# fits); the parsers would hold it whole in memory, so it is refused before they see it.
MAX_TOKEN_BYTES = 1 << 20
# Members expanding more than UPLOAD_MAX_COMPRESSION_RATIO times are refused only past this
# size: a tiny, very compressible member (an empty sheet's XML) is harmless.
RATIO_FLOOR_BYTES = 1 << 20
READ_BLOCK = 1 << 16


def _refuse(message: str, **values) -> UploadRefused:
    return UploadRefused(message % values)


class RowCounter:
    """Counts rows and cells as a reader goes, refusing the row past UPLOAD_MAX_ROWS or the
    cell past UPLOAD_MAX_CELLS (rows are counted as the file holds them, blank or not)."""

    def __init__(self):
        self.max_rows = settings.UPLOAD_MAX_ROWS
        self.max_cells = settings.UPLOAD_MAX_CELLS
        self.rows = 0
        self.cells = 0

    def add(self, cells: int) -> None:
        self.rows += 1
        self.cells += cells
        if self.rows > self.max_rows:
            raise _refuse(
                _("The file has more than %(limit)s rows (UPLOAD_MAX_ROWS); split it."),
                limit=f"{self.max_rows:,}",
            )
        if self.cells > self.max_cells:
            raise _refuse(
                _("The file has more than %(limit)s cells (UPLOAD_MAX_CELLS); split it."),
                limit=f"{self.max_cells:,}",
            )
        if cells > MAX_COLUMNS:
            raise too_wide(self.rows)


def too_wide(row: int) -> UploadRefused:
    return _refuse(
        _("Row %(row)d has more than %(limit)s columns."), row=row, limit=f"{MAX_COLUMNS:,}"
    )


class LongRunGuard:
    """Refuses a stream with more than MAX_TOKEN_BYTES between two `stops` bytes.

    For XML the stops are `<` and `>` (so no tag and no text run is longer), for CSV the
    line break: a parser holds one such token whole in memory, whatever the other limits.
    """

    def __init__(self, stops: bytes, message: str):
        self.stops = stops
        self.message = message
        self.run = 0

    def feed(self, block: bytes) -> None:
        first = last = -1
        for stop in self.stops:
            i = block.find(stop)
            if i != -1 and (first == -1 or i < first):
                first = i
            last = max(last, block.rfind(stop))
        if first == -1:
            self.run += len(block)
        else:
            self.run += first
            if self.run > MAX_TOKEN_BYTES:
                raise UploadRefused(self.message)
            self.run = len(block) - last - 1
        if self.run > MAX_TOKEN_BYTES:
            raise UploadRefused(self.message)


def line_guard() -> LongRunGuard:
    return LongRunGuard(
        [b"\n"],
        _("A line of the file is longer than %(limit)s; this is not a spreadsheet's line.")
        % {"limit": filesizeformat(MAX_TOKEN_BYTES)},
    )


class ZipBudget:
    """The decompressed bytes an archive may still produce, and its members' checks.

    `open_zip` checks what the central directory declares (member count, each member's
    and the total size, the compression ratio); `open` then hands out a `BoundedReader`
    per member that checks the same limits again on the bytes actually inflated, since a
    zip's declared sizes are written by whoever made the file and can lie.
    """

    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive
        self.limit = settings.UPLOAD_MAX_DECOMPRESSED_BYTES
        self.ratio = settings.UPLOAD_MAX_COMPRESSION_RATIO
        self.remaining = self.limit

    def check_member(self, name: str, size: int, compressed: int) -> None:
        if size > self.limit:
            raise _refuse(
                _(
                    "%(name)s inside the file expands to more than %(limit)s "
                    "(UPLOAD_MAX_DECOMPRESSED_BYTES)."
                ),
                name=name,
                limit=filesizeformat(self.limit),
            )
        if size > RATIO_FLOOR_BYTES and size > self.ratio * max(compressed, 1):
            raise _refuse(
                _(
                    "%(name)s inside the file expands more than %(ratio)d times "
                    "(UPLOAD_MAX_COMPRESSION_RATIO): this looks like a zip bomb."
                ),
                name=name,
                ratio=self.ratio,
            )

    def open(self, name: str) -> "BoundedReader":
        info = self.archive.getinfo(name)
        return BoundedReader(self.archive.open(info), name=name, info=info, budget=self)

    def charge(self, name: str, n: int) -> None:
        self.remaining -= n
        if self.remaining < 0:
            raise _refuse(
                _(
                    "The file expands to more than %(limit)s when unzipped "
                    "(UPLOAD_MAX_DECOMPRESSED_BYTES)."
                ),
                limit=filesizeformat(self.limit),
            )


def open_zip(stream) -> ZipBudget:
    """Open an uploaded zip (an .xlsx) and check what it declares; raises UploadRefused,
    or zipfile.BadZipFile when it is not a zip at all."""
    archive = zipfile.ZipFile(stream)
    members = archive.infolist()
    if len(members) > settings.UPLOAD_MAX_ZIP_MEMBERS:
        raise _refuse(
            _("The file holds more than %(limit)d parts (UPLOAD_MAX_ZIP_MEMBERS)."),
            limit=settings.UPLOAD_MAX_ZIP_MEMBERS,
        )
    budget = ZipBudget(archive)
    total = 0
    for info in members:
        budget.check_member(info.filename, info.file_size, info.compress_size)
        total += info.file_size
    if total > budget.limit:
        budget.charge("", total)
    return budget


class BoundedReader(io.RawIOBase):
    """A zip member's bytes, refused past its limits as they are actually inflated.

    Also guards XML token length (`LongRunGuard` on `<` and `>`), so a parser fed from it
    never buffers one enormous tag or text run.
    """

    def __init__(self, raw, *, name: str, info: zipfile.ZipInfo, budget: ZipBudget):
        super().__init__()
        self.raw, self.name, self.info, self.budget = raw, name, info, budget
        self.read_so_far = 0
        self.guard = LongRunGuard(
            [b"<", b">"],
            _("%(name)s inside the file has an XML token longer than %(limit)s.")
            % {"name": name, "limit": filesizeformat(MAX_TOKEN_BYTES)},
        )

    def readable(self) -> bool:
        return True

    def read(self, n: int = READ_BLOCK) -> bytes:
        if n is None or n < 0:
            n = READ_BLOCK
        block = self.raw.read(n)
        if block:
            self.read_so_far += len(block)
            self.budget.check_member(self.name, self.read_so_far, self.info.compress_size)
            self.budget.charge(self.name, len(block))
            self.guard.feed(block)
        return block

    def readinto(self, buffer) -> int:
        block = self.read(len(buffer))
        buffer[: len(block)] = block
        return len(block)

    def close(self) -> None:
        self.raw.close()
        super().close()


def xml_parser(*, namespace_separator: str | None = "}"):
    """An expat parser that refuses any DTD: no entity can be declared, so no billion-laughs
    expansion and no external entity is possible (defusedxml's rules, at expat's own speed).
    """
    parser = expat.ParserCreate(namespace_separator=namespace_separator)
    parser.buffer_text = True
    parser.StartDoctypeDeclHandler = _forbid_dtd
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_entity
    parser.ExternalEntityRefHandler = _forbid_external
    return parser


def _forbid_dtd(name, sysid, pubid, has_internal_subset):
    raise DTDForbidden(name, sysid, pubid)


def _forbid_entity(name, *args):
    raise EntitiesForbidden(name, None, None, None, None, None)


def _forbid_external(context, base, sysid, pubid):
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def parse_xml(parser, reader: BoundedReader) -> None:
    """Feed a member through `parser` block by block (each block through the reader's
    checks); a DTD or entity is refused as UploadRefused."""
    try:
        while block := reader.read(READ_BLOCK):
            parser.Parse(block, False)
        parser.Parse(b"", True)
    except DefusedXmlException as exc:
        raise _refuse(
            _("%(name)s inside the file declares a DTD or entities, which are refused."),
            name=reader.name,
        ) from exc


class LimitedUploadHandler(FileUploadHandler):
    """Stops receiving a request's files as soon as they pass UPLOAD_MAX_BYTES.

    Put first in `request.upload_handlers` (see `limit_uploads`): a body declared larger
    than the limit is refused before any file byte is kept, and one that turns out larger
    (no or a false Content-Length) is refused at the byte that passes it. The rest of the
    body is read and discarded, so the browser gets the page saying why, not a reset.
    """

    FORM_OVERHEAD = 64 * 1024  # the other fields and the multipart headers

    def __init__(self, request=None):
        super().__init__(request)
        self.limit = settings.UPLOAD_MAX_BYTES
        self.received = 0
        self.refused: str | None = None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + self.FORM_OVERHEAD:
            self._refuse(content_length)
        return None  # go on parsing the fields; files stop at new_file

    def new_file(self, *args, **kwargs):
        if self.refused:
            raise StopUpload(connection_reset=False)
        super().new_file(*args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self._refuse(self.received)
            raise StopUpload(connection_reset=False)
        return raw_data  # the next handler (memory or temporary file) keeps it

    def file_complete(self, file_size):
        return None

    def _refuse(self, size: int) -> None:
        try:
            check_size(size, limit=self.limit)
        except UploadRefused as exc:
            self.refused = str(exc)


def limit_uploads(view):
    """Wrap a view that takes uploads: files are refused past UPLOAD_MAX_BYTES while the
    request is read, and too many fields or files (Django's DATA_UPLOAD_* limits) become
    a message too. The view finds either in `request.upload_refusal` (None when all is
    well) and must then write nothing.

    The handler must be in place before anything reads the body, which the CSRF check
    does: the view is therefore marked csrf_exempt and protected here, after the handler.
    """

    @functools.wraps(view)
    def limited(request, *args, **kwargs):
        handler = LimitedUploadHandler(request)
        request.upload_handlers.insert(0, handler)
        request.upload_refusal = None
        if request.method == "POST":
            try:
                request.POST  # noqa: B018 (parsed here, through the handler)
            except (RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent) as exc:
                request.upload_refusal = _(
                    "The form is over the request limits (%(e)s): send one file at a time."
                ) % {"e": exc}
                return view(request, *args, **kwargs)  # renders the refusal, writes nothing
            except MultiPartParserError as exc:
                request.upload_refusal = _("The upload could not be read: %(e)s") % {"e": exc}
                return view(request, *args, **kwargs)  # renders the refusal, writes nothing
            request.upload_refusal = handler.refused
        return csrf_protect(view)(request, *args, **kwargs)

    return csrf_exempt(limited)
