"""Opening uploaded spreadsheets safely, and reading their rows as they come.

The format is recognised from the file's content, not its name. Archives that unpack
into too much, encrypted workbooks, and files that are no spreadsheet at all are refused
with a message before any parsing. CSV text is decoded as UTF-8 (with or without BOM),
UTF-16 (Excel's "Unicode text") or Windows-1252, and its delimiter (comma, semicolon,
tab) is sniffed. Rows are read lazily, so memory does not grow with the file.
"""

import codecs
import csv
import datetime
import io
import re
import zipfile
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from .. import conf

CSV, XLSX, XLS = "csv", "xlsx", "xls"
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "cp1252"]
DELIMITERS = [",", ";", "\t"]
#: Stop reading a worksheet after this many blank rows in a row (styled, empty rows).
MAX_BLANK_RUN = 1000

_OTHER_FORMATS = [
    (b"%PDF", "PDF"),
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"PK\x03\x04", None),  # zip: XLSX, or another Office document
]
_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTION_INFO = "EncryptionInfo".encode("utf-16-le")


class FileProblem(Exception):
    """A file that cannot be imported; the message is for the user."""


class FormulaWithoutValue:
    """A cell holding a formula whose result was never computed (saved by a program, not Excel)."""

    def __init__(self, formula):
        self.formula = formula

    def __str__(self):
        return self.formula


@dataclass
class SpreadsheetFile:
    """An opened upload: its format and, for CSV, how its text is written."""

    stream: object
    format: str
    encoding: str = ""
    delimiter: str = ""
    has_formulas: bool = False
    notes: list = field(default_factory=list)

    def rows(self):
        """``(row number, cells)`` of every row, lazily, numbered as a spreadsheet shows them;
        blank rows (often just styled) are skipped."""
        max_rows = conf.get("IMPORT_MAX_ROWS")
        count = 0
        for number, row in _without_blank_rows(self._raw_rows()):
            count += 1
            if count > max_rows + 1:  # + a header row
                raise FileProblem(
                    _("The file has more than %(max)s rows. Split it into smaller files.") % {"max": f"{max_rows:,}"}
                )
            yield number, row

    def _raw_rows(self):
        self.stream.seek(0)
        if self.format == CSV:
            text = io.TextIOWrapper(self.stream, encoding=self.encoding, newline="")
            try:
                yield from csv.reader(text, delimiter=self.delimiter)
            except csv.Error as error:
                raise FileProblem(_("The CSV file could not be read: %(error)s") % {"error": error})
            except UnicodeDecodeError:
                raise FileProblem(_("The file is not written in %(encoding)s. Choose its encoding.") % {"encoding": self.encoding})
            finally:
                text.detach()
        elif self.format == XLSX and self.has_formulas:
            yield from _openpyxl_rows(self.stream)
        else:
            yield from _calamine_rows(self.stream)


def open_spreadsheet(stream, *, encoding="", delimiter=""):
    """Recognise and check an uploaded file; ``encoding``/``delimiter`` override detection for CSV."""
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    if size == 0:
        raise FileProblem(_("The file is empty."))
    if size > conf.get("IMPORT_MAX_FILE_SIZE"):
        raise FileProblem(
            _("The file is larger than %(max)s MB.") % {"max": conf.get("IMPORT_MAX_FILE_SIZE") // (1024 * 1024)}
        )
    head = stream.read(8)
    stream.seek(0)
    if head.startswith(b"PK\x03\x04"):
        return SpreadsheetFile(stream, XLSX, has_formulas=_check_xlsx(stream))
    if head.startswith(_OLE2):
        _check_ole2(stream)
        return SpreadsheetFile(stream, XLS)
    for magic, name in _OTHER_FORMATS:
        if name and head.startswith(magic):
            raise FileProblem(
                _("This is a %(kind)s file, not a spreadsheet. Upload a CSV, XLSX or XLS file.") % {"kind": name}
            )
    return _open_csv(stream, encoding, delimiter)


# --- XLSX and XLS ----------------------------------------------------------------------------------------


def _check_xlsx(stream):
    """Refuse zip bombs and non-workbooks; returns whether the sheets hold formulas."""
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
    sheets = [m for m in members if m.filename.startswith("xl/worksheets/") and m.filename.endswith(".xml")]
    return any(_has_formula(archive, sheet) for sheet in sheets)


def _has_formula(archive, member):
    previous = b""
    with archive.open(member) as sheet:
        while chunk := sheet.read(1 << 20):
            window = previous + chunk
            if b"<f>" in window or b"<f " in window or b"<x:f" in window:
                return True
            previous = chunk[-8:]
    return False


def _check_ole2(stream):
    data = stream.read()
    stream.seek(0)
    if _ENCRYPTION_INFO in data:
        raise FileProblem(_("The workbook is password-protected. Save it without a password and try again."))


def _cell(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time(0):
        return value.date()
    return value


def _calamine_rows(stream):
    from python_calamine import CalamineError

    try:
        yield from _calamine_sheet_rows(stream)
    except (CalamineError, ValueError, OSError) as error:
        if "password" in str(error).lower() or "encrypt" in str(error).lower():
            raise FileProblem(_("The workbook is password-protected. Save it without a password and try again."))
        raise FileProblem(_("The workbook could not be read: %(error)s") % {"error": error})


def _calamine_sheet_rows(stream):
    from python_calamine import CalamineWorkbook

    stream.seek(0)
    sheet = CalamineWorkbook.from_filelike(stream).get_sheet_by_index(0)
    if sheet.width > conf.get("IMPORT_MAX_COLUMNS"):
        raise FileProblem(_("The worksheet has more than %(max)s columns.") % {"max": conf.get("IMPORT_MAX_COLUMNS")})
    for row in sheet.iter_rows():
        yield [_cell(value) for value in row]


def _openpyxl_rows(stream):
    """Read values and formulas side by side, to flag formulas that have no computed value."""
    import openpyxl

    max_col = conf.get("IMPORT_MAX_COLUMNS")
    try:
        values = openpyxl.load_workbook(stream, read_only=True, data_only=True)
        stream.seek(0)
        formulas = openpyxl.load_workbook(stream, read_only=True, data_only=False)
    except Exception as error:  # openpyxl raises many kinds of errors on broken files
        raise FileProblem(_("The workbook could not be read: %(error)s") % {"error": error})
    try:
        value_rows = values.worksheets[0].iter_rows(max_col=max_col, values_only=True)
        formula_rows = formulas.worksheets[0].iter_rows(max_col=max_col, values_only=True)
        for value_row, formula_row in zip(value_rows, formula_rows):
            yield [
                FormulaWithoutValue(formula)
                if value is None and isinstance(formula, str) and formula.startswith("=")
                else _cell(value)
                for value, formula in zip(value_row, formula_row)
            ]
    finally:
        values.close()
        formulas.close()


def _without_blank_rows(rows):
    """Skip blank rows; stop after a long run of them (styled empty rows to the sheet's end)."""
    blank_run = 0
    for number, row in enumerate(rows, 1):
        row = _trim(row)
        if not row:
            blank_run += 1
            if blank_run > MAX_BLANK_RUN:
                return
            continue
        blank_run = 0
        yield number, row


def _trim(row):
    end = len(row)
    while end and (row[end - 1] is None or (isinstance(row[end - 1], str) and not row[end - 1].strip())):
        end -= 1
    return list(row[:end])


# --- CSV ------------------------------------------------------------------------------------------------------


def _open_csv(stream, encoding, delimiter):
    notes = []
    if not encoding:
        encoding = _detect_encoding(stream)
        notes.append(_("Encoding detected: %(encoding)s.") % {"encoding": encoding})
    elif encoding not in ENCODINGS:
        raise FileProblem(_("Unknown encoding %(encoding)s.") % {"encoding": encoding})
    sample = _text_sample(stream, encoding)
    # A NUL in a cell is a row's problem; many of them mean the file is binary.
    if encoding != "utf-16" and sample.count("\x00") > max(2, len(sample) // 100):
        raise FileProblem(_("This file is not a text (CSV) file. Upload a CSV, XLSX or XLS file."))
    if not delimiter:
        delimiter = _sniff_delimiter(sample)
        notes.append(_("Columns separated by: %(delimiter)s") % {"delimiter": {",": ",", ";": ";", "\t": "tab"}[delimiter]})
    elif delimiter not in DELIMITERS:
        raise FileProblem(_("Unknown delimiter."))
    return SpreadsheetFile(stream, CSV, encoding=encoding, delimiter=delimiter, notes=notes)


def _detect_encoding(stream):
    """UTF-8 when every line decodes as UTF-8; Windows-1252 when lines with accents do not;
    refused when both kinds occur (a file pieced together from two sources)."""
    head = stream.read(4)
    stream.seek(0)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    first_utf8 = first_other = None
    try:
        for number, line in enumerate(_binary_lines(stream), 1):
            if line.isascii():
                continue
            try:
                line.decode("utf-8")
                first_utf8 = first_utf8 or number
            except UnicodeDecodeError:
                first_other = first_other or number
            if first_utf8 and first_other:
                raise FileProblem(
                    _(
                        "The file mixes character encodings: line %(utf8)s is UTF-8, line %(other)s is not. "
                        "Save it again as “CSV UTF-8” and try again."
                    )
                    % {"utf8": first_utf8, "other": first_other}
                )
    finally:
        stream.seek(0)
    return "cp1252" if first_other else "utf-8"


def _binary_lines(stream, chunk_size=1 << 20):
    rest = b""
    while chunk := stream.read(chunk_size):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _text_sample(stream, encoding, size=64 * 1024):
    data = stream.read(size)
    stream.seek(0)
    return data.decode(encoding, errors="ignore")


def _sniff_delimiter(sample):
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if not lines:
        raise FileProblem(_("The file is empty."))
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        # One column, or too irregular to sniff: the most frequent delimiter of the first line wins.
        counts = {d: len(re.findall(re.escape(d), lines[0])) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","
