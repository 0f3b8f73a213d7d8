"""The Segments list in a real browser: the counts the page leaves to the browser are filled in."""

import pytest
from playwright.sync_api import expect

from tests.conftest import make_customer
from wagtail_clientdb.models import Segment, SegmentVisibility

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SEGMENTS = "wagtailsnippets_wagtail_clientdb_segment:list"


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
