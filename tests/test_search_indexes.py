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
        monkeypatch.setattr(overrides, "MAX_NAMED_LOCAL_MATCHES", 0)
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


def _page_reads(queries):
    """The reads of a page's keys, in order (not the counts, savepoints, settings)."""
    return [query["sql"] for query in queries.captured_queries if query["sql"].startswith("SELECT key_id")]


def _plan(sql):
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


@pytest.mark.parametrize("ordering", ["name", "-name"])
def test_a_search_sorts_its_matches_instead_of_walking_the_name_index(db, manager, ordering):
    """The matches of a name cluster in one stretch of the alphabet, where a walk of the name
    index from "A" finds them only after most customers: the planner must not be able to walk
    it for a search's matches (those whose last name does not start with the search, in name
    order; all of them, descending), even where sorting is made prohibitively expensive."""
    from wagtail_clientdb import listing, scope

    aschmann = make_customer(first_name="Anna", last_name="Aschmann", shared_with_all_branches=True)
    queryset = listing.searched(listing.listing_queryset(scope.viewer_for_user(manager), None), "schm", "DE")
    with CaptureQueriesContext(connection) as page:
        assert listing.page_ids(queryset, None, ordering, 0, 20, query="schm") == [aschmann.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        plan = _plan(_page_reads(page)[-1])
    assert "clientdb_customer_name_walk" not in plan and "Sort" in plan, plan


@pytest.mark.parametrize("branch", [False, True], ids=["company", "branch"])
def test_last_names_starting_with_a_search_are_read_from_the_name_index(db, manager, branch_a, branch):
    """The first part of a search in name order, the last names starting with it, is a stretch
    of the name index: its first page is read there, not sorted from every match."""
    from wagtail_clientdb import listing, scope

    schmidt = make_customer(first_name="Anna", last_name="Schmidt", shared_with_all_branches=True)
    shown = branch_a if branch else None
    unsearched = listing.listing_queryset(scope.viewer_for_user(manager), shown)
    queryset = listing.searched(unsearched, "Schm", "DE")
    with CaptureQueriesContext(connection) as page:
        assert listing.page_ids(queryset, shown, "name", 0, 20, query="Schm", unsearched=unsearched) == [schmidt.pk]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        plan = _plan(_page_reads(page)[0])
    assert "clientdb_customer_name_walk" in plan and "'schm'::text" in plan and "'schn'::text" in plan, plan


def _index_conditions(queryset):
    """What the indexes are asked for when only the trigram indexes' bitmaps are left (they show
    which words are looked up), and the whole plan."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = queryset.explain()
    return "\n".join(line for line in plan.splitlines() if "Index Cond" in line), plan


def test_each_word_of_a_search_narrows_its_candidates_through_the_indexes(db, branch_a):
    """"Anna Schmidt": each word's candidates are there for the indexes, so the planner reads the
    rarer word's, not every Schmidt (the longest word) to find the Annas among them."""
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="a.s@example.org")
    for number in range(30):
        make_customer(first_name="Bea", last_name="Schmidt", email=f"b{number}@example.org")
    queryset = overrides.with_effective_values(Customer.objects.all(), branch_a)
    queryset = queryset.filter(search.customer_search_q("Anna Schmidt", "DE"))
    assert list(queryset) == [anna]
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_clientdb_customer")
    index_conditions, plan = _index_conditions(queryset)
    assert "%ANNA%" in index_conditions, plan


def test_an_email_address_is_looked_up_by_its_own_part(db, branch_a):
    """The domain of an address is in most customers' rows (its trigrams' index entries are the
    longest): the indexes are asked for the address's own part up to the "@", and the whole
    address is checked on what they find."""
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna.schmidt@example.org")
    make_customer(first_name="Anna", last_name="Other", email="anna.schmidt@example.net")
    queryset = overrides.with_effective_values(Customer.objects.all(), branch_a)
    queryset = queryset.filter(search.customer_search_q("anna.schmidt@example.org", "DE"))
    assert list(queryset) == [anna]
    index_conditions, plan = _index_conditions(queryset)
    assert "%ANNA.SCHMIDT@%" in index_conditions and "EXAMPLE.ORG" not in index_conditions, plan


@pytest.mark.parametrize("term, looked_up_by", [
    ("anna.schmidt@example.org", "anna.schmidt@"), ("ann@web.de", "ann@"), ("an@web.de", "an@web.de"),
    ("@example.org", "@example.org"), ("example.org", "example.org"), ("schmidt", "schmidt"),
])
def test_which_part_of_a_word_its_candidates_are_looked_up_by(term, looked_up_by):
    assert search.looked_up_by(term) == looked_up_by


@pytest.mark.parametrize("branch", [False, True], ids=["company", "branch"])
def test_an_attribute_value_is_found_through_the_attribute_index(db, branch_a, branch):
    """A choice's customers are found through the index of the record's attribute values (the
    few with a local value in the branch named by id), not by merging every customer's values."""
    from wagtail_clientdb import attributes

    curly = make_customer(first_name="Anna", attributes={"hair": "curly"})
    make_customer(first_name="Bea", attributes={"hair": "straight"})
    shown = branch_a if branch else None
    customers = attributes.with_value(overrides.with_effective_values(Customer.objects.all(), shown), shown, "hair", ["curly"])
    assert list(customers) == [curly]
    with connection.cursor() as cursor:
        # Only bitmaps left: they show which indexes the condition can be answered by.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        plan = customers.explain()
    assert "clientdb_customer_attributes" in plan, plan


def test_a_branch_reads_the_customers_it_names_itself_from_an_index_alone(db, staff_a, branch_a):
    """The customers a branch knows by names of its own are sorted apart from the walk of the
    name index and left out of it: the branch's local values with their names come from an index
    by branch and customer that holds the names, not from the table. Which index the planner
    takes for a table of three rows is its guess (at a million customers it takes this one:
    docs/performance.md, stop 38), so the index is checked, and the page's order."""
    from wagtail_clientdb import listing, scope

    renamed = make_customer(first_name="Anna", last_name="Adler", shared_with_all_branches=True)
    overrides.save_local_values(renamed, branch_a, {"last_name": "Zander"})
    berg = make_customer(first_name="Bea", last_name="Berg", shared_with_all_branches=True)
    noted = make_customer(first_name="Cem", last_name="Cakir", shared_with_all_branches=True)
    overrides.save_local_values(noted, branch_a, {"notes": "local notes, no local name"})
    ids = listing.page_ids(listing.listing_queryset(scope.viewer_for_user(staff_a), branch_a), branch_a, "name", 0, 20)
    assert ids == [berg.pk, noted.pk, renamed.pk]  # Zander, as the branch sees Anna Adler
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'clientdb_override_names'")
        (definition,) = cursor.fetchone()
    assert "wagtail_clientdb_customeroverride USING btree (branch_id, customer_id) INCLUDE (last_name, first_name)" in definition
