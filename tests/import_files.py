"""Real spreadsheet files for import tests, made the way spreadsheet programs make them."""

import io
from pathlib import Path

import openpyxl

FILES = Path(__file__).parent / "files"


def csv_bytes(rows, *, delimiter=",", encoding="utf-8", line_end="\r\n"):
    def cell(value):
        text = "" if value is None else str(value)
        if any(ch in text for ch in (delimiter, '"', "\n", "\r")):
            text = '"' + text.replace('"', '""') + '"'
        return text

    text = line_end.join(delimiter.join(cell(value) for value in row) for row in rows) + line_end
    return text.encode(encoding)


def xlsx_bytes(rows, *, title_row=None):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    if title_row:
        sheet.append([title_row])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(len(r) for r in rows))
    for row in rows:
        sheet.append(row)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def xlsx_sheets_bytes(sheets):
    """A workbook of several sheets, ``(title, rows, state)`` each in tab order; a state of
    "hidden" or "veryHidden" hides the sheet, as Excel does (the second from VBA only)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows, state in sheets:
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
        sheet.sheet_state = state
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def xls_sheets_bytes(sheets):
    """:func:`xlsx_sheets_bytes` as an Excel 97–2003 workbook, written by xlwt (tablib's XLS writer)."""
    import xlwt

    workbook = xlwt.Workbook()
    for title, rows, state in sheets:
        sheet = workbook.add_sheet(title)
        sheet.visibility = {"visible": 0, "hidden": 1, "veryHidden": 2}[state]  # BOUNDSHEET's hsState
        for row_number, row in enumerate(rows):
            for column, value in enumerate(row):
                if value is not None:
                    sheet.write(row_number, column, value)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def fixture(name):
    return (FILES / name).read_bytes()


def refused_rows(job):
    """An import job's refused rows as the admin shows them (in the active language)."""
    from wagtail_clientdb.imports import runner

    return [runner.shown_refused_row(row) for row in job.invalid_rows]
