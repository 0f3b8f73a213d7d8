"""On PostgreSQL the customer search reaches its candidates through trigram indexes, for the
customers' own values and the branches' local values alike, instead of reading every customer;
and sorts a common name's matches instead of walking the name index to find them."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import make_customer
from wagtail_clientdb import overrides, search
from wagtail_clientdb.models import Customer

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's")


@pytest.mark.parametrize("named", [True, False], ids=["local-matches-named", "local-matches-subquery"])
@pytest.mark.parametrize("query", ["schm", "anna schmidt", "example.org", "0170 1234567", "1234567"])
def test_every_search_can_be_answered_by_indexes(db, branch_a, query, named, monkeypatch):
    """The customers with matching local values are read first through the local values'
    indexes and named by id (or, when many, found by a subquery through the same indexes)."""
    if not named:
        monkeypatch.setattr(search, "MAX_NAMED_LOCAL_MATCHES", 0)
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.org", phone_raw="0170 1234567")
    overrides.save_local_values(anna, branch_a, {"email": "anna.local@example.org"})
    with CaptureQueriesContext(connection) as reads:
        condition = search.customer_search_q(query, "DE")
    queryset = overrides.with_effective_values(Customer.objects.all(), branch_a).filter(condition)
    assert list(queryset) == [anna]
    with connection.cursor() as cursor:
        # With scans made prohibitively expensive, the planner shows which indexes it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = [queryset.explain()]
        for read in reads.captured_queries:
            cursor.execute("EXPLAIN " + read["sql"])
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    plans = "\n".join(plans)
    assert "customer_" in plans and "_trgm" in plans, plans
    assert "customeroverride_" in plans, plans
    assert "Seq Scan" not in plans, plans


@pytest.mark.parametrize("ordering", ["name", "-name"])
def test_a_search_sorts_its_matches_instead_of_walking_the_name_index(db, manager, ordering):
    """The matches of a name cluster in one stretch of the alphabet, where a walk of the name
    index from "A" finds them only after most customers: the planner must not be able to walk
    it for a search, even where sorting is made prohibitively expensive."""
    from wagtail_clientdb import listing, scope

    schmidt = make_customer(first_name="Anna", last_name="Schmidt", shared_with_all_branches=True)
    queryset = listing.search(listing.listing_queryset(scope.viewer_for_user(manager), None), "schm", "DE")
    with CaptureQueriesContext(connection) as page:
        assert listing.page_ids(queryset, None, ordering, 0, 20, searching=True) == [schmidt.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("EXPLAIN " + page.captured_queries[-1]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "clientdb_customer_name_walk" not in plan and "Sort" in plan, plan
