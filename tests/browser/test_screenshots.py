"""The screenshots of docs/screenshots/, taken from the example site's demo data (a salon chain
with four branches, 300 customers and about a thousand appointments) at 1280 pixels wide:

    CLIENTDB_SCREENSHOTS=docs/screenshots python -m pytest tests/browser/test_screenshots.py

Skipped unless CLIENTDB_SCREENSHOTS is set. It checks what it shows, as the flows do, so a
screenshot never shows an error page.
"""

import datetime
import random
import sys
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone
from playwright.sync_api import expect
from wagtail.models import Site

from tests.browser.conftest import SCREENSHOTS, save_screenshot
from wagtail_clientdb import deletion, scope
from wagtail_clientdb.models import Appointment, BookingPage, Branch, Customer, DeletionRequest, Service

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(not SCREENSHOTS, reason="CLIENTDB_SCREENSHOTS is not set"),
]

EXAMPLE_SITE = Path(__file__).resolve().parents[2] / "example_site"
CUSTOMER = "wagtailsnippets_wagtail_clientdb_customer"


def load_demo_data():
    """The demo data of ``manage.py load_demo_data``, with the booking pages under this site's
    root page (the example site's home page type is not installed here)."""
    if str(EXAMPLE_SITE) not in sys.path:
        sys.path.append(str(EXAMPLE_SITE))
    from demo.management.commands import load_demo_data as demo

    class Command(demo.Command):
        def create_pages(self, branches):
            home = Site.objects.get(is_default_site=True).root_page
            for slug, branch in branches.items():
                home.add_child(instance=BookingPage(
                    title=f"Book in {branch.name}", slug=slug, branch=branch,
                    intro="<p>Choose a service and a time; we look forward to seeing you.</p>",
                ))

    command = Command()
    command.language = "en"
    command.load(random.Random(demo.SEED))


def add_todays_appointments():
    """The demo has none today (its days are before and after): a morning in each salon."""
    customers = list(Customer.objects.filter(home_branch__isnull=True).order_by("pk")[:40])
    services = list(Service.objects.order_by("pk"))
    for index, branch in enumerate(Branch.objects.order_by("pk")):
        today = timezone.localdate(timezone=branch.zoneinfo)
        for hour in (9, 10, 11, 14):
            start = datetime.datetime.combine(today, datetime.time(hour, 15 * index), tzinfo=branch.zoneinfo)
            service = services[(hour + index) % len(services)]
            past = start + datetime.timedelta(minutes=service.duration) < timezone.now()
            Appointment.objects.create(
                customer=customers[(hour * 4 + index) % len(customers)], branch=branch, service=service,
                start=start, end=start + datetime.timedelta(minutes=service.duration),
                status="completed" if past else "booked",
            )


def test_screenshots_of_the_docs(browser_page, admin_url, log_in_as, live_server, tmp_path, settings):
    settings.WAGTAIL_SITE_NAME = "Salon Schnitt & Co"
    load_demo_data()
    add_todays_appointments()
    User = get_user_model()
    manager, mitte = User.objects.get(username="manager"), User.objects.get(username="mitte")
    folder = Path(SCREENSHOTS)
    page = browser_page

    def shot(name, **kwargs):
        save_screenshot(page, folder / f"{name}.png", **kwargs)

    # Customers to delete: some wait for an upcoming appointment.
    head_office = scope.Viewer(manager, True, ())
    upcoming = Appointment.objects.filter(status="booked", start__gt=timezone.now() + datetime.timedelta(days=2))
    waiting = list(Customer.objects.filter(pk__in=upcoming.values("customer")).order_by("-last_name")[:3])
    for customer in waiting:
        deletion.request_deletion(head_office, customer)
    assert DeletionRequest.objects.filter(status="blocked").count() == 3

    log_in_as(manager)
    page.goto(admin_url(f"{CUSTOMER}:list"))
    expect(page.locator("[data-clientdb-viewing-as]")).to_contain_text("whole company")
    shot("customers")

    # An import: two known customers updated, three new, one refused row.
    known = list(Customer.objects.exclude(email="").filter(shared_with_all_branches=True).order_by("pk")[:2])
    workbook = openpyxl.Workbook()
    for row in [
        [f"{known[0].first_name} {known[0].last_name}", "0171 2345678", known[0].email, "Moved to Hamburg", 1],
        [f"{known[1].first_name} {known[1].last_name}", None, known[1].email, "Prefers mornings", None],
        ["Marlene Dietz", "+49 170 5556677", "marlene.dietz@example.com", "", 1],
        ["Theo Brandt", "0152 34567890", "theo.brandt@example.org", "Allergic to latex", None],
        ["Ayşe Kılıç", "0176 98765432", "ayse.kilic@example.net", "", 1],
        ["Jonas Weber", "0160 1234567", "jonas.weber@example,de", "", None],
    ]:
        workbook.active.append(row)
    path = tmp_path / "new-customers.xlsx"
    workbook.save(path)
    page.goto(admin_url(f"{CUSTOMER}:import"))
    page.get_by_label("Customer list").set_input_files(path)
    page.click("button:has-text('Upload and check')")
    expect(page.locator("[data-clientdb-invalid-rows]")).to_contain_text("Jonas Weber")
    shot("import-preview", full_page=True)

    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_deletionrequest:list"))
    expect(page.locator("table.listing > tbody tr")).to_have_count(3)
    shot("customers-to-delete")

    page.goto(admin_url("wagtailadmin_home"))
    expect(page.locator("[data-clientdb-today]")).to_be_visible()
    shot("dashboard", full_page=True)

    # A shared customer with local values and a history, as the head office sees it.
    customer = (
        Customer.objects.filter(overrides__isnull=False)
        .annotate(appointment_count=Count("appointments")).order_by("-appointment_count", "pk").first()
    )
    page.goto(admin_url(f"{CUSTOMER}:inspect", customer.pk))
    expect(page.locator("[data-clientdb-appointments]")).to_be_visible()
    shot("customer-inspect", full_page=True)

    # Berlin Mitte's staff: a shared customer's local values, and the week.
    log_in_as(mitte)
    local = Customer.objects.filter(overrides__branch__slug="mitte").order_by("pk").first()
    page.goto(admin_url(f"{CUSTOMER}:edit", local.pk))
    expect(page.locator("[data-clientdb-override-notice]")).to_be_visible()
    shot("branch-edit")
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_appointment:week"))
    expect(page.locator("[data-clientdb-week-appointment]").first).to_be_visible()
    shot("appointments-week")
    # The company's segments and the branch's own, each counted as Mitte sees it.
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_segment:list"))
    expect(page.locator("table.listing > tbody tr")).to_have_count(4)
    expect(page.locator("table.listing")).to_contain_text("Has an upcoming appointment")
    shot("segments")

    # The public booking page of Berlin Mitte, with the free times of a weekday.
    booking_page = BookingPage.objects.get(slug="mitte")
    day = timezone.localdate() + datetime.timedelta(days=3)
    if day.weekday() == 6:
        day += datetime.timedelta(days=1)
    page.goto(live_server.url + booking_page.url)
    page.select_option("#booking-service", label="Cut & blow-dry (60 minutes)")
    page.fill("#booking-date", day.isoformat())
    page.click("text=Show free times")
    expect(page.locator("[data-clientdb-book]")).to_be_visible()
    shot("booking-page", full_page=True)
