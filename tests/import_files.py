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


def fixture(name):
    return (FILES / name).read_bytes()


def refused_rows(job):
    """An import job's refused rows as the admin shows them (in the active language)."""
    from wagtail_clientdb.imports import runner

    return [runner.shown_refused_row(row) for row in job.invalid_rows]
