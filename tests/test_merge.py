"""Merging customers and undoing a merge (issue #15), through the real admin URLs.

The side-by-side view chooses the surviving value per field; appointments, consent history,
local values, deletion requests and the online booking block move to the survivor; scope
becomes the union. Undo restores the merged-away customers exactly, unless a later change
makes that impossible, and then says which.
"""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import customer_url, make_appointment, make_customer, post_bulk, post_edit
from wagtail_clientdb import booking_blocks, deletion, merging, overrides, scope
from wagtail_clientdb.consent import record_consent
from wagtail_clientdb.models import (
    Appointment,
    AttributeDefinition,
    BranchBookings,
    ClientDBLogEntry,
    ConsentChannel,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerMerge,
    CustomerOverride,
    CustomerTag,
    DeletionRequest,
    DeletionStatus,
    OnlineBookingBlock,
)

# --- Helpers -----------------------------------------------------------------------------------------------


def merge_url(*customers):
    return customer_url("merge") + "?" + "&".join(f"id={customer.pk}" for customer in customers)


def merge_through_admin(client, customers, choose=None):
    """Open the side-by-side view, send the choices (the defaults, changed by ``choose``), review
    the confirmation and confirm, as a browser does. Returns (review page, final response)."""
    url = merge_url(*customers)
    page = client.get(url)
    assert page.status_code == 200, page.status_code
    form = page.context["form"]
    data = {name: form[name].value() for name in form.fields}
    for name, customer in (choose or {}).items():
        data[name] = customer.pk
    review = client.post(url, data)
    assert review.status_code == 200 and review.context["plan"] is not None
    final = client.post(url, {**data, "confirm": "1"})
    return review, final


def undo_url(merge):
    return customer_url("merge_undo", merge.pk)


def database_state():
    """Everything a merge touches, as rows (versions and change times left out: they move on)."""

    def rows(queryset, exclude=("version", "updated_at")):
        return [{k: v for k, v in row.items() if k not in exclude} for row in queryset.order_by("pk").values()]

    customers = Customer.objects.order_by("pk")
    return {
        "customers": rows(customers),
        "groups": sorted(Customer.groups.through.objects.values_list("customer_id", "customergroup_id")),
        "branches": sorted(Customer.branches.through.objects.values_list("customer_id", "branch_id")),
        "tags": [(c.pk, sorted(c.tags.names())) for c in customers],
        "local values": rows(CustomerOverride.objects.all()),
        "appointments": rows(Appointment.objects.all()),
        "consent events": rows(ConsentEvent.objects.all(), exclude=()),
        "deletion requests": rows(DeletionRequest.objects.all(), exclude=()),
        "bookings": sorted(BranchBookings.objects.values_list("customer_id", "branch_id", "count")),
        "blocks": rows(OnlineBookingBlock.objects.all(), exclude=()),
        "block branches": sorted(OnlineBookingBlock.branches.through.objects.values_list("onlinebookingblock_id", "branch_id")),
    }


# --- The scenario of the issue ---------------------------------------------------------------------------


@pytest.fixture
def colour(db):
    return AttributeDefinition.objects.create(label="Favourite colour", key="favourite_colour")


@pytest.fixture
def anna(db, branch_a, branch_b, manager, colour):
    """A global customer (all branches) with local values in B and appointments in A and B,
    and a duplicate local to A with its own appointments in A and B."""
    vip, newsletter = CustomerGroup.objects.create(name="VIP"), CustomerGroup.objects.create(name="Newsletter")
    global_anna = make_customer(
        first_name="Anna", last_name="Schmidt", email="anna@example.com", phone_raw="+49 170 1111111",
        notes="Allergic to latex", shared_with_all_branches=True, attributes={"favourite_colour": "blue"},
    )
    global_anna.groups.add(vip)
    global_anna.tags.add("regular")
    record_consent(global_anna, True, ConsentChannel.FORM)
    ConsentEvent.objects.filter(customer=global_anna).update(recorded_at=timezone.now() - datetime.timedelta(days=10))
    overrides.save_local_values(global_anna, branch_b, {"phone_raw": "+43 660 2222222", "notes": "Beta: pays cash"})
    local_anna = make_customer(
        first_name="Anna", last_name="Schmidt-Meier", email="anna.meier@example.com", phone_raw="+49 170 3333333",
        notes="Prefers mornings", home_branch=branch_a, external_id="EXT-7", attributes={"favourite_colour": "green"},
    )
    local_anna.groups.add(newsletter)
    local_anna.tags.add("new")
    record_consent(local_anna, True, ConsentChannel.FORM)
    record_consent(local_anna, False, ConsentChannel.ADMIN)  # the most recent decision of all
    appointments = {
        "global in B": make_appointment(global_anna, branch_b, days=2),
        "global in A, past": make_appointment(global_anna, branch_a, days=-20, status="completed"),
        "local in A": make_appointment(local_anna, branch_a, days=3),
        "local in B, cancelled": make_appointment(local_anna, branch_b, days=-5, status="cancelled"),
        "local in B": make_appointment(local_anna, branch_b, days=-2, status="completed"),
    }
    return global_anna, local_anna, appointments


def test_merging_a_global_customer_with_a_local_duplicate(login, manager, staff_a, staff_b, anna, branch_a, branch_b):
    global_anna, local_anna, appointments = anna
    version = global_anna.version
    client = login(manager)
    # The bulk action of the listing leads to the side-by-side view.
    bulk = client.get(
        reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "merge")) + f"?id={local_anna.pk}&id={global_anna.pk}"
    )
    assert bulk.status_code == 302 and bulk.url.startswith(customer_url("merge"))
    page = client.get(bulk.url)
    assert page.status_code == 200
    # The global customer is kept by default; both are shown side by side.
    assert page.context["form"]["survivor"].value() == global_anna.pk
    html = page.content.decode()
    assert "Schmidt-Meier" in html and "anna.meier@example.com" in html and "Allergic to latex" in html

    review, final = merge_through_admin(
        client, [local_anna, global_anna], {"field_last_name": local_anna, "field_external_id": local_anna}
    )
    assert "Alpha Salon" in review.content.decode()  # A keeps its own email and phone as local values
    assert final.status_code == 302 and final.url == customer_url("inspect", global_anna.pk)

    assert not Customer.objects.filter(pk=local_anna.pk).exists()
    survivor = Customer.objects.get(pk=global_anna.pk)
    assert (survivor.first_name, survivor.last_name, survivor.email, survivor.phone, survivor.external_id) == (
        "Anna", "Schmidt-Meier", "anna@example.com", "+491701111111", "EXT-7"
    )
    assert survivor.notes == "Allergic to latex\n\nPrefers mornings"
    assert survivor.marketing_consent is False  # the duplicate's withdrawal was the latest decision
    assert survivor.consent_events.count() == 3
    assert sorted(g.name for g in survivor.groups.all()) == ["Newsletter", "VIP"]
    assert sorted(survivor.tags.names()) == ["new", "regular"]
    assert survivor.attributes == {"favourite_colour": "blue"}
    assert survivor.shared_with_all_branches and survivor.home_branch is None
    assert survivor.version > version

    # A's local customer stopped being local: what A knew differently is A's local values now;
    # B's local values stay B's.
    local_a = CustomerOverride.objects.get(customer=survivor, branch=branch_a)
    assert (local_a.email, local_a.phone, local_a.first_name, local_a.last_name) == (
        "anna.meier@example.com", "+491703333333", None, None
    )
    assert local_a.attributes == {"favourite_colour": "green"}
    local_b = CustomerOverride.objects.get(customer=survivor, branch=branch_b)
    assert (local_b.phone, local_b.notes) == ("+436602222222", "Beta: pays cash")

    assert set(Appointment.objects.values_list("customer_id", flat=True)) == {survivor.pk}
    assert survivor.bookings_total == 4
    assert dict(BranchBookings.objects.filter(customer=survivor).values_list("branch_id", "count")) == {
        branch_a.pk: 2, branch_b.pk: 2
    }
    assert ClientDBLogEntry.objects.filter(action="wagtail_clientdb.merge", object_id=str(survivor.pk)).exists()
    history = client.get(customer_url("history", survivor.pk)).content.decode()
    assert f"Merged with customers #{local_anna.pk}" in history

    # Each branch sees the one customer with its own values.
    inspect_a = login(staff_a).get(customer_url("inspect", survivor.pk)).content.decode()
    assert "anna.meier@example.com" in inspect_a and "Beta: pays cash" not in inspect_a
    inspect_b = login(staff_b).get(customer_url("inspect", survivor.pk)).content.decode()
    assert "Beta: pays cash" in inspect_b and "anna.meier@example.com" not in inspect_b
    assert login(staff_a).get(customer_url("inspect", local_anna.pk)).status_code == 404


def test_undo_restores_everything_as_it_was(login, manager, anna):
    global_anna, local_anna, _appointments = anna
    before = database_state()
    client = login(manager)
    merge_through_admin(client, [global_anna, local_anna], {"field_last_name": local_anna, "field_external_id": local_anna})
    merge = CustomerMerge.objects.get()
    assert database_state() != before

    inspect = client.get(customer_url("inspect", global_anna.pk)).content.decode()
    assert "Merged customers" in inspect and "Undo merge" in inspect
    response = client.post(undo_url(merge))
    assert response.status_code == 302 and response.url == customer_url("inspect", global_anna.pk)

    assert database_state() == before
    restored = Customer.objects.get(pk=local_anna.pk)
    assert restored.version > local_anna.version  # an edit form opened before the merge is checked again
    merge.refresh_from_db()
    assert merge.undone_at is not None and merge.undone_by == manager
    assert "merged" not in merge.snapshot  # the values kept for the undo are gone with it
    assert ClientDBLogEntry.objects.filter(action="wagtail_clientdb.merge_undone", object_id=str(global_anna.pk)).exists()
    assert ClientDBLogEntry.objects.filter(action="wagtail_clientdb.merge_restored", object_id=str(local_anna.pk)).exists()
    # Undone once; not twice.
    client.post(undo_url(merge))
    assert database_state() == before


def test_undo_is_refused_after_a_conflicting_change_and_says_which(login, manager, anna):
    global_anna, local_anna, _appointments = anna
    client = login(manager)
    merge_through_admin(client, [global_anna, local_anna], {"field_last_name": local_anna})
    merge = CustomerMerge.objects.get()
    survivor = Customer.objects.get(pk=global_anna.pk)
    response = post_edit(
        client, survivor,
        {"first_name": "Anna", "last_name": "Meier", "email": survivor.email, "phone_raw": survivor.phone_raw,
         "notes": survivor.notes, "sharing": "all"},
    )
    assert response.status_code == 302
    after_change = database_state()

    inspect = client.get(customer_url("inspect", survivor.pk)).content.decode()
    assert "Cannot be undone" in inspect and "The last name of “Anna Meier” changed after the merge." in inspect
    response = client.post(undo_url(merge), follow=True)
    assert "This merge cannot be undone: The last name of “Anna Meier” changed after the merge." in response.content.decode()
    assert database_state() == after_change
    assert CustomerMerge.objects.get().undone_at is None


def test_a_change_of_a_field_the_merge_did_not_set_does_not_block_the_undo(login, manager, anna):
    global_anna, local_anna, _appointments = anna
    client = login(manager)
    merge_through_admin(client, [global_anna, local_anna])  # the survivor keeps its own names
    survivor = Customer.objects.get(pk=global_anna.pk)
    post_edit(
        client, survivor,
        {"first_name": "Annette", "last_name": "Schmidt", "email": survivor.email, "phone_raw": survivor.phone_raw,
         "notes": survivor.notes, "sharing": "all"},
    )
    merge = CustomerMerge.objects.get()
    assert merging.undo_blockers(merge) == []
    client.post(undo_url(merge))
    assert Customer.objects.get(pk=global_anna.pk).first_name == "Annette"  # the later change stays
    assert Customer.objects.filter(pk=local_anna.pk).exists()


@pytest.mark.parametrize(
    "change, expected",
    [
        ("delete appointment", "The appointment “Haircut” on"),
        ("move appointment", "was given to another customer"),
        ("external id taken", "The external ID “EXT-7” of “Anna Schmidt-Meier” now belongs to “Erika Other”."),
        ("email taken", "The email address “anna.meier@example.com” of “Anna Schmidt-Meier” is now used by “Erika Other” as well."),
        ("queued for deletion", "is queued for deletion: cancel the deletion request first."),
        ("expired", "A merge can be undone for 30 days; this one was on"),
        ("local values changed", "The local values of Alpha Salon for “Anna Schmidt” changed after the merge."),
        ("consent changed", "The marketing consent of “Anna Schmidt” changed after the merge."),
    ],
)
def test_undo_names_the_change_that_blocks_it(login, manager, anna, branch_a, branch_b, change, expected):
    global_anna, local_anna, appointments = anna
    client = login(manager)
    merge_through_admin(client, [global_anna, local_anna])
    merge = CustomerMerge.objects.get()
    survivor = Customer.objects.get(pk=global_anna.pk)
    if change == "delete appointment":
        Appointment.objects.filter(pk=appointments["local in B, cancelled"].pk).delete()
    elif change == "move appointment":
        other = make_customer(first_name="Erika", last_name="Other", shared_with_all_branches=True)
        Appointment.objects.filter(pk=appointments["local in A"].pk).update(customer=other)
    elif change in ("external id taken", "email taken"):
        # The survivor's external ID came from the duplicate; it gives it up, someone else takes it.
        survivor_fields = {"external_id": ""} if change == "external id taken" else {}
        Customer.objects.filter(pk=survivor.pk).update(**survivor_fields)
        merge.snapshot["survivor"]["after"].update(survivor_fields)
        merge.snapshot["survivor"]["before"].update(survivor_fields)
        merge.save()
        make_customer(
            first_name="Erika", last_name="Other", shared_with_all_branches=True,
            **({"external_id": "EXT-7"} if change == "external id taken" else {"email": "anna.meier@example.com"}),
        )
    elif change == "queued for deletion":
        deletion.request_deletion(scope.Viewer(manager, True), survivor)
    elif change == "expired":
        CustomerMerge.objects.filter(pk=merge.pk).update(merged_at=timezone.now() - datetime.timedelta(days=31))
    elif change == "local values changed":
        overrides.save_local_values(survivor, branch_a, {"first_name": "Anni"})
    elif change == "consent changed":
        record_consent(survivor, True, ConsentChannel.ADMIN)
    before = database_state()
    merge.refresh_from_db()
    blockers = merging.undo_blockers(merge, scope.Viewer(manager, True))
    assert blockers and any(expected in blocker for blocker in blockers), blockers
    response = client.post(undo_url(merge), follow=True)
    assert expected in response.content.decode().replace("&quot;", '"')
    assert database_state() == before


def test_undo_refused_after_sharing_changed(login, manager, branch_a, branch_b):
    first = make_customer(first_name="Paul", last_name="Lokal", home_branch=branch_a)
    second = make_customer(first_name="Paul", last_name="Lokal", email="paul@example.com", branches=[branch_a])
    client = login(manager)
    merge_through_admin(client, [first, second], {"survivor": first})
    survivor = Customer.objects.get(pk=first.pk)
    assert survivor.home_branch is None and list(survivor.branches.all()) == [branch_a]
    scope.share_with_more_branches([survivor], branches=[branch_b])
    merge = CustomerMerge.objects.get()
    assert merging.undo_blockers(merge) == ["The sharing of “Paul Lokal” changed after the merge."]


# --- Who may merge and undo -------------------------------------------------------------------------------


def test_branch_staff_merge_customers_local_to_their_branch(login, staff_a, branch_a):
    first = make_customer(first_name="Lea", last_name="Lang", email="lea@example.com", home_branch=branch_a)
    second = make_customer(first_name="Lea", last_name="Lang", phone_raw="0170 5555555", home_branch=branch_a)
    make_appointment(second, branch_a)
    client = login(staff_a)
    _review, final = merge_through_admin(client, [first, second], {"survivor": second, "field_email": first})
    assert final.status_code == 302
    survivor = Customer.objects.get()
    assert (survivor.pk, survivor.email, survivor.phone, survivor.home_branch) == (
        second.pk, "lea@example.com", "+491705555555", branch_a
    )
    assert not CustomerOverride.objects.exists()
    # Staff of the branch may undo their branch's merge.
    merge = CustomerMerge.objects.get()
    assert merge.local_branch == branch_a
    client.post(undo_url(merge))
    assert Customer.objects.count() == 2


def test_tags_named_in_other_cases_are_one_tag_on_the_survivor(login, staff_a, branch_a):
    """Tags named by the desk in one case and by a bulk action in another are one tag (the tag
    rule, wagtail_clientdb.tags): the survivor carries it once, and the undo gives it back."""
    first = make_customer(first_name="Lea", last_name="Lang", email="lea@example.com", home_branch=branch_a)
    second = make_customer(first_name="Lea", last_name="Lang", phone_raw="0170 5555555", home_branch=branch_a)
    client = login(staff_a)
    response = post_edit(
        client,
        first,
        {
            "first_name": "Lea",
            "last_name": "Lang",
            "email": "lea@example.com",
            "phone_raw": "",
            "notes": "",
            "tags": "Stammkunde",
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_tags")) + f"?id={second.pk}"
    post_bulk(client, bulk, {"tags": "STAMMKUNDE, neu"})
    review, final = merge_through_admin(client, [first, second], {"survivor": second})
    assert final.status_code == 302
    assert [value for label, value in review.context["summary"]["fields"] if label == "Tags"] == ["neu, Stammkunde"]
    assert sorted(Customer.objects.get().tags.names(), key=str.casefold) == ["neu", "Stammkunde"]
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True), key=str.casefold) == ["neu", "Stammkunde"]

    client.post(undo_url(CustomerMerge.objects.get()))
    assert list(Customer.objects.get(pk=first.pk).tags.names()) == ["Stammkunde"]


def test_branch_staff_do_not_merge_global_customers(login, staff_a, branch_a):
    local = make_customer(first_name="Lea", last_name="Lang", home_branch=branch_a)
    shared = make_customer(first_name="Lea", last_name="Lang", shared_with_all_branches=True)
    client = login(staff_a)
    response = client.get(merge_url(local, shared), follow=True)
    assert "You can merge only customers local to your branch" in response.content.decode()
    response = client.post(merge_url(local, shared), {"survivor": local.pk, "confirm": "1"})
    assert Customer.objects.count() == 2
    # The bulk action does not get round it either.
    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "merge")) + f"?id={local.pk}&id={shared.pk}"
    client.get(client.get(bulk).url)
    assert Customer.objects.count() == 2


def test_customers_the_viewer_cannot_see_answer_404(login, staff_a, staff_b, branch_a, branch_b):
    mine = make_customer(first_name="Lea", last_name="Lang", home_branch=branch_a)
    theirs = make_customer(first_name="Bea", last_name="Berg", home_branch=branch_b)
    client = login(staff_a)
    for method in (client.get, client.post):
        response = method(merge_url(mine, theirs))
        assert response.status_code == 404 and "Berg" not in response.content.decode()
    assert method(customer_url("merge") + "?id=all").status_code == 404
    assert Customer.objects.count() == 2


def test_undo_of_another_branch_s_merge_answers_404(login, manager, staff_a, staff_b, branch_a, branch_b):
    first = make_customer(first_name="Bea", last_name="Berg", home_branch=branch_b)
    second = make_customer(first_name="Bea", last_name="Berg", email="bea@example.com", home_branch=branch_b)
    merge_through_admin(login(staff_b), [first, second])
    merge = CustomerMerge.objects.get()
    assert login(staff_a).post(undo_url(merge)).status_code == 404
    assert Customer.objects.count() == 1
    # A head-office merge of global customers is not undone by branch staff either.
    g1 = make_customer(first_name="Gina", shared_with_all_branches=True)
    g2 = make_customer(first_name="Gina", email="gina@example.com", shared_with_all_branches=True)
    merge_through_admin(login(manager), [g1, g2])
    head_office_merge = CustomerMerge.objects.get(survivor=g1)
    client = login(staff_b)
    assert "Undo merge" not in client.get(customer_url("inspect", g1.pk)).content.decode()
    assert client.post(undo_url(head_office_merge)).status_code == 404


def test_manager_merges_two_branches_local_customers_into_a_global_one(login, manager, branch_a, branch_b):
    in_a = make_customer(first_name="Tom", last_name="Tal", email="tom@a.example", home_branch=branch_a)
    in_b = make_customer(first_name="Tom", last_name="Tal", email="tom@b.example", phone_raw="0170 7777777", home_branch=branch_b)
    merge_through_admin(login(manager), [in_a, in_b], {"survivor": in_a, "field_email": in_a})
    survivor = Customer.objects.get()
    assert survivor.home_branch is None and not survivor.shared_with_all_branches
    assert set(survivor.branches.all()) == {branch_a, branch_b}
    # Two branches' values for the same field both survive, each as its branch's local value.
    assert survivor.email == "tom@a.example"
    assert not CustomerOverride.objects.filter(branch=branch_a).exists()
    local_b = CustomerOverride.objects.get(branch=branch_b)
    assert local_b.email == "tom@b.example"
    client = login(manager)
    client.post(undo_url(CustomerMerge.objects.get()))
    assert Customer.objects.get(pk=in_b.pk).home_branch == branch_b
    assert Customer.objects.get(pk=in_a.pk).home_branch == branch_a
    assert not CustomerOverride.objects.exists()


def test_two_branches_local_values_of_the_same_field_both_survive(login, manager, branch_a, branch_b):
    first = make_customer(first_name="Ida", email="ida@example.com", shared_with_all_branches=True)
    second = make_customer(first_name="Ida", email="ida@example.org", shared_with_all_branches=True)
    overrides.save_local_values(first, branch_a, {"phone_raw": "0170 1000001"})
    overrides.save_local_values(second, branch_b, {"phone_raw": "0170 2000002"})
    merge_through_admin(login(manager), [first, second])
    phones = dict(CustomerOverride.objects.filter(customer=first).values_list("branch_id", "phone"))
    assert phones == {branch_a.pk: "+491701000001", branch_b.pk: "+491702000002"}


# --- What moves ------------------------------------------------------------------------------------------


def test_an_online_booking_block_carries_over_and_back(login, manager, branch_a):
    first = make_customer(first_name="Nora", email="nora@example.com", shared_with_all_branches=True)
    blocked = make_customer(first_name="Nora", email="nora.new@example.com", home_branch=branch_a)
    booking_blocks.block(blocked, reason="Three no-shows", branches=[branch_a], user=manager)
    before = database_state()
    client = login(manager)
    merge_through_admin(client, [first, blocked])
    block = OnlineBookingBlock.objects.get()
    assert block.customer_id == first.pk and block.reason == "Three no-shows" and list(block.branches.all()) == [branch_a]
    client.post(undo_url(CustomerMerge.objects.get()))
    assert database_state() == before


def test_closed_deletion_requests_move_and_open_ones_refuse_the_merge(login, manager, branch_a):
    first = make_customer(first_name="Olaf", shared_with_all_branches=True)
    second = make_customer(first_name="Olaf", email="olaf@example.com", shared_with_all_branches=True)
    make_appointment(second, branch_a)
    request = deletion.request_deletion(scope.Viewer(manager, True), second)
    assert request.status == DeletionStatus.BLOCKED
    client = login(manager)
    response = client.get(merge_url(first, second), follow=True)
    assert "Queued for deletion: “Olaf”" in response.content.decode()
    assert Customer.objects.count() == 2
    deletion.cancel(request)
    merge_through_admin(client, [first, second])
    request.refresh_from_db()
    assert request.customer_id == first.pk
    client.post(undo_url(CustomerMerge.objects.get()))
    request.refresh_from_db()
    assert request.customer_id == second.pk


def test_a_customer_changed_after_the_page_was_opened_is_not_merged(login, manager):
    first = make_customer(first_name="Uwe", shared_with_all_branches=True)
    second = make_customer(first_name="Uwe", email="uwe@example.com", shared_with_all_branches=True)
    client = login(manager)
    url = merge_url(first, second)
    form = client.get(url).context["form"]
    data = {name: form[name].value() for name in form.fields}
    second.last_name = "Changed"
    second.save()
    response = client.post(url, {**data, "confirm": "1"})
    assert response.status_code == 200
    assert "Changed since you opened this page: “Uwe Changed”" in response.content.decode()
    assert Customer.objects.count() == 2


def test_deleting_the_survivor_deletes_what_the_merge_kept(login, manager):
    first = make_customer(first_name="Vera", shared_with_all_branches=True)
    second = make_customer(first_name="Vera", email="vera@example.com", shared_with_all_branches=True)
    merge_through_admin(login(manager), [first, second])
    assert CustomerMerge.objects.exists()
    deletion.request_deletion(scope.Viewer(manager, True), Customer.objects.get())
    assert not Customer.objects.exists() and not CustomerMerge.objects.exists()
    # The history of the customer merged away keeps no name either.
    labels = set(ClientDBLogEntry.objects.filter(object_id=str(second.pk)).values_list("label", flat=True))
    assert labels == {f"Customer #{second.pk} (deleted)"}


def test_a_merge_into_a_customer_merged_away_later_is_undone_last(login, manager, branch_a):
    first = make_customer(first_name="Wim", shared_with_all_branches=True)
    second = make_customer(first_name="Wim", email="wim@example.com", shared_with_all_branches=True)
    third = make_customer(first_name="Wim", phone_raw="0170 8888888", shared_with_all_branches=True)
    overrides.save_local_values(second, branch_a, {"notes": "Alpha knows Wim"})
    before = database_state()
    client = login(manager)
    merge_through_admin(client, [first, second], {"survivor": first})
    earlier = CustomerMerge.objects.get()
    merge_through_admin(client, [third, first], {"survivor": third})
    later = CustomerMerge.objects.exclude(pk=earlier.pk).get()
    earlier.refresh_from_db()
    assert earlier.survivor is None
    assert "was merged into another customer" in merging.undo_blockers(earlier)[0]
    client.post(undo_url(later))
    earlier.refresh_from_db()
    assert earlier.survivor_id == first.pk and merging.undo_blockers(earlier) == []
    client.post(undo_url(earlier))
    assert database_state() == before


def test_expired_snapshots_are_forgotten(login, manager):
    first = make_customer(first_name="Xaver", shared_with_all_branches=True)
    second = make_customer(first_name="Xaver", email="xaver@example.com", shared_with_all_branches=True)
    merge_through_admin(login(manager), [first, second])
    assert merging.forget_expired_snapshots() == 0
    CustomerMerge.objects.update(merged_at=timezone.now() - datetime.timedelta(days=31))
    assert merging.forget_expired_snapshots() == 1
    merge = CustomerMerge.objects.get()
    assert "merged" not in merge.snapshot and merge.snapshot["names"]
    assert "can be undone for 30 days" in merging.undo_blockers(merge)[0]
