"""The customer listing in a real browser: filters (tag, location), sorting by most bookings,
and the export of what the listing shows, opened as the user would open the file."""

import csv
import io
import re
from collections import Counter

import openpyxl
import pytest
from playwright.sync_api import expect

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb.models import Appointment, Customer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CUSTOMERS = "wagtailsnippets_wagtail_clientdb_customer:list"
RESULTS = "table.listing > tbody"


@pytest.fixture
def salon_customers(branch_a, branch_b):
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.com", phone_raw="0170 1234567",
                         shared_with_all_branches=True)
    anna.tags.add("blonde", "regular")
    bernd = make_customer(first_name="Bernd", last_name="Müller", email="bernd@example.org", shared_with_all_branches=True)
    bernd.tags.add("regular")
    clara = make_customer(first_name="Clara", last_name="Adler", email="clara@example.net", branches=[branch_a])
    clara.tags.add("blonde")
    dora = make_customer(first_name="Dora", last_name="Zander", email="dora@example.com", home_branch=branch_b)
    dora.tags.add("blonde")
    for days in (-30, -10, 5):
        make_appointment(clara, branch_a, days=days)
    make_appointment(anna, branch_a, days=-3)
    for days in (-20, -5):
        make_appointment(bernd, branch_b, days=days)
    return {"anna": anna, "bernd": bernd, "clara": clara, "dora": dora}


def names(page):
    """The name links of the listing's rows."""
    return page.locator(f"{RESULTS} tr td:nth-child(2) a")


def listed(page):
    """The names in the listing's rows, in their order."""
    return [name.strip() for name in page.locator(f"{RESULTS} tr td:nth-child(2) a").all_inner_texts()]


def open_filter(page, label):
    page.get_by_role("button", name="Show filters").click()
    page.locator(".w-drilldown__toggle", has_text=label).click()


def test_filter_by_tag_and_location_and_sort_by_most_bookings(browser_page, admin_url, log_in_as, manager, salon_customers, branch_a, screenshot):
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    expect(page.locator(RESULTS + " tr")).to_have_count(4)
    expect(names(page)).to_have_text(["Clara Adler", "Bernd Müller", "Anna Schmidt", "Dora Zander"])

    open_filter(page, "Tags")
    page.get_by_label("blonde").check()
    expect(page.locator(RESULTS + " tr")).to_have_count(3)
    expect(names(page)).to_have_text(["Clara Adler", "Anna Schmidt", "Dora Zander"])
    page.keyboard.press("Escape")

    open_filter(page, "Location")
    page.get_by_label("Location").select_option(label="Alpha Salon")
    expect(page.locator("[data-clientdb-viewing-as]")).to_contain_text("as Alpha Salon sees them")
    expect(page.locator(RESULTS + " tr")).to_have_count(2)
    expect(names(page)).to_have_text(["Clara Adler", "Anna Schmidt"])
    page.keyboard.press("Escape")
    screenshot(page, "filtered")

    # The column sorts by most bookings first.
    page.locator("th a", has_text="Bookings here").click()
    expect(page).to_have_url(re.compile(r"ordering=-bookings_count"))
    expect(names(page)).to_have_text(["Clara Adler", "Anna Schmidt"])

    # Without the tag: every customer Alpha sees, most bookings there first.
    page.locator(".w-active-filters .w-pill", has_text="blonde").get_by_role("button", name="Clear").click()
    expect(page.locator(RESULTS + " tr")).to_have_count(3)
    counts = page.locator(f"{RESULTS} tr td:nth-child(7)").all_inner_texts()
    screenshot(page, "most-bookings")

    # The database agrees: the customers Alpha sees, by their appointments there (not cancelled).
    in_alpha = Counter(
        f"{a.customer.first_name} {a.customer.last_name}"
        for a in Appointment.objects.filter(branch=branch_a).exclude(status="cancelled").select_related("customer")
    )
    shown = [(name, int(count)) for name, count in zip(listed(page), counts)]
    assert shown == sorted(((name, in_alpha[name]) for name in listed(page)), key=lambda row: (-row[1], row[0].split()[-1]))
    assert shown[0] == ("Clara Adler", 3) and len(shown) == 3


def header_download(page, label):
    """Click a download of the header's labelled "Export" menu (opening it when it is closed)."""
    link = page.get_by_role("link", name=label)
    if not link.is_visible():
        page.locator("#w-slim-header-buttons").get_by_role("button", name="Export").click()
    link.click()


def test_export_downloads_what_the_listing_shows(browser_page, admin_url, log_in_as, manager, salon_customers, tmp_path):
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    open_filter(page, "Tags")
    page.get_by_label("regular").check()
    expect(page.locator(RESULTS + " tr")).to_have_count(2)
    page.keyboard.press("Escape")

    with page.expect_download() as download_info:
        header_download(page, "Download XLSX")
    download = download_info.value
    assert download.suggested_filename.startswith("customers-") and download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    sheet = openpyxl.load_workbook(path, read_only=True).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    by_email = {row[header.index("Email")]: row for row in body}
    assert set(by_email) == {"anna@example.com", "bernd@example.org"}
    assert by_email["anna@example.com"][header.index("First name")] == "Anna"

    with page.expect_download() as download_info:
        header_download(page, "Download CSV (separated by commas)")
    download = download_info.value
    text = open(download.path(), encoding="utf-8-sig").read()
    table = list(csv.reader(io.StringIO(text)))
    header = table[0]
    assert {row[header.index("Email")] for row in table[1:]} == {"anna@example.com", "bernd@example.org"}
    assert len(table) - 1 == Customer.objects.filter(tags__name="regular").count()
