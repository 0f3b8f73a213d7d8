"""Saved filters (segments) and dynamic customer groups (issue #17), through the real admin URLs
and the API: saved from the listing, evaluated in the scope of whoever looks, shared only as
allowed, counted, exported; dynamic groups whose membership follows the data everywhere
membership is read."""

import csv
import io
import re
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail.models import APIToken

from tests.conftest import customer_url, make_appointment, make_customer, post_bulk
from wagtail_clientdb import groups, scope, segments
from wagtail_clientdb.models import (
    AttributeDefinition,
    ClientDBLogEntry,
    CustomerGroup,
    CustomerOverride,
    Segment,
    SegmentVisibility,
)


def segment_url(name, *args):
    return reverse(Segment.snippet_viewset.get_url_name(name), args=args)


def group_url(name, *args):
    return reverse(CustomerGroup.snippet_viewset.get_url_name(name), args=args)


def export_rows(response):
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def column_values(response, column):
    """``{object: value}`` of one column of an admin listing."""
    table = response.context["table"]
    return {row.instance: table.columns[column].get_value(row.instance) for row in table.rows}


def make_segment(owner, query, *, name="Segment", visibility=SegmentVisibility.COMPANY, branch=None):
    return Segment.objects.create(name=name, query=query, owner=owner, visibility=visibility, branch=branch)


@pytest.fixture
def regulars(scope_customers, branch_a, branch_b):
    """Every customer of ``scope_customers`` tagged "regular", and B's local value of a global one."""
    for customer in scope_customers.values():
        customer.tags.add("regular")
    CustomerOverride.objects.create(customer=scope_customers["global_all"], branch=branch_b, notes="B only")
    return scope_customers


# --- Saving a segment ------------------------------------------------------------------------------------


def test_the_listing_offers_to_save_its_filters_search_and_order_as_a_segment(login, staff_a, regulars):
    client = login(staff_a)
    listing = client.get(customer_url("list"), {"tags": regulars["local_a"].tags.get().pk, "q": "o", "ordering": "-name", "p": "1"})
    button = next(b for b in listing.context["header_buttons"] if str(b.label) == "Save as segment")
    form = client.get(button.url)
    assert form.status_code == 200
    query = form.context["form"]["query"].value()
    # The listing's filters, search and order; not its page.
    assert parse_qs(query) == {"tags": [str(regulars["local_a"].tags.get().pk)], "q": ["o"], "ordering": ["-name"]}
    response = client.post(segment_url("add"), {"name": "Regulars with o", "query": query, "visibility": "private"})
    assert response.status_code == 302
    segment = Segment.objects.get(name="Regulars with o")
    assert segment.owner == staff_a and segment.visibility == SegmentVisibility.PRIVATE and segment.branch is None
    assert segment.params["q"] == "o"
    # The listing opened from the segment is the listing that was saved.
    assert segments.listing_url(segment) == customer_url("list") + "?" + query


def test_only_the_listing_s_parameters_are_kept(login, manager, regulars):
    query = "q=anna&page=2&p=3&export=csv&ordering=-bookings_count&ordering=name&unknown=1&tags=&source=import"
    login(manager).post(segment_url("add"), {"name": "Kept", "query": query, "visibility": "company"})
    assert parse_qs(Segment.objects.get(name="Kept").query) == {
        "q": ["anna"], "ordering": ["-bookings_count"], "source": ["import"]
    }


def test_a_filter_the_listing_refuses_is_refused_with_its_name_and_nothing_is_saved(login, manager, db):
    response = login(manager).post(segment_url("add"), {"name": "Broken", "query": "groups=999999", "visibility": "company"})
    assert response.status_code == 200
    assert "Groups:" in str(response.context["form"].errors["query"])
    assert not Segment.objects.exists()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"visibility": "company"}, "visibility"),
        ({"visibility": "branch", "branch": "B"}, "branch"),
    ],
)
def test_staff_share_only_privately_or_with_their_own_branch(login, staff_a, branch_b, data, field):
    data = {**data, "branch": branch_b.pk} if "branch" in data else data
    response = login(staff_a).post(segment_url("add"), {"name": "Shared", "query": "", **data})
    assert response.status_code == 200
    assert not Segment.objects.exists()


def test_staff_share_with_their_branch_and_managers_with_any_branch(login, staff_a, manager, branch_a, branch_b):
    login(staff_a).post(segment_url("add"), {"name": "A's", "query": "q=a", "visibility": "branch", "branch": branch_a.pk})
    assert Segment.objects.get(name="A's").branch == branch_a
    login(manager).post(segment_url("add"), {"name": "B's", "query": "q=b", "visibility": "branch", "branch": branch_b.pk})
    assert Segment.objects.get(name="B's").branch == branch_b


# --- Evaluated in the viewer's scope --------------------------------------------------------------------


def test_the_same_segment_finds_each_viewer_s_own_customers_and_values(login, manager, staff_a, staff_b, regulars, branch_b):
    tag = regulars["local_a"].tags.get()
    # A manager's segment that even names branch B as the location.
    segment = make_segment(manager, f"tags={tag.pk}&branch={branch_b.pk}")
    expected = {
        manager: {"global_all", "local_b"},  # as branch B sees them: the location of the segment
        staff_a: {"global_all", "global_a", "local_a"},  # the location is a manager's filter
        staff_b: {"global_all", "local_b"},
    }
    for user, names in expected.items():
        client = login(user)
        response = client.get(segments.listing_url(segment))
        assert {c.pk for c in response.context["object_list"]} == {regulars[n].pk for n in names}, user
        api = client.get(f"/api/v3/clientdb/segments/{segment.pk}/customers/", headers=token_header(user))
        assert {c["id"] for c in api.json()["items"]} == {regulars[n].pk for n in names}, user
        notes = {c["id"]: c["notes"] for c in api.json()["items"]}
        if user == staff_a:
            # No customer or local value of B reaches A through the manager's segment.
            assert regulars["local_b"].pk not in notes and "B only" not in notes.values()
            assert "Localb" not in response.content.decode() and "B only" not in response.content.decode()
    # Branch B's values for the staff of B and for the manager who picked B; never for A.
    assert customers_notes(staff_b, segment)[regulars["global_all"].pk] == "B only"
    assert customers_notes(staff_a, segment)[regulars["global_all"].pk] == ""


def customers_notes(user, segment):
    return {c.pk: c.eff_notes for c in segments.customers(scope.viewer_for_user(user), segment)}


def token_header(user):
    return {"Authorization": f"Bearer {APIToken.create_token(user=user, name='test')[1]}"}


def test_a_rule_that_does_not_hold_for_the_viewer_finds_nobody_not_everybody(manager, staff_a, regulars, branch_b):
    only_b = make_customer(first_name="Only", last_name="Bee", home_branch=branch_b)
    only_b.tags.add("b-secret")
    segment = make_segment(manager, f"tags={only_b.tags.get().pk}")
    assert list(segments.customers(scope.viewer_for_user(manager), segment)) == [only_b]
    # A sees no customer with that tag: the filter does not hold for A, the segment is empty.
    assert not segments.customers(scope.viewer_for_user(staff_a), segment).exists()


def test_a_dynamic_group_whose_rule_does_not_hold_for_the_viewer_lists_and_counts_nobody(login, manager, staff_a, regulars, branch_b):
    only_b = make_customer(first_name="Only", last_name="Bee", home_branch=branch_b)
    only_b.tags.add("b-secret")
    group = CustomerGroup.objects.create(name="B secret", segment=make_segment(manager, f"tags={only_b.tags.get().pk}"))
    client = login(staff_a)
    response = client.get(customer_url("list"), {"groups": group.pk})
    assert response.status_code == 200 and response.context["paginator"].count == 0
    assert column_values(client.get(group_url("list")), "customer_count")[group] == "0"
    assert column_values(login(manager).get(group_url("list")), "customer_count")[group] == "1"


@pytest.mark.parametrize("view", ["edit", "delete", "history"])
def test_a_private_segment_is_its_owner_s_alone(login, staff_a, make_user, staff_group, branch_a, manager, view):
    private = make_segment(staff_a, "q=mine", name="Mine", visibility=SegmentVisibility.PRIVATE)
    colleague = make_user("colleague_a", groups=[staff_group], branches=[branch_a])
    for user in (colleague, manager):
        client = login(user)
        assert client.get(segment_url(view, private.pk)).status_code == 404
        assert "Mine" not in client.get(segment_url("list")).content.decode()
        response = client.get(f"/api/v3/clientdb/segments/{private.pk}/customers/", headers=token_header(user))
        assert response.status_code == 404
    assert login(staff_a).get(segment_url(view, private.pk)).status_code == 200


def test_a_branch_segment_is_seen_by_its_branch_and_managers_only(login, staff_a, staff_b, manager, branch_a):
    shared = make_segment(staff_a, "q=a", name="Alpha list", visibility=SegmentVisibility.BRANCH, branch=branch_a)
    assert login(staff_b).get(segment_url("edit", shared.pk)).status_code == 404
    assert "Alpha list" not in login(staff_b).get(segment_url("list")).content.decode()
    api = login(staff_b).get("/api/v3/clientdb/segments/", headers=token_header(staff_b))
    assert api.status_code == 200 and api.json()["items"] == []
    assert "Alpha list" in login(manager).get(segment_url("list")).content.decode()
    api = login(manager).get("/api/v3/clientdb/segments/", headers=token_header(manager))
    assert [s["name"] for s in api.json()["items"]] == ["Alpha list"]


def test_a_shared_segment_is_changed_only_by_its_owner_and_managers(login, staff_a, make_user, staff_group, branch_a, manager):
    shared = make_segment(staff_a, "q=a", name="Alpha list", visibility=SegmentVisibility.BRANCH, branch=branch_a)
    colleague = make_user("colleague_a", groups=[staff_group], branches=[branch_a])
    client = login(colleague)
    assert client.get(segment_url("list")).status_code == 200
    assert client.get(segment_url("edit", shared.pk)).status_code == 302  # refused, with a message
    client.post(segment_url("delete", shared.pk))
    assert Segment.objects.filter(pk=shared.pk).exists()
    response = login(manager).post(
        segment_url("edit", shared.pk), {"name": "Renamed", "query": "q=a", "visibility": "branch", "branch": branch_a.pk}
    )
    assert response.status_code == 302
    assert Segment.objects.get(pk=shared.pk).name == "Renamed"


def test_segment_history_is_logged_and_private_history_stays_private(login, staff_a, manager):
    client = login(staff_a)
    client.post(segment_url("add"), {"name": "Secret list", "query": "q=x", "visibility": "private"})
    segment = Segment.objects.get(name="Secret list")
    assert ClientDBLogEntry.objects.filter(object_id=str(segment.pk), action="wagtail.create").exists()
    assert client.get(segment_url("history", segment.pk)).status_code == 200
    site_history = login(manager).get(reverse("wagtailadmin_reports:site_history"))
    assert "Secret list" not in site_history.content.decode()


# --- Count and export -------------------------------------------------------------------------------------


def test_the_segment_list_shows_each_viewer_s_live_count_and_opens_and_exports(login, manager, staff_a, staff_b, regulars):
    tag = regulars["local_a"].tags.get()
    segment = make_segment(manager, f"tags={tag.pk}", name="Regulars")
    counts = {manager: 4, staff_a: 3, staff_b: 2}
    for user, count in counts.items():
        response = login(user).get(segment_url("list"))
        assert column_values(response, "count") == {segment: str(count)}, user
        html = response.content.decode()
        assert segments.listing_url(segment).replace("&", "&amp;") in html
        assert segments.export_url(segment, "csv").replace("&", "&amp;") in html
    regulars["local_a"].tags.clear()
    assert column_values(login(staff_a).get(segment_url("list")), "count") == {segment: "2"}


def test_the_segment_list_leaves_counts_past_its_time_to_the_browser_in_the_viewer_s_scope(
    login, manager, staff_a, regulars, settings
):
    """After the first three, the list counts segments only for SEGMENT_LIST_COUNTING_MS; the
    others' counts are fetched from the count URL, which counts in the asker's scope and finds
    no segment the asker may not see."""
    tag = regulars["local_a"].tags.get()
    shared = [make_segment(manager, f"tags={tag.pk}&ordering={order}", name=f"Regulars {i}") for i, order in enumerate(
        ["name", "-name", "email", "-email", "created_at"])]
    private = make_segment(manager, f"tags={tag.pk}", name="Zz mine", visibility=SegmentVisibility.PRIVATE)
    for user, count, listed in ((manager, "4", [*shared, private]), (staff_a, "3", shared)):
        client = login(user)
        settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_COUNTING_MS": 60_000}
        assert column_values(client.get(segment_url("list")), "count") == {segment: count for segment in listed}
        settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_COUNTING_MS": 0}
        shown = column_values(client.get(segment_url("list")), "count")
        assert [shown[segment] for segment in listed[:3]] == [count] * 3, user
        for segment in listed[3:]:
            url = segment_url("count", segment.pk)
            assert shown[segment] == f'<span data-clientdb-segment-count="{url}" aria-busy="true">…</span>'
            response = client.get(url)
            assert response.status_code == 200 and response.json() == {"label": count}, (user, segment)
    assert login(staff_a).get(segment_url("count", private.pk)).status_code == 404


def test_a_segment_exports_what_the_viewer_s_listing_shows(login, manager, staff_a, regulars):
    tag = regulars["local_a"].tags.get()
    segment = make_segment(manager, f"tags={tag.pk}&ordering=-name")
    rows = export_rows(login(staff_a).get(segments.export_url(segment, "csv")))
    assert [row[1] for row in rows[1:]] == ["Specifica", "Locala", "Globalall"]


# --- Dynamic groups -----------------------------------------------------------------------------------------


@pytest.fixture
def vip_rule(manager, db):
    """A company segment: customers tagged "vip"; and the dynamic group it defines."""
    return make_segment(manager, "", name="VIP rule")


@pytest.fixture
def dynamic_group(vip_rule, scope_customers):
    scope_customers["local_a"].tags.add("vip")
    vip_rule.query = f"tags={scope_customers['local_a'].tags.get(name='vip').pk}"
    vip_rule.save()
    return CustomerGroup.objects.create(name="VIPs", segment=vip_rule)


def test_membership_of_a_dynamic_group_follows_the_data(manager, staff_a, staff_b, dynamic_group, scope_customers):
    viewers = {user: scope.viewer_for_user(user) for user in (manager, staff_a, staff_b)}
    assert set(groups.members(viewers[manager], dynamic_group)) == {scope_customers["local_a"]}
    assert not groups.members(viewers[staff_b], dynamic_group).exists()
    scope_customers["global_all"].tags.add("vip")
    scope_customers["local_b"].tags.add("vip")
    assert set(groups.members(viewers[staff_a], dynamic_group)) == {scope_customers["local_a"], scope_customers["global_all"]}
    assert set(groups.members(viewers[staff_b], dynamic_group)) == {scope_customers["global_all"], scope_customers["local_b"]}
    scope_customers["local_a"].tags.clear()
    assert set(groups.members(viewers[staff_a], dynamic_group)) == {scope_customers["global_all"]}


def test_a_dynamic_group_in_the_listing_filter_column_inspect_view_and_export(login, staff_a, dynamic_group, scope_customers):
    manual = CustomerGroup.objects.create(name="Newsletter")
    scope_customers["global_a"].groups.add(manual)
    client = login(staff_a)
    response = client.get(customer_url("list"), {"groups": [dynamic_group.pk, manual.pk]})
    assert {c.pk for c in response.context["object_list"]} == {scope_customers["local_a"].pk, scope_customers["global_a"].pk}
    assert {c.pk: c.group_names for c in response.context["object_list"]} == {
        scope_customers["local_a"].pk: ["VIPs"], scope_customers["global_a"].pk: ["Newsletter"]
    }
    inspect = client.get(customer_url("inspect", scope_customers["local_a"].pk))
    assert {"label": "Groups", "value": "VIPs"} in inspect.context["fields"]
    rows = export_rows(client.get(customer_url("list"), {"groups": dynamic_group.pk, "export": "csv"}))
    assert rows[0][7] == "Groups" and [row[7] for row in rows[1:]] == ["VIPs"]


def test_a_listing_filtered_by_one_dynamic_group_names_it_without_running_its_rule_again(login, manager, staff_a, dynamic_group, scope_customers):
    """Every customer listed is in the group the listing is filtered by: the group column names
    it without running the group's rule a second time (the filter ran it)."""
    scope_customers["global_all"].tags.add("vip")
    empty = CustomerGroup.objects.create(name="Newsletter")
    members = {scope_customers["local_a"].pk, scope_customers["global_all"].pk}
    for user in (manager, staff_a):
        client = login(user)
        pages = {}
        for chosen in ([dynamic_group.pk], [dynamic_group.pk, empty.pk]):
            with CaptureQueriesContext(connection) as queries:
                response = client.get(customer_url("list"), {"groups": chosen})
            assert {c.pk: c.group_names for c in response.context["object_list"]} == {pk: ["VIPs"] for pk in members}, user
            pages[len(chosen)] = len(queries)
        # With two groups chosen, no group is known to hold everyone listed: the column runs the rule.
        assert pages[1] < pages[2], user
    viewer = scope.viewer_for_user(staff_a)
    with CaptureQueriesContext(connection) as known:
        named = groups.names_by_customer(viewer, members, members_of=[dynamic_group])
    with CaptureQueriesContext(connection) as evaluated:
        assert groups.names_by_customer(viewer, members) == named == {pk: ["VIPs"] for pk in members}
    assert len(known) < len(evaluated)


def tag_groups(manager, customers, numbers):
    """Dynamic groups "Rule <n>" for each of ``numbers``, each of the customers tagged "rule-<n>"."""
    made = []
    for number in numbers:
        for customer in customers:
            customer.tags.add(f"rule-{number}")
        tag = customers[0].tags.get(name=f"rule-{number}")
        segment = make_segment(manager, f"tags={tag.pk}", name=f"Rule {number} segment")
        made.append(CustomerGroup.objects.create(name=f"Rule {number}", segment=segment))
    return made


def test_a_listing_page_leaves_the_rules_it_has_no_time_for_to_the_browser(login, manager, staff_a, scope_customers, settings):
    """After the first three, a page runs the dynamic groups' rules only for LISTING_GROUP_NAMES_MS
    (each builds its segment's listing); the browser asks for the other groups' names."""
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "LISTING_GROUP_NAMES_MS": 0}
    mine, theirs = scope_customers["local_a"], scope_customers["local_b"]
    tag_groups(manager, [mine, theirs], range(1, 6))
    client = login(staff_a)
    with CaptureQueriesContext(connection) as five:
        response = client.get(customer_url("list"), {"q": "Locala"})
    (listed,) = response.context["object_list"]
    assert listed.group_names == ["Rule 1", "Rule 2", "Rule 3"]
    html = response.content.decode()
    url = html.split('data-clientdb-group-names="')[1].split('"')[0].replace("&amp;", "&")
    answer = client.get(url)
    assert answer.status_code == 200 and answer.json() == {"names": {str(mine.pk): ["Rule 4", "Rule 5"]}}
    # Whatever the number of groups, a page runs as many rules: its queries do not grow with them.
    tag_groups(manager, [mine], range(6, 9))
    with CaptureQueriesContext(connection) as eight:
        assert client.get(customer_url("list"), {"q": "Locala"}).status_code == 200
    assert len(eight) == len(five)
    # Another branch's customer asked for by its id is not named, nor its existence told.
    path, query = url.split("?")
    assert client.get(f"{path}?{query}&id={theirs.pk}").json() == {"names": {str(mine.pk): ["Rule 4", "Rule 5"]}}
    assert client.get(f"{path}?id=x").status_code == 400
    # With time enough, the page names every group itself and leaves nothing to the browser.
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "LISTING_GROUP_NAMES_MS": 60_000}
    response = client.get(customer_url("list"), {"q": "Locala"})
    assert response.context["object_list"][0].group_names == sorted(g.name for g in CustomerGroup.objects.all())
    assert b"data-clientdb-group-names" not in response.content


def test_a_dynamic_group_counts_each_viewer_s_members_in_the_group_list(login, manager, staff_b, dynamic_group, scope_customers):
    scope_customers["local_b"].tags.add("vip")
    counts = {user: column_values(login(user).get(group_url("list")), "customer_count") for user in (manager, staff_b)}
    assert counts == {manager: {dynamic_group: "2"}, staff_b: {dynamic_group: "1"}}


def test_the_group_list_counts_as_the_segments_list_counts(login, manager, scope_customers, branch_a, branch_b, settings):
    """Up to SEGMENT_LIST_EXACT_COUNT_LIMIT exactly; above it a rule the planner only guesses
    (visits) says what was counted: exact counts of every group in one query took more than
    fifteen minutes at a million customers."""
    by_hand = CustomerGroup.objects.create(name="By hand")
    by_hand.customers.add(*scope_customers.values())
    for name, customer in scope_customers.items():
        make_appointment(customer, branch_b if name == "local_b" else branch_a, days=-2, status="completed")
    visited = CustomerGroup.objects.create(name="Visited", segment=make_segment(manager, "visits_min=1", name="Visited"))
    assert column_values(login(manager).get(group_url("list")), "customer_count") == {by_hand: "4", visited: "4"}
    settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_EXACT_COUNT_LIMIT": 2}
    counts = column_values(login(manager).get(group_url("list")), "customer_count")
    assert counts[visited] == ("4" if connection.vendor == "sqlite" else "more than 2")


def test_customers_are_not_added_to_a_dynamic_group_by_hand(login, manager, dynamic_group, scope_customers):
    customer = scope_customers["global_all"]
    client = login(manager)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_to_group")) + f"?id={customer.pk}"
    manual = CustomerGroup.objects.create(name="By hand")
    offered = client.get(url).context["form"].fields["group"].queryset
    assert manual in offered and dynamic_group not in offered
    response = post_bulk(client, url, {"group": dynamic_group.pk})
    assert response.status_code == 200
    assert response.context["form"].errors["group"]
    assert not customer.groups.exists()
    edit = client.get(customer_url("edit", customer.pk))
    assert dynamic_group not in edit.context["form"].fields["groups"].queryset


def test_the_api_filters_and_shows_dynamic_groups(login, staff_a, dynamic_group, scope_customers):
    client = login(staff_a)
    headers = token_header(staff_a)
    listed = client.get("/api/v3/clientdb/customers/", {"group": "vips"}, headers=headers).json()
    assert [(c["id"], c["groups"]) for c in listed["items"]] == [(scope_customers["local_a"].pk, ["VIPs"])]
    read = client.get(f"/api/v3/clientdb/customers/{scope_customers['local_a'].pk}/", headers=headers).json()
    assert read["groups"] == ["VIPs"]


def test_the_api_list_filtered_by_a_dynamic_group_names_it_without_running_its_rule_again(login, staff_a, dynamic_group, scope_customers, monkeypatch):
    """Every customer the API lists for ``group=`` is in that group (every group given holds
    every customer listed): their groups name it, the rule run once, by the filter. The same
    customers listed by their tag run it for their groups."""
    scope_customers["global_all"].tags.add("vip")
    client = login(staff_a)
    headers = token_header(staff_a)
    rules_run = []
    member_keys = groups.member_keys
    monkeypatch.setattr(groups, "member_keys", lambda viewer, group: rules_run.append(group.name) or member_keys(viewer, group))
    listed = {}
    for name, params in (("group", {"group": "vips"}), ("tag", {"tag": "vip"}), ("unknown group", {"group": ["vips", "nobody"]})):
        rules_run.clear()
        items = client.get("/api/v3/clientdb/customers/", params, headers=headers).json()["items"]
        listed[name] = (sorted((c["id"], c["groups"]) for c in items), list(rules_run))
    members = sorted((scope_customers[key].pk, ["VIPs"]) for key in ("local_a", "global_all"))
    assert listed["group"] == (members, ["VIPs"])
    assert listed["tag"] == (members, ["VIPs"])
    # Several groups find the customers in any of them: a name no group has adds nobody.
    assert listed["unknown group"] == (members, ["VIPs"])


def test_a_dynamic_default_group_takes_online_bookers_by_its_rule(manager, branch_a, vip_rule, db):
    from wagtail_clientdb import registration
    from wagtail_clientdb.models import ConsentChannel, CustomerSource

    vip_rule.query = "source=online_booking"
    vip_rule.save()
    group = CustomerGroup.objects.create(name="Online", segment=vip_rule, is_default=True)
    page_viewer = scope.Viewer(None, False, (branch_a,))
    details = registration.ContactDetails(first_name="Olga", last_name="Online", email="olga@example.com")
    customer = registration.register(
        page_viewer, details, source=CustomerSource.ONLINE_BOOKING, channel=ConsentChannel.FORM
    ).customer
    assert not customer.groups.exists()  # nothing written for a dynamic group
    assert groups.is_member(page_viewer, group, customer)  # the page's branch sees it in the group
    assert groups.is_member(scope.viewer_for_user(manager), group, customer)


def test_a_dynamic_group_needs_a_company_segment_that_does_not_depend_on_itself(login, manager, vip_rule, staff_a):
    client = login(manager)
    group = CustomerGroup.objects.create(name="Loop")
    vip_rule.query = f"groups={group.pk}"
    vip_rule.save()
    response = client.post(group_url("edit", group.pk), {"name": "Loop", "description": "", "segment": vip_rule.pk})
    assert response.status_code == 200
    assert "cannot depend on the group itself" in str(response.context["form"].errors["segment"])
    assert CustomerGroup.objects.get(pk=group.pk).segment is None

    # Through another dynamic group, and by changing the segment later.
    vip_rule.query = ""
    vip_rule.save()
    other_rule = make_segment(manager, f"groups={group.pk}", name="Other rule")
    other = CustomerGroup.objects.create(name="Other", segment=other_rule)
    response = client.post(
        segment_url("edit", vip_rule.pk), {"name": "VIP rule", "query": "", "visibility": "company"}
    )
    assert response.status_code == 302
    group.segment = vip_rule
    group.save()
    response = client.post(
        segment_url("edit", vip_rule.pk), {"name": "VIP rule", "query": f"groups={other.pk}", "visibility": "company"}
    )
    assert response.status_code == 200 and "cannot depend" in str(response.context["form"].non_field_errors())
    assert Segment.objects.get(pk=vip_rule.pk).query == ""
    response = client.post(segment_url("edit", vip_rule.pk), {"name": "VIP rule", "query": "", "visibility": "private"})
    assert response.status_code == 200 and Segment.objects.get(pk=vip_rule.pk).visibility == "company"

    private = make_segment(staff_a, "", name="Private", visibility=SegmentVisibility.PRIVATE)
    response = client.post(group_url("add"), {"name": "Private members", "description": "", "segment": private.pk})
    assert response.status_code == 200 and not CustomerGroup.objects.filter(name="Private members").exists()


def test_a_segment_defining_a_dynamic_group_is_not_deleted(login, manager, dynamic_group, vip_rule):
    login(manager).post(segment_url("delete", vip_rule.pk))
    assert Segment.objects.filter(pk=vip_rule.pk).exists()


# --- Query counts -------------------------------------------------------------------------------------------


def queries_of(client, url, **kwargs):
    client.get(url, **kwargs)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return len(queries)


def test_query_count_of_a_segment_does_not_grow_with_its_rules(login, manager, staff_a, regulars, branch_a, settings):
    tag = regulars["local_a"].tags.get()
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="text")
    AttributeDefinition.objects.create(label="Eyes", key="eyes", field_type="text")
    plain = [CustomerGroup.objects.create(name=f"Plain {i}") for i in range(5)]
    for customer in regulars.values():
        # Every rule below holds for every customer: both segments list the same page.
        customer.attributes = {"hair": "x", "eyes": "y"}
        customer.save()
        customer.groups.add(plain[0])
    rule = make_segment(manager, "", name="Dynamic")
    dynamic = [CustomerGroup.objects.create(name=f"Dynamic {i}", segment=rule) for i in range(5)]
    # A page names the dynamic groups it has time for after the first three: with no time
    # beyond them, how many rules it runs does not depend on how fast the machine is.
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "LISTING_GROUP_NAMES_MS": 0}
    # A filter validates its choices once (a query per kind of filter): 2 rules against 5 rules
    # of kinds that need no query, and 1 group against 5 groups of each kind. (A rule on an
    # attribute's value is on both sides: a listing the planner only guesses is counted where
    # one it estimates may not be; see listing.count.)
    pairs = [
        (f"tags={tag.pk}&attribute_hair=x", f"tags={tag.pk}&marketing_consent=false&source=manual&attribute_hair=x&attribute_eyes=y"),
        (f"groups={plain[0].pk}", "&".join(f"groups={g.pk}" for g in plain)),
        (f"groups={dynamic[0].pk}&groups={plain[0].pk}", "&".join(f"groups={g.pk}" for g in [*dynamic, *plain])),
    ]
    for user in (manager, staff_a):
        client = login(user)
        headers = token_header(user)
        for few, many in pairs:
            few, many = make_segment(user, few, name="few"), make_segment(user, many, name="many")
            assert queries_of(client, segments.listing_url(few)) == queries_of(client, segments.listing_url(many)), (user, few.query)
            api = "/api/v3/clientdb/segments/{}/customers/"
            assert queries_of(client, api.format(few.pk), headers=headers) == queries_of(
                client, api.format(many.pk), headers=headers
            ), (user, few.query)



def test_query_count_of_a_segment_with_visit_rules_does_not_grow_with_its_rules(
    login, manager, staff_a, regulars, branch_a, branch_b
):
    """The shapes measured at a million customers (benchmarks/scale.py): few rules against many —
    tag, group, consent, numbers of visits, a last-visit range. The visit rules are conditions
    of the listing's own query; a filter with choices (tags, groups) validates them, once, and
    the number of visits reads the visits since the kept counts' mark, once."""
    tag = regulars["local_a"].tags.get()
    vip = CustomerGroup.objects.create(name="VIP")
    for customer in regulars.values():
        # Every rule below holds for every customer: both segments list the same page.
        customer.groups.add(vip)
        customer.marketing_consent = True
        customer.save()
        branch = branch_b if customer.home_branch == branch_b else branch_a
        make_appointment(customer, branch, days=-40, status="completed")
        make_appointment(customer, branch, days=-5, status="completed")
    visits = "visits_min=2&last_visit_from=2000-01-01&last_visit_to=2100-01-01"
    pairs = [
        (f"tags={tag.pk}&visits_min=2", f"tags={tag.pk}&marketing_consent=true&visits_min=2&visits_max=100&{visits}"),
        (f"groups={vip.pk}&visits_max=100", f"groups={vip.pk}&marketing_consent=true&visits_max=100&upcoming_appointment=false&{visits}"),
        (f"tags={tag.pk}&groups={vip.pk}&visits_min=2", f"tags={tag.pk}&groups={vip.pk}&marketing_consent=true&{visits}"),
    ]
    for user in (manager, staff_a):
        client = login(user)
        for few, many in pairs:
            few, many = make_segment(user, few, name="few"), make_segment(user, many, name="many")
            listed = [client.get(segments.listing_url(s)).context["object_list"] for s in (few, many)]
            assert len(listed[0]) == len(listed[1]) > 0, (user, many.query)
            assert queries_of(client, segments.listing_url(few)) == queries_of(client, segments.listing_url(many)), (user, few.query)


def test_bulk_delete_reaches_only_the_segments_the_user_may_change(login, staff_a, staff_b, manager, branch_a):
    mine = make_segment(staff_b, "", name="Mine", visibility=SegmentVisibility.PRIVATE)
    theirs = make_segment(staff_a, "", name="Theirs", visibility=SegmentVisibility.PRIVATE)
    company = make_segment(manager, "", name="Company")
    client = login(staff_b)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "segment", "delete"))
    assert client.get(f"{url}?id={theirs.pk}").status_code == 404
    client.post(f"{url}?id=all")
    assert set(Segment.objects.values_list("name", flat=True)) == {"Theirs", "Company"}
    client.post(f"{url}?id={mine.pk}&id={theirs.pk}&id={company.pk}")
    assert set(Segment.objects.values_list("name", flat=True)) == {"Theirs", "Company"}


def test_naming_a_dynamic_group_where_groups_are_set_changes_nothing(login, manager, dynamic_group, scope_customers):
    from wagtail_clientdb.imports.records import import_records

    plain = CustomerGroup.objects.create(name="Plain")
    customer = scope_customers["global_all"]
    _saved, results, _batch = import_records(
        scope.viewer_for_user(manager), [{"email": customer.email, "groups": ["VIPs", "Plain"]}]
    )
    assert [r.result for r in results] == ["updated"]
    assert list(customer.groups.all()) == [plain]

    client = login(manager)
    headers = token_header(manager)
    url = f"/api/v3/clientdb/customers/{customer.pk}/"
    etag = client.get(url, headers=headers)["ETag"]
    response = client.patch(url, {"groups": ["VIPs"]}, content_type="application/json", headers={**headers, "If-Match": etag})
    assert response.status_code == 200 and response.json()["groups"] == []
    assert not customer.groups.exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_the_segment_list_counts_exactly_up_to_its_own_limit_then_estimates(login, manager, regulars, settings):
    """The Segments list counts every segment it shows: exactly up to its own, lower limit; the
    segment's listing still counts up to the listing's."""
    tag = regulars["local_a"].tags.get()
    segment = make_segment(manager, f"tags={tag.pk}", name="Regulars")
    settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_EXACT_COUNT_LIMIT": 2, "LISTING_EXACT_COUNT_LIMIT": 10}
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = login(manager)
    assert column_values(client.get(segment_url("list")), "count")[segment].startswith("about ")
    assert client.get(segments.listing_url(segment)).context["paginator"].count == 4


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's planner estimates counts")
def test_the_segment_list_shows_a_searched_segment_above_its_limit_as_more_than_it(login, manager, regulars, settings):
    segment = make_segment(manager, "q=a", name="Everyone with an a")
    settings.WAGTAIL_CLIENTDB = {"SEGMENT_LIST_EXACT_COUNT_LIMIT": 2}
    shown = column_values(login(manager).get(segment_url("list")), "count")[segment]
    assert shown == "more than 2"
    assert segments.count(scope.viewer_for_user(manager), segment).number > 2


def test_the_segments_list_names_who_saved_each_as_every_page_names_users(login, make_user, staff_group, branch_a, manager):
    owner = make_user("ada", groups=[staff_group], branches=[branch_a], first_name="Ada", last_name="Lovelace")
    make_segment(owner, "q=Lovelace", name="Ada's segment")
    html = login(manager).get(segment_url("list")).content.decode()
    assert "Ada Lovelace" in html and not re.search(r">\s*ada\s*<", html)
