"""The booking page in a real browser (Playwright driving Debian's Chromium), end to end."""

import datetime

import pytest
from django.core import mail
from django.utils import timezone

from wagtail_clientdb.models import Appointment, Customer


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_visitor_books_through_the_page(live_server, browser_page, booking_site, branch_a, screenshot):
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
    screenshot(page, "form", full_page=True)
    page.click("button:has-text('Book')")
    page.wait_for_selector("[data-clientdb-booked]")
    screenshot(page, "booked")
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
