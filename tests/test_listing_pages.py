"""The customer listing's pages: each page found by its sort keys (a branch's local names and
booking counts included) is the same stretch of the same order as sorting the whole listing,
and counts above the exact-count limit are PostgreSQL's estimate, labelled and corrected where
a page proves them wrong."""

import itertools
import re

import pytest
from django.db import connection
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.models import APIToken

from tests.conftest import listing_counts, make_appointment, make_customer
from wagtail_clientdb import archive, listing, overrides, page_queries, scope
from wagtail_clientdb.checks import name_collation_check
from wagtail_clientdb.filters import ESTIMATED_FILTERS, CustomerFilterSet
from wagtail_clientdb.models import AttributeDefinition, Customer, CustomerGroup, CustomerOverride, Segment

LIST_URL = reverse("wagtailsnippets_wagtail_clientdb_customer:list")
PER_PAGE = 20
LAST_NAMES = ["adler", "Adler", "berg", "Zorn", "müller", "Meyer", "ober"]
FIRST_NAMES = ["anna", "Anna", "bea", "Carl"]


@pytest.fixture
def many_customers(branch_a, branch_b):
    """47 customers: ties in every sort key, every scope, local names and bookings in branch A."""
    customers = []
    for number, (last, first) in enumerate(itertools.islice(itertools.cycle(itertools.product(LAST_NAMES, FIRST_NAMES)), 47)):
        scope_fields = [
            {"shared_with_all_branches": True},
            {"home_branch": branch_a},
            {"home_branch": branch_b},
            {"branches": [branch_a, branch_b]},
            {"branches": [branch_b]},
        ][number % 5]
        customers.append(make_customer(first_name=first, last_name=last, email=f"c{number:02}@example.com", **scope_fields))
    seen_by_a = [c for i, c in enumerate(customers) if i % 5 in (0, 3)]
    # Local names in branch A: a last name, a first name only, both; one that sorts first, one last.
    for customer, values in zip(seen_by_a, [{"last_name": "Aaron"}, {"first_name": "zed"}, {"last_name": "zz", "first_name": "A"}, {"last_name": "meyer"}]):
        CustomerOverride.objects.create(customer=customer, branch=branch_a, **values)
    CustomerOverride.objects.create(customer=seen_by_a[4], branch=branch_b, last_name="Bbbb")
    CustomerOverride.objects.create(customer=seen_by_a[5], branch=branch_a, email="local@example.com")
    for index, customer in enumerate(seen_by_a[:8]):
        for _visit in range(index % 3 + 1):
            make_appointment(customer, branch_a, days=-3)
    make_appointment(seen_by_a[9], branch_a, days=-3, status="cancelled")
    make_appointment(seen_by_a[10], branch_b, days=-3)
    return customers


def all_pages(client, params):
    """Names and ids of every customer shown, page by page, following "next" as a user does."""
    shown, number = [], 1
    while True:
        response = client.get(LIST_URL, {**params, "p": number})
        assert response.status_code == 200
        page = response.context["page_obj"]
        assert page.number == number
        shown += [c.pk for c in page.object_list]
        if not page.has_next():
            return shown
        number += 1


def whole_listing(viewer, params):
    """The oracle: the listing sorted as one query (what exports read)."""
    return list(listing.customers_as_listed(viewer, params).values_list("pk", flat=True))


ORDERINGS = ["name", "-name", "-bookings_count", "bookings_count", "email", "-created_at"]


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_branch_staff_pages_follow_the_names_and_counts_their_branch_sees(login, staff_a, branch_a, many_customers, ordering):
    expected = whole_listing(scope.Viewer(staff_a, False, (branch_a,)), {"ordering": ordering})
    assert len(expected) == 29
    assert all_pages(login(staff_a), {"ordering": ordering}) == expected


@pytest.mark.parametrize("ordering", ORDERINGS)
def test_a_managers_pages_follow_the_order_with_and_without_a_location(login, manager, branch_a, many_customers, ordering):
    client = login(manager)
    company = scope.Viewer(manager, True)
    assert all_pages(client, {"ordering": ordering}) == whole_listing(company, {"ordering": ordering})
    as_a = {"ordering": ordering, "branch": branch_a.pk}
    assert all_pages(client, as_a) == whole_listing(company, as_a)
    assert len(whole_listing(company, as_a)) == 29


def test_local_names_sort_where_the_branch_sees_them(login, staff_a, many_customers):
    page = login(staff_a).get(LIST_URL).context["page_obj"]
    first = page.object_list[0]
    assert (first.eff_last_name, first.eff_first_name) == ("Aaron", "anna")
    names = [(c.eff_last_name.lower(), c.eff_first_name.lower(), c.pk) for c in page.object_list]
    assert names == sorted(names)


def test_most_bookings_in_a_branch_counts_its_own_bookings_then_names(login, staff_a, branch_a, many_customers):
    shown = login(staff_a).get(LIST_URL, {"ordering": "-bookings_count"}).context["page_obj"].object_list
    counts = [c.bookings_count for c in shown]
    assert counts[:8] == [3, 3, 2, 2, 2, 1, 1, 1]
    assert set(counts[8:]) == {0}
    no_bookings = [(c.eff_last_name.lower(), c.eff_first_name.lower(), c.pk) for c in shown[8:]]
    assert no_bookings == sorted(no_bookings)


def test_filters_and_search_page_through_the_same_order(login, staff_a, branch_a, many_customers):
    client = login(staff_a)
    viewer = scope.Viewer(staff_a, False, (branch_a,))
    for params in ({"q": "adler"}, {"q": "example.com", "ordering": "-name"}, {"q": "aaron"}, *SEARCHES_OVER_PAGES):
        expected = whole_listing(viewer, params)
        assert expected
        assert all_pages(client, params) == expected


#: Searches whose matches starting with them (a last name, "Aaron" local to branch A) and the
#: other matches (every email has an "a" and an "m") both fill pages, one ending mid-page.
SEARCHES_OVER_PAGES = [{"q": "a"}, {"q": "m"}, {"q": "m", "ordering": "-name"}, {"q": "example a"}]


@pytest.mark.parametrize("params", SEARCHES_OVER_PAGES)
def test_a_managers_searches_page_through_the_same_order(login, manager, branch_a, many_customers, params):
    client = login(manager)
    company = scope.Viewer(manager, True)
    for location in ({}, {"branch": branch_a.pk}):
        expected = whole_listing(company, {**params, **location})
        assert len(expected) > PER_PAGE
        assert all_pages(client, {**params, **location}) == expected


def test_a_search_lists_last_names_starting_with_it_first(login, manager, staff_a, branch_a):
    """The front desk types the start of a name: those customers first, in name order, then
    every other match (the search inside a name, an email), in name order too; the export of
    the search in the same order. Sorted by name descending: every match in one order."""
    found = {
        "schmidt_anna": make_customer(first_name="anna", last_name="schmidt", shared_with_all_branches=True),
        "schmid_ben": make_customer(first_name="Ben", last_name="Schmid", shared_with_all_branches=True),
        "aschmann": make_customer(first_name="Zoe", last_name="Aschmann", shared_with_all_branches=True),
        "by_email": make_customer(first_name="Carl", last_name="Berg", email="schmuck@example.org", shared_with_all_branches=True),
        "local_name": make_customer(first_name="Dora", last_name="Adler", shared_with_all_branches=True),
    }
    make_customer(first_name="Emil", last_name="Zorn", shared_with_all_branches=True)
    # Branch A knows Dora Adler as Dora Schmitz.
    CustomerOverride.objects.create(customer=found["local_name"], branch=branch_a, last_name="Schmitz")
    by_name = ["schmid_ben", "schmidt_anna"]
    others = ["aschmann", "by_email"]

    def shown(client, params):
        return [c.pk for c in client.get(LIST_URL, params).context["page_obj"].object_list]

    def exported(client, params):
        body = b"".join(client.get(LIST_URL, {**params, "export": "csv"}).streaming_content).decode("utf-8-sig")
        return [line.split(",")[1] for line in body.splitlines()[1:]]

    manager_client = login(manager)
    assert shown(manager_client, {"q": "Schm"}) == [found[name].pk for name in [*by_name, *others]]
    assert exported(manager_client, {"q": "Schm"}) == ["Schmid", "schmidt", "Aschmann", "Berg"]
    staff_client = login(staff_a)
    assert shown(staff_client, {"q": "Schm"}) == [found[name].pk for name in [*by_name, "local_name", *others]]
    assert exported(staff_client, {"q": "Schm"}) == ["Schmid", "schmidt", "Schmitz", "Aschmann", "Berg"]
    assert shown(staff_client, {"q": "Schm", "ordering": "-name"}) == [
        found[name].pk for name in ["local_name", "schmidt_anna", "schmid_ben", "by_email", "aschmann"]
    ]


def test_a_user_of_no_branch_pages_through_nothing(login, editor, many_customers):
    response = login(editor).get(LIST_URL, {"ordering": "-bookings_count"})
    assert response.status_code == 200 and list(response.context["object_list"]) == []
    assert response.context["paginator"].count == 0


def test_counts_are_exact_up_to_the_limit(login, manager, many_customers, settings):
    settings.WAGTAIL_CLIENTDB = {"LISTING_EXACT_COUNT_LIMIT": 47}
    response = login(manager).get(LIST_URL)
    assert response.context["paginator"].count == 47
    assert not response.context["paginator"].count_is_estimate
    assert "47 customers" in response.content.decode()


def test_above_the_limit_sqlite_still_counts_exactly(login, manager, many_customers, settings):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL estimates above the limit (next test)")
    settings.WAGTAIL_CLIENTDB = {"LISTING_EXACT_COUNT_LIMIT": 10}
    paginator = login(manager).get(LIST_URL).context["paginator"]
    assert (paginator.count, paginator.count_is_estimate) == (47, False)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
# 47 customers: counted up to the limit first (30), or estimated at once above twice the limit (10).
@pytest.mark.parametrize("limit, counted", [(30, True), (10, False)])
def test_above_the_limit_postgresql_shows_an_estimate_and_every_customer_stays_reachable(
    login, manager, many_customers, settings, limit, counted
):
    settings.WAGTAIL_CLIENTDB = {"LISTING_EXACT_COUNT_LIMIT": limit}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_clientdb_customer")
    client = login(manager)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL)
    assert any(query["sql"].startswith("SELECT COUNT(*)") for query in queries) is counted
    paginator = response.context["paginator"]
    assert paginator.count_is_estimate and paginator.count > limit
    assert f"About {paginator.estimated_count} customers" in response.content.decode()
    filtered = client.get(LIST_URL, {"source": "manual"})
    assert filtered.context["paginator"].count_is_estimate and not filtered.context["paginator"].count_is_lower_bound
    assert f"There are about {filtered.context['paginator'].estimated_count} matches" in filtered.content.decode()
    assert all_pages(client, {}) == whole_listing(scope.Viewer(manager, True), {})
    # Past the real end (a link from a too-high estimate): the real last page, counted exactly.
    response = client.get(LIST_URL, {"p": 999})
    expected = whole_listing(scope.Viewer(manager, True), {})
    page = response.context["page_obj"]
    assert [c.pk for c in page.object_list] == expected[(page.number - 1) * PER_PAGE : page.number * PER_PAGE]
    assert [c.pk for c in page.object_list]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
@pytest.mark.parametrize("params", [{"q": "example.com"}, {"attribute_hair": "fine"}], ids=["search", "attribute"])
def test_a_listing_the_planner_cannot_estimate_shows_more_than_the_limit_and_every_customer_stays_reachable(
    login, manager, many_customers, settings, params
):
    """The planner guesses a name fragment's matches from a sample, and a value inside the
    attributes' JSON from nothing: above the limit such a listing says only what was counted,
    "more than 10"."""
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])
    Customer.objects.update(attributes={"hair": "fine"})
    settings.WAGTAIL_CLIENTDB = {"LISTING_EXACT_COUNT_LIMIT": 10, "LISTING_SEARCH_EXACT_COUNT_LIMIT": 10}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_clientdb_customer")
    client = login(manager)
    response = client.get(LIST_URL, params)
    paginator = response.context["paginator"]
    # What was counted, which stays true on every page; the pager offers one page more than it has shown.
    assert paginator.count_is_lower_bound and paginator.estimated_count == "10"
    assert "There are more than 10 matches" in response.content.decode()
    assert "about" not in response.content.decode()
    expected = whole_listing(scope.Viewer(manager, True), params)
    assert len(expected) == 47 and all_pages(client, params) == expected
    paginator = client.get(LIST_URL, {**params, "p": 2}).context["paginator"]
    assert (paginator.count, paginator.items_count_label) == (2 * PER_PAGE + 1, "more than 10 customers")
    # The last page is counted exactly.
    last = client.get(LIST_URL, {**params, "p": 3}).context["paginator"]
    assert (last.count, last.count_is_estimate, last.count_is_lower_bound) == (47, False, False)
    # Without them, the planner's estimate of the whole listing is still "about".
    assert not client.get(LIST_URL).context["paginator"].count_is_lower_bound


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_a_search_is_counted_only_up_to_its_own_limit(login, manager, many_customers, settings):
    """A front desk reads a search's first matches, not their number: a search is counted up to
    ``LISTING_SEARCH_EXACT_COUNT_LIMIT``, the listing and its filters up to ``LISTING_EXACT_COUNT_LIMIT``."""
    settings.WAGTAIL_CLIENTDB = {"LISTING_SEARCH_EXACT_COUNT_LIMIT": 10}
    client = login(manager)
    searched = client.get(LIST_URL, {"q": "example.com"})
    assert searched.context["paginator"].count_is_lower_bound and searched.context["paginator"].estimated_count == "10"
    assert "There are more than 10 matches" in searched.content.decode()
    for params in ({}, {"source": "manual"}, {"upcoming_appointment": "false"}):
        paginator = client.get(LIST_URL, params).context["paginator"]
        assert (paginator.count, paginator.count_is_estimate) == (47, False), params
    chosen = client.get(CHOOSER_RESULTS_URL, {"q": "example.com"})
    assert "There are more than 10 matches" in chosen.content.decode()
    assert all_pages(client, {"q": "example.com"}) == whole_listing(scope.Viewer(manager, True), {"q": "example.com"})


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL says what it counted")
@pytest.mark.parametrize("who", ["manager", "staff_a"])
def test_a_search_with_more_matches_listed_first_than_the_limit_is_not_counted_through_the_search_indexes(
    login, request, who, branch_a, many_customers, settings
):
    """Every match of "adl" is an Adler or an Adlon, listed first: counted along the name index,
    they are more than the limit without the search's own count, which finds every match first."""
    for number in range(PER_PAGE):
        make_customer(first_name=f"Ida {number}", last_name="Adlon", shared_with_all_branches=True)
    user = request.getfixturevalue(who)
    viewer = scope.Viewer(user, True) if who == "manager" else scope.Viewer(user, False, (branch_a,))
    matches = whole_listing(viewer, {"q": "adl"})
    assert len(matches) > PER_PAGE + 1
    client = login(user)
    settings.WAGTAIL_CLIENTDB = {"LISTING_SEARCH_EXACT_COUNT_LIMIT": PER_PAGE}
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, {"q": "adl"})
    paginator = response.context["paginator"]
    assert paginator.count_is_lower_bound and paginator.estimated_count == str(PER_PAGE)
    assert f"There are more than {PER_PAGE} matches" in response.content.decode()
    counts = [query["sql"] for query in queries if query["sql"].startswith("SELECT COUNT(*)")]
    assert counts and not any("%adl%" in sql for sql in counts)
    assert all_pages(client, {"q": "adl"}) == matches
    # As many as the limit: the search's own count says exactly how many.
    settings.WAGTAIL_CLIENTDB = {"LISTING_SEARCH_EXACT_COUNT_LIMIT": len(matches)}
    paginator = client.get(LIST_URL, {"q": "adl"}).context["paginator"]
    assert (paginator.count, paginator.count_is_estimate) == (len(matches), False)


@pytest.mark.parametrize("query, found", [("local@example.com", 1), ("zzz-nobody", 0)])
def test_a_first_page_that_holds_the_whole_listing_is_its_count(login, staff_a, many_customers, query, found):
    """The front desk's usual search finds one customer: the page's rows are the count, the
    search is not run a second time to count them."""
    client = login(staff_a)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL, {"q": query})
    paginator = response.context["paginator"]
    assert (paginator.count, paginator.count_is_estimate, len(response.context["object_list"])) == (found, False, found)
    assert not listing_counts(queries.captured_queries)
    assert ("There is 1 match" if found else "No customers match your query") in response.content.decode()
    # A full first page is counted.
    with CaptureQueriesContext(connection) as queries:
        response = client.get(LIST_URL)
    assert response.context["paginator"].count == 29 and listing_counts(queries.captured_queries)


@pytest.mark.parametrize("page", ["abc", "²", "-1", "", "1.5", "9" * 5000])
def test_a_page_number_that_is_no_number_shows_the_first_page(login, manager, many_customers, page):
    response = login(manager).get(LIST_URL, {"p": page})
    assert response.status_code == 200 and response.context["page_obj"].number == 1


def test_sqlite_counts_a_search_exactly(login, manager, many_customers, settings):
    if connection.vendor == "postgresql":
        pytest.skip("PostgreSQL says what it counted (previous test)")
    settings.WAGTAIL_CLIENTDB = {"LISTING_SEARCH_EXACT_COUNT_LIMIT": 10}
    paginator = login(manager).get(LIST_URL, {"q": "example.com"}).context["paginator"]
    assert (paginator.count, paginator.count_is_estimate) == (47, False)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_a_guess_says_more_than_the_limit_without_counting_only_at_three_times_the_limit(many_customers):
    """The planner expects the 47 customers of the table (its statistics); taken as a guess,
    that says only "more than the limit", counted where 47 is under three times the limit."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_clientdb_customer")
    everyone = Customer.objects.all()

    def counted(limit, estimable):
        with CaptureQueriesContext(connection) as queries:
            found = listing.count(everyone, limit, estimable=estimable)
        return found, any(query["sql"].startswith("SELECT COUNT(*)") for query in queries)

    assert counted(15, False) == (listing.Counted(16, is_estimate=True, more_than=15), False)
    assert counted(16, False) == (listing.Counted(17, is_estimate=True, more_than=16), True)
    assert counted(23, True) == (listing.Counted(47, is_estimate=True), False)
    assert counted(24, True) == (listing.Counted(47, is_estimate=True), True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_an_estimate_below_what_was_counted_gives_way_to_more_than_the_limit(many_customers):
    """The planner takes ``id % 1 = 0`` for half a percent of the rows (it has no statistics of
    the expression): one of 47, under the 11 counted."""
    from django.db.models.functions import Mod

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE wagtail_clientdb_customer")
    every_one = Customer.objects.annotate(remainder=Mod("id", 1)).filter(remainder=0)
    assert listing.count(Customer.objects.all(), 10) == listing.Counted(47, is_estimate=True)
    assert listing.count(every_one, 10) == listing.Counted(11, is_estimate=True, more_than=10)


@pytest.mark.parametrize(
    "query, estimable",
    [("", True), ("tags=1&groups=2&source=manual&archived=any&created_after=2026-01-01", True), ("q=schm", False),
     ("q=+", True), ("attribute_hair=fine", False), ("attribute_hair=", True), ("show_attributes=hair", True),
     ("p=3&ordering=-bookings_count", True), ("tags=1&visits_min=3", False), ("upcoming_appointment=true", False),
     ("last_visit_after=2026-01-01", False), ("birthday_within=7", False), ("no_shows=1", False),
     ("local_values=true", False), ("visits_max=", True)],
)
@pytest.mark.django_db
def test_the_planner_estimates_filters_read_from_statistics_only(query, estimable):
    assert listing.planner_can_estimate(QueryDict(query)) is estimable


def test_the_planner_does_not_estimate_a_dynamic_group(manager):
    manual = CustomerGroup.objects.create(name="VIP")
    dynamic = CustomerGroup.objects.create(name="Regulars", segment=Segment.objects.create(name="Regulars", owner=manager, query="visits_min=3"))
    assert listing.planner_can_estimate(QueryDict(f"groups={manual.pk}"))
    assert not listing.planner_can_estimate(QueryDict(f"groups={manual.pk}&groups={dynamic.pk}"))


def test_every_filter_is_estimated_or_guessed_on_purpose():
    """A filter added to the listing is guessed ("more than 10,000") until it is named in
    ESTIMATED_FILTERS: these are the ones the planner guesses today."""
    guessed = {"last_visit", "visits", "no_shows", "upcoming_appointment", "birthday", "birthday_within", "local_values"}
    assert set(CustomerFilterSet.base_filters) - ESTIMATED_FILTERS == guessed
    assert ESTIMATED_FILTERS <= set(CustomerFilterSet.base_filters)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_a_listing_by_a_rule_the_planner_guesses_says_what_was_counted(login, manager, branch_a, many_customers, settings):
    """The planner guessed "about 41,000" customers with an upcoming appointment for 209,537 at
    a million customers: above the limit, such a listing says "more than"."""
    # More than a page: a page that ends the listing counts it exactly.
    for customer in many_customers[:25]:
        make_appointment(customer, branch_a, days=2)
    settings.WAGTAIL_CLIENTDB = {"LISTING_EXACT_COUNT_LIMIT": 10}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    response = login(manager).get(LIST_URL, {"upcoming_appointment": "true"})
    paginator = response.context["paginator"]
    assert paginator.count_is_lower_bound and paginator.estimated_count == "10"
    assert "There are more than 10 matches" in response.content.decode()


def test_estimates_are_rounded_to_two_significant_digits():
    assert [listing.round_estimate(n) for n in (679_412, 10_001, 95, 1_234_567)] == [680_000, 10_000, 95, 1_200_000]


PAGE_SETTINGS = ["jit", "max_parallel_workers_per_gather", "random_page_cost"]


def server_settings():
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in PAGE_SETTINGS))
        return dict(zip(PAGE_SETTINGS, cursor.fetchone()))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the page settings are PostgreSQL's")
def test_page_settings_hold_for_the_pages_queries_only(login, staff_a, many_customers):
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('jit', 'on', true), set_config('max_parallel_workers_per_gather', '2', true)")
    before = server_settings()
    with page_queries.page_settings():
        assert server_settings() == {"jit": "off", "max_parallel_workers_per_gather": "0", "random_page_cost": "1.1"}
        with page_queries.page_settings():  # nested: nothing changes, nothing is put back early
            pass
        assert server_settings()["jit"] == "off"
    assert server_settings() == before

    seen = []

    def record_settings(execute, sql, params, many, context):
        # What the server's settings were when the page read its customers.
        if "wagtail_clientdb_customer" in sql and not seen:
            seen.append(server_settings())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record_settings):
        assert login(staff_a).get(LIST_URL).status_code == 200
    assert seen == [{"jit": "off", "max_parallel_workers_per_gather": "0", "random_page_cost": "1.1"}]
    assert server_settings() == before  # the test's transaction goes on, as a request's does with ATOMIC_REQUESTS


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the page settings are PostgreSQL's")
def test_page_settings_are_a_setting(settings, login, staff_a, many_customers):
    settings.WAGTAIL_CLIENTDB = {"POSTGRESQL_PAGE_SETTINGS": {}}
    before = server_settings()
    with page_queries.page_settings():
        assert server_settings() == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the page settings are PostgreSQL's")
def test_a_search_is_counted_with_the_page_settings_in_the_customer_chooser_too(login, staff_a, many_customers):
    """The chooser's requests do not run in the page settings as the listing's do: a search's
    counts put them in force themselves (without, PostgreSQL counted a branch's "Schm" matches
    listed first in 333 ms instead of 5 at a million customers)."""
    for number in range(PER_PAGE):
        make_customer(first_name=f"Ida {number}", last_name="Adlon", shared_with_all_branches=True)
    seen = []

    def record_settings(execute, sql, params, many, context):
        if sql.startswith("SELECT COUNT(*)"):
            seen.append(server_settings())
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record_settings):
        assert login(staff_a).get(CHOOSER_RESULTS_URL, {"q": "adl"}).status_code == 200
    # Those listed first (the branch's own names, its local names), then all matches.
    assert len(seen) == 3
    assert all(values == {"jit": "off", "max_parallel_workers_per_gather": "0", "random_page_cost": "1.1"} for values in seen)


def test_names_sort_as_people_expect_umlauts_among_their_letters(login, manager, staff_a, branch_a):
    """SQLite through the app's collation; PostgreSQL by the database's collation, which the
    check W001 asks to be a linguistic one (CI's test database is C.UTF-8)."""
    if connection.vendor == "postgresql" and name_collation_check(None, databases=["default"]):
        pytest.skip("the test database sorts by byte order (check W001 warns about it)")
    for last in ["Zorn", "Braun", "Böhm", "Özdemir", "Ohm", "Bauer", "Ärger", "Adler", "böhm"]:
        make_customer(first_name="X", last_name=last, email=f"{last.lower()}@example.com", shared_with_all_branches=True)
    expected = ["Adler", "Ärger", "Bauer", "Böhm", "böhm", "Braun", "Ohm", "Özdemir", "Zorn"]
    for user, params in ((manager, {}), (manager, {"branch": branch_a.pk}), (staff_a, {})):
        client = login(user)
        names = [c.last_name for c in client.get(LIST_URL, params).context["object_list"]]
        # "Böhm"/"böhm": equal to people; either order, but next to each other.
        assert [n.lower() for n in names] == [n.lower() for n in expected]
        descending = [c.last_name for c in client.get(LIST_URL, {**params, "ordering": "-name"}).context["object_list"]]
        assert [n.lower() for n in descending] == [n.lower() for n in reversed(expected)]
    export = b"".join(login(manager).get(LIST_URL, {"export": "csv", "delimiter": "comma"}).streaming_content).decode("utf-8-sig")
    assert [line.split(",")[1].lower() for line in export.splitlines()[1:]] == [n.lower() for n in expected]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's collation")
def test_a_byte_order_database_is_warned_about(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT datcollate, datlocprovider FROM pg_database WHERE datname = current_database()")
        collation, provider = cursor.fetchone()
    warnings = name_collation_check(None, databases=["default"])
    by_byte_order = provider == "c" and collation.split(".")[0] in ("C", "POSIX")
    assert [w.id for w in warnings] == (["wagtail_clientdb.W001"] if by_byte_order else [])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's collation")
def test_a_database_sorting_with_icu_is_not_warned_about(db):
    """An ICU collation sorts linguistically whatever ``datcollate`` says (C.UTF-8 on a server
    without locales, where ICU is the way to a German order): W001 asked for it in vain."""
    import psycopg

    from wagtail_clientdb.checks import sorting_of

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    name = f"{connection.settings_dict['NAME']}_icu"
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as server:
        server.execute(f'DROP DATABASE IF EXISTS "{name}"')
        server.execute(f"CREATE DATABASE \"{name}\" LOCALE_PROVIDER icu ICU_LOCALE 'de-DE' LOCALE 'C.UTF-8' TEMPLATE template0")
        try:
            with psycopg.connect(**{**params, "dbname": name}) as icu, icu.cursor() as cursor:
                assert sorting_of(cursor, connection.pg_version) == ("ICU de-DE", False)
                cursor.execute("SELECT name FROM unnest(ARRAY['Zorn', 'Öztürk', 'Bauer', 'Otto']) AS name ORDER BY name")
                assert [row[0] for row in cursor.fetchall()] == ["Bauer", "Otto", "Öztürk", "Zorn"]
                assert sorting_of(cursor, 140000) == ("C.UTF-8", True)  # as read before PostgreSQL 15
        finally:
            server.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.mark.parametrize("query", ["schm@example.org", "0170 1234567"])
def test_an_email_address_or_a_phone_number_lists_every_match_in_one_order(login, manager, query):
    """Nobody's last name starts with an email address or a phone number: their matches in
    name order, with no first part."""
    first = make_customer(first_name="Anna", last_name="Zorn", email="schm@example.org", phone_raw="0170 1234567", shared_with_all_branches=True)
    second = make_customer(first_name="Bea", last_name="Adler", email="Schm@Example.org.uk", phone_raw="+49 170 1234567", shared_with_all_branches=True)
    client = login(manager)
    shown = [c.pk for c in client.get(LIST_URL, {"q": query}).context["page_obj"].object_list]
    assert shown == [second.pk, first.pk]
    assert listing.first_word(query) is None


def api_pages(client, user, path, params, limit=7):
    """Ids of every customer the API lists, ``limit`` at a time, following the offsets."""
    _token, secret = APIToken.create_token(user=user, name="pages")
    shown, count = [], None
    while True:
        answer = client.get(f"/api/v3/clientdb{path}", {**params, "limit": limit, "offset": len(shown)}, headers={"Authorization": f"Bearer {secret}"})
        assert answer.status_code == 200
        body = answer.json()
        assert count in (None, body["count"])
        count = body["count"]
        shown += [item["id"] for item in body["items"]]
        if len(body["items"]) < limit:
            assert len(shown) == count
            return shown


@pytest.mark.parametrize("params", [{}, {"q": "Adler"}, {"q": "c1"}])
def test_the_api_lists_pages_of_the_same_order_as_the_admin(client, manager, staff_a, branch_a, many_customers, params):
    """The API's pages are found as the admin's are (by their sort keys, not by sorting every
    customer): every customer once, in the order of the whole listing sorted in one query."""
    for viewer in (scope.Viewer(manager, True), scope.Viewer(staff_a, False, (branch_a,))):
        expected = whole_listing(viewer, params)
        assert expected and api_pages(client, viewer.user, "/customers/", {"q": params.get("q", "")}) == expected


def test_the_api_lists_a_segment_in_its_own_order(client, staff_a, branch_a, many_customers):
    segment = Segment.objects.create(name="Busiest", owner=staff_a, query="ordering=-bookings_count&q=e")
    expected = whole_listing(scope.Viewer(staff_a, False, (branch_a,)), QueryDict(segment.query))
    assert len(expected) > 7 and api_pages(client, staff_a, f"/segments/{segment.pk}/customers/", {}) == expected


CHOOSER_RESULTS_URL = "/admin/snippets/choose/wagtail_clientdb/customer/results/"


@pytest.mark.parametrize("params", [{}, {"q": "example.com"}])
def test_the_customer_chooser_pages_in_the_listing_order_archived_customers_included(
    login, manager, staff_a, branch_a, many_customers, params
):
    """The chooser (booking an appointment) pages as the listing does, by the names the branch
    sees, and finds archived customers too (booking one brings it back)."""
    archive.archive(scope.Viewer(manager, True), Customer.objects.filter(pk__in=[many_customers[0].pk, many_customers[3].pk]))
    client, shown, number = login(staff_a), [], 1
    while True:
        page = client.get(CHOOSER_RESULTS_URL, {**params, "p": number}).context["results"]
        shown += [customer.pk for customer in page.object_list]
        if not page.has_next():
            break
        number += 1
    expected = whole_listing(scope.Viewer(staff_a, False, (branch_a,)), {**params, "archived": "any"})
    assert len(expected) > PER_PAGE and shown == expected


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_the_customer_chooser_says_a_search_count_as_the_listing_does(login, manager, many_customers, settings):
    settings.WAGTAIL_CLIENTDB = {"LISTING_SEARCH_EXACT_COUNT_LIMIT": 10}
    response = login(manager).get(CHOOSER_RESULTS_URL, {"q": "example.com"})
    assert "There are more than 10 matches" in response.content.decode()
    assert "There are 11 matches" not in response.content.decode()


def test_the_customer_chooser_names_customers_as_the_branch_knows_them(login, staff_a, branch_a):
    """Booking an appointment, the front desk finds a customer by the name its branch keeps,
    and the chooser shows that name (in a column headed as the listing heads it)."""
    customer = make_customer(first_name="Sabine", last_name="Schulz", shared_with_all_branches=True)
    overrides.save_local_values(customer, branch_a, {"last_name": "Schulz-Lokal"})
    html = login(staff_a).get(CHOOSER_RESULTS_URL, {"q": "Schulz-Lokal"}).content.decode()
    assert "Sabine Schulz-Lokal" in html
    assert re.search(r"<th[^>]*>\s*Name\s*</th>", html) and not re.search(r"<th[^>]*>\s*Title\s*</th>", html)
