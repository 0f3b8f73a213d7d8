"""Bulk actions on customers at any size: "select all" of a listing or segment may choose
hundreds of thousands, so the rules are asked of the whole choice at once, the confirmation
page counts and names a few, and the change is made a chunk at a time (issue #17)."""

import html
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.http import urlencode
from wagtail.users.models import UserProfile

from tests.conftest import customer_url, make_appointment, make_customer, post_bulk
from wagtail_clientdb import archive, bulk_edits, merging, scope
from wagtail_clientdb.models import (
    Appointment,
    BulkActionJob,
    BulkActionStatus,
    ClientDBLogEntry,
    Customer,
    CustomerGroup,
    CustomerTag,
    TaggedCustomer,
)


def action_url(action, *customers, listing=None):
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", action))
    if listing is not None:
        return f"{url}?id=all&next={listing.replace('?', '%3F').replace('&', '%26')}"
    return url + "?" + "&".join(f"id={customer.pk}" for customer in customers)


def edits_of(customer):
    return list(
        ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action="wagtail_clientdb.edit").values_list("data", flat=True)
    )


@pytest.mark.parametrize("who", ["manager", "staff_a", "editor"])
def test_the_rule_for_a_whole_choice_is_the_rule_for_each_customer(request, who, scope_customers, allow_branch_edits):
    """:func:`scope.split_by_direct_edit` (a bulk action's choice) says of every customer what
    the rules asked of one customer say: edit directly, delete, archive, merge."""
    viewer = scope.viewer_for_user(request.getfixturevalue(who))
    chosen = Customer.objects.filter(pk__in=[customer.pk for customer in scope_customers.values()])
    permitted, refused = scope.split_by_direct_edit(viewer, chosen)
    permitted, refused = set(permitted.values_list("pk", flat=True)), set(refused.values_list("pk", flat=True))
    assert permitted | refused == set(chosen.values_list("pk", flat=True)) and not permitted & refused
    for customer in scope_customers.values():
        direct = scope.edit_mode(viewer, customer) == scope.EditMode.DIRECT
        assert (customer.pk in permitted) == direct == scope.can_delete(viewer, customer), (who, customer)
        assert direct == archive.may_archive(viewer, customer) == merging.may_merge(viewer, customer), (who, customer)
    # Each kind of viewer has something on both sides, or nothing to change at all.
    assert {"manager": (4, 0), "staff_a": (1, 3), "editor": (0, 4)}[who] == (len(permitted), len(refused))


def test_select_all_names_a_few_counts_the_rest_and_changes_every_customer(login, staff_a, branch_a, monkeypatch):
    monkeypatch.setattr(bulk_edits, "CHUNK", 8)  # several chunks of a small listing
    own = [make_customer(first_name=f"Lia{n:02d}", last_name="Bulkmann", home_branch=branch_a) for n in range(30)]
    shared = [make_customer(first_name=f"Gus{n:02d}", last_name="Bulkmann", branches=[branch_a]) for n in range(15)]
    elsewhere = make_customer(first_name="Otto", last_name="Other", home_branch=branch_a)
    client = login(staff_a)
    url = action_url("add_tags", listing=customer_url("list") + "?q=Bulkmann")
    page = client.get(url)
    assert page.status_code == 200
    context = page.context
    # The listing's order (by last name, then first name): the first twenty named, the rest counted.
    assert context["items"] == [f"Lia{n:02d} Bulkmann" for n in range(20)]
    assert (context["items_count"], context["items_summary"], context["items_not_shown"]) == (30, "30 customers", "… and 10 more")
    # Shared by the head office: a branch does not tag them for everyone.
    assert context["items_with_no_access"] == [f"Gus{n:02d} Bulkmann" for n in range(15)]
    assert (context["no_access_summary"], context["no_access_not_shown"]) == ("15 customers", "")
    html = page.content.decode()
    assert "Lia19 Bulkmann" in html and "Lia20 Bulkmann" not in html and "… and 10 more" in html

    response = post_bulk(client, url, {"tags": "newsletter"}, follow=True)
    assert "Tags added to 30 customers." in response.content.decode()
    tagged = set(Customer.objects.filter(tags__name="newsletter").values_list("pk", flat=True))
    assert tagged == {customer.pk for customer in own}
    assert all(edits_of(customer) == [{"fields": ["tags"]}] for customer in own)
    assert not edits_of(shared[0]) and not edits_of(elsewhere)
    assert Customer.objects.get(pk=own[0].pk).version == own[0].version + 1


def test_a_customer_already_as_asked_is_left_as_it_is(login, manager, branch_a):
    group = CustomerGroup.objects.create(name="Regulars")
    tagged, untagged = (make_customer(first_name=name, branches=[branch_a]) for name in ("Tia", "Uwe"))
    tagged.tags.add("vip")
    group.customers.add(tagged)
    versions_before = {customer.pk: Customer.objects.get(pk=customer.pk).version for customer in (tagged, untagged)}
    client = login(manager)
    post_bulk(client, action_url("add_tags", tagged, untagged), {"tags": "vip"})
    post_bulk(client, action_url("add_to_group", tagged, untagged), {"group": group.pk})
    assert Customer.objects.get(pk=tagged.pk).version == versions_before[tagged.pk] and not edits_of(tagged)
    assert Customer.objects.get(pk=untagged.pk).version == versions_before[untagged.pk] + 2
    assert edits_of(untagged) == [{"fields": ["tags"]}, {"fields": ["groups"]}]
    post_bulk(client, action_url("remove_from_group", tagged, untagged), {"group": group.pk})
    post_bulk(client, action_url("remove_tags", tagged, untagged), {"tags": "vip"})
    assert not group.customers.exists() and not Customer.objects.filter(tags__name="vip").exists()
    assert len(edits_of(tagged)) == 2 and len(edits_of(untagged)) == 4


def test_tags_are_added_and_removed_by_name_in_any_case(login, manager, branch_a):
    """The tag rule (wagtail_clientdb.tags): "vip" is the tag "VIP" there is, and a customer
    carrying it already is left as it is; a name of only invisible characters is no name."""
    tia, uwe = (make_customer(first_name=name, branches=[branch_a]) for name in ("Tia", "Uwe"))
    tia.tags.add("VIP")
    client = login(manager)
    post_bulk(client, action_url("add_tags", tia, uwe), {"tags": "vip, Vip"})
    assert list(CustomerTag.all_tags.values_list("name", flat=True)) == ["VIP"]
    assert (list(tia.tags.names()), list(uwe.tags.names())) == (["VIP"], ["VIP"])
    assert not edits_of(tia) and edits_of(uwe) == [{"fields": ["tags"]}]

    response = post_bulk(client, action_url("add_tags", tia, uwe), {"tags": "\u200b\u00ad\ufeff"})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    post_bulk(client, action_url("remove_tags", tia, uwe), {"tags": "unknown"})
    assert list(CustomerTag.all_tags.values_list("name", flat=True)) == ["VIP"]  # none made to be removed
    post_bulk(client, action_url("remove_tags", tia, uwe), {"tags": "vIP"})
    assert not TaggedCustomer.objects.exists()


@pytest.mark.parametrize(
    "action, data",
    [
        ("add_tags", {"tags": "vip"}),
        ("remove_tags", {"tags": "vip"}),
        ("add_to_group", "group"),
        ("archive", {}),
        ("share_with_branches", "branch"),
        ("delete", {}),
    ],
)
def test_a_bulk_action_asks_as_many_queries_for_many_customers_as_for_few(login, manager, branch_a, branch_b, action, data):
    group = CustomerGroup.objects.create(name="Regulars")
    data = {"group": {"group": group.pk}, "branch": {"branches": [branch_b.pk]}}[data] if isinstance(data, str) else data
    client = login(manager)

    def queries(surname, count):
        customers = [make_customer(first_name=f"C{n}", last_name=surname, home_branch=branch_a) for n in range(count)]
        for customer in customers[::2]:
            customer.tags.add("vip")
        url = action_url(action, listing=customer_url("list") + f"?q={surname}")
        with CaptureQueriesContext(connection) as page:
            opened_at = client.get(url).context["form"]["opened_at"].value()
        with CaptureQueriesContext(connection) as done:
            assert client.post(url, {"opened_at": opened_at, **data}).status_code == 302
        return [query["sql"] for query in page], [query["sql"] for query in done]

    # Both more than the page names (fewer are all found before the listing's every part is read).
    few, many = queries("Few", 21), queries("Many", 60)
    assert (len(few[0]), len(few[1])) == (len(many[0]), len(many[1])), (few, many)


def test_customers_added_or_changed_after_the_page_opened_are_left_out(login, manager, branch_a):
    first = make_customer(first_name="Ada", last_name="Late", branches=[branch_a])
    client = login(manager)
    url = action_url("archive", listing=customer_url("list") + "?q=Late")
    opened_at = client.get(url).context["form"]["opened_at"].value()
    added = make_customer(first_name="Bea", last_name="Late", branches=[branch_a])
    response = client.post(url, {"opened_at": opened_at}, follow=True)
    html = response.content.decode()
    assert "1 customer was added or changed after you opened this page and was left as it is: Bea Late" in html
    assert "1 customer archived." in html
    archived = set(Customer.objects.filter(archived_at__isnull=False).values_list("pk", flat=True))
    assert archived == {first.pk} and added.pk not in archived


@pytest.mark.parametrize("opened_at", [None, "", "2026-01-01T00:00:00+00:00", "forged:value"])
def test_a_confirmation_without_a_valid_opening_time_changes_nothing(login, manager, branch_a, opened_at):
    customer = make_customer(first_name="Ida", branches=[branch_a])
    data = {"tags": "vip"} if opened_at is None else {"tags": "vip", "opened_at": opened_at}
    response = login(manager).post(action_url("add_tags", customer), data)
    assert response.status_code == 200
    assert "This page is out of date. Go back to the customers and choose the action again." in response.content.decode()
    assert not Customer.objects.filter(tags__name="vip").exists()


def test_bulk_sharing_is_logged_for_each_customer_it_changed(login, manager, branch_a, branch_b):
    local = make_customer(first_name="Lotte", home_branch=branch_a)
    everywhere = make_customer(first_name="Eva", shared_with_all_branches=True)
    already = make_customer(first_name="Bo", branches=[branch_a, branch_b])
    post_bulk(login(manager), action_url("share_with_branches", local, everywhere, already), {"branches": [branch_b.pk]})
    entries = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.sharing")
    assert [(entry.object_id, entry.data) for entry in entries] == [
        (str(local.pk), {"all_branches": False, "branches": ["Alpha Salon", "Beta Salon"]})
    ]
    local.refresh_from_db()
    assert local.home_branch is None and set(local.branches.all()) == {branch_a, branch_b}


# --- More customers than a request should change: a background job -------------------------------------


@pytest.fixture
def background_above_five(settings, monkeypatch):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "BULK_ACTION_BACKGROUND_CUSTOMERS": 5}
    monkeypatch.setattr(bulk_edits, "CHUNK", 4)


def test_select_all_of_many_customers_runs_in_the_background(
    login, staff_a, manager, branch_a, background_above_five, django_capture_on_commit_callbacks
):
    own = [make_customer(first_name=f"Ida{n:02d}", last_name="Hintergrund", home_branch=branch_a) for n in range(12)]
    shared = make_customer(first_name="Gus", last_name="Hintergrund", branches=[branch_a])
    client = login(staff_a)
    url = action_url("archive", listing=customer_url("list") + "?q=Hintergrund")
    page = client.get(url)
    assert page.context["in_background"] and "So many customers are changed in the background" in page.content.decode()
    opened_at = page.context["form"]["opened_at"].value()
    late = Customer.objects.get(pk=own[5].pk)
    late.notes = "Changed after the page was opened"
    late.save()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {"opened_at": opened_at})
    job = BulkActionJob.objects.get()
    assert response.url == customer_url("bulk_action_job", job.pk)
    assert (job.action, job.branch, job.status) == ("archive", branch_a, BulkActionStatus.QUEUED)
    waiting = client.get(response.url)
    assert "The customers are being changed." in waiting.content.decode()
    assert client.get(response.url, {"status": "1"}).json()["running"] is True
    assert not Customer.objects.filter(archived_at__isnull=False).exists()

    for callback in callbacks:  # the worker runs the task
        callback()
    job.refresh_from_db()
    assert (job.status, job.rows_total, job.rows_done, job.counts) == (
        BulkActionStatus.DONE, 12, 12, {"done": 11, "queued": 0, "left": 1}
    )
    archived = set(Customer.objects.filter(archived_at__isnull=False).values_list("pk", flat=True))
    assert archived == {customer.pk for customer in own} - {late.pk} and shared.pk not in archived
    # Logged as the user's, in the user's branch, as the request would have.
    entries = ClientDBLogEntry.objects.filter(action=archive.ARCHIVE_ACTION)
    assert entries.count() == 11 and {(entry.user, entry.branch) for entry in entries} == {(staff_a, branch_a)}
    done = client.get(response.url)
    text = done.content.decode()
    assert "11 customers archived." in text
    assert "1 customer was added or changed after you opened the confirmation page and was left as it is." in text
    assert client.get(response.url, {"status": "1"}).json() == {"status": "done", "running": False, "rows_done": 12, "rows_total": 12}
    # Only its user sees it.
    assert login(manager).get(response.url).status_code == 404


def test_a_background_deletion_waits_for_upcoming_appointments(
    login, manager, branch_a, background_above_five, django_capture_on_commit_callbacks
):
    customers = [make_customer(first_name=f"Del{n}", last_name="Queue", branches=[branch_a]) for n in range(7)]
    make_appointment(customers[0], branch_a, days=3)
    client = login(manager)
    url = action_url("delete", listing=customer_url("list") + "?q=Queue")
    with django_capture_on_commit_callbacks(execute=True):
        response = post_bulk(client, url)
    text = client.get(response.url).content.decode()
    assert "6 deleted, 1 queued until their upcoming appointments are over." in text
    assert list(Customer.objects.values_list("pk", flat=True)) == [customers[0].pk]


def test_a_background_job_that_fails_says_so_and_keeps_what_it_did(
    login, manager, branch_a, background_above_five, django_capture_on_commit_callbacks
):
    group = CustomerGroup.objects.create(name="Soon gone")
    for n in range(7):
        make_customer(first_name=f"Grp{n}", last_name="Failing", branches=[branch_a])
    client = login(manager)
    url = action_url("add_to_group", listing=customer_url("list") + "?q=Failing")
    with django_capture_on_commit_callbacks() as callbacks:
        response = post_bulk(client, url, {"group": group.pk})
    group.delete()  # before the worker starts
    for callback in callbacks:
        callback()
    job = BulkActionJob.objects.get()
    assert job.status == BulkActionStatus.FAILED and job.finished_at is not None
    text = client.get(response.url).content.decode()
    assert "The action stopped because of an error. The customers changed before it keep the change." in text
    assert "0 of 0 customers" in text


def test_a_background_job_of_staff_who_left_the_branch_changes_nothing(
    login, staff_a, branch_a, background_above_five, django_capture_on_commit_callbacks
):
    for n in range(7):
        make_customer(first_name=f"Left{n}", last_name="Behind", home_branch=branch_a)
    client = login(staff_a)
    url = action_url("archive", listing=customer_url("list") + "?q=Behind")
    with django_capture_on_commit_callbacks() as callbacks:
        post_bulk(client, url)
    staff_a.clientdb_branch_memberships.all().delete()
    for callback in callbacks:
        callback()
    job = BulkActionJob.objects.get()
    assert (job.status, job.rows_total) == (BulkActionStatus.DONE, 0)
    assert not Customer.objects.filter(archived_at__isnull=False).exists()


def test_a_selection_of_few_customers_is_changed_at_once(login, manager, branch_a, background_above_five):
    customers = [make_customer(first_name=f"Now{n}", last_name="Direct", branches=[branch_a]) for n in range(4)]
    client = login(manager)
    url = action_url("archive", listing=customer_url("list") + "?q=Direct")
    page = client.get(url)
    assert not page.context["in_background"] and page.context["items_summary"] == "4 customers"
    response = post_bulk(client, url)
    assert response.url == customer_url("list") + "?q=Direct"
    assert Customer.objects.filter(archived_at__isnull=False).count() == len(customers)
    assert not BulkActionJob.objects.exists()


# --- "Select all" in the app's other listings: what the listing shows, not every object -------------------


def test_select_all_in_a_filtered_appointment_listing_changes_its_appointments_only(login, manager, branch_a, branch_b):
    customer = make_customer(first_name="Ann", shared_with_all_branches=True)
    in_a = [make_appointment(customer, branch_a, days=days) for days in (1, 2)]
    in_b = make_appointment(customer, branch_b, days=1)
    past = make_appointment(customer, branch_a, days=-3)
    listing = reverse("wagtailsnippets_wagtail_clientdb_appointment:list") + f"?branch={branch_a.pk}"
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "appointment", "change_status")) + "?" + urlencode(
        {"id": "all", "next": listing}
    )
    client = login(manager)
    # The listing's default period (today and later) counts as its filter too.
    assert {item.pk for item in client.get(url).context["items"]} == {a.pk for a in in_a}
    assert client.post(url, {"status": "cancelled"}).status_code == 302
    statuses = dict(Appointment.objects.values_list("pk", "status"))
    assert {statuses[a.pk] for a in in_a} == {"cancelled"}
    assert statuses[in_b.pk] == statuses[past.pk] == "booked"


def test_select_all_in_a_searched_list_deletes_what_it_lists_only(login, manager):
    from wagtail_clientdb.models import Service

    kept, deleted = Service.objects.create(name="Colour"), Service.objects.create(name="Haircut")
    listing = reverse(Service.snippet_viewset.get_url_name("list")) + "?q=Haircut"
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "service", "delete")) + "?" + urlencode(
        {"id": "all", "next": listing}
    )
    client = login(manager)
    assert [item["item"] for item in client.get(url).context["items"]] == [deleted]
    assert client.post(url).status_code == 302
    assert list(Service.objects.all()) == [kept]


def appointment_action_url(action, *appointments, listing=None):
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "appointment", action))
    if listing is not None:
        return url + "?" + urlencode({"id": "all", "next": listing})
    return url + "?" + urlencode([("id", appointment.pk) for appointment in appointments] + [("next", "/admin/")])


@pytest.mark.parametrize("action, data", [("change_status", {"status": "cancelled"}), ("delete", {})])
def test_select_all_of_more_appointments_than_an_action_takes_is_refused_and_changes_nothing(
    login, manager, branch_a, settings, action, data
):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "BULK_ACTION_MAX_OBJECTS": 3}
    customer = make_customer(first_name="Ann", shared_with_all_branches=True)
    appointments = [make_appointment(customer, branch_a, days=days) for days in (1, 2, 3, 4)]
    listing = reverse("wagtailsnippets_wagtail_clientdb_appointment:list") + f"?branch={branch_a.pk}"
    client = login(manager)
    for response in (client.get(appointment_action_url(action, listing=listing)),
                     client.post(appointment_action_url(action, listing=listing), data)):
        assert response.status_code == 302 and response.url == listing
    messages = [str(m) for m in client.get(listing).context["messages"]]
    assert any("more than 3 appointments" in message and "nothing was changed" in message for message in messages)
    assert list(Appointment.objects.order_by("pk").values_list("status", flat=True)) == ["booked"] * 4
    # Narrowed to as many as the action takes, the same "select all" goes ahead.
    appointments[-1].delete()
    assert client.get(appointment_action_url(action, listing=listing)).status_code == 200


def test_the_confirmation_of_an_appointment_action_asks_as_many_queries_for_many_as_for_few(login, manager, branch_a):
    customer = make_customer(first_name="Ann", shared_with_all_branches=True)
    appointments = [make_appointment(customer, branch_a, days=days, service=f"Service {days}") for days in range(1, 13)]
    client = login(manager)
    counts = []
    for chosen in (appointments[:2], appointments):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(appointment_action_url("change_status", *chosen))
        assert len(response.context["items"]) == len(chosen)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    # The delete confirmation links each appointment to its edit view, asked once for all of them.
    with CaptureQueriesContext(connection) as queries:
        response = client.get(appointment_action_url("delete", *appointments))
    assert sorted(item["edit_url"] for item in response.context["items"]) == sorted(
        reverse("wagtailsnippets_wagtail_clientdb_appointment:edit", args=[a.pk]) for a in appointments
    )
    assert len(queries) <= counts[0] + 2


def test_the_delete_confirmation_links_no_edit_view_for_a_user_who_may_delete_but_not_change(login, make_user, branch_a):
    from django.contrib.auth.models import Group

    from tests.conftest import STAFF_PERMISSIONS, permissions

    group = Group.objects.create(name="Cancellers")
    group.permissions.set(permissions([p for p in STAFF_PERMISSIONS if p != ("wagtail_clientdb", "change_appointment")]))
    user = make_user("canceller", groups=[group], branches=[branch_a])
    appointment = make_appointment(make_customer(first_name="Ann", shared_with_all_branches=True), branch_a)
    response = login(user).get(appointment_action_url("delete", appointment))
    assert [(item["item"], item["edit_url"]) for item in response.context["items"]] == [(appointment, None)]


def test_the_delete_confirmation_links_only_what_the_user_may_change(login, staff_a, branch_a, branch_b):
    customer = make_customer(first_name="Ann", shared_with_all_branches=True)
    mine, theirs = make_appointment(customer, branch_a), make_appointment(customer, branch_b)
    response = login(staff_a).get(appointment_action_url("delete", mine, theirs))
    # The other branch's appointment is not reached at all (the scope), so it is neither listed nor linked.
    assert [(item["item"], item["edit_url"]) for item in response.context["items"]] == [
        (mine, reverse("wagtailsnippets_wagtail_clientdb_appointment:edit", args=[mine.pk]))
    ]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL counts to a limit; SQLite counts them all")
def test_customers_left_alone_are_named_only_while_they_can_be_counted(login, staff_a, branch_a, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "LISTING_EXACT_COUNT_LIMIT": 3}
    make_customer(first_name="Own", last_name="Zahl", home_branch=branch_a)
    for n in range(5):
        make_customer(first_name=f"Shared{n}", last_name="Zahl", branches=[branch_a])
    context = login(staff_a).get(action_url("archive", listing=customer_url("list") + "?q=Zahl")).context
    assert context["no_access_summary"] == "more than 3 customers" and context["items_with_no_access"] == []
    assert context["items"] == ["Own Zahl"]


def test_the_footer_offers_each_user_the_actions_it_may_use(login, manager, staff_a, scope_customers):
    """Sharing is the head office's: branch staff are not offered it (their footer once listed it
    and the action then refused every customer). Every other action they may use on their own."""

    def offered(user):
        page = login(user).get(customer_url("list")).content.decode()
        footer = page.split("data-bulk-action-footer=")[1].split("</section>")[0]
        return {action for action in ACTIONS if f"/customer/{action}/" in footer}

    ACTIONS = ("add_tags", "remove_tags", "add_to_group", "remove_from_group", "archive", "restore", "share_with_branches", "delete", "merge", "export")
    assert offered(manager) == set(ACTIONS)
    assert offered(staff_a) == set(ACTIONS) - {"share_with_branches"}
    # The selection is counted as customers, in the user's language, not as Wagtail's "snippets".
    profile = UserProfile.get_for_user(staff_a)
    profile.preferred_language = "de"
    profile.save()
    page = login(staff_a).get(customer_url("list")).content.decode()
    strings = json.loads(page.split('id="clientdb-bulk-action-strings" type="application/json">')[1].split("</script>")[0])
    assert strings["PLURAL"] == "%(objects)s Kunden ausgewählt"


def test_a_refusal_says_why(login, staff_a, scope_customers):
    client = login(staff_a)
    chosen = [scope_customers[name] for name in ("global_all", "global_a", "local_a")]
    page = client.get(action_url("add_tags", *chosen))
    assert page.context["items"] == ["Lena Locala"]
    assert sorted(page.context["items_with_no_access"]) == ["Gerd Specifica", "Gloria Globalall"]
    assert "Customers shared with other branches are changed by the head office" in page.context["no_access_reason"]
    assert html.escape(page.context["no_access_reason"]) in page.content.decode()
    # Sharing reached by its address (the footer does not offer it) refuses them all, and says why.
    page = client.get(action_url("share_with_branches", *chosen))
    assert page.context["items_count"] == 0 and page.context["no_access_reason"] == "Only the head office shares customers with branches."
    # Nothing refused, nothing to explain.
    assert login(staff_a).get(action_url("add_tags", scope_customers["local_a"])).context["no_access_reason"] == ""
