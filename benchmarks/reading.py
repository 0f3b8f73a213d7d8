#!/usr/bin/env python
"""Reading uploaded spreadsheets: time and peak memory of the largest files of each kind
(docs/performance.md, "Reading spreadsheets").

    .venv/bin/python benchmarks/reading.py [--quick] [--only NAME,...] [--keep-files]

Each measurement runs in a new process with the test settings (no database): it calls
``open_spreadsheet`` (the checks and scans; "open s") and reads every row (``rows()``;
"total s" includes the open). Peak RSS is the process's VmHWM; "base" is that peak once
Django is set up, before the file is touched. A refused file reports its message. The files
are written to a temporary directory first; writing them is not timed. Results are also
written to benchmarks/reading-results.json (generated; not committed).
"""

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
from xml.sax.saxutils import escape

from openpyxl.utils.cell import get_column_letter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, REPO_ROOT)
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"

from benchmarks.run import HEADERS, import_row, write_csv, write_xlsx  # noqa: E402

RESULTS_FILE = os.path.join(HERE, "reading-results.json")
MB = 1024 * 1024


# --- Files ---------------------------------------------------------------------------------------------


def _workbook(path, sheet_rows, strings=(), dimension="A1"):
    """A workbook as Excel writes it: a `<dimension>`, `r` on every row and cell, shared strings."""
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
            "</Types>"
        ),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        ),
        "xl/workbook.xml": (
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
            '<sheets><sheet name="Customers" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
            "</Relationships>"
        ),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w") as sheet:
            sheet.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="%s"/><sheetData>'
                % dimension.encode()
            )
            for row in sheet_rows:
                sheet.write(row)
            sheet.write(b"</sheetData></worksheet>")
        with archive.open("xl/sharedStrings.xml", "w") as table:
            table.write(b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')
            for text in strings:
                table.write(b"<si><t>" + escape(text).encode() + b"</t></si>")
            table.write(b"</sst>")


def write_shared_strings_xlsx(path, rows, columns=14):
    """``rows`` customers in 14 columns (two people per row), as Excel saves them: each distinct
    text once in the shared strings."""
    letters = [get_column_letter(i + 1).encode() for i in range(columns)]
    values = [(HEADERS * 2)[:columns]] + [(import_row(i) + import_row(i + 1_000_000))[:columns] for i in range(rows)]
    index = {}
    for row in values:
        for text in row:
            index.setdefault(text, len(index))

    def sheet_rows():
        for number, row in enumerate(values, 1):
            cells = b"".join(b'<c r="%s%d" t="s"><v>%d</v></c>' % (letters[k], number, index[text]) for k, text in enumerate(row))
            yield b'<row r="%d">%s</row>' % (number, cells)

    _workbook(path, sheet_rows(), index, f"A1:{get_column_letter(columns)}{rows + 1}")


def write_inline_xlsx(path, rows, columns=14):
    """The same 14 columns written by openpyxl in write-only mode (as the app exports): inline texts."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Customers")
    sheet.append((HEADERS * 2)[:columns])
    for i in range(rows):
        sheet.append((import_row(i) + import_row(i + 1_000_000))[:columns])
    workbook.save(path)


def write_sparse_xlsx(path, last_row):
    """Two cells: A1 and CV``last_row``; python-calamine holds the grid between them."""
    rows = [b'<row r="1"><c r="A1" t="s"><v>0</v></c></row>', b'<row r="%d"><c r="CV%d"><v>1</v></c></row>' % (last_row, last_row)]
    _workbook(path, rows, ["Name"], f"A1:CV{last_row}")


def write_far_cell_xlsx(path):
    _workbook(path, [b'<row r="1"><c r="A1"><v>1</v></c></row>', b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'], dimension="A1:XFD1048576")


def write_one_line(path, size=200 * MB - 1024):
    with open(path, "wb") as handle:
        handle.write(b"Name,Email,")
        block = b"x" * MB
        for _ in range(size // MB):
            handle.write(block)


# --- One measurement, in its own process ----------------------------------------------------------------


def high_water_mb():
    """This process's peak RSS in MiB. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from
    the parent through fork and exec, so a child would report the parent's size as its own."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def read_file(path, options, limits):
    import django
    from django.conf import settings

    django.setup()
    settings.WAGTAIL_CLIENTDB = limits
    from wagtail_clientdb.imports.reading import FileProblem, open_spreadsheet

    result = {"base_mb": round(high_water_mb())}
    start = time.perf_counter()
    try:
        with open(path, "rb") as upload:
            sheet = open_spreadsheet(upload, **options)
            result["open_s"] = round(time.perf_counter() - start, 3)
            result["reader"] = "openpyxl" if sheet.streamed else "calamine" if sheet.format != "csv" else "csv"
            result["rows"] = sum(1 for _row in sheet.rows())
    except FileProblem as problem:
        result["refused"] = str(problem)
    result["total_s"] = round(time.perf_counter() - start, 3)
    result["peak_mb"] = round(high_water_mb())
    return result


def walk_xls_records(count):
    """The XLS check's walk over ``count`` cell records (a sheet of 14 columns), without the file around it."""
    import django

    django.setup()
    from array import array

    from wagtail_clientdb.imports.workbook_limits import _xls_sheet_needs

    records = bytearray()
    for i in range(count):
        row, column = divmod(i, 14)
        records += struct.pack("<HHHHHI", 0x00FD, 10, row, column, 15, i % 1000)
    records += struct.pack("<HH", 0x000A, 0)
    start = time.perf_counter()
    _xls_sheet_needs(memoryview(bytes(records)), 0, array("Q", [40] * 1000), read=True)
    return {"records": count, "walk_s": round(time.perf_counter() - start, 3)}


# --- The parent -------------------------------------------------------------------------------------------


def files(scale):
    """The files measured, by name, and how each is written."""
    rows_1m, rows_100k = 1_000_000 // scale, 100_000 // scale
    # A grid just within the default IMPORT_MAX_READER_MEMORY (224 MB; the scan adds a quarter
    # to the last row it saw, and calamine holds 32 bytes per grid cell).
    at_budget = int(224 * MB / 32 / 100 / 1.25 * 0.97)
    return {
        "customers-1m.csv": lambda path: write_csv(path, rows_1m),
        "customers-100k.xlsx": lambda path: write_xlsx(path, rows_100k),
        "customers-100k-14.xlsx": lambda path: write_shared_strings_xlsx(path, rows_100k),
        "customers-100k-14-inline.xlsx": lambda path: write_inline_xlsx(path, rows_100k),
        "sparse.xlsx": lambda path: write_sparse_xlsx(path, at_budget),
        "far.xlsx": write_far_cell_xlsx,
        "one-line.csv": write_one_line,
    }


#: Measurement → (file, open_spreadsheet's options, WAGTAIL_CLIENTDB settings).
MEASUREMENTS = {
    "csv-1m": ("customers-1m.csv", {}, {}),
    "xlsx-100k": ("customers-100k.xlsx", {}, {}),
    "xlsx-100k-14-shared": ("customers-100k-14.xlsx", {}, {}),
    "xlsx-100k-14-inline": ("customers-100k-14-inline.xlsx", {}, {}),
    # The same file as xlsx-100k, with less memory allowed than calamine's estimate for it.
    "xlsx-100k-streamed": ("customers-100k.xlsx", {}, {"IMPORT_MAX_READER_MEMORY": 64 * MB}),
    "xlsx-sparse-at-budget": ("sparse.xlsx", {}, {}),
    "xlsx-far-cell": ("far.xlsx", {}, {}),
    "csv-200mb-line": ("one-line.csv", {}, {}),
    "csv-200mb-line-encoding-chosen": ("one-line.csv", {"encoding": "utf-8", "delimiter": ","}, {}),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="files at 1/100 of the rows (a smoke check)")
    parser.add_argument("--only", help="comma-separated measurements (default: all)")
    parser.add_argument("--keep-files", action="store_true", help="keep the temporary directory")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        job = json.loads(args.one)
        print(json.dumps(walk_xls_records(job["walk"]) if job["walk"] else read_file(**job["read"]), ensure_ascii=False))
        return
    scale = 100 if args.quick else 1
    makers = files(scale)
    chosen = args.only.split(",") if args.only else [*MEASUREMENTS, "xls-walk"]
    workdir = tempfile.mkdtemp(prefix="clientdb-reading-")
    results = {}
    try:
        for name in chosen:
            if name == "xls-walk":
                results[name] = _child({"walk": 65_536 * 14 // scale})
            else:
                filename, options, limits = MEASUREMENTS[name]
                path = os.path.join(workdir, filename)
                if not os.path.exists(path):
                    makers[filename](path)
                job = {"walk": 0, "read": {"path": path, "options": options, "limits": limits}}
                results[name] = {"file_mb": round(os.path.getsize(path) / MB, 1), **_child(job)}
            print(f"{name:32} {json.dumps(results[name], ensure_ascii=False)}", flush=True)
    finally:
        if args.keep_files:
            print(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    with open(RESULTS_FILE, "w") as handle:
        json.dump(results, handle, indent=2, ensure_ascii=False)


def _child(job):
    output = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one", json.dumps(job)], capture_output=True, text=True, cwd=REPO_ROOT
    )
    if output.returncode:
        return {"crashed": output.returncode, "stderr": output.stderr[-500:]}
    return json.loads(output.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
