"""The booking page in a real browser (Playwright driving Debian's Chromium), end to end.

Skipped where Chromium is not installed, unless CLIENTDB_REQUIRE_BROWSER is set (CI sets
it, after installing Debian's ``chromium`` package).
"""

import datetime
import os
import shutil

import pytest
from django.core import mail
from django.db import connections
from django.utils import timezone
from wagtail.models import Site

from tests.conftest import make_service
from wagtail_clientdb.models import Appointment, BookingPage, Customer, CustomerGroup, OpeningHours

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: As the machine's probe starts it: no background networking (the sandbox refuses it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser_page(monkeypatch):
    # Playwright's synchronous API runs an event loop in this thread; the test's own database
    # work is synchronous all the same.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "1")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CLIENTDB_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium is required but not installed at {CHROMIUM}")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()
            # While Playwright's event loop runs in this thread, Django keeps this thread's
            # database connection per context (asgiref): the test's queries opened one that
            # the test teardown does not see, and that would keep the test database in use.
            connections.close_all()


@pytest.fixture
def booking_site(db, branch_a):
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(17))
    make_service("Cut & blow-dry", branch_a, duration=60)
    CustomerGroup.objects.create(name="Online bookings", is_default=True)
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=BookingPage(title="Book at Alpha", slug="book-alpha", branch=branch_a))


@pytest.mark.django_db(transaction=True)
def test_a_visitor_books_through_the_page(live_server, browser_page, booking_site, branch_a):
    page = browser_page
    day = timezone.localdate(timezone.now(), branch_a.zoneinfo) + datetime.timedelta(days=2)
    page.goto(live_server.url + booking_site.url)
    page.select_option("#booking-service", label="Cut & blow-dry (60 minutes)")
    page.fill("#booking-date", day.isoformat())
    page.click("text=Show free times")
    page.check("input[name=start] >> nth=2")  # 09:30
    page.fill("input[name=first_name]", "Paula")
    page.fill("input[name=last_name]", "Browser")
    page.fill("input[name=email]", "paula@example.com")
    page.fill("input[name=phone]", "0170 1234567")
    page.check("input[name=marketing_consent]")
    page.click("button:has-text('Book')")
    page.wait_for_selector("[data-clientdb-booked]")
    assert "your appointment is booked" in page.inner_text("[data-clientdb-booked]")

    appointment = Appointment.objects.get()
    start = timezone.localtime(appointment.start, branch_a.zoneinfo)
    assert (start.date(), start.strftime("%H:%M"), appointment.source) == (day, "09:30", "online_booking")
    customer = Customer.objects.get()
    assert (customer.first_name, customer.phone, customer.marketing_consent) == ("Paula", "+491701234567", True)
    assert [group.name for group in customer.groups.all()] == ["Online bookings"]

    # The link in the email cancels, after asking.
    link = next(line for line in mail.outbox[0].body.splitlines() if "/cancel/" in line)
    page.goto(link.replace("http://testserver", live_server.url))
    page.click("button:has-text('Yes, cancel it')")
    page.wait_for_selector("[data-clientdb-cancelled]")
    appointment.refresh_from_db()
    assert appointment.status == "cancelled"
