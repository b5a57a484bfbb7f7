"""XLSX workbooks read within the upload limits: the active sheet's rows, one at a time.

Why not openpyxl: even in read-only mode it loads the whole shared-string table into a
Python list before the first row (a 1 MB file whose one string expands to 1 GiB took the
server to 8.3 GB), fills gaps in row numbers with empty rows and pads every row to the
sheet's declared width (both taken from the file, so both hostile). This reader is a
streaming expat parse of the zip's XML, through `uploads.BoundedReader` (each member's
inflated bytes, the archive's total, the compression ratio and the longest XML token,
counted on the bytes actually read) and `uploads.xml_parser` (no DTD, so no entity
expansion). Shared strings are kept as one UTF-8 buffer plus an offset per string (about
a tenth of a list of str), within UPLOAD_MAX_SHARED_STRINGS and
UPLOAD_MAX_SHARED_STRING_CHARS; rows within UPLOAD_MAX_ROWS and UPLOAD_MAX_CELLS.

Values come out as openpyxl's `values_only` gave them: str, int, float, bool, datetime
(for numbers in a date format), None for an empty cell.
"""

import contextlib
import posixpath
from array import array
from collections.abc import Iterator
from xml.parsers import expat

from django.conf import settings
from django.utils.translation import gettext as _
from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format
from openpyxl.utils.datetime import CALENDAR_MAC_1904, CALENDAR_WINDOWS_1900, from_excel

from .. import uploads

REL_OFFICE_DOCUMENT = "/officeDocument"
REL_SHARED_STRINGS = "/sharedStrings"
REL_STYLES = "/styles"


class NotAWorkbook(Exception):
    """The zip is not an XLSX workbook (a part is missing or is not XML)."""


def _local(name: str) -> str:
    return name.rpartition("}")[2]


def _attr(attrs: dict, name: str, default=None):
    for key, value in attrs.items():
        if _local(key) == name:
            return value
    return default


def _parse(budget: uploads.ZipBudget, name: str, start=None, end=None, text=None) -> None:
    """Run one member through a guarded expat parser with the given handlers."""
    try:
        reader = budget.open(name)
    except KeyError as exc:
        raise NotAWorkbook(_("%(name)s is missing.") % {"name": name}) from exc
    parser = uploads.xml_parser()
    if start is not None:
        parser.StartElementHandler = start
    if end is not None:
        parser.EndElementHandler = end
    if text is not None:
        parser.CharacterDataHandler = text
    try:
        with reader:
            uploads.parse_xml(parser, reader)
    except expat.ExpatError as exc:
        raise NotAWorkbook(
            _("%(name)s is not valid XML: %(e)s") % {"name": name, "e": exc}
        ) from exc


def _relationships(budget, part: str) -> dict[str, tuple[str, str]]:
    """{id: (type, target path in the zip)} of a part's relationships, if it has any."""
    folder, base = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", base + ".rels")
    found = {}

    def start(name, attrs):
        if _local(name) == "Relationship":
            target = attrs.get("Target", "")
            if target.startswith("/"):
                path = target.lstrip("/")
            else:
                path = posixpath.normpath(posixpath.join(folder, target))
            found[attrs.get("Id", "")] = (attrs.get("Type", ""), path)

    if rels_name in budget.archive.NameToInfo:
        _parse(budget, rels_name, start=start)
    return found


class SharedStrings:
    """The shared-string table, compact: one UTF-8 buffer and each string's end offset."""

    def __init__(self):
        self.buffer = bytearray()
        self.ends = array("Q")
        self.chars = 0
        self.max_count = settings.UPLOAD_MAX_SHARED_STRINGS
        self.max_chars = settings.UPLOAD_MAX_SHARED_STRING_CHARS

    def add(self, value: str) -> None:
        self.chars += len(value)
        if len(self.ends) >= self.max_count:
            raise uploads.UploadRefused(
                _(
                    "The workbook has more than %(limit)s distinct texts "
                    "(UPLOAD_MAX_SHARED_STRINGS)."
                )
                % {"limit": f"{self.max_count:,}"}
            )
        if self.chars > self.max_chars:
            raise uploads.UploadRefused(
                _(
                    "The workbook's texts hold more than %(limit)s characters "
                    "(UPLOAD_MAX_SHARED_STRING_CHARS)."
                )
                % {"limit": f"{self.max_chars:,}"}
            )
        self.buffer += value.encode()
        self.ends.append(len(self.buffer))

    def __getitem__(self, index: int) -> str:
        end = self.ends[index]  # IndexError for an index past the table
        start = self.ends[index - 1] if index else 0
        return self.buffer[start:end].decode()


def _read_shared_strings(budget, name: str) -> SharedStrings:
    table = SharedStrings()
    parts: list[str] = []
    state = {"in_t": False, "phonetic": 0, "length": 0}

    def start(tag, attrs):
        tag = _local(tag)
        if tag == "t" and not state["phonetic"]:
            state["in_t"] = True
        elif tag == "rPh":  # phonetic guide text: not part of the cell's value
            state["phonetic"] += 1
        elif tag == "si":
            parts.clear()
            state["length"] = 0

    def end(tag):
        tag = _local(tag)
        if tag == "t":
            state["in_t"] = False
        elif tag == "rPh":
            state["phonetic"] -= 1
        elif tag == "si":
            table.add("".join(parts))

    def text(data):
        if state["in_t"]:
            state["length"] += len(data)
            if state["length"] > uploads.MAX_CELL_CHARS:
                raise _cell_too_long()
            parts.append(data)

    _parse(budget, name, start=start, end=end, text=text)
    return table


def _cell_too_long() -> uploads.UploadRefused:
    return uploads.UploadRefused(
        _("A cell holds more than %(limit)s characters (Excel's own limit).")
        % {"limit": f"{uploads.MAX_CELL_CHARS:,}"}
    )


def _date_styles(budget, name: str) -> frozenset[int]:
    """The cell styles (indexes into cellXfs) whose number format is a date or time."""
    formats = dict(BUILTIN_FORMATS)
    styles: list[int] = []
    state = {"in_xfs": False}

    def start(tag, attrs):
        tag = _local(tag)
        if tag == "numFmt":
            with contextlib.suppress(ValueError):
                formats[int(attrs.get("numFmtId", ""))] = attrs.get("formatCode", "")
        elif tag == "cellXfs":
            state["in_xfs"] = True
        elif tag == "xf" and state["in_xfs"]:
            try:
                styles.append(int(attrs.get("numFmtId", "0")))
            except ValueError:
                styles.append(0)

    def end(tag):
        if _local(tag) == "cellXfs":
            state["in_xfs"] = False

    _parse(budget, name, start=start, end=end)
    return frozenset(
        index for index, fmt in enumerate(styles) if fmt in formats and is_date_format(formats[fmt])
    )


class Workbook:
    """An opened workbook: where its active sheet is, its shared strings, its date styles."""

    def __init__(self, stream):
        self.budget = uploads.open_zip(stream)
        names = self.budget.archive.NameToInfo
        package = _relationships(self.budget, "")
        workbook = next(
            (path for kind, path in package.values() if kind.endswith(REL_OFFICE_DOCUMENT)),
            "xl/workbook.xml",
        )
        if workbook not in names:
            raise NotAWorkbook(_("It has no workbook part."))
        sheets: list[str] = []
        state = {"active": 0, "epoch": CALENDAR_WINDOWS_1900}

        def start(tag, attrs):
            tag = _local(tag)
            if tag == "sheet":
                sheets.append(_attr(attrs, "id", ""))
            elif tag == "workbookView":
                with contextlib.suppress(ValueError):
                    state["active"] = int(attrs.get("activeTab", "0"))
            elif tag == "workbookPr" and attrs.get("date1904") in ("1", "true"):
                state["epoch"] = CALENDAR_MAC_1904

        _parse(self.budget, workbook, start=start)
        relations = _relationships(self.budget, workbook)
        if not sheets:
            raise NotAWorkbook(_("It has no sheet."))
        active = sheets[state["active"]] if 0 <= state["active"] < len(sheets) else sheets[0]
        if active not in relations or relations[active][1] not in names:
            raise NotAWorkbook(_("Its sheet part is missing."))
        self.sheet = relations[active][1]
        self.epoch = state["epoch"]
        self.shared = SharedStrings()
        self.date_styles: frozenset[int] = frozenset()
        for kind, path in relations.values():
            if kind.endswith(REL_SHARED_STRINGS) and path in names:
                self.shared = _read_shared_strings(self.budget, path)
            elif kind.endswith(REL_STYLES) and path in names:
                self.date_styles = _date_styles(self.budget, path)

    def close(self) -> None:
        self.budget.archive.close()

    def count_rows(self) -> int:
        """The sheet's rows holding a value, counted from its XML alone (no values read),
        refused past UPLOAD_MAX_ROWS and UPLOAD_MAX_CELLS (all row elements count)."""
        counter = uploads.RowCounter()
        state = {"cells": 0, "has_value": False, "counted": 0}
        remaining = self.budget.remaining

        def start(tag, attrs):
            tag = tag[tag.rfind("}") + 1 :]
            if tag == "c":
                state["cells"] += 1
            elif tag == "v" or tag == "t":
                state["has_value"] = True
            elif tag == "row":
                state["cells"], state["has_value"] = 0, False

        def end(tag):
            if tag[tag.rfind("}") + 1 :] == "row":
                counter.add(state["cells"])
                if state["has_value"]:
                    state["counted"] += 1

        _parse(self.budget, self.sheet, start=start, end=end)
        self.budget.remaining = remaining  # the rows pass reads the same bytes again
        return state["counted"]

    def rows(self, counter: uploads.RowCounter | None = None) -> Iterator[tuple[int, list]]:
        """(row number, values) for each row element of the sheet, in file order."""
        counter = counter or uploads.RowCounter()
        reader = self.budget.open(self.sheet)
        parser = uploads.xml_parser()
        done: list[tuple[int, list]] = []
        row: list = []
        cell = {"col": 0, "type": "n", "style": 0}
        text: list[str] = []
        state = {"row": 0, "in_value": False, "length": 0}
        shared, date_styles, epoch = self.shared, self.date_styles, self.epoch

        def start(tag, attrs):
            tag = tag[tag.rfind("}") + 1 :]
            if tag == "c":
                ref = attrs.get("r")
                cell["col"] = _column(ref) if ref else len(row) + 1
                cell["type"] = attrs.get("t", "n")
                cell["style"] = attrs.get("s")
                text.clear()
                state["length"] = 0
            elif tag == "v" or tag == "t":
                state["in_value"] = True
            elif tag == "row":
                ref = attrs.get("r")
                state["row"] = int(ref) if ref and ref.isdigit() else state["row"] + 1
                row.clear()

        def end(tag):
            tag = tag[tag.rfind("}") + 1 :]
            if tag == "c":
                column = cell["col"]
                if column > uploads.MAX_COLUMNS:
                    raise uploads.too_wide(state["row"])
                value = _value(cell, "".join(text), shared, date_styles, epoch)
                if column > len(row):
                    row.extend([None] * (column - len(row) - 1))
                    row.append(value)
                else:
                    row[column - 1] = value
            elif tag == "v" or tag == "t":
                state["in_value"] = False
            elif tag == "row":
                counter.add(len(row))
                done.append((state["row"], list(row)))

        def characters(data):
            if state["in_value"]:
                state["length"] += len(data)
                if state["length"] > uploads.MAX_CELL_CHARS:
                    raise _cell_too_long()
                text.append(data)

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = characters
        try:
            with reader:
                while block := reader.read(uploads.READ_BLOCK):
                    parser.Parse(block, False)
                    yield from done
                    done.clear()
                parser.Parse(b"", True)
                yield from done
        except expat.ExpatError as exc:
            raise NotAWorkbook(
                _("%(name)s is not valid XML: %(e)s") % {"name": self.sheet, "e": exc}
            ) from exc
        except uploads.DefusedXmlException as exc:
            raise uploads.UploadRefused(
                _("%(name)s inside the file declares a DTD or entities, which are refused.")
                % {"name": self.sheet}
            ) from exc


def _column(ref: str) -> int:
    """The 1-based column of a cell reference such as "AB12"."""
    column = 0
    for char in ref:
        if "A" <= char <= "Z":
            column = column * 26 + ord(char) - 64
        elif "a" <= char <= "z":
            column = column * 26 + ord(char) - 96
        else:
            break
        if column > uploads.MAX_COLUMNS:
            return uploads.MAX_COLUMNS + 1
    return column or 1


def _value(cell: dict, text: str, shared: SharedStrings, date_styles, epoch):
    kind = cell["type"]
    if kind == "s":
        if not text:
            return None
        try:
            return shared[int(text)]
        except (ValueError, IndexError) as exc:
            raise NotAWorkbook(
                _("A cell refers to shared text %(index)s, which the workbook does not have.")
                % {"index": text[:20]}
            ) from exc
    if kind in ("inlineStr", "str", "e", "d"):
        return text
    if not text:
        return None
    if kind == "b":
        return text.strip() in ("1", "true")
    try:
        number = float(text) if ("." in text or "E" in text or "e" in text) else int(text)
    except ValueError:
        return text
    style = cell["style"]
    if style is not None and date_styles and style.isdigit() and int(style) in date_styles:
        try:
            return from_excel(number, epoch)
        except (ValueError, OverflowError):
            return number
    return number
