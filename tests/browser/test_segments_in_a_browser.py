"""The Segments list and the customer listing in a real browser: the counts and the group names
the page leaves to the browser are filled in."""

import pytest
from playwright.sync_api import expect

from tests.conftest import make_customer
from wagtail_clientdb.models import CustomerGroup, Segment, SegmentVisibility

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SEGMENTS = "wagtailsnippets_wagtail_clientdb_segment:list"
CUSTOMERS = "wagtailsnippets_wagtail_clientdb_customer:list"


def test_the_counts_left_to_the_browser_are_filled_in(browser_page, admin_url, log_in_as, manager, settings):
    settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_COUNTING_MS": 0}
    for i in range(3):
        customer = make_customer(first_name=f"Anna {i}", last_name="Schmidt", shared_with_all_branches=True)
        customer.tags.add("regular")
    for i in range(6):
        Segment.objects.create(
            name=f"Regulars {i}", query="q=Schmidt" if i % 2 else "", owner=manager, visibility=SegmentVisibility.COMPANY
        )
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url(SEGMENTS))
    rows = page.locator("table.listing > tbody > tr")
    expect(rows).to_have_count(6)
    # Three counted by the page, three by the browser: every cell ends with its number.
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    counts = [row.locator("td").nth(3).inner_text().strip() for row in rows.all()]
    assert counts == ["3"] * 6


def test_the_group_names_left_to_the_browser_are_filled_in(browser_page, admin_url, log_in_as, manager, settings):
    settings.WAGTAIL_CLIENTDB = {"LISTING_GROUP_NAMES_MS": 0}
    anna = make_customer(first_name="Anna", last_name="Schmidt", shared_with_all_branches=True)
    make_customer(first_name="Bert", last_name="Schmidt", shared_with_all_branches=True)
    for i in range(1, 6):
        anna.tags.add(f"rule-{i}")
        segment = Segment.objects.create(
            name=f"Rule {i} segment", query=f"tags={anna.tags.get(name=f'rule-{i}').pk}", owner=manager,
            visibility=SegmentVisibility.COMPANY,
        )
        CustomerGroup.objects.create(name=f"Rule {i}", segment=segment)
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url(CUSTOMERS) + "?q=Schmidt")
    rows = page.locator("table.listing > tbody > tr")
    expect(rows).to_have_count(2)
    # Three groups named by the page, two by the browser; a customer in none shows none.
    expect(page.locator("[aria-busy=true]")).to_have_count(0)
    groups_column = [row.locator("td").nth(4).inner_text().strip() for row in rows.all()]
    assert groups_column == ["Rule 1, Rule 2, Rule 3, Rule 4, Rule 5", ""]
