"""Opening uploaded spreadsheets safely, and reading their rows as they come.

The format is recognised from the file's content, not its name. Archives that unpack
into too much, encrypted workbooks, and files that are no spreadsheet at all are refused
with a message before any parsing. CSV text is decoded as UTF-8 (with or without BOM),
UTF-16 (Excel's "Unicode text") or Windows-1252, and its delimiter (comma, semicolon,
tab) is sniffed. Rows are read lazily, so memory does not grow with the file.

Workbooks are measured before a reader parses them (:mod:`.workbook_limits`); CSV lines
are bounded in length as they are read.
"""

import codecs
import csv
import datetime
import functools
import io
import re
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from .. import conf, stored_text
from .problems import FileProblem
from .workbook_limits import check_xls, check_xlsx, sheet_to_read

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


class FormulaWithoutValue:
    """A cell holding a formula whose result was never computed (saved by a program, not Excel)."""

    def __init__(self, formula):
        self.formula = formula

    def __str__(self):
        return self.formula


@dataclass
class SpreadsheetFile:
    """An opened upload: its format and, for CSV, how its text is written.

    A workbook's sheet at place ``sheet`` (its first visible one) is read by python-calamine,
    or streamed by openpyxl (``streamed``) when it holds formulas or is too large for calamine;
    ``last_row`` is as far as its cells go. Once the reader has opened the workbook
    (:meth:`rows`), ``sheet_name`` is the name of that sheet and ``other_sheets`` those of the
    workbook's other visible sheets, in tab order: the import names them, for a list that is
    on another sheet than the one read."""

    stream: object
    format: str
    sheet: int = 0
    encoding: str = ""
    delimiter: str = ""
    has_formulas: bool = False
    streamed: bool = False
    last_row: int = 0
    notes: list = field(default_factory=list)
    sheet_name: str = ""
    other_sheets: list = field(default_factory=list)

    def rows(self):
        """``(row number, cells)`` of every row, lazily, numbered as a spreadsheet shows them;
        blank rows (often just styled) are skipped."""
        max_rows = conf.get("IMPORT_MAX_ROWS")
        max_columns = conf.get("IMPORT_MAX_COLUMNS")
        count = 0
        for number, row in _without_blank_rows(self._raw_rows()):
            count += 1
            if count > max_rows + 1:  # + a header row
                raise FileProblem(
                    _("The file has more than %(max)s rows. Split it into smaller files.") % {"max": f"{max_rows:,}"}
                )
            if len(row) > max_columns:
                raise FileProblem(
                    _("Row %(row)s has more than %(max)s columns.") % {"row": f"{number:,}", "max": max_columns}
                )
            yield number, row

    def _raw_rows(self):
        self.stream.seek(0)
        if self.format == CSV:
            yield from _csv_rows(self.stream, self.encoding, self.delimiter)
        elif self.format == XLSX and self.streamed:
            yield from _openpyxl_rows(self.stream, self._choose_sheet, self.last_row, with_formulas=self.has_formulas)
        else:
            yield from _calamine_rows(self.stream, self._choose_sheet)

    def _choose_sheet(self, sheets):
        """The name of the sheet to read (:func:`sheet_to_read`), of ``sheets`` as the reader that
        opened the workbook lists them: (name, shown) in tab order. The names are kept from this
        list, so that finding them takes no other look into the file."""
        self.sheet_name = sheet_to_read(self.sheet, sheets)
        self.other_sheets = [name for place, (name, shown) in enumerate(sheets) if shown and place != self.sheet]
        return self.sheet_name


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
        plan = check_xlsx(stream, size)
        return SpreadsheetFile(
            stream,
            XLSX,
            sheet=plan.sheet,
            has_formulas=plan.has_formulas,
            streamed=plan.streamed,
            last_row=plan.last_row,
        )
    if head.startswith(_OLE2):
        return SpreadsheetFile(stream, XLS, sheet=check_xls(stream, size).sheet)
    for magic, name in _OTHER_FORMATS:
        if name and head.startswith(magic):
            raise FileProblem(
                _("This is a %(kind)s file, not a spreadsheet. Upload a CSV, XLSX or XLS file.") % {"kind": name}
            )
    return _open_csv(stream, encoding, delimiter)


def _cell(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time(0):
        return value.date()
    return value


def _calamine_rows(stream, choose_sheet):
    from python_calamine import CalamineError

    try:
        yield from _calamine_sheet_rows(stream, choose_sheet)
    except (CalamineError, ValueError, OSError) as error:
        if "password" in str(error).lower() or "encrypt" in str(error).lower():
            raise FileProblem(_("The workbook is password-protected. Save it without a password and try again."))
        raise FileProblem(_("The workbook could not be read: %(error)s") % {"error": error})


def _calamine_sheet_rows(stream, choose_sheet):
    """The rows of the sheet that ``choose_sheet`` names when given the workbook's sheets, (name, shown) each."""
    from python_calamine import CalamineWorkbook, SheetVisibleEnum

    stream.seek(0)
    workbook = CalamineWorkbook.from_filelike(stream)
    shown = [(each.name, each.visible == SheetVisibleEnum.Visible) for each in workbook.sheets_metadata]
    for row in workbook.get_sheet_by_name(choose_sheet(shown)).iter_rows():
        yield [_cell(value) for value in row]


def _openpyxl_sheet(workbook, choose_sheet):
    shown = [(name, workbook[name].sheet_state == "visible") for name in workbook.sheetnames]
    return workbook[choose_sheet(shown)]


def _openpyxl_rows(stream, choose_sheet, last_row, *, with_formulas):
    """Stream the rows of the sheet that ``choose_sheet`` names (:func:`_calamine_sheet_rows`); with
    formulas, values and formulas side by side, to flag formulas that have no computed value.
    ``last_row`` is passed on, as openpyxl would otherwise stop where the sheet's `<dimension>`
    says, and it may say less than there is."""
    import openpyxl

    max_col = conf.get("IMPORT_MAX_COLUMNS")
    workbooks = []
    try:
        for data_only in (True, False) if with_formulas else (True,):
            stream.seek(0)
            workbooks.append(openpyxl.load_workbook(stream, read_only=True, data_only=data_only))
        value_rows, *formula_rows = (
            _openpyxl_sheet(workbook, choose_sheet).iter_rows(max_col=max_col, max_row=last_row, values_only=True)
            for workbook in workbooks
        )
    except Exception as error:  # openpyxl raises many kinds of errors on broken files
        for workbook in workbooks:
            workbook.close()
        if isinstance(error, FileProblem):  # worded for the user already
            raise
        raise FileProblem(_("The workbook could not be read: %(error)s") % {"error": error})
    try:
        if not formula_rows:
            for value_row in value_rows:
                yield [_cell(value) for value in value_row]
            return
        for value_row, formula_row in zip(value_rows, formula_rows[0]):
            yield [
                FormulaWithoutValue(formula)
                if value is None and isinstance(formula, str) and formula.startswith("=")
                else _cell(value)
                for value, formula in zip(value_row, formula_row)
            ]
    finally:
        for workbook in workbooks:
            workbook.close()


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
        notes.append(stored_text.keep(gettext_noop("Encoding detected: %(encoding)s."), encoding=encoding))
    elif encoding not in ENCODINGS:
        raise FileProblem(_("Unknown encoding %(encoding)s.") % {"encoding": encoding})
    sample = _text_sample(stream, encoding)
    # A NUL in a cell is a row's problem; many of them mean the file is binary.
    if encoding != "utf-16" and sample.count("\x00") > max(2, len(sample) // 100):
        raise FileProblem(_("This file is not a text (CSV) file. Upload a CSV, XLSX or XLS file."))
    if not delimiter:
        delimiter = _sniff_delimiter(sample)
        if delimiter == "\t":
            notes.append(stored_text.keep(gettext_noop("Columns separated by tabs.")))
        else:
            notes.append(stored_text.keep(gettext_noop("Columns separated by: %(delimiter)s"), delimiter=delimiter))
    elif delimiter not in DELIMITERS:
        raise FileProblem(_("Unknown delimiter."))
    return SpreadsheetFile(stream, CSV, encoding=encoding, delimiter=delimiter, notes=notes)


def _csv_rows(stream, encoding, delimiter):
    text = io.TextIOWrapper(stream, encoding=encoding, newline="")
    try:
        yield from csv.reader(_bounded_lines(text), delimiter=delimiter)
    except csv.Error as error:
        raise FileProblem(_("The CSV file could not be read: %(error)s") % {"error": error})
    except UnicodeDecodeError:
        raise FileProblem(_("The file is not written in %(encoding)s. Choose its encoding.") % {"encoding": encoding})
    finally:
        text.detach()


def _bounded_lines(text):
    """The text's physical lines, each read with a bounded size: a longer line is refused before
    it is ever held whole. (The limit counts characters here, never fewer than the bytes'.)"""
    limit = conf.get("IMPORT_MAX_LINE_BYTES")
    for number, line in enumerate(iter(functools.partial(text.readline, limit + 1), ""), 1):
        if len(line) > limit:
            raise _line_too_long(number, limit)
        yield line


def _line_too_long(number, limit):
    return FileProblem(
        _("Line %(line)s of the file is longer than %(max)s KB: it is not a customer list, or its line breaks are missing.")
        % {"line": f"{number:,}", "max": limit // 1024}
    )


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
    """The file's lines as bytes; a line longer than the limit is refused as soon as it is seen,
    so the unfinished line carried between reads never grows past the limit."""
    limit = conf.get("IMPORT_MAX_LINE_BYTES")
    rest, number = b"", 0
    while chunk := stream.read(chunk_size):
        lines = chunk.split(b"\n")
        lines[0] = rest + lines[0]
        rest = lines.pop()
        if len(rest) > limit or max(map(len, lines), default=0) > limit:
            too_long = next((i for i, line in enumerate(lines) if len(line) > limit), len(lines))
            raise _line_too_long(number + too_long + 1, limit)
        number += len(lines)
        yield from lines
    if rest:
        yield rest


def _text_sample(stream, encoding, size=64 * 1024):
    data = stream.read(size)
    stream.seek(0)
    return data.decode(encoding, errors="ignore")


#: csv.Sniffer's patterns take time growing with the square of the text (16 s for a 64 KB line
#: of `a,"`): it is shown whole lines up to this size only.
_SNIFF_SIZE = 4096


def _sniff_delimiter(sample):
    lines = [line for line in sample.splitlines()[:50] if line.strip()]
    if not lines:
        raise FileProblem(_("The file is empty."))
    text = "\n".join(lines)
    if len(text) > _SNIFF_SIZE:
        cut = text.rfind("\n", 0, _SNIFF_SIZE)
        text = text[: cut if cut > 0 else _SNIFF_SIZE]
    try:
        sniffed = csv.Sniffer().sniff(text, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        # One column, or too irregular to sniff: the most frequent delimiter of the first line wins.
        counts = {d: len(re.findall(re.escape(d), lines[0])) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","
    # The sniffer trusts quoted cells first: one cell like =HYPERLINK("a","b") in a tab-separated
    # file made it comma-separated, of one column. A separator that splits every line into the
    # same number of columns wins over one that does not.
    if _splits_evenly(text, sniffed):
        return sniffed
    return next((d for d in DELIMITERS if _splits_evenly(text, d)), sniffed)


def _splits_evenly(text, delimiter):
    widths = {len(row) for row in csv.reader(io.StringIO(text), delimiter=delimiter) if row}
    return len(widths) == 1 and widths.pop() > 1
