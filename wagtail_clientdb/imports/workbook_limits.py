"""Measuring a workbook before a reader parses it.

python-calamine holds the whole sheet it reads in memory as a grid from its first to its last
cell, so one cell far out can ask for gigabytes (a 4.9 KB XLSX with a cell at XFD1048576
made it reserve 512 GiB). The sheet's XML (XLSX) or records (XLS) are scanned first, at C
speed where the file is written the usual way, for every cell's position and for what
reading it will take: cells beyond the column or row limit are refused, and a workbook that
would take more memory than ``IMPORT_MAX_READER_MEMORY`` is streamed with openpyxl (XLSX) or
refused. No value is read here; the readers do that (:mod:`.reading`), of the sheet chosen
here (:func:`visible_sheet`).
"""

import codecs
import functools
import io
import posixpath
import re
import struct
import zipfile
import zlib
from array import array
from dataclasses import dataclass
from xml.sax.saxutils import unescape

from django.utils.translation import gettext as _
from openpyxl.utils.cell import column_index_from_string, get_column_letter

from .. import conf
from .problems import FileProblem

_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


@dataclass
class ReadingPlan:
    """How a workbook that passed its checks is read: its sheet at place ``sheet`` (counted from
    0, in workbook order), by python-calamine, or streamed by openpyxl (``streamed``) as far as
    ``last_row``."""

    sheet: int = 0
    has_formulas: bool = False
    streamed: bool = False
    last_row: int = 0


# --- Limits and what reading takes -----------------------------------------------------------------------
#
# Memory figures per item, measured with python-calamine 0.9.1 and openpyxl 3.1.5 (peak RSS;
# docs/performance.md, benchmarks/reading.py), rounded up. They estimate what a reader will
# take before it starts: calamine holds a cell list, then the grid from the first to the last
# cell with every text copied into each cell that shows it; openpyxl holds the shared strings
# and the attributes of every styled row.

_CALAMINE_PER_CELL = 41  # the list of cells with a value
_CALAMINE_PER_GRID_CELL = 32  # the grid, a cell between the first and the last, empty or not
_CALAMINE_PER_STRING = 24  # a shared string, besides its text
_OPENPYXL_PER_STRING = 100  # a shared string; its text takes about 3 bytes per byte of XML
_OPENPYXL_PER_ROW = 450  # a row element with attributes (kept for the whole sheet)
_OPENPYXL_PER_ROW_CELL = 1024  # the cells of the row being read
_OPENPYXL_PER_OTHER_XML_BYTE = 16  # styles.xml is read as a tree: 18.6 MB of it took 234 MB
#: Excel's numbers of columns and rows: a row holding more cell elements, or a sheet more rows,
#: is damaged or made to be harmful.
_MAX_CELLS_PER_ROW = 16_384
_MAX_ROW_ELEMENTS = 1_048_576
#: The exact scan works in Python, tag by tag (about 3 µs each), while the upload waits: beyond
#: this many tags (a sheet of about 1.5 million cells), or this many cells of formatting only
#: beyond the limits, the sheet is refused rather than scanned for minutes.
_MAX_EXACT_TAGS = 4_000_000
_MAX_FORMATTED_BEYOND = 100_000


def _limits():
    """Columns and rows a sheet may use: the rows are the row limit plus a header row; blank or
    title rows above the header count too, as they push the last row down like data would."""
    return conf.get("IMPORT_MAX_COLUMNS"), conf.get("IMPORT_MAX_ROWS") + 1


def _column_number(letters):
    """The number of a column (``"CV"`` → 100); a row reference has no letters: 0."""
    return column_index_from_string(letters.upper()) if letters else 0


def _beyond_limits(column, row):
    max_columns, max_rows = _limits()
    return FileProblem(
        _(
            "The worksheet has a cell at %(cell)s. A customer list may use columns A to %(last_column)s "
            "and rows 1 to %(last_row)s; delete what lies beyond (even empty-looking cells) and try again."
        )
        % {"cell": f"{get_column_letter(column)}{row}", "last_column": get_column_letter(max_columns), "last_row": f"{max_rows:,}"}
    )


def _too_large(needed):
    return FileProblem(
        _(
            "This workbook is too large to be read here (it would take about %(needed)s MB of memory). "
            "Save it as CSV and import the CSV file."
        )
        % {"needed": f"{max(1, needed // (1024 * 1024)):,}"}
    )


def _unusual():
    return FileProblem(
        _("The workbook is put together in an unusual way and cannot be read safely. Save it again in Excel, or as CSV.")
    )


# --- Which sheet ---------------------------------------------------------------------------------------


def visible_sheet(shown):
    """The place of the sheet a customer list is read from, of a workbook's sheets in order, each
    shown (True) or hidden: the first shown, the leftmost tab in Excel — not the tab active when
    the file was saved, which is wherever the user last clicked. A hidden sheet holds what the
    user does not see (an old list, lookups): an import must not offer it."""
    if not shown:
        raise _unusual()
    place = next((place for place, is_shown in enumerate(shown) if is_shown), None)
    if place is None:  # Excel keeps one sheet shown; another program, or a hand, may not
        raise FileProblem(
            _(
                "Every sheet of the workbook is hidden. Unhide the sheet with the customers, "
                "save the workbook and try again."
            )
        )
    return place


def sheet_to_read(planned, sheets):
    """The name of the sheet a reader reads, of ``sheets`` as it lists them: (name, shown) in
    workbook order. It must come to the sheet that was measured (``planned``), or it would read
    one whose cells were never checked; and a name must be one sheet's, as both readers take
    the first sheet of a name."""
    names = [name for name, _shown in sheets]
    if len(set(names)) < len(names) or visible_sheet([shown for _name, shown in sheets]) != planned:
        raise _unusual()
    return names[planned]


# --- XLSX ------------------------------------------------------------------------------------------------

_PIECE = 1 << 20
#: A tag cut at the end of a piece is carried into the next; tags are short, texts need not be.
_CARRY = 64 * 1024
_SMALL_PART = 4 * 1024 * 1024
_SHARED_STRINGS_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
_WORKBOOK_TYPES = re.compile(r"application/vnd\.(?:openxmlformats-officedocument\.spreadsheetml|ms-excel)\.(?:sheet|template)\.")


@dataclass
class _SheetScan:
    """What the sheet read holds: how far its cells go (``columns`` × ``rows``, an upper
    bound), how many cell elements it has, and, when measured, its rows."""

    columns: int = 0
    rows: int = 0
    cells: int = 0
    xml_bytes: int = 0
    has_formulas: bool = False
    row_elements: int | None = None
    widest_row: int = 0


@dataclass
class _SharedStrings:
    count: int = 0
    xml_bytes: int = 0
    longest: int = 0


def check_xlsx(stream, size):
    """Refuse zip bombs, non-workbooks and sheets beyond the limits; choose the reader."""
    try:
        archive = zipfile.ZipFile(stream)
    except zipfile.BadZipFile:
        raise FileProblem(_("The file looks like an XLSX workbook but is damaged."))
    members = archive.infolist()
    if len(members) > conf.get("IMPORT_MAX_ZIP_MEMBERS"):
        raise FileProblem(_("The workbook has too many parts (%(count)s) to be a customer list.") % {"count": len(members)})
    if sum(member.file_size for member in members) > conf.get("IMPORT_MAX_UNCOMPRESSED_SIZE"):
        raise FileProblem(_("The workbook unpacks to more data than allowed; it is refused."))
    names = {member.filename for member in members}
    if "xl/workbook.xml" not in names:
        raise FileProblem(_("This zip file is not an Excel workbook. Upload a CSV, XLSX or XLS file."))
    # calamine finds parts whatever their case, openpyxl by their exact name: both must find the same.
    if len({name.lower() for name in names}) < len(names):
        raise _unusual()
    try:
        place, sheet_part = _chosen_sheet(archive, names)
        strings_part = _shared_strings_part(archive, names)
        sheet = _scan_sheet(archive, sheet_part)
        strings = _scan_shared_strings(archive, strings_part) if strings_part else _SharedStrings()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError):
        # A damaged part, a compression method zipfile lacks, or a member with a password.
        raise FileProblem(_("The file looks like an XLSX workbook but is damaged."))
    budget = conf.get("IMPORT_MAX_READER_MEMORY")
    if not sheet.has_formulas and _calamine_needs(size, sheet, strings) <= budget:
        return ReadingPlan(sheet=place)
    if sheet.row_elements is None:
        sheet.row_elements, sheet.widest_row = _row_sizes(archive, sheet_part)
    # openpyxl also reads other parts whole (styles, theme, properties) and runs through the
    # other sheets' rows for their size.
    other_xml = sum(
        member.file_size
        for member in members
        if member.filename.lower().endswith((".xml", ".rels")) and member.filename not in (sheet_part, strings_part)
    )
    needed = _openpyxl_needs(sheet, strings, other_xml)
    if needed > budget:
        raise _too_large(needed)
    return ReadingPlan(sheet=place, has_formulas=sheet.has_formulas, streamed=True, last_row=sheet.rows)


def _calamine_needs(file_size, sheet, strings):
    """The file, the shared strings, the cell list, the grid, and the texts: copies of shared
    ones, and inline ones (at most the sheet's XML less about 40 bytes of markup per cell, each
    with its allocation)."""
    table = strings.xml_bytes + _CALAMINE_PER_STRING * strings.count
    cells = _CALAMINE_PER_CELL * sheet.cells + _CALAMINE_PER_GRID_CELL * sheet.columns * sheet.rows
    inline = sheet.xml_bytes - 40 * sheet.cells
    texts = sheet.cells * strings.longest + (inline + 16 * sheet.cells if inline > 0 else 0)
    return file_size + table + cells + texts


def _openpyxl_needs(sheet, strings, other_xml):
    """Shared strings, row attributes and the other parts; with formulas, the workbook is opened twice."""
    needed = (
        _OPENPYXL_PER_STRING * strings.count
        + 3 * strings.xml_bytes
        + _OPENPYXL_PER_OTHER_XML_BYTE * other_xml
        + _OPENPYXL_PER_ROW * sheet.row_elements
        + _OPENPYXL_PER_ROW_CELL * sheet.widest_row
    )
    return needed * (2 if sheet.has_formulas else 1)


#: Comments, CDATA sections and processing instructions (but the XML declaration) hold text that
#: :func:`_tags` would take for elements, and the readers' XML parsers do not: a `<sheet>` in a
#: comment had the scan measure another sheet than the one read. No program writes them there.
_NOT_ELEMENTS = re.compile(r"<!--|<!\[CDATA\[|<\?(?!xml[\s?])")


def _small_part(archive, name):
    info = archive.getinfo(name)
    if info.file_size > _SMALL_PART:
        raise _unusual()
    data = archive.read(info)
    _check_text(data)
    text = data.decode("utf-8", errors="replace")
    if _NOT_ELEMENTS.search(text):
        raise _unusual()
    return text


_TAG_ATTRIBUTES = r"""((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*/?>"""
_ATTRIBUTE = re.compile(r"""([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def _tags(text, name):
    """The attributes of every ``name`` element of small XML, in document order."""
    for match in re.finditer(r"<(?:[\w.-]+:)?" + name + r"(?=[\s/>])" + _TAG_ATTRIBUTES, text):
        yield {a[1]: unescape(a[2] if a[2] is not None else a[3]) for a in _ATTRIBUTE.finditer(match[1])}


def _chosen_sheet(archive, names):
    """The place and the part of the sheet read (:func:`visible_sheet`), found as python-calamine
    and openpyxl both find it."""
    sheets = list(_tags(_small_part(archive, "xl/workbook.xml"), "sheet"))
    rels = "xl/_rels/workbook.xml.rels"
    if rels not in names:
        raise _unusual()
    place = visible_sheet([sheet.get("state") not in ("hidden", "veryHidden") for sheet in sheets])
    sheet = sheets[place]
    # calamine takes `r:id` (or `relationships:id`), openpyxl the id of the relationships
    # namespace, whatever its prefix: a sheet element must have one id only.
    ids = [key for key in sheet if key.rpartition(":")[2] == "id"]
    if ids not in (["r:id"], ["relationships:id"]):
        raise _unusual()
    # Both keep the last relationship of an id.
    relation = {r.get("Id"): r for r in _tags(_small_part(archive, rels), "Relationship")}.get(sheet[ids[0]])
    if relation is None or not relation.get("Type", "").endswith("/worksheet"):
        raise _unusual()
    target = relation.get("Target", "")
    # calamine: "/xl/…" and "xl/…" as given, else under "xl/"; openpyxl: absolute, or relative to "xl/".
    calamine_path = target[1:] if target.startswith("/xl/") else target if target.startswith("xl/") else "xl/" + target
    openpyxl_path = target[1:] if target.startswith("/") else posixpath.normpath(posixpath.join("xl", target))
    if calamine_path != openpyxl_path or calamine_path not in names or not calamine_path.startswith("xl/worksheets/"):
        raise _unusual()
    return place, calamine_path


def _shared_strings_part(archive, names):
    """``xl/sharedStrings.xml`` (calamine reads that one); openpyxl reads what [Content_Types].xml
    declares, which must be the same part, and the workbook it declares must be ``xl/workbook.xml``."""
    types = list(_tags(_small_part(archive, "[Content_Types].xml"), "Override")) if "[Content_Types].xml" in names else []
    declared_strings = next((t.get("PartName", "") for t in types if t.get("ContentType") == _SHARED_STRINGS_TYPE), None)
    workbooks = {t.get("PartName") for t in types if _WORKBOOK_TYPES.match(t.get("ContentType", ""))}
    if workbooks - {"/xl/workbook.xml"}:
        raise _unusual()
    part = next((name for name in names if name.lower() == "xl/sharedstrings.xml"), None)
    if declared_strings is not None and declared_strings[1:] != part:
        raise _unusual()
    return part


def _check_text(start):
    """The scans read UTF-8 (or any ASCII-based encoding); a part in UTF-16 would slip past them,
    and openpyxl would still read it."""
    if start.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in start[:1024]:
        raise _unusual()
    if _DECLARATION.search(start):
        raise _xml_declarations()


def _xml_declarations():
    return FileProblem(
        _("The workbook holds XML declarations (DOCTYPE or ENTITY) that are not allowed; it is refused.")
    )


def _xml_pieces(archive, name):
    """A part's XML in pieces of about a megabyte; each ends before a tag, so no tag of up to
    64 KB is cut."""
    carry = b""
    with archive.open(name) as part:
        while chunk := part.read(_PIECE):
            buffer = carry + chunk
            cut = buffer.rfind(b"<", max(0, len(buffer) - _CARRY))
            if cut == -1:
                cut = len(buffer)
            yield buffer[:cut]
            carry = buffer[cut:]
    if carry:
        yield carry


# A cell as Excel, LibreOffice and openpyxl write it: `<c r="B7"…`. Anything else — a cell
# without `r` (its place then follows from the cells before it), odd spacing or quoting, a
# prefixed element — sends the sheet to the exact, slower scan. Each search below starts with
# a literal, which Python's `re` finds quickly; one search with alternatives was 4× slower.
_PLAIN_CELL = re.compile(rb'<c r="([A-Z]{1,3})([1-9][0-9]{0,6})"')
_EMPTY_CELL = re.compile(rb'<c r="[A-Z]+[0-9]+"(?:\s+[\w:.-]+="[^"<>/]*")*\s*/>')
_PREFIXED = re.compile(rb":(?:c|f)[\s/>]")
_FORMULA = re.compile(rb"<f[\s/>]")
_DECLARATION = re.compile(rb"<!(?:DOCTYPE|ENTITY)")
_DIMENSION = re.compile(rb'<dimension ref="(?:[A-Z]+[0-9]+:)?([A-Z]{1,3})([0-9]{1,7})"')


@functools.lru_cache(maxsize=512)
def _cell_beyond(columns, rows):
    """Finds a cell not written plainly, or beyond ``columns`` × ``rows``."""
    return re.compile(
        rb'<c(?:[\t\n\r/>]| (?!r="(?:' + _letters_at_most(columns) + rb")(?:" + _number_at_most(rows) + rb')"))'
    )


def _number_at_most(limit):
    """A regular expression for the numbers 1 to ``limit`` (without leading zeros)."""
    digits = str(limit)
    choices = [rf"[1-9][0-9]{{0,{len(digits) - 2}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):
        lowest = 1 if i == 0 else 0
        if int(digit) > lowest:
            choices.append(f"{digits[:i]}[{lowest}-{int(digit) - 1}]" + "[0-9]" * (len(digits) - i - 1))
    choices.append(digits)
    return "|".join(choices).encode()


def _letters_at_most(limit):
    """A regular expression for the column letters A to the ``limit``-th column."""
    letters = get_column_letter(limit)
    choices = [f"[A-Z]{{1,{len(letters) - 1}}}"] if len(letters) > 1 else []
    for i, letter in enumerate(letters):
        if letter > "A":
            choices.append(f"{letters[:i]}[A-{chr(ord(letter) - 1)}]" + "[A-Z]" * (len(letters) - i - 1))
    choices.append(letters)
    return "|".join(choices).encode()


class _NotPlain(Exception):
    """The sheet is not written the plain way; it is scanned exactly instead."""


def _scan_sheet(archive, name):
    try:
        return _fast_scan(archive, name)
    except _NotPlain:
        return _exact_scan(archive, name)


def _fast_scan(archive, name):
    """A few C-speed searches per piece. Where every cell has its `r`, rows do not place cells
    (python-calamine places them by `r`; openpyxl is stopped at the last row found here). The
    extent starts from the `<dimension>` when that is within the limits (only a hint: every
    cell is checked against it) and grows by a quarter past each cell found beyond it, so that
    rows written in order cost a few dozen searches, not one per row."""
    max_columns, max_rows = _limits()
    scan = _SheetScan()
    formatted_beyond = 0
    for number, piece in enumerate(_xml_pieces(archive, name)):
        if number == 0:
            _check_text(piece)
            dimension = _DIMENSION.search(piece)
            columns, rows = (_column_number(dimension[1].decode()), int(dimension[2])) if dimension else (1, 1)
            scan.columns = columns if columns <= max_columns else 1
            scan.rows = max(8192, min(rows, 65_536)) if rows <= max_rows else 8192
        scan.xml_bytes += len(piece)
        scan.cells += piece.count(b"<c ")
        if _PREFIXED.search(piece):
            raise _NotPlain
        scan.has_formulas = scan.has_formulas or bool(_FORMULA.search(piece))
        position = 0
        while found := _cell_beyond(scan.columns, scan.rows).search(piece, position):
            position = found.end()
            cell = _PLAIN_CELL.match(piece, found.start())
            if not cell:
                raise _NotPlain
            column, row = _column_number(cell[1].decode()), int(cell[2])
            if column > max_columns or row > max_rows:
                formatted_beyond += 1
                if _EMPTY_CELL.match(piece, found.start()) and formatted_beyond <= _MAX_FORMATTED_BEYOND:
                    continue  # formatting only: neither reader keeps a cell without a value
                raise _beyond_limits(column, row)
            scan.columns = max(scan.columns, column)
            scan.rows = max(scan.rows, min(max_rows, row + row // 4))
    return scan


_ANY_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(c|row|f)(?=[\s/>])")
_WHOLE_TAG = re.compile(rb"""<(/?)(?:[\w.-]+:)?(?:c|row|f)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(/?)>""")
_XML_ATTRIBUTE = re.compile(rb"""([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_REFERENCE = re.compile(rb"([A-Za-z]*)([0-9]+)")


def _exact_scan(archive, name):
    """Every cell's place as python-calamine reckons it: from its `r`, else the cell after the
    one before in the row, in the row after the one before. Python per tag: for unusual sheets."""
    max_columns, max_rows = _limits()
    scan = _SheetScan(row_elements=0)
    row_index = column_index = in_row = tags = 0  # zero-based, as calamine counts
    for number, piece in enumerate(_xml_pieces(archive, name)):
        if number == 0:
            _check_text(piece)
        scan.xml_bytes += len(piece)
        for start in _ANY_TAG.finditer(piece):
            tag = _WHOLE_TAG.match(piece, start.start())
            tags += 1
            if not tag or tags > _MAX_EXACT_TAGS or scan.row_elements > _MAX_ROW_ELEMENTS:
                raise _unusual()
            closing, kind, attributes, empty = tag[1], start[2], tag[2], tag[3]
            if kind == b"f":
                scan.has_formulas = scan.has_formulas or not closing
                continue
            if kind == b"row":
                if not closing:
                    scan.row_elements += 1
                    in_row = 0
                    if reference := _attribute_r(attributes):
                        row_index = _position(reference)[1] - 1
                if closing or empty:
                    row_index, column_index = row_index + 1, 0
                continue
            if closing:
                continue
            if reference := _attribute_r(attributes):
                column, row = _position(reference)
                if not column:
                    raise _unusual()
            else:
                column, row = column_index + 1, row_index + 1
            column_index = column
            in_row += 1
            scan.cells += 1
            scan.widest_row = max(scan.widest_row, in_row)
            if in_row > _MAX_CELLS_PER_ROW:
                raise _unusual()
            if not empty:
                if column > max_columns or row > max_rows:
                    raise _beyond_limits(column, row)
                scan.columns, scan.rows = max(scan.columns, column), max(scan.rows, row)
    return scan


def _attribute_r(attributes):
    for match in _XML_ATTRIBUTE.finditer(attributes):
        if match[1] == b"r":
            return match[2] if match[2] is not None else match[3]
    return None


def _position(reference):
    """``(column, row)`` of a reference such as ``B7`` (a row's ``r`` has no letters: column 0)."""
    match = _REFERENCE.fullmatch(reference)
    if not match or len(match[1]) > 3 or len(match[2]) > 9 or int(match[2]) == 0:
        raise _unusual()
    return _column_number(match[1].decode()), int(match[2])


_ROW_START = re.compile(rb"<(?:[\w.-]+:)?row[\s/>]")
_CELL_START = re.compile(rb"<(?:[\w.-]+:)?c[\s/>]")


def _row_sizes(archive, name):
    """How many row elements the sheet has, and the most cell elements in one of them
    (what openpyxl holds at once); only for workbooks that openpyxl will read."""
    rows = widest = in_row = 0
    for piece in _xml_pieces(archive, name):
        parts = _ROW_START.split(piece)
        rows += len(parts) - 1
        in_row += len(_CELL_START.findall(parts[0]))
        for part in parts[1:]:
            widest = max(widest, in_row)
            in_row = len(_CELL_START.findall(part))
        if max(widest, in_row) > _MAX_CELLS_PER_ROW or rows > _MAX_ROW_ELEMENTS:
            raise _unusual()
    return rows, max(widest, in_row)


_STRING_START = re.compile(rb"<(?:[\w.-]+:)?si[\s/>]")


def _scan_shared_strings(archive, name):
    """How many shared strings, and the longest (its XML): calamine copies a shared string into
    every cell that shows it."""
    strings = _SharedStrings()
    length = None  # of the string still open at the end of the last piece
    for piece in _xml_pieces(archive, name):
        if not strings.xml_bytes:
            _check_text(piece)
        strings.xml_bytes += len(piece)
        parts = piece.split(b"<si>")
        if piece.count(b"<si") != len(parts) - 1 or b":si" in piece:  # `<si ` or a prefix: rarely
            parts = _STRING_START.split(piece)
        if length is not None:
            length += len(parts[0])
        if len(parts) > 1:
            strings.count += len(parts) - 1
            strings.longest = max(strings.longest, length or 0, max(map(len, parts[1:-1]), default=0))
            length = len(parts[-1])
    strings.longest = max(strings.longest, length or 0)
    return strings


# --- XLS -------------------------------------------------------------------------------------------------

_XLS_EOF, _XLS_BOUNDSHEET, _XLS_SST, _XLS_CONTINUE, _XLS_FILEPASS, _XLS_DIMENSIONS = 0x000A, 0x0085, 0x00FC, 0x003C, 0x002F, 0x0200
_XLS_NUMBER, _XLS_LABEL, _XLS_BOOLERR, _XLS_RK, _XLS_LABELSST = 0x0203, 0x0204, 0x0205, 0x027E, 0x00FD
_XLS_MULRK, _XLS_FORMULA, _XLS_STRING = 0x00BD, 0x0006, 0x0207
_XLS_CELLS = {_XLS_NUMBER, _XLS_LABEL, _XLS_BOOLERR, _XLS_RK, _XLS_LABELSST, _XLS_FORMULA, _XLS_MULRK}
_TWO_NUMBERS = struct.Struct("<HH")


def check_xls(stream, size):
    """Walk the workbook's records as python-calamine will read them — every sheet, at once —
    and refuse what would not fit: a cell of the sheet read beyond the limits, declared sizes
    that calamine would reserve, or more memory than allowed in all."""
    budget = conf.get("IMPORT_MAX_READER_MEMORY")
    if 2 * size > budget:  # calamine holds the file and a copy of its workbook stream
        raise _too_large(2 * size)
    data = stream.read()
    stream.seek(0)
    if _ENCRYPTION_INFO in data:
        raise FileProblem(_("The workbook is password-protected. Save it without a password and try again."))
    try:
        place, needed = _xls_needs(_workbook_stream(data))
    except (struct.error, IndexError, ValueError):
        raise _unusual()
    needed += 2 * size
    if needed > budget:
        raise _too_large(needed)
    return ReadingPlan(sheet=place)


def _workbook_stream(data):
    from xlrd.compdoc import CompDoc, CompDocError

    try:
        document = CompDoc(data, logfile=io.StringIO())
        for name in ("Workbook", "Book"):
            memory, base, length = document.locate_named_stream(name)
            if memory is not None:
                return memoryview(memory)[base : base + length]
    except CompDocError:
        pass
    raise FileProblem(_("The workbook could not be read: %(error)s") % {"error": "no workbook stream"})


def _xls_records(book, position):
    while position + 4 <= len(book):
        kind, length = struct.unpack_from("<HH", book, position)
        yield kind, book[position + 4 : position + 4 + length]
        if kind == _XLS_EOF:
            return
        position += 4 + length


def _xls_needs(book):
    """The place of the sheet read, and what calamine holds for the whole workbook."""
    sheets, shown, string_parts, in_strings = [], [], [], False
    for kind, record in _xls_records(book, 0):
        if kind == _XLS_CONTINUE and in_strings:
            string_parts.append(record)
            continue
        in_strings = kind == _XLS_SST
        if kind == _XLS_FILEPASS and struct.unpack_from("<H", record)[0]:
            raise FileProblem(_("The workbook is password-protected. Save it without a password and try again."))
        if kind == _XLS_BOUNDSHEET:
            sheets.append(struct.unpack_from("<I", record)[0])
            shown.append(record[4] & 0x03 == 0)  # hsState: 0 visible, 1 hidden, 2 very hidden
        elif kind == _XLS_SST:
            string_parts = [record]
    chosen = visible_sheet(shown)
    sizes = _xls_string_sizes(string_parts) if string_parts else array("Q")
    needed = _CALAMINE_PER_STRING * len(sizes) + sum(sizes)
    for place, offset in enumerate(sheets):
        needed += _xls_sheet_needs(book, offset, sizes, read=place == chosen)
    return chosen, needed


def _xls_string_sizes(parts):
    """The most bytes each shared string takes once decoded, read from the SST record and its
    CONTINUE records (a string's characters may go on in the next record, after a flags byte)."""
    count = struct.unpack_from("<i", parts[0], 4)[0]
    if not 0 <= count <= sum(map(len, parts)) // 3:
        raise _unusual()  # a count the records cannot hold: a damaged or forged string table
    sizes = array("Q")
    part, data, position = 0, parts[0], 8
    for _string in range(count):
        if position >= len(data):
            part, position = part + 1, 0
            data = parts[part]
        characters, flags = struct.unpack_from("<HB", data, position)
        position += 3
        skip = 0
        if flags & 0x8:
            skip += 4 * struct.unpack_from("<H", data, position)[0]
            position += 2
        if flags & 0x4:
            skip += struct.unpack_from("<I", data, position)[0]
            position += 4
        wide, size = flags & 0x1, 0
        while True:
            taken = min(characters, (len(data) - position) // (2 if wide else 1))
            position += taken * (2 if wide else 1)
            characters -= taken
            size += taken * (3 if wide else 2)
            if not characters:
                break
            part, data = part + 1, parts[part + 1]
            wide, position = data[0] & 0x1, 1
        while skip:
            step = min(skip, len(data) - position)
            position, skip = position + step, skip - step
            if skip:
                part, data, position = part + 1, parts[part + 1], 0
        sizes.append(size)
    return sizes


def _xls_sheet_needs(book, offset, sizes, *, read):
    """What calamine holds for one sheet: the cell list (or what the DIMENSIONS record makes it
    reserve), the grid, the texts copied into cells, and the formulas as text; the cells of
    the sheet ``read`` must lie within the limits. A plain loop: a sheet may have a million
    records."""
    max_columns, max_rows = _limits()
    unpack, pair = struct.unpack_from, _TWO_NUMBERS.unpack_from
    cells = reserved = texts = formula_text = 0
    low_row = low_column = 1 << 32
    high_row = high_column = -1
    position, end = offset, len(book)
    while position + 4 <= end:
        kind, length = pair(book, position)
        body, position = position + 4, position + 4 + length
        if kind in _XLS_CELLS:
            row, column = pair(book, body)
            first_column = column
            if kind == _XLS_LABELSST:
                index = unpack("<I", book, body + 6)[0]
                texts += sizes[index] if index < len(sizes) else 0
            elif kind == _XLS_MULRK:
                cells += (length - 6) // 6 - 1
                column = unpack("<H", book, position - 2)[0]
            elif kind == _XLS_LABEL:
                texts += 3 * unpack("<H", book, body + 6)[0]
            elif kind == _XLS_FORMULA:
                formula_text += 4 * length
            cells += 1
            if row < low_row:
                low_row = row
            if row > high_row:
                high_row = row
                if read and row + 1 > max_rows:
                    raise _beyond_limits(column + 1, row + 1)
            if first_column < low_column:
                low_column = first_column
            if column > high_column:
                high_column = column
                if read and column + 1 > max_columns:
                    raise _beyond_limits(column + 1, row + 1)
        elif kind == _XLS_STRING:
            texts += 3 * unpack("<H", book, body)[0]
        elif kind == _XLS_DIMENSIONS:
            first_row, last_row, first_column, last_column = unpack("<IIHH" if length == 14 else "<HHHH", book, body)
            if last_row and last_column:
                # calamine reserves room for this many cells, and would compute a negative size.
                if first_row >= last_row or first_column >= last_column or last_row > 65_536 or last_column > 256:
                    raise _unusual()
                reserved = (last_row - first_row) * (last_column - first_column)
        elif kind == _XLS_EOF:
            break
    grid = (high_row - low_row + 1) * (high_column - low_column + 1) if cells else 0
    return (
        _CALAMINE_PER_CELL * max(cells, reserved)
        + _CALAMINE_PER_GRID_CELL * grid
        + texts
        + (24 * grid + formula_text if formula_text else 0)
    )
