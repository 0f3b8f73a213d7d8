"""Importing customer lists through the admin: upload → mapping → preview → confirm → result."""

import csv
import datetime
import io
import re

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from tests.conftest import customer_url, make_customer, speak
from tests.import_files import refused_rows, csv_bytes, fixture, xls_sheets_bytes, xlsx_bytes, xlsx_sheets_bytes
from wagtail_clientdb import matching
from wagtail_clientdb.imports import columns
from wagtail_clientdb.imports.rows import RowContext, clean_row
from wagtail_clientdb.models import (
    AttributeDefinition,
    Customer,
    CustomerGroup,
    CustomerOverride,
    CustomerTag,
    ImportJob,
    SavedImportMapping,
    Segment,
)

PLAIN_ROWS = [
    ["Anna Schmidt", "+49 170 1234567", "anna@example.com", "likes tea", "1"],
    ["Bernd Müller", "0170 7654321", "bernd@example.com", "", ""],
    ["Ludwig van Beethoven", "", "ludwig@example.com", "", "1"],
]


def upload(client, name, data, **extra):
    return client.post(customer_url("import"), {"file": SimpleUploadedFile(name, data), **extra})


def job_of(response):
    return ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1] if "mapping" not in response.url else response.url.rstrip("/").split("/")[-2])


def confirm(client, job, **data):
    """Confirm an import; a manager's sharing must be chosen: all branches unless ``data`` says."""
    return client.post(customer_url("import_job", job.pk), {"sharing": "all", **data})


def names():
    return sorted(Customer.objects.values_list("first_name", "last_name"))


# --- The plain layout --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, data",
    [
        ("plain.csv", csv_bytes(PLAIN_ROWS)),
        ("plain-semicolon.csv", csv_bytes(PLAIN_ROWS, delimiter=";", encoding="cp1252")),
        ("plain.xlsx", xlsx_bytes(PLAIN_ROWS)),
        # Consent as Excel keeps numbers and yes/no cells: 1 and 0, TRUE and FALSE.
        ("plain-numbers.xlsx", xlsx_bytes([[*row[:4], {"1": 1, "": 0}[row[4]]] for row in PLAIN_ROWS])),
        ("plain-booleans.xlsx", xlsx_bytes([[*row[:4], row[4] == "1"] for row in PLAIN_ROWS])),
        ("with-header.csv", csv_bytes([["Name", "Phone", "Email", "Notes", "Marketing consent"], *PLAIN_ROWS])),
        ("with-german-header.xlsx", xlsx_bytes([["Name", "Telefon", "E-Mail", "Notizen", "Einwilligung"], *PLAIN_ROWS])),
    ],
)
def test_plain_layout_imports_without_a_mapping_step(login, manager, name, data):
    client = login(manager)
    response = upload(client, name, data)
    assert response.status_code == 302
    assert "mapping" not in response.url
    job = job_of(response)
    assert job.status == "previewed"
    assert job.counts == {"new": 3, "updated": 0, "unchanged": 0, "invalid": 0}
    assert not Customer.objects.exists()  # nothing written before confirmation
    response = confirm(client, job, sharing="all")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "imported"
    assert names() == [("Anna", "Schmidt"), ("Bernd", "Müller"), ("Ludwig", "van Beethoven")]
    anna = Customer.objects.get(first_name="Anna")
    assert (anna.phone, anna.email, anna.notes, anna.marketing_consent, anna.source) == (
        "+491701234567", "anna@example.com", "likes tea", True, "import",
    )
    assert anna.shared_with_all_branches
    assert list(anna.consent_events.values_list("given", "channel")) == [(True, "import")]
    assert not Customer.objects.get(first_name="Bernd").marketing_consent


def test_the_same_file_twice_creates_nobody_twice(login, manager):
    client = login(manager)
    confirm(client, job_of(upload(client, "a.csv", csv_bytes(PLAIN_ROWS))), sharing="all")
    second = job_of(upload(client, "a.csv", csv_bytes(PLAIN_ROWS)))
    assert second.counts == {"new": 0, "updated": 0, "unchanged": 3, "invalid": 0}
    assert Customer.objects.count() == 3


@pytest.mark.parametrize(
    "encoding, delimiter",
    [("utf-8", ","), ("utf-8-sig", ";"), ("cp1252", ";"), ("utf-16", "\t")],
)
def test_encodings_and_delimiters_are_detected(login, manager, encoding, delimiter):
    rows = [["Vorname", "Nachname", "E-Mail", "Telefon"], ["Jürgen", "Größe", "juergen@example.de", "0170 1234567"]]
    client = login(manager)
    job = job_of(upload(client, "kunden.csv", csv_bytes(rows, delimiter=delimiter, encoding=encoding)))
    assert job.targets == ["first_name", "last_name", "email", "phone"]
    assert job.counts["new"] == 1
    confirm(client, job)
    assert names() == [("Jürgen", "Größe")]


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_a_tab_separated_file_with_a_formula_like_cell_is_read_by_its_tabs(login, manager, encoding):
    """Excel's "Unicode text" and a tab-separated export: a quoted cell holding commas does not
    make the file comma-separated."""
    rows = [
        ["Name", "E-Mail", "Notizen"],
        ["Jürgen Größe", "juergen@example.de", "Stammkunde, mag Kaffee"],
        ['=HYPERLINK("http://example.de/","klick")', "formel@example.de", ""],
        ["Anna Apfel", "anna@example.de", ""],
    ]
    client = login(manager)
    job = job_of(upload(client, "kunden.txt", csv_bytes(rows, delimiter="\t", encoding=encoding)))
    assert job.targets == ["name", "email", "notes"]
    assert job.counts["new"] == 3


def test_xls_from_excel_with_german_headers_and_date_cells(login, manager):
    client = login(manager)
    job = job_of(upload(client, "kunden.xls", fixture("kunden.xls")))
    assert job.format == "xls"
    assert job.targets == ["first_name", "last_name", "email", "phone", "birthday", "notes"]
    confirm(client, job)
    renee = Customer.objects.get(first_name="Renée")
    assert renee.birthday == datetime.date(1975, 1, 30)
    # Excel kept the phone as a number and dropped its "+".
    assert renee.phone == "+4915112345678"
    assert Customer.objects.get(last_name="Größe").notes == "Stammkunde"


def test_french_headers(login, manager):
    rows = [["Prénom", "Nom", "Courriel", "Téléphone", "Date de naissance"], ["Renée", "Dupont", "renee@example.fr", "+33 6 12 34 56 78", "1975-01-30"]]
    job = job_of(upload(login(manager), "clients.csv", csv_bytes(rows)))
    assert job.targets == ["first_name", "last_name", "email", "phone", "birthday"]
    assert job.counts["new"] == 1


@pytest.mark.parametrize(
    "headers, row, expected",
    [
        # A German list's "Name" beside "Vorname" is the surname (it was split as a whole name,
        # then overwritten by the first name: "Hans" with no last name).
        (["Name", "Vorname", "E-Mail"], ["Müller", "Hans", "hans@example.com"], ("Hans", "Müller")),
        (["Vorname", "Name", "E-Mail"], ["Hans", "Müller", "hans@example.com"], ("Hans", "Müller")),
        (["First name", "Name", "Email"], ["John", "Smith", "john@example.com"], ("John", "Smith")),
        (["Name", "Surname", "Email"], ["John", "Smith", "john@example.com"], ("John", "Smith")),
    ],
)
def test_a_name_column_beside_a_first_or_last_name_column_is_the_other_part(login, manager, headers, row, expected):
    client = login(manager)
    response = upload(client, "kunden.csv", csv_bytes([headers, row]))
    assert "mapping" not in response.url
    confirm(client, job_of(response))
    assert names() == [expected]


@pytest.mark.parametrize(
    "phones, language, note",
    [
        (["call me"], "en", "1 phone number could not be read; it is kept as typed and marked."),
        (["call me", "0170 12"], "en", "2 phone numbers could not be read; they are kept as typed and marked."),
        (["call me"], "de", "1 Telefonnummer ist nicht lesbar; sie wird wie eingegeben gespeichert und markiert."),
        (["call me"], "fr", "1 numéro de téléphone est illisible ; il est conservé tel que saisi et signalé."),
    ],
)
def test_the_preview_counts_unreadable_phone_numbers_in_words_that_fit_the_number(login, manager, phones, language, note):
    speak(manager, language)
    rows = [["Name", "Phone"]] + [[f"Kunde {n}", phone] for n, phone in enumerate(phones)]
    client = login(manager)
    job = job_of(upload(client, "kunden.csv", csv_bytes(rows)))
    assert note in client.get(customer_url("import_job", job.pk)).content.decode()


def test_a_birthday_written_with_a_time_of_midnight_is_read_as_its_date(login, manager):
    """Excel writes a date cell shown with its time so to CSV; another time is no birthday."""
    rows = [
        ["Name", "Email", "Geburtsdatum"],
        ["Anna Schmidt", "anna@example.com", "17.05.1980 00:00"],
        ["Bea Kurz", "bea@example.com", "1981-06-18 00:00:00"],
        ["Carl Lang", "carl@example.com", "17.05.1980 14:30"],
    ]
    client = login(manager)
    job = job_of(upload(client, "kunden.csv", csv_bytes(rows)))
    assert [(row["line"], row["column"]) for row in refused_rows(job)] == [(4, "Geburtsdatum")]
    confirm(client, job, import_valid_rows="on")
    assert dict(Customer.objects.values_list("first_name", "birthday")) == {
        "Anna": datetime.date(1980, 5, 17),
        "Bea": datetime.date(1981, 6, 18),
    }


def test_the_preview_says_that_groups_following_a_rule_are_not_changed_by_a_groups_column(login, manager):
    """An export lists dynamic groups; importing it back names them without a word otherwise."""
    vip = CustomerGroup.objects.create(name="VIP")
    CustomerGroup.objects.create(name="Regulars", segment=Segment.objects.create(name="Regulars", owner=manager, query="visits_min=3"))
    client = login(manager)
    job = job_of(upload(client, "kunden.csv", csv_bytes([["Name", "Email", "Groups"], ["Anna Schmidt", "anna@example.com", "VIP; Regulars"]])))
    page = client.get(customer_url("import_job", job.pk)).content.decode()
    assert (
        "The group Regulars follows its rule: naming it in the Groups column changes nothing, its members are the"
        " customers its rule finds." in page
    )
    confirm(client, job)
    assert list(Customer.objects.get().groups.all()) == [vip]
    job = job_of(upload(client, "ohne.csv", csv_bytes([["Name", "Email"], ["Bea Kurz", "bea@example.com"]])))
    assert "follows its rule" not in client.get(customer_url("import_job", job.pk)).content.decode()


@pytest.mark.parametrize("header", ["ID", "Id", "Identifiant"])
def test_a_column_headed_only_id_is_not_taken_for_external_ids(login, manager, header):
    """Spreadsheets number their rows under "ID": read as external IDs, row 2's "1" would update
    the customer whose external ID is 1."""
    numbered = make_customer(first_name="Otto", last_name="Nummer", external_id="1")
    client = login(manager)
    response = upload(client, "liste.csv", csv_bytes([[header, "Name", "E-Mail"], ["1", "Anna Schmidt", "anna@example.com"]]))
    assert "mapping" in response.url
    assert ImportJob.objects.get().targets == ["", "name", "email"]
    client.post(response.url, {"column_0": "", "column_1": "name", "column_2": "email"})
    confirm(client, ImportJob.objects.get())
    numbered.refresh_from_db()
    assert (numbered.first_name, numbered.email) == ("Otto", "")
    assert names() == [("Anna", "Schmidt"), ("Otto", "Nummer")]


def test_a_name_column_beside_both_parts_is_asked_about(login, manager):
    """A whole name and its parts: which to read is the user's choice, not a silent overwrite."""
    rows = [["Name", "Vorname", "Nachname", "E-Mail"], ["Hans Müller", "Hans", "Müller", "hans@example.com"]]
    client = login(manager)
    response = upload(client, "kunden.csv", csv_bytes(rows))
    assert "mapping" in response.url
    page = client.get(response.url).content.decode()
    assert "Column Name holds the whole name, and Vorname, Nachname a part of it" in page
    mapping_url = response.url
    response = client.post(mapping_url, {"column_0": "name", "column_1": "first_name", "column_2": "", "column_3": "email"})
    assert "Column Name holds the whole name, and Vorname a part of it" in response.content.decode()
    client.post(mapping_url, {"column_0": "", "column_1": "first_name", "column_2": "last_name", "column_3": "email"})
    confirm(client, ImportJob.objects.get())
    assert names() == [("Hans", "Müller")]


# --- Workbooks of several sheets ---------------------------------------------------------------------------


GEHEIM = [["Name", "Email"], ["Gerda Geheim", "gerda@example.com"]]
KUNDEN = [["Name", "Email"], ["Anna Schmidt", "anna@example.com"], ["Bernd Müller", "bernd@example.com"]]
NOTIZEN = [["Name", "Email"], ["Nora Notiz", "nora@example.com"]]
WORKBOOK_WRITERS = {"xlsx": xlsx_sheets_bytes, "xls": xls_sheets_bytes}


@pytest.mark.parametrize("file_format", WORKBOOK_WRITERS)
@pytest.mark.parametrize("state", ["hidden", "veryHidden"])
def test_the_first_visible_sheet_is_imported_not_a_hidden_one_before_it(login, manager, file_format, state):
    """A hidden sheet (an old list, lookups) is not what the user sees when Excel opens the file."""
    sheets = [("Geheim", GEHEIM, state), ("Kunden", KUNDEN, "visible"), ("Notizen", NOTIZEN, "visible")]
    data = WORKBOOK_WRITERS[file_format](sheets)
    client = login(manager)
    response = upload(client, f"kunden.{file_format}", data)
    assert "mapping" not in response.url
    job = job_of(response)
    assert job.format == file_format
    assert job.counts == {"new": 2, "updated": 0, "unchanged": 0, "invalid": 0}
    preview = client.get(customer_url("import_job", job.pk)).content.decode()
    assert "Anna Schmidt" in preview and "Gerda" not in preview
    confirm(client, job)
    assert names() == [("Anna", "Schmidt"), ("Bernd", "Müller")]


def every_sheet_hidden(data):
    """The workbook with its visible sheets hidden too: Excel does not allow it, openpyxl will not
    write it, a program or a hand may."""
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(data))
    members = {name: source.read(name) for name in source.namelist()}
    members["xl/workbook.xml"] = members["xl/workbook.xml"].replace(b'state="visible"', b'state="hidden"')
    return zip_bytes(members)


@pytest.mark.parametrize(
    "language, message",
    [
        ("en", "Every sheet of the workbook is hidden. Unhide the sheet with the customers"),
        ("de", "Alle Blätter der Arbeitsmappe sind ausgeblendet. Blenden Sie das Blatt mit den Kunden ein"),
        ("fr", "Toutes les feuilles du classeur sont masquées. Affichez la feuille contenant les clients"),
    ],
)
@pytest.mark.parametrize("file_format", WORKBOOK_WRITERS)
def test_a_workbook_of_hidden_sheets_only_is_refused_with_a_message(login, manager, file_format, language, message):
    if file_format == "xlsx":
        data = every_sheet_hidden(xlsx_sheets_bytes([("Geheim", GEHEIM, "hidden"), ("Kunden", KUNDEN, "visible")]))
    else:
        data = xls_sheets_bytes([("Geheim", GEHEIM, "hidden"), ("Kunden", KUNDEN, "veryHidden")])
    speak(manager, language)
    response = upload(login(manager), f"kunden.{file_format}", data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()


@pytest.mark.parametrize("file_format", WORKBOOK_WRITERS)
def test_an_empty_first_sheet_names_the_sheets_not_read(login, manager, file_format):
    """Not "The file is empty": the customers are in it, on a sheet the import does not read."""
    data = WORKBOOK_WRITERS[file_format]([("Leer", [], "visible"), ("Kunden", KUNDEN, "visible")])
    response = upload(login(manager), f"kunden.{file_format}", data)
    assert response.status_code == 200
    assert (
        "The sheet “Leer” is empty. Only the workbook's first sheet is read, not Kunden: move the sheet with the"
        " customers to the front, or save it as a file of its own." in " ".join(response.context["form"].errors["file"])
    )
    assert not ImportJob.objects.exists()


def sheet_note(page):
    """What an import page says of the workbook's sheets, on one line ("" when it says nothing)."""
    found = re.search(r"<p data-clientdb-sheet-read>(.*?)</p>", page.content.decode(), re.S)
    return " ".join(found[1].split()) if found else ""


#: A column no header rule knows, so that the upload stops at the mapping step.
WITH_COLOUR = [[*row, colour] for row, colour in zip(KUNDEN, ["Lieblingsfarbe", "blau", "rot"])]
MAPPED = {"column_0": "name", "column_1": "email", "column_2": "notes"}


@pytest.mark.parametrize(
    "file_format, formulas",
    [("xlsx", False), ("xlsx", True), ("xls", False)],
    ids=["xlsx", "xlsx streamed by openpyxl", "xls"],
)
def test_the_mapping_and_the_preview_name_the_sheet_read_and_the_other_visible_one(login, manager, file_format, formulas):
    """The list is on the second tab, behind a hidden one: the editor is told which sheet the
    columns come from and that the workbook has another one; the hidden sheet is not named."""
    kunden = [*WITH_COLOUR, ["Carla Formel", "=LOWER(\"CARLA@EXAMPLE.COM\")", ""]] if formulas else WITH_COLOUR
    sheets = [("Geheim", GEHEIM, "hidden"), ("Kunden", kunden, "visible"), ("Notizen", NOTIZEN, "visible")]
    client = login(manager)
    response = upload(client, f"kunden.{file_format}", WORKBOOK_WRITERS[file_format](sheets))
    assert "mapping" in response.url
    job = ImportJob.objects.get()
    assert (job.sheet_name, job.other_sheets) == ("Kunden", ["Notizen"])
    said = (
        "Read from the sheet “Kunden”. This workbook has another sheet (Notizen), which is not read. "
        "To import it, make it the first sheet or save it as a file of its own."
    )
    mapping = client.get(response.url)
    assert sheet_note(mapping) == said
    assert "Lieblingsfarbe" in mapping.content.decode() and "Geheim" not in mapping.content.decode()
    client.post(response.url, MAPPED)
    preview = client.get(customer_url("import_job", job.pk))
    assert sheet_note(preview) == said
    assert "Geheim" not in preview.content.decode()
    # The formula without a computed value is refused: openpyxl read the sheet.
    assert preview.context["job"].counts == {"new": 2, "updated": 0, "unchanged": 0, "invalid": int(formulas)}


@pytest.mark.parametrize(
    "sheets, said",
    [
        ([("Kundenliste 2026", KUNDEN, "visible")], "Read from the sheet “Kundenliste 2026”."),
        (
            [("Kunden", KUNDEN, "visible"), ("Notizen", NOTIZEN, "hidden"), ("Archiv & Alt", NOTIZEN, "visible"), ("2025", GEHEIM, "visible")],
            "Read from the sheet “Kunden”. This workbook has other sheets (Archiv &amp; Alt, 2025), which are not read. "
            "To import one of them, make it the first sheet or save it as a file of its own.",
        ),
    ],
    ids=["one sheet", "other sheets"],
)
def test_a_workbook_s_preview_names_its_sheet_and_only_its_other_visible_ones(login, manager, sheets, said):
    client = login(manager)
    job = job_of(upload(client, "kunden.xlsx", xlsx_sheets_bytes(sheets)))
    assert job.counts["new"] == 2
    assert sheet_note(client.get(customer_url("import_job", job.pk))) == said


def test_an_xls_preview_names_its_sheet(login, manager):
    client = login(manager)
    job = job_of(upload(client, "kunden.xls", fixture("kunden.xls")))
    assert (job.sheet_name, job.other_sheets) == ("Kunden", [])
    assert sheet_note(client.get(customer_url("import_job", job.pk))) == "Read from the sheet “Kunden”."


def test_a_csv_file_has_no_sheet_to_name(login, manager):
    client = login(manager)
    response = upload(client, "kunden.csv", csv_bytes(WITH_COLOUR))
    job = ImportJob.objects.get()
    assert (job.sheet_name, job.other_sheets) == ("", [])
    mapping = client.get(response.url)
    client.post(response.url, MAPPED)
    for page in (mapping, client.get(customer_url("import_job", job.pk))):
        assert page.status_code == 200
        assert sheet_note(page) == "" and "Read from the sheet" not in page.content.decode()


# --- Mapping ------------------------------------------------------------------------------------------------


def test_unknown_columns_get_a_mapping_step_that_is_remembered(login, manager):
    AttributeDefinition.objects.create(label="Hair type", key="hair", field_type="choice", choices=["fine", "thick"])
    rows = [["Kunde", "Mobil", "Lieblingsfarbe", "Hair type"], ["Anna Schmidt", "0170 1234567", "blau", "thick"]]
    client = login(manager)
    response = upload(client, "odd.csv", csv_bytes(rows))
    assert "mapping" in response.url
    job = ImportJob.objects.get()
    assert job.targets == ["name", "phone", "", "attr:hair"]
    page = client.get(response.url)
    assert "blau" in page.content.decode()
    response = client.post(response.url, {"column_0": "name", "column_1": "phone", "column_2": "notes", "column_3": "attr:hair"})
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "previewed" and job.counts["new"] == 1
    confirm(client, job)
    anna = Customer.objects.get()
    assert (anna.notes, anna.attributes) == ("blau", {"hair": "thick"})
    assert SavedImportMapping.objects.count() == 1
    # The next file with the same headers goes straight to the preview.
    response = upload(client, "odd-again.csv", csv_bytes(rows))
    assert "mapping" not in response.url
    assert job_of(response).counts["unchanged"] == 1


def test_mapping_refuses_duplicates_and_files_without_identifying_columns(login, manager):
    rows = [["A", "B"], ["x", "y"]]
    client = login(manager)
    response = upload(client, "two.csv", csv_bytes(rows))
    mapping_url = response.url
    response = client.post(mapping_url, {"column_0": "email", "column_1": "email"})
    assert "both hold" in response.content.decode()
    response = client.post(mapping_url, {"column_0": "notes", "column_1": ""})
    assert "no column for the name, email, phone or external ID" in response.content.decode()
    assert not Customer.objects.exists()


def test_duplicate_headers_are_refused(login, manager):
    rows = [["Name", "email", "email"], ["Anna", "a@example.com", "b@example.com"]]
    response = upload(login(manager), "dup.csv", csv_bytes(rows))
    assert "mapping" in response.url
    assert "both hold" in login(manager).get(response.url).content.decode() or ImportJob.objects.get().targets.count("email") == 2


# --- Preview, all or nothing, report ---------------------------------------------------------------------------


@pytest.fixture
def hair(db):
    return AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])


@pytest.fixture
def since(db):
    return AttributeDefinition.objects.create(label="Since", key="since", field_type="date")


def mixed_rows():
    return [
        ["First name", "Last name", "Email", "Hair", "Since", "Birthday"],
        ["Anna", "Schmidt", "anna@example.com", "fine", "2020-01-15", "1990-04-01"],
        ["Bea", "Kurz", "not-an-email", "fine", "", ""],
        ["Carl", "Lang", "carl@example.com", "curly", "31.02.2024", ""],
        ["Dora", "Dorn", "dora@example.com", "", "", "02/03/2020"],
        ["Emil", "Ende", "emil@example.com", "thick", "", ""],
    ]


def test_preview_lists_every_refused_row_with_line_column_and_reason(login, manager, hair, since):
    job = job_of(upload(login(manager), "mixed.csv", csv_bytes(mixed_rows())))
    assert job.counts == {"new": 2, "updated": 0, "unchanged": 0, "invalid": 3}
    refused = {(row["line"], row["column"]) for row in refused_rows(job)}
    assert refused == {(3, "Email"), (4, "Hair"), (4, "Since"), (5, "Birthday")}
    messages = " ".join(row["message"] for row in refused_rows(job))
    assert "valid email" in messages and "not one of the options" in messages
    assert "not a valid date" in messages and "ambiguous" in messages
    html = login(manager).get(customer_url("import_job", job.pk)).content.decode()
    assert "not one of the options" in html
    assert not Customer.objects.exists()


def test_refused_rows_in_the_preview_are_left_out_and_the_page_says_so_before_the_click(login, manager, hair, since):
    client = login(manager)
    job = job_of(upload(client, "mixed.csv", csv_bytes(mixed_rows())))
    page = client.get(customer_url("import_job", job.pk))
    html = page.content.decode()
    # No choice that could only be refused: the consequence is written above the button.
    assert "import_valid_rows" not in page.context["form"].fields
    assert "Importing now writes 2 new and 0 updated customers and leaves out the 3 refused rows" in html
    assert "Import the valid rows" in html
    refused = {row["line"]: row["who"] for row in refused_rows(job)}
    assert refused == {3: "Bea Kurz", 4: "Carl Lang", 5: "Dora Dorn"}
    assert "Carl Lang" in html
    confirm(client, job, sharing="all")
    job.refresh_from_db()
    assert job.status == "imported"
    assert names() == [("Anna", "Schmidt"), ("Emil", "Ende")]
    answer = client.get(customer_url("import_report", job.pk))
    assert answer["Content-Type"] == "text/csv; charset=utf-8"  # also for tools that ignore the BOM
    report = b"".join(answer.streaming_content).decode("utf-8-sig")
    report_rows = list(csv.reader(io.StringIO(report)))
    assert report_rows[0] == ["Line", "First name", "Last name", "Email", "Hair", "Since", "Birthday", "Reason"]
    assert [row[0] for row in report_rows[1:]] == ["3", "4", "5"]
    assert "Hair:" in report_rows[2][-1]


def test_all_or_nothing_by_default_and_the_valid_rows_can_follow_after_a_refusal(login, manager):
    """A file whose preview was clean is imported all or nothing; a row refused only at the
    import (its customer changed after the preview) refuses it all, and the page then offers
    to import the valid rows without uploading again."""
    anna = make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    client = login(manager)
    rows = [["Email", "Notes"], ["anna@example.com", "From the file"], ["new@example.com", "New person"]]
    job = job_of(upload(client, "list.csv", csv_bytes(rows)))
    page = client.get(customer_url("import_job", job.pk))
    assert "import_valid_rows" in page.context["form"].fields
    Customer.objects.filter(pk=anna.pk).update(notes="Typed at the desk", updated_at=timezone.now())
    confirm(client, job, sharing="all")
    job.refresh_from_db()
    assert job.status == "refused" and not Customer.objects.filter(email="new@example.com").exists()
    html = client.get(customer_url("import_job", job.pk)).content.decode()
    assert "Nothing was imported: 1 row was refused" in html
    assert "What importing the valid rows would do" in html and "Import the valid rows" in html
    confirm(client, job)
    job.refresh_from_db()
    assert job.status == "imported"
    new = Customer.objects.get(email="new@example.com")
    assert new.shared_with_all_branches  # the sharing chosen at the first confirmation
    assert Customer.objects.get(pk=anna.pk).notes == "Typed at the desk"
    assert "Import the valid rows" not in client.get(customer_url("import_job", job.pk)).content.decode()


def test_import_valid_rows_and_report_the_rest(login, manager, hair, since):
    client = login(manager)
    job = job_of(upload(client, "mixed.csv", csv_bytes(mixed_rows())))
    confirm(client, job, import_valid_rows="on")
    job.refresh_from_db()
    assert job.status == "imported"
    assert job.counts == {"new": 2, "updated": 0, "unchanged": 0, "invalid": 3}
    assert names() == [("Anna", "Schmidt"), ("Emil", "Ende")]
    anna = Customer.objects.get(first_name="Anna")
    assert anna.attributes == {"hair": "fine", "since": "2020-01-15"}
    assert anna.birthday == datetime.date(1990, 4, 1)
    assert job.report


def test_no_row_is_silently_dropped(login, manager, hair, since):
    make_customer(first_name="Emil", last_name="Ende", email="emil@example.com")
    job = job_of(upload(login(manager), "mixed.csv", csv_bytes(mixed_rows())))
    assert sum(job.counts.values()) == len(mixed_rows()) - 1
    assert job.counts["updated"] == 1


@pytest.mark.parametrize("spill_at", [None, 1], ids=["values-in-a-dict", "values-spilled-to-sqlite"])
def test_files_longer_than_one_chunk_are_read_to_the_end(login, manager, monkeypatch, spill_at):
    """Files are read and saved in chunks; every chunk counts, and duplicates are found across
    them, also once the values seen are many and kept in SQLite."""
    from wagtail_clientdb.imports import duplicates, runner

    monkeypatch.setattr(runner, "CHUNK_ROWS", 4)
    if spill_at:
        monkeypatch.setattr(duplicates, "SPILL_AT", spill_at)
    existing = make_customer(first_name="Old", email="c9@example.com")
    rows = [["First name", "Email", "Tags"]] + [[f"C{i}", f"c{i}@example.com", "regular"] for i in range(11)]
    rows.append(["Again", "c1@example.com", ""])  # line 13, the same email as line 3, two chunks earlier
    client = login(manager)
    job = job_of(upload(client, "long.csv", csv_bytes(rows)))
    assert job.counts == {"new": 10, "updated": 1, "unchanged": 0, "invalid": 1}
    assert refused_rows(job) == [{"line": 13, "who": "Again", "column": "Email", "message": "The same value as line 3 of this file."}]
    confirm(client, job, import_valid_rows="on", sharing="all")
    assert Customer.objects.count() == 11
    existing.refresh_from_db()
    assert existing.first_name == "C9" and list(existing.tags.names()) == ["regular"]
    assert Customer.objects.filter(tags__name="regular").count() == 11



def test_chunks_grow_from_a_small_first_one_and_keep_every_row_in_order():
    from wagtail_clientdb.imports import runner

    chunks = list(runner.in_chunks(range(6000)))
    assert [len(chunk) for chunk in chunks] == [250, 500, 1000, 2000, 2000, 250]
    assert [row for chunk in chunks for row in chunk] == list(range(6000))


@pytest.mark.parametrize("forking", [True, False], ids=["helper-process", "this-process"])
def test_long_files_are_checked_alike_in_a_helper_process_and_here(login, manager, monkeypatch, forking):
    """Chunks after the first are checked by a forked helper process where the system can
    fork; the outcome, and the language of its messages, are the same either way."""
    from wagtail_clientdb.imports import checking, runner

    monkeypatch.setattr(runner, "CHUNK_ROWS", 2)
    monkeypatch.setattr(checking, "can_fork", lambda: forking)
    CustomerGroup.objects.create(name="VIP")
    speak(manager, "de")
    rows = [["Vorname", "E-Mail", "Telefon", "Gruppen"]]
    rows += [[f"K{i}", f"k{i}@example.com", f"0170 123456{i}", "VIP"] for i in range(7)]
    rows[1][1] = "no email"  # line 2, the first chunk
    rows[6][3] = "Stammkunden"  # line 7, the third chunk
    client = login(manager)
    job = job_of(upload(client, "lang.csv", csv_bytes(rows)))
    assert job.counts == {"new": 5, "updated": 0, "unchanged": 0, "invalid": 2}
    # Kept as source and parameters, whichever process checked them; worded when shown.
    assert [row["message"] for row in job.invalid_rows] == [
        {"text": "Enter a valid email address.", "params": {"value": "no email"}},
        {"text": "Unknown group: %(names)s.", "params": {"names": "Stammkunden"}},
    ]
    with translation.override("de"):
        assert refused_rows(job) == [
            {"line": 2, "who": "K0", "column": "E-Mail", "message": "Bitte gültige E-Mail-Adresse eingeben."},
            {"line": 7, "who": "K5", "column": "Gruppen", "message": "Unbekannte Gruppe: Stammkunden."},
        ]
    confirm(client, job, import_valid_rows="on", sharing="all")
    assert sorted(Customer.objects.values_list("phone", flat=True)) == [f"+49170123456{i}" for i in (1, 2, 3, 4, 6)]
    assert Customer.objects.filter(groups__name="VIP").count() == 5

# --- Matching ------------------------------------------------------------------------------------------------


def test_matching_by_external_id_then_email_then_phone(login, manager):
    by_id = make_customer(first_name="Old", external_id="K-1", email="other@example.com")
    by_email = make_customer(first_name="Mail", email="mail@example.com")
    by_phone = make_customer(first_name="Phone", phone_raw="+49 170 5555555")
    rows = [
        ["External ID", "First name", "Email", "Phone"],
        ["K-1", "New name", "", ""],
        ["", "Mail2", "MAIL@example.com", ""],
        ["", "Phone2", "", "0170 5555555"],
        ["", "Fresh", "fresh@example.com", ""],
    ]
    client = login(manager)
    job = job_of(upload(client, "match.csv", csv_bytes(rows)))
    assert job.counts == {"new": 1, "updated": 3, "unchanged": 0, "invalid": 0}
    confirm(client, job)
    by_id.refresh_from_db(), by_email.refresh_from_db(), by_phone.refresh_from_db()
    assert (by_id.first_name, by_id.email) == ("New name", "other@example.com")  # empty cells change nothing
    assert (by_email.first_name, by_phone.first_name) == ("Mail2", "Phone2")
    assert Customer.objects.count() == 4


@pytest.mark.parametrize("make_file", [csv_bytes, xlsx_bytes], ids=["csv", "xlsx"])
def test_an_empty_consent_cell_changes_nothing_and_only_an_explicit_no_withdraws(login, manager, make_file):
    kept = make_customer(first_name="Kept", email="kept@example.com", marketing_consent=True)
    withdrawn = make_customer(first_name="Gone", email="gone@example.com", marketing_consent=True)
    rows = [
        ["First name", "Email", "Marketing consent"],
        ["Kept", "kept@example.com", ""],
        ["Gone", "gone@example.com", "nein"],
        ["New", "new@example.com", ""],
    ]
    client = login(manager)
    job = job_of(upload(client, "consent." + ("csv" if make_file is csv_bytes else "xlsx"), make_file(rows)))
    assert job.counts == {"new": 1, "updated": 1, "unchanged": 1, "invalid": 0}
    confirm(client, job, sharing="all")
    kept.refresh_from_db(), withdrawn.refresh_from_db()
    assert kept.marketing_consent and not withdrawn.marketing_consent
    assert not Customer.objects.get(email="new@example.com").marketing_consent
    assert list(withdrawn.consent_events.values_list("given", "channel")) == [(False, "import")]
    assert not kept.consent_events.exists()


def test_duplicates_inside_the_file_are_reported(login, manager):
    rows = [["Name", "Email"], ["Anna", "A@example.com"], ["Anna S.", "a@example.com"]]
    job = job_of(upload(login(manager), "dups.csv", csv_bytes(rows)))
    assert job.counts["invalid"] == 1
    assert refused_rows(job) == [{"line": 3, "who": "Anna S.", "column": "Email", "message": "The same value as line 2 of this file."}]


def test_two_existing_matches_are_refused_not_guessed(login, manager):
    make_customer(first_name="Twin1", email="twins@example.com")
    make_customer(first_name="Twin2", email="twins@example.com")
    job = job_of(upload(login(manager), "twins.csv", csv_bytes([["Name", "Email"], ["Twin", "twins@example.com"]])))
    assert job.counts["invalid"] == 1
    assert "Matches 2 customers" in refused_rows(job)[0]["message"]


# --- Scope ------------------------------------------------------------------------------------------------------


def test_branch_import_creates_local_customers_and_ignores_branch_columns(login, staff_a, branch_a, branch_b):
    rows = [["Name", "Email", "Branches"], ["Anna", "anna@example.com", "beta"]]
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job, sharing="all")
    anna = Customer.objects.get()
    assert anna.home_branch == branch_a and not anna.shared_with_all_branches and not anna.branches.exists()


def test_an_import_says_which_branch_it_is_in_also_after_the_user_switched(login, make_user, staff_group, branch_a, branch_b):
    """Staff of two branches upload in one and may switch before confirming: the page says whose
    new customers they will be, and that switching does not move the import."""
    user = make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    client = login(user)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Anna", "anna@example.com"]])))
    page = client.get(customer_url("import_job", job.pk)).content.decode()
    assert f"Imported in the branch “{branch_a.name}”: new customers are its own." in page
    assert "You are working in" not in page
    client.post(reverse("wagtail_clientdb:switch_branch"), {"branch": branch_b.pk})
    page = client.get(customer_url("import_job", job.pk)).content.decode()
    assert f"You are working in “{branch_b.name}” now; this import stays with the branch it was started in." in page
    confirm(client, job)
    assert Customer.objects.get().home_branch == branch_a


def test_branch_import_never_touches_another_branchs_customer(login, staff_a, branch_b):
    hidden = make_customer(first_name="Bea", email="bea@example.com", external_id="B-1", home_branch=branch_b)
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Bea from A", "bea@example.com"]])))
    assert job.counts["new"] == 1  # B's customer is not A's to update: A gets its own
    # Another branch's external ID and one nobody has get the same answer: the import does not
    # tell A that B holds an ID (external IDs are the head office's to give).
    job = job_of(upload(client, "b.csv", csv_bytes([["Name", "External ID"], ["Bea", "B-1"], ["Neu", "NOBODY-7"]])))
    messages = [row["message"] for row in refused_rows(job)]
    assert messages == [str(matching.EXTERNAL_IDS_ARE_THE_HEAD_OFFICES)] * 2
    assert "Bea" not in messages[0] and "beta" not in str(refused_rows(job))
    hidden.refresh_from_db()
    assert hidden.first_name == "Bea"


def test_external_ids_are_the_head_office_s_to_give(login, manager, staff_a, branch_a):
    """A branch finds its customers by their external IDs but gives none, in the admin as in the
    import and the API; the head office gives them."""
    own = make_customer(first_name="Ole", email="ole@example.com", external_id="A-1", home_branch=branch_a)
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "External ID", "Notes"], ["Ole", "A-1", "Mag Tee"]])))
    assert job.counts["updated"] == 1 and not refused_rows(job)
    assert "external_id" not in client.get(customer_url("edit", own.pk)).context["form"].fields
    job = job_of(upload(login(manager), "m.csv", csv_bytes([["Name", "External ID"], ["Neu", "HQ-9"]])))
    assert job.counts["new"] == 1


def test_branch_import_of_global_customers_follows_the_setting(login, staff_a, branch_a, settings_model):
    shared = make_customer(first_name="Gloria", email="gloria@example.com", phone_raw="+49 170 1111111", shared_with_all_branches=True)
    rows = [["Name", "Email", "Phone"], ["Gloria", "gloria@example.com", "0170 2222222"]]
    client = login(staff_a)
    job = job_of(upload(client, "g.csv", csv_bytes(rows)))
    assert "read-only" in refused_rows(job)[0]["message"]
    settings_model.branches_may_edit_global_customers = True
    settings_model.save()
    job = job_of(upload(client, "g.csv", csv_bytes(rows)))
    assert job.counts["updated"] == 1
    confirm(client, job)
    shared.refresh_from_db()
    assert shared.phone == "+491701111111"
    assert CustomerOverride.objects.get(customer=shared, branch=branch_a).phone == "+491702222222"


def test_manager_shares_new_customers_with_specific_branches(login, manager, branch_a, branch_b):
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(PLAIN_ROWS)))
    confirm(client, job, sharing="specific", share_branches=[branch_b.pk])
    assert {c.pk: list(c.branches.all()) for c in Customer.objects.all()} == {c.pk: [branch_b] for c in Customer.objects.all()}


def test_branches_column_never_narrows_all_branches(login, manager, branch_a):
    shared = make_customer(first_name="Gloria", email="gloria@example.com", shared_with_all_branches=True)
    rows = [["Name", "Email", "Branches"], ["Gloria", "gloria@example.com", "alpha"]]
    job = job_of(upload(login(manager), "g.csv", csv_bytes(rows)))
    assert job.counts["invalid"] == 1
    assert "final" in refused_rows(job)[0]["message"]
    shared.refresh_from_db()
    assert shared.shared_with_all_branches


def test_tags_groups_and_branches_columns(login, manager, branch_a, branch_b):
    vip = CustomerGroup.objects.create(name="VIP")
    rows = [["Name", "Email", "Tags", "Groups", "Branches"], ["Anna", "anna@example.com", "blonde, regular", "vip", "alpha, Beta Salon"]]
    client = login(manager)
    confirm(client, job_of(upload(client, "t.csv", csv_bytes(rows))))
    anna = Customer.objects.get()
    assert sorted(anna.tags.names()) == ["blonde", "regular"]
    assert list(anna.groups.all()) == [vip]
    assert set(anna.branches.all()) == {branch_a, branch_b}
    job = job_of(upload(client, "t.csv", csv_bytes([*rows[:1], ["X", "x@example.com", "", "Unknown group", ""]])))
    assert refused_rows(job)[0]["message"] == "Unknown group: Unknown group."



def test_tag_names_in_any_case_are_one_tag(login, manager, branch_a):
    """The tag rule (wagtail_clientdb.tags), as the admin's tag field follows it: an existing
    tag of another case is that tag, in its spelling; "Neu" and "NEU" in one file are one new
    tag; a cell of only invisible characters is empty; a name longer than a tag's is refused."""
    stella = make_customer(first_name="Stella", email="stella@example.com", branches=[branch_a])
    stella.tags.add("Stammkunde")
    rows = [
        ["Name", "Email", "Tags"],
        ["Anna", "anna@example.com", "stammkunde, Neu"],
        ["Berta", "berta@example.com", "NEU"],
        ["Cora", "cora@example.com", "\u200b\ufeff"],
        ["Stella", "stella@example.com", "STAMMKUNDE"],
    ]
    client = login(manager)
    job = job_of(upload(client, "tags.csv", csv_bytes(rows)))
    assert job.counts == {"new": 3, "updated": 0, "unchanged": 1, "invalid": 0}
    confirm(client, job)
    assert {c.first_name: sorted(c.tags.names()) for c in Customer.objects.all()} == {
        "Anna": ["Neu", "Stammkunde"],
        "Berta": ["Neu"],
        "Cora": [],
        "Stella": ["Stammkunde"],
    }
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["Neu", "Stammkunde"]

    job = job_of(upload(client, "long.csv", csv_bytes([rows[0], ["Dora", "dora@example.com", "x" * 101]])))
    assert [row["message"] for row in refused_rows(job)] == ["A tag has at most 100 characters."]


def test_an_import_finds_its_tags_in_one_query_however_many_rows_name_them(login, manager):
    """A batch's tag names are looked up together, not row by row: a file naming one new tag in
    thirty spellings over thirty rows asks what a file of one row asks."""
    client = login(manager)

    def tag_queries(name, spellings):
        rows = [["Name", "Email", "Tags"]] + [
            [f"P{n}", f"{name}{n}@example.com", spelling] for n, spelling in enumerate(spellings)
        ]
        with CaptureQueriesContext(connection) as queries:
            confirm(client, job_of(upload(client, f"{name}.csv", csv_bytes(rows))))
        return [query["sql"] for query in queries if "customertag" in query["sql"]]

    few = tag_queries("few", ["Eins"])
    spellings = ["".join(c.upper() if n >> i & 1 else c for i, c in enumerate("zwei")) for n in range(16)]
    many = tag_queries("many", spellings * 2)
    assert len(few) == len(many), (few, many)
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["Eins", "zwei"]
    assert Customer.objects.filter(tags__name="zwei").count() == 32


def test_reimport_replaces_tags_groups_and_branches(login, manager, branch_a, branch_b):
    vip, regulars = CustomerGroup.objects.create(name="VIP"), CustomerGroup.objects.create(name="Regulars")
    linked = make_customer(first_name="Linked", email="linked@example.com", branches=[branch_a])
    linked.tags.add("old")
    linked.groups.add(vip)
    bare = make_customer(first_name="Bare", email="bare@example.com", branches=[branch_a])
    untouched = make_customer(first_name="Untouched", email="untouched@example.com", branches=[branch_a])
    untouched.tags.add("old")
    untouched.groups.add(vip)
    rows = [
        ["Name", "Email", "Tags", "Groups", "Branches"],
        ["Linked", "linked@example.com", "new, fresh", "Regulars", "Beta Salon"],
        ["Bare", "bare@example.com", "fresh", "VIP, Regulars", "alpha, beta"],
    ]
    client = login(manager)
    job = job_of(upload(client, "r.csv", csv_bytes(rows)))
    confirm(client, job)
    job.refresh_from_db()
    assert job.counts == {"new": 0, "updated": 2, "unchanged": 0, "invalid": 0}
    assert sorted(linked.tags.names()) == ["fresh", "new"]
    assert list(linked.groups.all()) == [regulars]
    assert list(linked.branches.all()) == [branch_b]
    assert sorted(bare.tags.names()) == ["fresh"]
    assert set(bare.groups.all()) == {vip, regulars}
    assert set(bare.branches.all()) == {branch_a, branch_b}
    assert list(untouched.tags.names()) == ["old"] and list(untouched.groups.all()) == [vip]


def test_quotes_backslashes_and_commas_survive_matching_and_updating(login, manager):
    """Keys and values travel to PostgreSQL as array literals; nothing in them may break out."""
    tricky_id = 'K"7\\, {x}'
    customer = make_customer(first_name="Ida", external_id=tricky_id, notes="old", shared_with_all_branches=True)
    notes = 'says "hi" \\ bye, {ok} NULL'
    rows = [["External ID", "Notes"], [tricky_id, notes]]
    client = login(manager)
    job = job_of(upload(client, "q.csv", csv_bytes(rows)))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 0}
    confirm(client, job)
    customer.refresh_from_db()
    assert customer.notes == notes and Customer.objects.count() == 1

# --- Round trip ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_export_then_import_changes_nothing(login, manager, branch_a, hair, since, export_format):
    vip = CustomerGroup.objects.create(name="VIP")
    anna = make_customer(
        first_name="Anna", last_name="=HYPERLINK(\"http://x/?\"&A2,\"y\")", email="anna@example.com", phone_raw="+49 170 1234567",
        notes="-5 is not a number\n@home", birthday=datetime.date(1990, 4, 1), marketing_consent=True,
        attributes={"hair": "fine", "since": "2020-01-15"}, external_id="K-1", shared_with_all_branches=True,
    )
    anna.groups.add(vip)
    anna.tags.add("blonde", "+vip")
    make_customer(first_name="Bert", email="bert@example.com", branches=[branch_a])
    client = login(manager)
    response = client.get(customer_url("list"), {"export": export_format})
    exported = b"".join(response.streaming_content)
    job = job_of(upload(client, f"export.{export_format}", exported))
    assert job.status == "previewed", job.error
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 2, "invalid": 0}, job.invalid_rows


# --- Bad files ---------------------------------------------------------------------------------------------------------


def zip_bytes(members):
    import zipfile

    output = io.BytesIO()
    with zipfile.ZipFile(output, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return output.getvalue()


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("empty.csv", b"", "file is empty."),
        ("empty.xlsx", xlsx_bytes([]), "The file is empty."),
        ("header-only.csv", csv_bytes([["Name", "Email", "Phone"]]), "a header row but no customers"),
        ("image.xlsx", PNG, "This is a PNG file, not a spreadsheet."),
        ("report.xlsx", b"%PDF-1.7\n" + b"x" * 100, "This is a PDF file"),
        ("archive.xlsx", zip_bytes({"readme.txt": "hello"}), "not an Excel workbook"),
        ("bomb.xlsx", zip_bytes({"xl/workbook.xml": "<x/>", "xl/worksheets/sheet1.xml": "0" * (3 * 1024 * 1024)}), "unpacks to more data"),
        ("many.xlsx", zip_bytes({f"xl/part{i}.xml": "x" for i in range(30)} | {"xl/workbook.xml": "<x/>"}), "too many parts"),
        ("secret.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 100, "password-protected"),
        ("mixed.csv", "Name,Email\nJürgen,j@example.com\n".encode() + "Müller,m@example.com\n".encode("cp1252"), "mixes character encodings"),
    ],
)
def test_bad_files_get_a_clear_message_and_change_nothing(login, manager, settings, name, data, message):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_UNCOMPRESSED_SIZE": 2 * 1024 * 1024, "IMPORT_MAX_ZIP_MEMBERS": 20}
    response = upload(login(manager), name, data)
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors["file"])
    assert not ImportJob.objects.exists()
    assert not Customer.objects.exists()


def xlsx_with_dimension(ref):
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["Name", "Email"], ["Anna", "anna@example.com"]])))
    members = {}
    for name in source.namelist():
        data = source.read(name)
        if name == "xl/worksheets/sheet1.xml":
            data = re.sub(rb'<dimension ref="[^"]+"\s*/>', b'<dimension ref="' + ref + b'"/>', data)
        members[name] = data
    return zip_bytes(members)


def test_negative_declared_worksheet_size_is_refused(login, manager):
    response = upload(login(manager), "odd.xlsx", xlsx_with_dimension(b"A1:B-5"))
    assert "could not be read" in " ".join(response.context["form"].errors["file"])


def test_huge_declared_worksheet_size_is_not_padded_out(login, manager):
    response = upload(login(manager), "huge.xlsx", xlsx_with_dimension(b"A1:XFD1048576"))
    assert job_of(response).counts == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 0}


def test_too_large_files_are_refused(login, manager, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_FILE_SIZE": 1000}
    response = upload(login(manager), "big.csv", csv_bytes([["Name"], *[[f"Person {i}"] for i in range(200)]]))
    assert "larger than" in " ".join(response.context["form"].errors["file"])


def test_too_many_rows_are_refused(login, manager, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_ROWS": 30}
    client = login(manager)
    job = job_of(upload(client, "rows.csv", csv_bytes([["Name"], *[[f"Person {i}"] for i in range(40)]])))
    assert job.status == "failed" and "more than 30 rows" in job.error
    assert "more than 30 rows" in client.get(customer_url("import_job", job.pk)).content.decode()
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_MAX_ROWS": 10}
    response = upload(client, "rows.csv", csv_bytes([["Name"], *[[f"Person {i}"] for i in range(40)]]))
    assert "more than 10 rows" in " ".join(response.context["form"].errors["file"])
    assert not Customer.objects.exists()


def test_cells_with_problems_are_refused_per_row(login, manager):
    rows = [
        ["Name", "Email", "Notes"],
        ["Nul", "nul@example.com", "a\x00b"],
        ["Long", "long@example.com", "x" * 10_001],
        ["Fine", "fine@example.com", "y" * 10_000],
        ["", "", "only notes"],
    ]
    job = job_of(upload(login(manager), "cells.csv", csv_bytes(rows)))
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 3}
    messages = {row["line"]: row["message"] for row in refused_rows(job)}
    assert "NUL" in messages[2] and "at most 10000" in messages[3] and "no name, email, phone" in messages[5]


def test_formulas_without_computed_values_are_flagged(login, manager):
    rows = [["Name", "Email", "Notes"], ["Anna", "anna@example.com", "=1+1"], ["Bert", "bert@example.com", "ok"]]
    job = job_of(upload(login(manager), "formulas.xlsx", xlsx_bytes(rows)))
    assert job.counts["invalid"] == 1
    assert refused_rows(job)[0]["line"] == 2 and "formula" in refused_rows(job)[0]["message"]


def test_title_row_above_the_headers(login, manager):
    rows = [["Name", "Email"], ["Anna", "anna@example.com"]]
    job = job_of(upload(login(manager), "titled.xlsx", xlsx_bytes(rows, title_row="Customers of Salon X, 2026")))
    assert job.header_row == 2 and job.counts["new"] == 1


def test_styled_blank_rows_are_ignored_and_ragged_rows_reported(login, manager):
    rows = [["Name", "Email"], ["Anna", "anna@example.com"], ["", ""], ["Bert", "bert@example.com", "extra"], ["", ""], ["", ""]]
    job = job_of(upload(login(manager), "ragged.csv", csv_bytes(rows)))
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 1}
    assert refused_rows(job) == [{"line": 4, "who": "Bert", "column": "(row)", "message": "The row has 1 more cells than the header row."}]


def test_the_refused_rows_report_keeps_every_cell_under_its_column_and_the_reason_in_its_own(login, manager):
    """Rows are read without their empty trailing cells; in the report each refused row is as
    wide as the header, so that a corrected report imports again without its reasons taken for
    the customer's data. Cells beyond the header's follow the reason."""
    rows = [
        ["Name", "Email", "Notes", "Birthday"],
        ["Anna Apfel", "anna@example.com", "", ""],
        ["Max Muster", "max@@example", "", ""],
        ["Bert Birne", "not-an-email", "", "", "extra"],
    ]
    client = login(manager)
    job = job_of(upload(client, "list.csv", csv_bytes(rows, delimiter=";", encoding="cp1252")))
    assert job.counts["invalid"] == 2
    confirm(client, job, import_valid_rows="on", sharing="all")
    report = b"".join(client.get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
    report_rows = list(csv.reader(io.StringIO(report), delimiter=";"))
    assert report_rows[0] == ["Line", "Name", "Email", "Notes", "Birthday", "Reason"]
    assert report_rows[1][:5] == ["3", "Max Muster", "max@@example", "", ""]
    assert report_rows[1][5].startswith("Email:") and len(report_rows[1]) == 6
    assert report_rows[2][:5] == ["4", "Bert Birne", "not-an-email", "", ""]
    assert report_rows[2][5] and report_rows[2][6:] == ["extra"]
    # Max's email corrected in the report, which then imports as it is: its Line and Reason
    # columns are the report's own, left alone without a mapping step.
    report_rows[1][2] = "max@example.com"
    response = upload(client, "report.csv", csv_bytes(report_rows[:2], delimiter=";"))
    assert "mapping" not in response.url
    job = job_of(response)
    assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 0}
    confirm(client, job, sharing="all")
    assert Customer.objects.filter(email="max@example.com", notes="", birthday=None).exists()


def test_german_excel_semicolon_csv_with_decimal_commas(login, manager):
    AttributeDefinition.objects.create(label="Guthaben", key="credit", field_type="decimal")
    rows = [["Vorname", "Nachname", "E-Mail", "Guthaben"], ["Jürgen", "Größe", "j@example.de", "12,50"]]
    client = login(manager)
    confirm(client, job_of(upload(client, "kunden.csv", csv_bytes(rows, delimiter=";", encoding="cp1252"))))
    assert Customer.objects.get().attributes == {"credit": "12.5"}


# --- Who may import ------------------------------------------------------------------------------------------------------


def test_jobs_belong_to_their_uploader(login, manager, staff_a):
    job = job_of(upload(login(manager), "a.csv", csv_bytes(PLAIN_ROWS)))
    client = login(staff_a)
    assert client.get(customer_url("import_job", job.pk)).status_code == 404
    assert client.post(customer_url("import_job", job.pk), {}).status_code == 404
    assert client.get(customer_url("import_report", job.pk)).status_code == 404


def test_editor_without_branch_cannot_import(login, editor):
    response = login(editor).get(customer_url("import"))
    assert response.status_code == 302 and response.url == reverse("wagtailadmin_home")


def test_large_files_run_in_the_background(login, manager, settings, django_capture_on_commit_callbacks):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_BACKGROUND_BYTES": 100}
    client = login(manager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_of(upload(client, "a.csv", csv_bytes(PLAIN_ROWS)))
    assert job.status == "previewing"
    page = client.get(customer_url("import_job", job.pk)).content.decode()
    assert "data-clientdb-progress" in page
    assert client.get(customer_url("import_status", job.pk)).json()["running"] is True
    for callback in callbacks:
        callback()
    job.refresh_from_db()
    assert job.status == "previewed" and job.counts["new"] == 3
    with django_capture_on_commit_callbacks(execute=True):
        confirm(client, job, sharing="all")
    job.refresh_from_db()
    assert job.status == "imported" and Customer.objects.count() == 3
    assert client.get(customer_url("import_status", job.pk)).json() == {"status": "imported", "rows_done": 3, "rows_total": 3, "running": False}


def test_a_background_import_writes_its_report_in_the_language_of_who_started_it(
    login, manager, settings, django_capture_on_commit_callbacks
):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "IMPORT_BACKGROUND_BYTES": 10}
    speak(manager, "de")
    client = login(manager)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Bea", "not-an-email"]])))
    # The worker runs outside any request, in the site's default language.
    for callback in callbacks:
        callback()
    report = b"".join(client.get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
    assert report.startswith("Zeile,") and "Bitte gültige E-Mail-Adresse eingeben." in report


def test_losing_the_branch_before_confirming_imports_nothing(login, staff_a, branch_a):
    from wagtail_clientdb.models import BranchMembership

    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes(PLAIN_ROWS)))
    BranchMembership.objects.filter(user=staff_a).delete()
    response = confirm(client, job)
    assert response.status_code == 302 and response.url == reverse("wagtailadmin_home")
    from wagtail_clientdb.imports import runner

    job.refresh_from_db()
    runner.execute(job, dry_run=False)  # a queued task checks again when it runs
    job.refresh_from_db()
    assert job.status == "failed" and "not a member of any branch" in job.error
    assert not Customer.objects.exists()


@pytest.mark.parametrize("language", ["de", "fr"])
def test_an_export_made_in_german_or_french_reimports_unchanged(login, manager, language, branch_a):
    CustomerGroup.objects.create(name="VIP")
    anna = make_customer(first_name="Anna", email="anna@example.com", external_id="K-9", shared_with_all_branches=True)
    anna.tags.add("blonde")
    speak(manager, language)
    client = login(manager)
    exported = b"".join(client.get(customer_url("list"), {"export": "csv"}).streaming_content)
    assert ("Vorname" if language == "de" else "Prénom") in exported.decode("utf-8-sig")
    response = upload(client, "export.csv", exported)
    assert "mapping" not in response.url
    assert job_of(response).counts == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0}


def test_formulas_with_computed_values_import_the_value_not_the_formula(login, manager):
    import re
    import zipfile

    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["Name", "Email", "Notes"], ["Anna", "anna@example.com", "=1+1"]])))
    members = {}
    for name in source.namelist():
        data = source.read(name)
        if name == "xl/worksheets/sheet1.xml":
            # As Excel saves it: the formula and its last computed value.
            data = re.sub(rb"<f>1\+1</f>(<v>\s*</v>|<v/>)?", b"<f>1+1</f><v>2</v>", data)
            assert b"<v>2</v>" in data
        members[name] = data
    client = login(manager)
    job = job_of(upload(client, "computed.xlsx", zip_bytes(members)))
    assert job.counts["new"] == 1
    confirm(client, job)
    assert Customer.objects.get().notes == "2"


def test_notes_of_an_import_speak_the_readers_language(login, manager, make_user, manager_group):
    """Kept as source and parameters: a German colleague reads them in German."""
    rows = [["Name", "Email"], ["Anna", "anna@example.com"]]
    job = job_of(upload(login(manager), "list.csv", csv_bytes(rows, delimiter=";")))
    assert {"text": "Encoding detected: %(encoding)s.", "params": {"encoding": "utf-8"}} in job.notes
    html = login(manager).get(customer_url("import_job", job.pk)).content.decode()
    assert "Encoding detected: utf-8." in html and "Columns separated by: ;" in html
    speak(manager, "de")
    html = login(manager).get(customer_url("import_job", job.pk)).content.decode()
    assert "Encoding detected" not in html and "Erkannte Zeichenkodierung: utf-8." in html


def test_refused_rows_speak_the_readers_language_not_the_importers(login, manager):
    """The reasons of refused rows are kept as source and parameters, like the notes."""
    rows = [["Name", "Email", "Birthday"], ["Anna", "anna@example.com", ""], ["Bea", "not-an-email", "31.02.1990"],
            ["Anna Zwei", "anna@example.com", ""]]
    job = job_of(upload(login(manager), "list.csv", csv_bytes(rows)))
    messages = {row["message"]["text"] for row in job.invalid_rows}
    assert {"Enter a valid email address.", "The same value as line %(line)s of this file."} <= messages
    html = login(manager).get(customer_url("import_job", job.pk)).content.decode()
    assert "Enter a valid email address." in html and "The same value as line 2 of this file." in html
    speak(manager, "de")
    response = login(manager).get(customer_url("import_job", job.pk))
    shown = {(row["column"], row["message"]) for row in response.context["invalid_rows"]}
    assert {("Email", "Bitte gültige E-Mail-Adresse eingeben."), ("Email", "Derselbe Wert wie in Zeile 2 dieser Datei.")} <= shown
    # The refused-rows report is worded for whoever ran the import, at the time.
    report = b"".join(login(manager).get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
    assert "Email: Enter a valid email address." in report


def test_a_managers_import_shares_new_customers_by_choice_never_with_nobody(login, manager, branch_a):
    client = login(manager)
    job = job_of(upload(client, "list.csv", csv_bytes([["Name", "Email"], ["Anna Apfel", "anna@example.com"]])))
    assert client.get(customer_url("import_job", job.pk)).context["form"]["sharing"].value() is None
    response = client.post(customer_url("import_job", job.pk), {})
    assert response.status_code == 200 and "sharing" in response.context["form"].errors
    response = client.post(customer_url("import_job", job.pk), {"sharing": "specific"})
    assert "Choose the branches that should see the new customers" in " ".join(response.context["form"].errors["share_branches"])
    assert not Customer.objects.exists()
    client.post(customer_url("import_job", job.pk), {"sharing": "specific", "share_branches": [branch_a.pk]})
    assert list(Customer.objects.get().branches.all()) == [branch_a]


def test_a_managers_import_without_new_customers_asks_no_sharing_and_refuses_a_row_new_since(login, manager):
    """Only updates in the preview: nothing to share, so nothing to choose. A row whose customer
    is gone by the import would be a new customer nobody chose the sharing of: it is refused
    as a change made after the preview is, and nothing is written."""
    anna = make_customer(first_name="Anna", last_name="Apfel", email="anna@example.com", shared_with_all_branches=True)
    bert = make_customer(first_name="Bert", last_name="Birne", email="bert@example.com", shared_with_all_branches=True)
    rows = [["Name", "Email", "Notes"], ["Anna Apfel", "anna@example.com", "updated"], ["Bert Birne", "bert@example.com", "updated"]]
    client = login(manager)
    job = job_of(upload(client, "list.csv", csv_bytes(rows)))
    assert job.counts == {"new": 0, "updated": 2, "unchanged": 0, "invalid": 0}
    form = client.get(customer_url("import_job", job.pk)).context["form"]
    assert "sharing" not in form.fields and "share_branches" not in form.fields
    bert.delete()
    client.post(customer_url("import_job", job.pk), {})
    job.refresh_from_db()
    assert job.status == "refused"
    assert [row["line"] for row in job.invalid_rows] == [3]
    assert "which the preview did not show" in str(job.invalid_rows[0]["message"])
    anna.refresh_from_db()
    assert anna.notes == "" and list(Customer.objects.values_list("first_name", flat=True)) == ["Anna"]
    # Without the row that changed, the rest imports.
    job = job_of(upload(client, "list.csv", csv_bytes(rows[:2])))
    client.post(customer_url("import_job", job.pk), {})
    anna.refresh_from_db()
    assert anna.notes == "updated"


def test_the_preview_says_whom_a_row_renames(login, manager):
    """A row matched by its phone number under another name: the preview's examples name the
    customer it updates and what the row makes of them."""
    make_customer(first_name="Jürgen", last_name="Weiß", phone_raw="030 1234567", shared_with_all_branches=True)
    make_customer(first_name="Anna", last_name="Apfel", email="anna@example.com", shared_with_all_branches=True)
    rows = [["Name", "Phone", "Email", "Notes"], ["Grete Nullmann", "+49 30 1234567", "grete@example.de", ""], ["Anna Apfel", "", "anna@example.com", "new"]]
    client = login(manager)
    job = job_of(upload(client, "list.csv", csv_bytes(rows)))
    assert job.counts["updated"] == 2
    assert job.samples["updated"] == ["Jürgen Weiß → Grete Nullmann", "Anna Apfel"]
    assert "Jürgen Weiß → Grete Nullmann" in client.get(customer_url("import_job", job.pk)).content.decode()


def test_tags_in_a_cell_are_separated_by_commas_or_semicolons_never_by_spaces(login, manager):
    """As the docs say for every list cell: "tea lover" is one tag, "vip; regular" two (taggit's
    own parsing made "tea" and "lover", and "vip;"); quotes the admin's tag field writes go."""
    rows = [
        ["Name", "Email", "Tags"],
        ["Anna", "anna@example.com", "tea lover"],
        ["Berta", "berta@example.com", "vip; regular"],
        ["Cora", "cora@example.com", '"early bird", vip'],
    ]
    client = login(manager)
    confirm(client, job_of(upload(client, "tags.csv", csv_bytes(rows))))
    assert {c.first_name: sorted(c.tags.names()) for c in Customer.objects.all()} == {
        "Anna": ["tea lover"],
        "Berta": ["regular", "vip"],
        "Cora": ["early bird", "vip"],
    }


#: List cells → the tags read from them.
LIST_CELLS = {
    '"Hair, long", VIP': ["Hair, long", "VIP"],
    '"Hair; long"; VIP': ["Hair; long", "VIP"],
    '"Say ""hi"""': ['Say "hi"'],
    'Say "hi", VIP': ['Say "hi"', "VIP"],  # a quote inside a name is part of it
    '"tea lover", VIP': ["tea lover", "VIP"],  # as the admin's tag field writes it
    '" tea lover " , VIP': ["tea lover", "VIP"],
    "tea lover ;VIP,Regulars": ["tea lover", "VIP", "Regulars"],
    'VIP,, ;"", Regulars;': ["VIP", "Regulars"],
    '"Hair, long': ["Hair, long"],  # no closing quote: the rest of the cell is the name
    'VIP; "Hair; long': ["VIP", "Hair; long"],
    '"A\nB", C': ["A\nB", "C"],
    "A\nB, C": ["A\nB", "C"],
    '"A", B\nC': ["A", "B", "C"],  # outside quotes, a line break ends a name, as it ends a CSV row
    '"' + "x" * 200_000: ["A tag has at most 100 characters."],  # longer than a CSV field may be
}


def test_a_list_cell_is_split_at_commas_and_semicolons_outside_double_quotes():
    """Never at spaces; quotes around a name are taken off, a doubled one inside is one quote."""
    context = RowContext("DE", [], [], {})
    read = {}
    for cell in LIST_CELLS:
        try:
            read[cell] = clean_row({columns.NAME: "Anna", columns.TAGS: cell}, context).tags
        except ValidationError as error:
            read[cell] = error.messages
    assert read == LIST_CELLS
    friends = CustomerGroup(name="Friends, family")
    context = RowContext("DE", [friends], [], {})
    assert clean_row({columns.NAME: "Anna", columns.GROUPS: '"friends, FAMILY"'}, context).groups == [friends]
