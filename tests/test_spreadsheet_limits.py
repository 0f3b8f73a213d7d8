"""Spreadsheets are measured before they are read: far cells, huge lines and oversized workbooks
are refused with a message, in bounded memory.

A dangerous file is read in a child process limited to 1 GiB of address space: before these
checks, python-calamine asked for about 512 GiB for one cell at XFD1048576 and the process
aborted; a refusal must come as a message and a normal exit instead.
"""

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from tests.conftest import customer_url
from tests.import_files import csv_bytes, fixture, xls_sheets_bytes, xlsx_bytes, xlsx_sheets_bytes
from wagtail_clientdb.imports.reading import FileProblem, open_spreadsheet
from wagtail_clientdb.models import ImportJob

ROOT = Path(__file__).resolve().parent.parent
BEYOND = "A customer list may use columns A to CV and rows 1 to 1,000,001"

READ_IN_LIMITED_PROCESS = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
import django
django.setup()
from wagtail_clientdb.imports.reading import FileProblem, open_spreadsheet
for path in sys.argv[1:]:
    try:
        with open(path, "rb") as upload:
            output = "rows: %d" % sum(1 for _row in open_spreadsheet(upload).rows())
    except FileProblem as problem:
        output = f"refused: {problem}"
    print(json.dumps(output), flush=True)
"""


def read_in_limited_process(folder, files):
    """What reading each of ``files`` (name → bytes) prints, one after the other, in one child
    process with 1 GiB of address space (one process: Django takes a second to start)."""
    paths = []
    for name, data in files.items():
        paths.append(folder / name)
        paths[-1].write_bytes(data)
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", READ_IN_LIMITED_PROCESS, *map(str, paths)], capture_output=True, text=True, cwd=ROOT, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "MemoryError" not in result.stderr
    return dict(zip(files, map(json.loads, result.stdout.splitlines())))


def xlsx_with_sheet(sheet_data, *, dimension=b"A1:B2"):
    """A workbook saved by openpyxl whose sheet data (and `<dimension>`) are replaced, as an
    attacker, or another program, would write them."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["Name", "Email"], ["Anna", "anna@example.com"]])))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            data = source.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = re.sub(rb"<sheetData>.*</sheetData>", lambda _m: b"<sheetData>" + sheet_data + b"</sheetData>", data)
                data = re.sub(rb'<dimension ref="[^"]+"\s*/>', b'<dimension ref="' + dimension + b'"/>', data)
            target.writestr(name, data)
    return output.getvalue()


HEADER = b'<row r="1"><c r="A1" t="inlineStr"><is><t>Name</t></is></c><c r="B1" t="inlineStr"><is><t>Email</t></is></c></row>'
ANNA = b'<row r="2"><c r="A2" t="inlineStr"><is><t>Anna</t></is></c><c r="B2" t="inlineStr"><is><t>anna@example.com</t></is></c></row>'


def far_cell(reference):
    row = re.search(rb"[0-9]+", reference)[0]
    return HEADER + ANNA + b'<row r="' + row + b'"><c r="' + reference + b'"><v>1</v></c></row>'


# --- XLSX ------------------------------------------------------------------------------------------------


#: Sheets with a cell beyond the limits: (sheet data, `<dimension>`, the cell refused).
FAR_CELLS = {
    "at XFD1048576": (far_cell(b"XFD1048576"), b"A1:XFD1048576", "XFD1048576"),  # 512 GiB of grid for calamine
    "at XFD2000": (far_cell(b"XFD2000"), b"A1:XFD2000", "XFD2000"),  # 1 GB before the old column check
    "one row past": (far_cell(b"A1000002"), b"A1:B1000002", "A1000002"),
    "one column past": (far_cell(b"CW5"), b"A1:CW5", "CW5"),
    "under a lying dimension": (far_cell(b"XFD2000"), b"A1:B2", "XFD2000"),
    # Cells without `r` follow the cell before: the 101st of a row is in column CW.
    "101st cell without r": (HEADER + b'<row r="2">' + b'<c t="n"><v>1</v></c>' * 101 + b"</row>", b"A1:B2", "CW2"),
    # … and rows without `r` the row before.
    "row without r": (HEADER + b'<row r="1000001"><c r="A1000001"><v>1</v></c></row><row><c><v>1</v></c></row>', b"A1", "A1000002"),
    "cell without r after CV": (HEADER + b'<row r="2"><c r="CV2"><v>1</v></c><c><v>2</v></c></row>', b"A1:B2", "CW2"),
    # Written with a prefix, or odd quoting: the exact scan still finds the cell.
    "prefixed": (b'<x:row xmlns:x="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><x:c r="ZZ9"><x:v>1</x:v></x:c></x:row>', b"A1", "ZZ9"),
    "odd quoting": (HEADER + b"<row r='3'><c s='0'\n r='XFD3'><v>1</v></c></row>", b"A1:B2", "XFD3"),
}
#: Sheets within the limits that look far: (sheet data, `<dimension>`).
FINE_SHEETS = {
    # A huge `<dimension>` with small cells: the cells decide. calamine reserves room from the
    # dimension only below 100,000 cells, and openpyxl is told the last row.
    "huge dimension": (HEADER + ANNA, b"A1:XFD1048576"),
    # A cell that only carries formatting keeps no value in either reader: no refusal.
    "formatting far out": (HEADER + ANNA + b'<row r="1048576"><c r="XFD1048576" s="1"/></row>', b"A1:XFD1048576"),
    "cells and rows without r": (
        b"<row>" + b'<c t="inlineStr"><is><t>Name</t></is></c>' + b"</row><row>" + b'<c t="inlineStr"><is><t>Anna</t></is></c>' + b"</row>",
        b"A1",
    ),
}


@pytest.fixture(scope="module")
def xlsx_read_in_limited_process(tmp_path_factory):
    files = {f"{name}.xlsx": xlsx_with_sheet(data, dimension=dimension) for name, (data, dimension, *_cell) in FAR_CELLS.items()}
    files |= {f"{name}.xlsx": xlsx_with_sheet(data, dimension=dimension) for name, (data, dimension) in FINE_SHEETS.items()}
    rows = [["Name", "Email"], *[[f"Person {i}", f"p{i}@example.com"] for i in range(500)]]
    files |= {"normal.xlsx": xlsx_bytes(rows), "kunden.xls": fixture("kunden.xls")}
    return read_in_limited_process(tmp_path_factory.mktemp("limited"), files)


@pytest.mark.parametrize("case", FAR_CELLS)
def test_cells_beyond_the_limits_are_refused_before_reading(xlsx_read_in_limited_process, case):
    output = xlsx_read_in_limited_process[f"{case}.xlsx"]
    assert output.startswith("refused: The worksheet has a cell at " + FAR_CELLS[case][2])
    assert BEYOND in output


def test_far_cell_is_refused_at_upload(login, manager):
    response = login(manager).post(
        customer_url("import"), {"file": SimpleUploadedFile("far.xlsx", xlsx_with_sheet(far_cell(b"XFD1048576")))}
    )
    assert response.status_code == 200
    assert "The worksheet has a cell at XFD1048576" in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


def test_far_cell_is_refused_by_the_import_command(tmp_path, manager):
    path = tmp_path / "far.xlsx"
    path.write_bytes(xlsx_with_sheet(far_cell(b"XFD1048576")))
    with pytest.raises(CommandError, match="The worksheet has a cell at XFD1048576"):
        call_command("clientdb_import", str(path), "--dry-run", "--user", "manager", stdout=io.StringIO())


@pytest.mark.parametrize("case", FINE_SHEETS)
def test_sheets_within_the_limits_are_read(xlsx_read_in_limited_process, case):
    assert xlsx_read_in_limited_process[f"{case}.xlsx"] == "rows: 2"


def test_normal_workbooks_are_read_in_a_limited_process(xlsx_read_in_limited_process):
    assert xlsx_read_in_limited_process["normal.xlsx"] == "rows: 501"
    assert xlsx_read_in_limited_process["kunden.xls"] == "rows: 4"


def test_xml_declarations_in_a_sheet_are_refused():
    data = xlsx_with_sheet(HEADER + ANNA)
    data = xlsx_replacing(data, "xl/worksheets/sheet1.xml", lambda xml: b'<!DOCTYPE x [<!ENTITY e "e">]>' + xml)
    with pytest.raises(FileProblem, match="DOCTYPE or ENTITY"):
        open_spreadsheet(io.BytesIO(data))


def test_sheets_in_utf16_are_refused():
    # python-calamine reads nothing of them, openpyxl all: the scan must read them too, or refuse.
    data = xlsx_with_sheet(far_cell(b"XFD2000"))
    data = xlsx_replacing(data, "xl/worksheets/sheet1.xml", lambda xml: xml.decode().encode("utf-16"))
    with pytest.raises(FileProblem, match="unusual way"):
        open_spreadsheet(io.BytesIO(data))


def xlsx_replacing(data, name, change):
    source = zipfile.ZipFile(io.BytesIO(data))
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as target:
        for member in source.namelist():
            target.writestr(member, change(source.read(member)) if member == name else source.read(member))
    return output.getvalue()


def test_parts_that_the_two_readers_would_find_differently_are_refused():
    data = xlsx_with_sheet(HEADER + ANNA)
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(output := io.BytesIO(), "w") as target:
        for member in source.namelist():
            target.writestr(member, source.read(member))
        target.writestr("XL/Worksheets/Sheet1.xml", b"<worksheet/>")  # calamine ignores case
    with pytest.raises(FileProblem, match="unusual way"):
        open_spreadsheet(io.BytesIO(output.getvalue()))


def rows_of(data, **options):
    sheet = open_spreadsheet(io.BytesIO(data), **options)
    return sheet, [row for _number, row in sheet.rows()]


def test_workbooks_too_large_for_calamine_are_streamed_and_too_large_for_that_refused(settings):
    rows = [["Name", "Email", "Notes"], *[[f"Person {i}", f"p{i}@example.com", 2 * i] for i in range(300)]]
    data = xlsx_bytes(rows)
    sheet, read = rows_of(data)
    assert not sheet.streamed
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 500_000}
    streamed, read_streamed = rows_of(data)
    assert streamed.streamed and read_streamed == read == rows
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 1_000}
    with pytest.raises(FileProblem, match="too large to be read here .* Save it as CSV"):
        open_spreadsheet(io.BytesIO(data))


def test_parts_openpyxl_reads_whole_count_when_it_reads_the_workbook():
    # 300,000 cell formats: 59 KB zipped, 18.6 MB of XML, 234 MB in openpyxl, 1 MB in calamine.
    formats = b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>' * 300_000
    data = xlsx_replacing(xlsx_with_sheet(HEADER + ANNA), "xl/styles.xml", lambda xml: xml.replace(b"</cellXfs>", formats + b"</cellXfs>"))
    assert len(rows_of(data)[1]) == 2
    with_formula = xlsx_replacing(data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(ANNA, ANNA.replace(b"</row>", b'<c r="C2"><f>1+1</f></c></row>')))
    with pytest.raises(FileProblem, match="too large to be read here"):
        open_spreadsheet(io.BytesIO(with_formula))


def test_a_row_of_more_cells_than_a_spreadsheet_has_columns_is_not_streamed(settings):
    # The same cell 20,000 times: calamine keeps a list of them (0.8 MB), openpyxl would build
    # the whole row element at once.
    data = xlsx_with_sheet(HEADER + b'<row r="2">' + b'<c r="A2"><v>1</v></c>' * 20_000 + b"</row>")
    assert len(rows_of(data)[1]) == 2
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 500_000}
    with pytest.raises(FileProblem, match="unusual way"):
        open_spreadsheet(io.BytesIO(data))


def test_a_lying_dimension_does_not_cut_the_streamed_rows_short(settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 400_000}
    more = b"".join(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>P%d</t></is></c></row>' % (i, i, i) for i in range(3, 50))
    sheet, read = rows_of(xlsx_with_sheet(HEADER + ANNA + more, dimension=b"A1:B2"))
    assert sheet.streamed and len(read) == 49


# --- XLS -------------------------------------------------------------------------------------------------


def xls_changed(change):
    """kunden.xls (Excel 97–2003, its workbook stream in one piece at byte 512) with records changed
    by ``change(kind, record)`` → new record bytes of the same length, or None to keep them."""
    data = bytearray(fixture("kunden.xls"))
    position, end = 512, 512 + 4096
    while position < end:
        kind, length = struct.unpack_from("<HH", data, position)
        replacement = change(kind, bytes(data[position + 4 : position + 4 + length]))
        if replacement is not None:
            data[position + 4 : position + 4 + length] = replacement
        position += 4 + length
    return bytes(data)


def move_last_number(row, column):
    def change(kind, record):
        if kind == 0x0203:  # NUMBER: row, column, format, value
            return struct.pack("<HH", row, column) + record[4:]
        return None

    return change


def huge_dimensions(kind, record):
    if kind == 0x0200:  # DIMENSIONS: first row, last row + 1, first column, last column + 1
        return struct.pack("<IIHHH", 0, 0xFFFFFFFF, 0, 6, 0)
    return None


def huge_string_count(kind, record):
    if kind == 0x00FC:  # SST: total and distinct strings
        return record[:4] + struct.pack("<i", 0x7FFFFFFF) + record[8:]
    return None


def test_xls_cells_beyond_the_limits_and_forged_sizes_are_refused(tmp_path):
    outputs = read_in_limited_process(
        tmp_path,
        {
            # Column IV (256), row 65,536: the far corner of an XLS sheet.
            "corner.xls": xls_changed(move_last_number(65_535, 255)),
            "column-cw.xls": xls_changed(move_last_number(3, 100)),
            # python-calamine reserved room for the DIMENSIONS record's cells, and aborted.
            "dimensions.xls": xls_changed(huge_dimensions),
            "strings.xls": xls_changed(huge_string_count),
        },
    )
    assert outputs["corner.xls"].startswith("refused: The worksheet has a cell at IV65536")
    assert outputs["column-cw.xls"].startswith("refused: The worksheet has a cell at CW4")
    assert outputs["dimensions.xls"].startswith("refused: The workbook is put together in an unusual way")
    assert outputs["strings.xls"].startswith("refused: The workbook is put together in an unusual way")


def test_xls_within_the_limits_imports_and_too_large_is_refused(settings):
    sheet, read = rows_of(fixture("kunden.xls"))
    assert sheet.format == "xls" and len(read) == 4
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 12_000}
    with pytest.raises(FileProblem, match="too large to be read here"):
        open_spreadsheet(io.BytesIO(fixture("kunden.xls")))


# --- Workbooks of several sheets ------------------------------------------------------------------------

SMALL = [["Name", "Email"], ["Anna", "anna@example.com"]]
#: A cell in column CW, one past the limit: harmless to read, refused by the scan.
WIDE = [*SMALL, [], [], [None] * 100 + [1]]
SHEET_WRITERS = {"xlsx": xlsx_sheets_bytes, "xls": xls_sheets_bytes}


@pytest.mark.parametrize("file_format", SHEET_WRITERS)
def test_the_limits_are_checked_on_the_sheet_read_not_on_a_hidden_one_before_it(file_format):
    write = SHEET_WRITERS[file_format]
    beyond = write([("Geheim", SMALL, "hidden"), ("Kunden", WIDE, "visible")])
    with pytest.raises(FileProblem, match="The worksheet has a cell at CW5"):
        open_spreadsheet(io.BytesIO(beyond))
    within = write([("Geheim", WIDE, "hidden"), ("Kunden", SMALL, "visible")])
    assert rows_of(within)[1] == SMALL


def test_a_streamed_workbook_reads_its_first_visible_sheet(settings):
    rows = [["Name", "Email", "Notes"], *[[f"Person {i}", f"p{i}@example.com", 2 * i] for i in range(300)]]
    data = xlsx_sheets_bytes([("Geheim", SMALL, "veryHidden"), ("Kunden", rows, "visible")])
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_READER_MEMORY": 500_000}
    sheet, read = rows_of(data)
    assert sheet.streamed and read == rows


def two_sheets_changed(change, *, formulas):
    """A workbook of a hidden sheet and a visible one whose xl/workbook.xml is changed by
    ``change``; with formulas, openpyxl reads it."""
    rows = [["Name", "Email", "Sum"], ["Anna", "anna@example.com", "=1+1" if formulas else 2]]
    data = xlsx_sheets_bytes([("Geheim", rows, "hidden"), ("Kunden", rows, "visible")])
    return xlsx_replacing(data, "xl/workbook.xml", change)


def same_name(xml):
    """calamine and openpyxl find a sheet by its name, and take the first of it: the hidden one."""
    return xml.replace(b'name="Kunden"', b'name="Geheim"')


def state_as_reference(xml):
    """Written with a character reference, the state is "hidden" to openpyxl, not to the scan
    (calamine cannot read the workbook at all)."""
    return xml.replace(b'state="hidden"', b'state="hid&#100;en"')


@pytest.mark.parametrize(
    "change, streamed",
    [(same_name, False), (same_name, True), (state_as_reference, True)],
    ids=["two sheets of one name, calamine", "two sheets of one name, openpyxl", "a state the scan does not read"],
)
def test_a_reader_that_would_read_another_sheet_than_the_one_measured_refuses(change, streamed):
    sheet = open_spreadsheet(io.BytesIO(two_sheets_changed(change, formulas=streamed)))
    assert sheet.streamed == streamed
    with pytest.raises(FileProblem, match="unusual way"):
        list(sheet.rows())


#: The second sheet, as a `<sheet>` of xl/workbook.xml and as the relationship of the first.
ALT_SHEET = b'<sheet name="Alt" sheetId="9" r:id="rId2"/>'
ALT_RELATIONSHIP = (
    b'<Relationship Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"'
    b' Target="/xl/worksheets/sheet2.xml" Id="rId1"/>'
)


@pytest.mark.parametrize(
    "part, change",
    [
        ("xl/workbook.xml", lambda xml: xml.replace(b"<sheets>", b"<!-- " + ALT_SHEET + b" --><sheets>")),
        ("xl/workbook.xml", lambda xml: xml.replace(b"<sheets>", b"<![CDATA[" + ALT_SHEET + b"]]><sheets>")),
        ("xl/workbook.xml", lambda xml: xml.replace(b"<sheets>", b"<?alt " + ALT_SHEET + b"?><sheets>")),
        (
            "xl/_rels/workbook.xml.rels",
            lambda xml: xml.replace(b"</Relationships>", b"<!-- " + ALT_RELATIONSHIP + b" --></Relationships>"),
        ),
    ],
    ids=[
        "sheet in a comment",
        "sheet in a CDATA section",
        "sheet in a processing instruction",
        "relationship in a comment",
    ],
)
def test_tags_that_the_readers_do_not_take_for_elements_are_refused(part, change):
    """To python-calamine and openpyxl these are text: they read the first sheet, with a cell
    beyond the limits, while the scan would have measured the second."""
    data = xlsx_sheets_bytes([("Kunden", WIDE, "visible"), ("Alt", SMALL, "visible")])
    with pytest.raises(FileProblem, match="unusual way"):
        open_spreadsheet(io.BytesIO(xlsx_replacing(data, part, change)))


# --- CSV -------------------------------------------------------------------------------------------------


def test_csv_with_more_than_the_column_limit_is_refused(login, manager):
    rows = [[f"Column {i}" for i in range(101)], [f"value {i}" for i in range(101)]]
    response = login(manager).post(customer_url("import"), {"file": SimpleUploadedFile("wide.csv", csv_bytes(rows))})
    assert "Row 1 has more than 100 columns." in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


@pytest.fixture(scope="module")
def one_line_of_200_mb(tmp_path_factory):
    path = tmp_path_factory.mktemp("line") / "one-line.csv"
    with path.open("wb") as handle:
        handle.write(b"Name,Email,")
        block = b"x" * (1 << 20)
        for _ in range(199):
            handle.write(block)
    assert path.stat().st_size <= 200 * 1024 * 1024
    return path


@pytest.mark.parametrize("options", [{}, {"encoding": "utf-8", "delimiter": ","}])
def test_a_200_mb_line_is_refused_without_reading_it_whole(one_line_of_200_mb, options):
    with one_line_of_200_mb.open("rb") as upload, pytest.raises(FileProblem, match="Line 1 of the file is longer than 64 KB"):
        sum(1 for _row in open_spreadsheet(upload, **options).rows())


def test_long_quoted_notes_over_several_lines_are_read():
    note = "\n".join(f"Visit {i}: " + "x" * 990 for i in range(100))  # 100 KB in one cell, lines of 1 KB
    sheet, read = rows_of(csv_bytes([["Name", "Notes"], ["Anna", note]]))
    assert read == [["Name", "Notes"], ["Anna", note]]


def test_long_quoted_notes_import(login, manager):
    note = "\n".join("Line %d " % i + "ü" * 2000 for i in range(4))
    response = login(manager).post(
        customer_url("import"), {"file": SimpleUploadedFile("notes.csv", csv_bytes([["Name", "Notes"], ["Anna", note]], encoding="cp1252"))}
    )
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.counts["new"] == 1 and job.encoding == "cp1252"


def test_encoding_detection_refuses_a_long_line_and_reads_one_within_the_limit(settings):
    long_line = csv_bytes([["Name", "Notes"], ["Jürgen", "ä" * 70_000]], encoding="cp1252")
    with pytest.raises(FileProblem, match="Line 2 of the file is longer than 64 KB"):
        open_spreadsheet(io.BytesIO(long_line))
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_LINE_BYTES": 128 * 1024}
    sheet, read = rows_of(long_line)
    assert sheet.encoding == "cp1252" and read[1] == ["Jürgen", "ä" * 70_000]


def test_the_delimiter_of_a_hostile_line_is_sniffed_from_its_start():
    # csv.Sniffer took 16 s on this 63 KB line; it is shown the first 4 KB only.
    sheet = open_spreadsheet(io.BytesIO(b'Name,Notes\n' + b'a,"' * 21_000 + b"\n"))
    assert sheet.delimiter == ","
