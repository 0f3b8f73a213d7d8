"""Requesting the deletion of a customer with an upcoming appointment, in a real browser: the
customer waits in "Customers to delete", blocked by that appointment."""

import pytest
from playwright.sync_api import expect

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb.models import Customer, DeletionRequest

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_customer_with_an_upcoming_appointment_waits_blocked_in_customers_to_delete(browser_page, admin_url, log_in_as, manager, branch_a, branch_b, screenshot):
    doris = make_customer(first_name="Doris", last_name="Delete", email="doris@example.com", shared_with_all_branches=True)
    make_appointment(doris, branch_a, days=3, service="Colour")
    make_appointment(doris, branch_b, days=-10)
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:list"))
    page.get_by_role("button", name="More options for 'Doris Delete'").click()
    page.get_by_role("link", name="Delete", exact=True).click()
    expect(page.locator("main")).to_contain_text("1 upcoming, 1 past or cancelled")
    page.click("button:has-text('Yes, delete')")

    expect(page.locator(".messages")).to_contain_text("“Doris Delete” is queued for deletion. Blocked by: Alpha Salon")
    expect(page.locator("tr", has_text="Doris Delete").locator(".w-status", has_text="pending deletion")).to_be_visible()

    page.locator("#wagtail-sidebar").get_by_role("button", name="Client DB").click()
    page.locator("#wagtail-sidebar").get_by_role("link", name="Customers to delete").click()
    expect(page.locator("h1")).to_have_text("Customers to delete")
    row = page.locator("table.listing > tbody tr", has_text="Doris Delete")
    expect(row).to_contain_text("Blocked by upcoming appointments")
    expect(row).to_contain_text("Alpha Salon: upcoming appointment “Colour” on")
    expect(row).not_to_contain_text("Beta Salon")
    expect(row.get_by_role("button", name="Try again now")).to_be_visible()
    expect(row.get_by_role("button", name="Cancel request")).to_be_visible()
    screenshot(page, "queue")

    request = DeletionRequest.objects.get()
    assert (request.status, request.customer, request.requested_by) == ("blocked", doris, manager)
    assert list(request.blocking_branches.all()) == [branch_a]
    assert Customer.objects.filter(pk=doris.pk).exists()

    # Trying again changes nothing while the appointment is still ahead.
    row.get_by_role("button", name="Try again now").click()
    expect(page.locator(".messages")).to_contain_text("Still blocked: Alpha Salon")
    request.refresh_from_db()
    assert request.status == "blocked" and request.last_attempt_at is not None
