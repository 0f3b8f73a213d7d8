"""A bulk action on every customer of a filtered listing, through Wagtail's own "select all"
in a real browser: the confirmation page counts them and names twenty, and the action reaches
what the listing showed and nothing else."""

import pytest
from playwright.sync_api import expect

from tests.conftest import make_customer
from wagtail_clientdb.models import Customer

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_select_all_in_a_filtered_listing_archives_what_it_shows(browser_page, admin_url, log_in_as, manager, branch_a, screenshot):
    regulars = [make_customer(first_name=f"Reg{n:02d}", last_name="Ular", branches=[branch_a]) for n in range(25)]
    for customer in regulars:
        customer.tags.add("regular")
    others = [make_customer(first_name=f"Oth{n}", last_name="Er", branches=[branch_a]) for n in range(3)]
    log_in_as(manager)
    page = browser_page
    tag = regulars[0].tags.get()
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:list", query=f"tags={tag.pk}"))
    page.locator("[data-bulk-action-select-all-checkbox]").first.check()
    # The selection is counted as customers (Wagtail's own words would be "snippets").
    expect(page.locator("[data-bulk-action-num-objects]")).to_have_text("All 20 customers on this screen selected")
    page.get_by_role("button", name="Select all customers in listing").click()
    expect(page.locator("[data-bulk-action-num-objects]")).to_have_text("All customers in listing selected.")
    page.locator("[data-bulk-action-footer] a", has_text="Archive").click()

    expect(page.get_by_text("25 customers", exact=True)).to_be_visible()
    expect(page.get_by_text("… and 5 more")).to_be_visible()
    expect(page.locator("main li")).to_have_count(20)
    screenshot(page, "confirmation")
    page.get_by_role("button", name="Yes, go ahead").click()

    expect(page.get_by_text("25 customers archived.")).to_be_visible()
    archived = set(Customer.objects.filter(archived_at__isnull=False).values_list("pk", flat=True))
    assert archived == {customer.pk for customer in regulars}
    assert not archived & {customer.pk for customer in others}
