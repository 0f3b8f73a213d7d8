"""The listing's filters by visits, no-shows, upcoming appointments, birthdays, creation and
local values: real appointments, through the admin listing's query string, in the viewer's scope."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import customer_url, make_appointment, make_customer
from tests.test_query_counts import grow_the_company
from wagtail_clientdb import booking_counts, times, visits
from wagtail_clientdb.models import Customer, CustomerOverride, VisitCounting


def listed(client, **params):
    response = client.get(customer_url("list"), params)
    assert response.status_code == 200
    return {customer.first_name for customer in response.context["object_list"]}


def day(offset, branch):
    return (times.today(branch) + datetime.timedelta(days=offset)).isoformat()


@pytest.fixture
def people(branch_a, branch_b):
    """Customers shared with both branches, with appointments in either."""
    made = {
        name: make_customer(first_name=name, last_name="Kunde", shared_with_all_branches=True)
        for name in ("Regular", "Drifter", "Misser", "Newbie", "Booked")
    }
    # Regular: two visits in A, the last five days ago (one completed, one never marked).
    make_appointment(made["Regular"], branch_a, days=-40, status="completed")
    make_appointment(made["Regular"], branch_a, days=-5, status="booked")
    # Drifter: a visit in A forty days ago, one in B since, and a cancelled one in A.
    make_appointment(made["Drifter"], branch_a, days=-40, status="completed")
    make_appointment(made["Drifter"], branch_b, days=-5, status="completed")
    make_appointment(made["Drifter"], branch_a, days=-3, status="cancelled")
    # Misser: missed two appointments in A, one in B; never came.
    make_appointment(made["Misser"], branch_a, days=-20, status="no_show")
    make_appointment(made["Misser"], branch_a, days=-10, status="no_show")
    make_appointment(made["Misser"], branch_b, days=-8, status="no_show")
    # Booked: comes to B next week; Newbie has nothing at all.
    make_appointment(made["Booked"], branch_b, days=7)
    return made


def test_last_visit_counts_the_visits_of_the_branch_shown(login, staff_a, manager, branch_a, people):
    forty_days_ago = {"last_visit_from": day(-50, branch_a), "last_visit_to": day(-30, branch_a)}
    # Branch A knows Drifter's last visit in A forty days ago, not the visit in B.
    assert listed(login(staff_a), **forty_days_ago) == {"Drifter"}
    # The company saw Drifter five days ago in B.
    assert listed(login(manager), **forty_days_ago) == set()
    assert listed(login(manager), branch=branch_a.pk, **forty_days_ago) == {"Drifter"}
    recently = {"last_visit_from": day(-7, branch_a)}
    assert listed(login(manager), **recently) == {"Regular", "Drifter"}
    assert listed(login(staff_a), **recently) == {"Regular"}
    # Only an end: the last visit was before it (no-shows and cancelled ones are no visits).
    assert listed(login(staff_a), last_visit_to=day(-1, branch_a)) == {"Regular", "Drifter"}


def test_number_of_visits_and_no_shows(login, staff_a, manager, branch_a, people):
    staff = login(staff_a)
    assert listed(staff, visits_min=2) == {"Regular"}
    assert listed(staff, visits_min=1, visits_max=1) == {"Drifter"}
    assert listed(staff, visits_max=0) == {"Misser", "Newbie", "Booked"}
    assert listed(staff, visits_min=1) == {"Regular", "Drifter"}
    assert listed(staff, no_shows=1) == {"Misser"}
    assert listed(staff, no_shows=2) == {"Misser"}
    assert listed(staff, no_shows=3) == set()
    manager_client = login(manager)
    assert listed(manager_client, visits_min=2) == {"Regular", "Drifter"}
    assert listed(manager_client, visits_min=1, visits_max=0) == set()
    assert listed(manager_client, no_shows=1) == {"Misser"}
    assert listed(manager_client, no_shows=3) == {"Misser"}


@pytest.mark.parametrize("named", [True, False], ids=["named", "subquery"])
@pytest.mark.parametrize("mark_days", [None, -60, -20, -4, 1])
def test_visits_since_the_mark_are_counted_as_well_as_the_kept_ones(
    login, staff_a, manager, branch_a, people, mark_days, named, monkeypatch
):
    """Wherever the kept counts stop (no mark: nothing kept; a mark before some of the visits,
    or after all of them), the filters count the same visits, whether the customers who
    visited since are few enough to be named in the query or not."""
    if not named:
        monkeypatch.setattr(visits, "MAX_NAMED_SINCE_MARK", 0)
    VisitCounting.objects.all().delete()
    booking_counts.recount(customer.pk for customer in people.values())
    if mark_days is not None:
        booking_counts.count_passed_visits(now=timezone.now() + datetime.timedelta(days=mark_days))
    staff = login(staff_a)
    assert listed(staff, visits_min=2) == {"Regular"}
    assert listed(staff, visits_min=1, visits_max=1) == {"Drifter"}
    assert listed(staff, visits_max=1) == {"Drifter", "Misser", "Newbie", "Booked"}
    manager_client = login(manager)
    assert listed(manager_client, visits_min=2) == {"Regular", "Drifter"}
    assert listed(manager_client, visits_min=2, visits_max=2) == {"Regular", "Drifter"}
    assert listed(manager_client, visits_min=3) == set()
    assert listed(manager_client, branch=branch_a.pk, visits_min=2) == {"Regular"}


@pytest.mark.parametrize(
    "rule",
    ["visits_min=2", "visits_min=1&visits_max=1", "visits_max=0", "no_shows=1", "no_shows=2", "upcoming_appointment=false",
     "last_visit_from={recent}", "last_visit_to={recent}", "last_visit_from={long_ago}&last_visit_to={recent}",
     # Every other kind of filter: a rule builds only the filters it names (and "Archived").
     "upcoming_appointment=true", "branch={branch}&visits_min=1", "branch={branch}", "created_from={recent}",
     "created_to={long_ago}", "birthday_within=7", "local_values=false", "marketing_consent=false&source=manual",
     "no_shows=1&last_visit_to={recent}&upcoming_appointment=false"],
)
def test_a_dynamic_group_by_visits_names_the_members_its_filter_finds(login, staff_a, manager, branch_a, people, rule):
    """The group column reads a dynamic group's members among the page's customers alone (the
    rule's appointments of those customers): the same members as the filter by the group, and
    as the listing with the rule's filters, all sixteen of them built."""
    from wagtail_clientdb import groups, scope
    from wagtail_clientdb.models import CustomerGroup, Segment, SegmentVisibility

    Customer.objects.filter(pk=people["Newbie"].pk).update(birthday=times.today(branch_a) + datetime.timedelta(days=3))
    query = rule.format(recent=day(-7, branch_a), long_ago=day(-60, branch_a), branch=branch_a.pk)
    segment = Segment.objects.create(name="Rule", query=query, owner=manager, visibility=SegmentVisibility.COMPANY)
    group = CustomerGroup.objects.create(name="By visits", segment=segment)
    for user in (staff_a, manager):
        found = listed(login(user), groups=group.pk)
        named = groups.names_by_customer(scope.viewer_for_user(user), [c.pk for c in people.values()])
        assert {c.first_name for c in people.values() if "By visits" in named.get(c.pk, [])} == found, (user, query)
        assert found == listed(login(user), **dict(pair.split("=") for pair in query.split("&"))), (user, query)


def test_has_an_upcoming_appointment(login, staff_a, staff_b, manager, people, branch_a):
    assert listed(login(staff_b), upcoming_appointment="true") == {"Booked"}
    assert listed(login(staff_a), upcoming_appointment="true") == set()
    make_appointment(people["Newbie"], branch_a, days=2)
    assert listed(login(staff_a), upcoming_appointment="true") == {"Newbie"}
    assert listed(login(manager), upcoming_appointment="true") == {"Newbie", "Booked"}
    assert listed(login(manager), upcoming_appointment="false") == {"Regular", "Drifter", "Misser"}


@pytest.mark.parametrize("named", [True, False], ids=["named", "subquery"])
def test_birthdays_this_month_and_within_days_as_the_branch_sees_them(
    login, staff_a, manager, branch_a, allow_branch_edits, named, monkeypatch
):
    """Whether the customers with a birthday of the branch's own are few enough to be named in
    the query or not."""
    if not named:
        monkeypatch.setattr(visits, "MAX_NAMED_LOCAL_BIRTHDAYS", 0)
    today = times.today(branch_a)

    def born(name, offset):
        date = today + datetime.timedelta(days=offset)
        # Born in a leap year, so that a 29 February birthday can be made.
        return make_customer(first_name=name, birthday=datetime.date(1988, date.month, date.day), shared_with_all_branches=True)

    born("Today", 0)
    born("Soon", 5)
    born("Later", 20)
    make_customer(first_name="Unknown", shared_with_all_branches=True)
    # Branch A keeps its own date for this one: the one it sees counts.
    local = born("Local", 200)
    CustomerOverride.objects.create(customer=local, branch=branch_a, birthday=datetime.date(1980, today.month, today.day))
    # … and for this one a date that is not today's: the record's birthday today does not count.
    moved = born("Moved", 0)
    CustomerOverride.objects.create(customer=moved, branch=branch_a, birthday=datetime.date(1980, 1, 1) + datetime.timedelta(days=today.timetuple().tm_yday + 100))
    staff = login(staff_a)
    assert listed(staff, birthday_within=0) == {"Today", "Local"}
    assert listed(staff, birthday_within=7) == {"Today", "Soon", "Local"}
    this_month = {
        name for name, offset in (("Today", 0), ("Soon", 5), ("Later", 20))
        if (today + datetime.timedelta(days=offset)).month == today.month
    }
    assert listed(staff, birthday="this_month") == this_month | {"Local"}
    # The head office sees the records' birthdays.
    assert listed(login(manager), birthday_within=0) == {"Today", "Moved"}
    # Bad input: a clear message, and no filter applied.
    refused = login(staff_a).get(customer_url("list"), {"birthday_within": "400"})
    assert "Ensure this value is less than or equal to 366." in refused.content.decode()
    assert len(refused.context["object_list"]) == 6


@pytest.mark.parametrize(
    "today, days, expected",
    [
        # Across the new year.
        (datetime.date(2026, 12, 28), 7, {(12, 28), (12, 29), (12, 30), (12, 31), (1, 1), (1, 2), (1, 3), (1, 4)}),
        # Born on 29 February: on the 28th where the year has none …
        (datetime.date(2027, 2, 28), 0, {(2, 28), (2, 29)}),
        # … and on the day itself in a leap year.
        (datetime.date(2028, 2, 28), 0, {(2, 28)}),
        (datetime.date(2028, 2, 28), 1, {(2, 28), (2, 29)}),
    ],
)
def test_birthday_days(today, days, expected):
    assert visits.birthday_days(today, days) == expected


def test_birthday_filter_from_a_fixed_day_across_the_new_year(db):
    for name, month, day_ in (("Silvester", 12, 31), ("Neujahr", 1, 2), ("Leap", 2, 29), ("Summer", 7, 1), ("Dec27", 12, 27)):
        make_customer(first_name=name, birthday=datetime.date(1988, month, day_))
    customers = Customer.objects.all()
    found = customers.filter(visits.birthday_q("birthday", datetime.date(2026, 12, 28), 7)).values_list("first_name", flat=True)
    assert set(found) == {"Silvester", "Neujahr"}
    found = customers.filter(visits.birthday_q("birthday", datetime.date(2027, 2, 27), 1)).values_list("first_name", flat=True)
    assert set(found) == {"Leap"}


def test_created_in_a_date_range(login, manager, branch_a):
    old = make_customer(first_name="Old", shared_with_all_branches=True)
    make_customer(first_name="New", shared_with_all_branches=True)
    Customer.objects.filter(pk=old.pk).update(created_at=timezone.now() - datetime.timedelta(days=100))
    client = login(manager)
    assert listed(client, created_from=day(-1, None)) == {"New"}
    assert listed(client, created_from=day(-120, None), created_to=day(-90, None)) == {"Old"}
    assert listed(client, created_to=day(-1, None)) == {"Old"}


def test_local_values_present(login, staff_a, staff_b, manager, branch_a, branch_b, allow_branch_edits):
    kept_in_a = make_customer(first_name="KeptInA", shared_with_all_branches=True)
    kept_in_b = make_customer(first_name="KeptInB", shared_with_all_branches=True)
    make_customer(first_name="Plain", shared_with_all_branches=True)
    CustomerOverride.objects.create(customer=kept_in_a, branch=branch_a, notes="A's note")
    CustomerOverride.objects.create(customer=kept_in_b, branch=branch_b, notes="B's note")
    assert listed(login(staff_a), local_values="true") == {"KeptInA"}
    assert listed(login(staff_a), local_values="false") == {"KeptInB", "Plain"}
    assert listed(login(manager), local_values="true") == {"KeptInA", "KeptInB"}
    assert listed(login(manager), local_values="true", branch=branch_b.pk) == {"KeptInB"}


def test_the_filters_are_shown_as_active_filters(login, staff_a, branch_a, people):
    response = login(staff_a).get(customer_url("list"), {"no_shows": 2, "upcoming_appointment": "false", "visits_max": 0})
    active = {str(f.field_label): f.value for f in response.context["view"].active_filters}
    assert active == {"No-shows (at least)": "2", "Has an upcoming appointment": "No", "Number of visits": "any - 0"}


ALL_FILTERS = {
    "last_visit_from": "2000-01-01",
    "last_visit_to": "2100-01-01",
    "visits_min": 0,
    "visits_max": 100,
    "no_shows": 1,
    "upcoming_appointment": "false",
    "birthday": "this_month",
    "birthday_within": 30,
    "created_from": "2000-01-01",
    "local_values": "false",
    "archived": "any",
}


def queries_of(client, url):
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_filters_take_the_same_queries_for_a_bigger_company(login, manager, staff_a, branch_a):
    from urllib.parse import urlencode

    url = customer_url("list") + "?" + urlencode(ALL_FILTERS)
    filters = login(manager).get(url).context["view"].filters
    assert filters.is_valid() and set(filters.form.changed_data) == {
        "last_visit", "visits", "no_shows", "upcoming_appointment", "birthday", "birthday_within", "created", "local_values", "archived"
    }
    grow_the_company(2, branch_a, start=0)
    for customer in Customer.objects.all():
        make_appointment(customer, branch_a, days=-3, status="no_show")
    small = {user: queries_of(login(user), url) for user in (manager, staff_a)}
    grow_the_company(8, branch_a, start=2)
    for customer in Customer.objects.filter(appointments__status="booked"):
        make_appointment(customer, branch_a, days=-3, status="no_show")
    big = {user: queries_of(login(user), url) for user in (manager, staff_a)}
    assert big == small


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
@pytest.mark.parametrize("mark_days", [None, -20], ids=["nothing-kept", "kept-and-since"])
def test_the_planner_estimates_a_branchs_visit_filters_close_to_the_truth(staff_a, manager, branch_a, mark_days):
    """Above the exact limit a listing shows the planner's estimate: the visit filters must be
    written so that it can make one. "Kept counts OR one of these" was taken for half of all
    customers (a branch's 2,622 regulars among a million shown as "about 260,000")."""
    import json

    from django.http import QueryDict

    from wagtail_clientdb import listing, scope

    Customer.objects.bulk_create(
        Customer(first_name=f"Walk-in {i}", last_name="Kunde", shared_with_all_branches=True) for i in range(400)
    )
    regulars = [make_customer(first_name=f"Regular {i}", last_name="Kunde", shared_with_all_branches=True) for i in range(4)]
    for customer in regulars:
        for days in (-40, -30, -10):
            make_appointment(customer, branch_a, days=days, status="completed")
    VisitCounting.objects.all().delete()
    booking_counts.recount(customer.pk for customer in regulars)
    if mark_days is not None:
        booking_counts.count_passed_visits(now=timezone.now() + datetime.timedelta(days=mark_days))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    def estimate(viewer, query):
        queryset = listing.customers_as_listed(viewer, QueryDict(query))
        return json.loads(listing.keys(queryset).explain(format="json"))[0]["Plan"]["Plan Rows"], queryset.count()

    for viewer in (scope.Viewer(staff_a, False, (branch_a,)), scope.Viewer(manager, True)):
        location = "" if not viewer.is_manager else f"&branch={branch_a.pk}"
        planned, found = estimate(viewer, "visits_min=3" + location)
        assert found == 4 and planned < 40, (viewer, planned)
        planned, found = estimate(viewer, "visits_max=2" + location)
        assert found == 400 and planned > 200, (viewer, planned)
