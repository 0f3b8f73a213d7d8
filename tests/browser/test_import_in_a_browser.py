"""Importing an XLSX customer list in a real browser: upload → preview → confirmation, with
refused rows: left out after the preview said so, or refusing an all-or-nothing import whose
valid rows can then be imported without uploading the file again."""

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.conftest import make_customer
from wagtail_clientdb.models import Customer, ImportJob

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CUSTOMERS = "wagtailsnippets_wagtail_clientdb_customer:list"


def xlsx_file(tmp_path, name, rows):
    """A spreadsheet in the plain layout: A name, B phone, C email, D notes, E consent (no header)."""
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def upload(page, admin_url, path):
    page.goto(admin_url(CUSTOMERS))
    page.locator("#w-slim-header-buttons").get_by_role("link", name="Import").click()
    expect(page.locator("h1")).to_have_text("Import customers")
    page.get_by_label("Customer list").set_input_files(path)
    page.click("button:has-text('Upload and check')")
    expect(page.locator("[data-clientdb-counts]")).to_be_visible()


def counts(page):
    return dict(
        zip(page.locator("[data-clientdb-counts] th").all_inner_texts(), map(int, page.locator("[data-clientdb-counts] td").all_inner_texts()))
    )


def test_a_refused_row_of_the_preview_is_left_out_and_the_valid_rows_imported(browser_page, admin_url, log_in_as, manager, branch_a, branch_b, tmp_path, screenshot):
    path = xlsx_file(tmp_path, "kunden.xlsx", [
        ["Anna Schmidt", "+49 170 1234567", "anna@example.com", "likes tea", 1],
        ["Bernd Müller", "0170 7654321", "bernd.mueller@gmx,de", "", None],
        ["Clara Adler", None, "clara@example.net", "", 1],
    ])
    log_in_as(manager)
    page = browser_page
    upload(page, admin_url, path)
    assert counts(page) == {"New customers": 2, "Updated": 0, "Unchanged": 0, "Refused": 1}
    refused = page.locator("[data-clientdb-invalid-rows] tbody tr")
    expect(refused).to_have_count(1)
    expect(refused.locator("td")).to_have_text(["2", "Bernd Müller", "C", "Enter a valid email address."])
    expect(page.locator("[data-clientdb-import-consequence]")).to_contain_text("leaves out the refused row")
    assert not Customer.objects.exists()  # nothing is written before the confirmation

    # A manager chooses whom the new customers are shared with; "specific" needs a branch.
    page.get_by_label("Specific branches").check()
    page.click("button:has-text('Import the valid rows')")
    expect(page.get_by_text("Choose the branches that should see the new customers")).to_be_visible()
    page.get_by_label("Beta Salon").check()
    screenshot(page, "preview", full_page=True)
    page.click("button:has-text('Import the valid rows')")

    expect(page.locator("main h2").first).to_contain_text("· Imported")
    assert counts(page) == {"New customers": 2, "Updated": 0, "Unchanged": 0, "Refused": 1}
    expect(page.locator("[data-clientdb-report]")).to_be_visible()
    job = ImportJob.objects.get()
    assert (job.status, job.original_name) == ("imported", "kunden.xlsx")
    assert sorted(Customer.objects.values_list("first_name", "last_name")) == [("Anna", "Schmidt"), ("Clara", "Adler")]
    anna = Customer.objects.get(first_name="Anna")
    assert (anna.phone, anna.email, anna.notes, anna.marketing_consent, anna.source) == (
        "+491701234567", "anna@example.com", "likes tea", True, "import"
    )
    assert list(anna.branches.all()) == [branch_b] and not anna.shared_with_all_branches

    with page.expect_download() as download_info:
        page.click("[data-clientdb-report]")
    report = open(download_info.value.path(), encoding="utf-8-sig").read()
    assert "Bernd" in report


def test_an_all_or_nothing_import_refused_at_the_confirmation_imports_the_valid_rows_without_a_new_upload(browser_page, browser_context, admin_url, log_in_as, staff_a, branch_a, tmp_path, screenshot):
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.com", notes="Old note", home_branch=branch_a)
    path = xlsx_file(tmp_path, "list.xlsx", [
        ["Anna Schmidt", None, "anna@example.com", "From the file", None],
        ["Nina Neu", "0170 7654321", "nina@example.com", "New person", 1],
    ])
    log_in_as(staff_a)
    page = browser_page
    upload(page, admin_url, path)
    assert counts(page) == {"New customers": 1, "Updated": 1, "Unchanged": 0, "Refused": 0}
    valid_rows = page.get_by_label("Import the valid rows and report the rest")
    expect(valid_rows).not_to_be_checked()

    # Meanwhile, someone at the desk changes Anna in another tab.
    desk = browser_context.new_page()
    desk.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:edit", anna.pk))
    desk.fill("#id_notes", "Typed at the desk")
    desk.click("button:has-text('Save')")
    expect(desk.locator(".messages")).to_contain_text("Anna Schmidt")
    desk.close()

    page.click("button:has-text('Import')")
    notice = page.locator("[data-clientdb-refused-notice]")
    expect(notice).to_contain_text("Nothing was imported: 1 row was refused")
    expect(page.locator("[data-clientdb-invalid-rows]")).to_contain_text("after the preview")
    screenshot(page, "refused", full_page=True)
    job = ImportJob.objects.get()
    assert job.status == "refused"
    assert not Customer.objects.filter(email="nina@example.com").exists()

    # The same page offers the valid rows, without uploading the file again.
    page.click("button:has-text('Import the valid rows')")
    expect(page.locator("main h2").first).to_contain_text("· Imported")
    job.refresh_from_db()
    assert job.status == "imported" and ImportJob.objects.count() == 1
    nina = Customer.objects.get(email="nina@example.com")
    assert (nina.first_name, nina.home_branch, nina.phone) == ("Nina", branch_a, "+491707654321")
    anna.refresh_from_db()
    assert anna.notes == "Typed at the desk"
    expect(page.locator("button:has-text('Import the valid rows')")).to_have_count(0)
