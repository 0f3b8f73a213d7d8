"""A sync learns what left its view (issue #12): customers deleted, merged into another, or no
longer shared with its branch, from ``customers/removed/`` — the customers a sync by
``updated_since`` cannot list any more. Through the real URLs with real tokens; each entry
point that removes a customer (the API, the admin's deletion and merge, the sharing form)."""

import datetime

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from django.urls import reverse

from tests.conftest import make_appointment, make_customer, make_service, post_bulk
from tests.test_api import Api
from tests.test_bulk_actions import action_url
from tests.test_merge import merge_through_admin, undo_url
from wagtail_clientdb import deletion, removals, scope
from wagtail_clientdb.models import Appointment, AppointmentRemoval, Customer, CustomerMerge, CustomerRemoval, DeletionStatus

REMOVED = "/customers/removed/"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


@pytest.fixture
def tokens(client, manager, staff_a, staff_b):
    return {"head office": Api(client, manager), "a": Api(client, staff_a), "b": Api(client, staff_b)}


def two_annas(kept_in, merged_in):
    """The same person twice, local to each branch: the customer a merge keeps, the one it merges away."""
    kept = make_customer(first_name="Anna", last_name="Berg", email="anna@example.com", home_branch=kept_in)
    merged = make_customer(first_name="Anna", last_name="Berg", email="anna.berg@example.com", home_branch=merged_in)
    return kept, merged


def removed(api, **params):
    response = api.get(REMOVED, params)
    assert response.status_code == 200, response.content
    return [(item["id"], item["reason"], item["merged_into"]) for item in response.json()["items"]]


def test_a_deleted_customer_is_removed_from_the_view_of_those_who_saw_it_only(tokens, scope_customers):
    local_a, everyone = scope_customers["local_a"], scope_customers["global_all"]
    assert tokens["a"].send("delete", f"/customers/{local_a.pk}/", None).json()["status"] == "done"
    assert tokens["head office"].send("delete", f"/customers/{everyone.pk}/", None).json()["status"] == "done"

    assert removed(tokens["a"]) == [(local_a.pk, "deleted", None), (everyone.pk, "deleted", None)]
    # Branch B never saw A's local customer: not even its number.
    assert removed(tokens["b"]) == [(everyone.pk, "deleted", None)]
    assert removed(tokens["head office"]) == [(local_a.pk, "deleted", None), (everyone.pk, "deleted", None)]
    # A manager asking as branch B sees what B saw.
    assert removed(tokens["head office"], branch="beta") == [(everyone.pk, "deleted", None)]


def test_a_customer_shared_with_specific_branches_is_listed_to_each_of_them_once(tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", branches=[branch_a, branch_b])
    assert tokens["head office"].send("delete", f"/customers/{shared.pk}/", None).json()["status"] == "done"
    for who in ("a", "b", "head office"):
        assert removed(tokens[who]) == [(shared.pk, "deleted", None)], who


def test_a_blocked_deletion_is_listed_when_the_customer_is_deleted(tokens, scope_customers, branch_a):
    customer = scope_customers["local_a"]
    appointment = make_appointment(customer, branch_a, days=2)
    assert tokens["a"].send("delete", f"/customers/{customer.pk}/", None).json()["status"] == "blocked"
    assert removed(tokens["a"]) == []

    appointment.start = appointment.end = timezone.now() - datetime.timedelta(hours=1)
    appointment.save()
    deletion.process_queue()
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert removed(tokens["a"]) == [(customer.pk, "deleted", None)]


def test_customers_deleted_by_a_bulk_action_in_the_admin_are_listed(client, login, staff_a, tokens, branch_a):
    customers = [make_customer(first_name=f"Del{n}", last_name="Queue", home_branch=branch_a) for n in range(3)]
    post_bulk(login(staff_a), action_url("delete", *customers))
    assert not Customer.objects.filter(last_name="Queue").exists()
    assert sorted(removed(tokens["a"])) == [(customer.pk, "deleted", None) for customer in customers]
    assert removed(tokens["b"]) == []


def test_a_merged_customer_names_the_customer_it_lives_on_as(client, login, manager, tokens, branch_a):
    kept, merged = two_annas(branch_a, branch_a)
    login(manager)
    merge_through_admin(client, [kept, merged])
    assert removed(tokens["a"]) == [(merged.pk, "merged", kept.pk)]
    assert removed(tokens["b"]) == []


def test_a_branch_that_no_longer_sees_a_customer_is_told_and_others_are_not(tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", branches=[branch_a, branch_b])
    before = timezone.now()
    customer = Customer.objects.get(pk=shared.pk)
    scope.set_sharing(customer, all_branches=False, branches=[branch_a])

    assert removed(tokens["b"]) == [(shared.pk, "unshared", None)]
    assert removed(tokens["a"]) == []
    # The customer still exists: the head office's own view lost nothing.
    assert removed(tokens["head office"]) == []

    # Shared with B again, it is back in B's sync as a change after its removal.
    scope.set_sharing(customer, all_branches=False, branches=[branch_a, branch_b])
    changed = tokens["b"].get("/customers/", {"updated_since": before.isoformat()}).json()["items"]
    (item,) = [item for item in changed if item["id"] == shared.pk]
    removed_at = tokens["b"].get(REMOVED).json()["items"][0]["removed_at"]
    assert datetime.datetime.fromisoformat(item["updated_at"]) >= datetime.datetime.fromisoformat(removed_at)


def test_narrowing_through_the_api_is_listed_too(tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", branches=[branch_a, branch_b])
    version = tokens["head office"].get(f"/customers/{shared.pk}/")["ETag"]
    response = tokens["head office"].send("patch", f"/customers/{shared.pk}/", {"branches": ["alpha"]}, {"If-Match": version})
    assert response.status_code == 200, response.content
    assert removed(tokens["b"]) == [(shared.pk, "unshared", None)]


def test_undoing_a_merge_tells_the_branches_that_saw_the_survivor_only_through_it(client, login, manager, tokens, branch_a, branch_b):
    kept, merged = two_annas(branch_a, branch_b)
    login(manager)
    merge_through_admin(client, [kept, merged])
    assert removed(tokens["b"]) == [(merged.pk, "merged", kept.pk)]
    assert {branch.slug for branch in Customer.objects.get(pk=kept.pk).branches.all()} == {"alpha", "beta"}

    client.post(undo_url(CustomerMerge.objects.get()))
    assert Customer.objects.filter(pk=merged.pk).exists()
    assert removed(tokens["b"]) == [(merged.pk, "merged", kept.pk), (kept.pk, "unshared", None)]
    assert removed(tokens["a"]) == []


def test_since_leaves_out_older_removals_and_a_bad_since_is_a_field_error(tokens, scope_customers):
    first, second = scope_customers["local_a"], scope_customers["global_a"]
    tokens["a"].send("delete", f"/customers/{first.pk}/", None)
    CustomerRemoval.objects.update(removed_at=timezone.now() - datetime.timedelta(days=2))
    tokens["head office"].send("delete", f"/customers/{second.pk}/", None)

    since = (timezone.now() - datetime.timedelta(days=1)).isoformat()
    assert removed(tokens["a"], since=since) == [(second.pk, "deleted", None)]
    response = tokens["a"].get(REMOVED, {"since": "yesterday"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "since"]


def test_removals_are_forgotten_after_the_days_kept(tokens, scope_customers):
    tokens["a"].send("delete", f"/customers/{scope_customers['local_a'].pk}/", None)
    CustomerRemoval.objects.update(removed_at=timezone.now() - datetime.timedelta(days=91))
    call_command("clientdb_delete_expired_files", verbosity=0)
    assert removed(tokens["a"]) == []
    assert CustomerRemoval.objects.count() == 0


def test_entries_keep_no_personal_data(tokens, scope_customers):
    tokens["a"].send("delete", f"/customers/{scope_customers['local_a'].pk}/", None)
    fields = {field.name for field in CustomerRemoval._meta.get_fields()}
    assert fields == {"id", "customer_number", "reason", "merged_into", "branch", "shared_with_all_branches", "removed_at"}
    assert removals.removed_from_view(None).count() == 1


def test_editors_without_customer_permissions_get_403(api_editor_token):
    assert api_editor_token.get(REMOVED).status_code == 403


@pytest.fixture
def api_editor_token(client, editor):
    return Api(client, editor)


def test_the_queue_is_not_a_way_round_the_feed(tokens, scope_customers):
    """A cancelled request removes nothing: the customer was never deleted."""
    customer = scope_customers["local_a"]
    make_appointment(customer, customer.home_branch, days=2)
    tokens["a"].send("delete", f"/customers/{customer.pk}/", None)
    request = customer.deletion_requests.get()
    assert request.status == DeletionStatus.BLOCKED
    deletion.cancel(request)
    assert removed(tokens["a"]) == []


def test_an_import_that_shares_with_fewer_branches_tells_the_branch_left_out(tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", email="sina@example.com", branches=[branch_a, branch_b])
    response = tokens["head office"].send("post", "/customers/bulk/", {"customers": [{"email": "sina@example.com", "branches": ["alpha"]}]})
    assert response.json()["updated"] == 1, response.content
    assert removed(tokens["b"]) == [(shared.pk, "unshared", None)]
    assert removed(tokens["a"]) == []


def test_rolling_back_an_import_that_shared_a_customer_tells_the_branch_it_shared_with(tokens, branch_a, branch_b):
    only_a = make_customer(first_name="Olga", last_name="Only", email="olga@example.com", branches=[branch_a])
    answer = tokens["head office"].send(
        "post", "/customers/bulk/", {"customers": [{"email": "olga@example.com", "branches": ["alpha", "beta"]}]}
    ).json()
    assert removed(tokens["b"]) == []
    response = tokens["head office"].send("post", f"/customers/bulk/{answer['batch']}/rollback/", None)
    assert response.status_code == 200, response.content
    assert {branch.slug for branch in Customer.objects.get(pk=only_a.pk).branches.all()} == {"alpha"}
    assert removed(tokens["b"]) == [(only_a.pk, "unshared", None)]


def changed_appointments(api, since):
    response = api.get("/appointments/", {"updated_since": since.isoformat()})
    assert response.status_code == 200, response.content
    return {item["id"]: item["customer_id"] for item in response.json()["items"]}


def test_appointments_of_a_deleted_customer_are_changed_for_a_sync(tokens, scope_customers, branch_a):
    customer = scope_customers["local_a"]
    past = make_appointment(customer, branch_a, days=-30, status="completed")
    since = timezone.now()
    assert changed_appointments(tokens["a"], since) == {}
    tokens["a"].send("delete", f"/customers/{customer.pk}/", None)
    # Its notes and answers were cleared and it has no customer now: a copy must learn that.
    assert changed_appointments(tokens["a"], since) == {past.pk: None}


def test_appointments_moved_by_a_merge_and_back_by_its_undo_are_changed_for_a_sync(client, login, manager, tokens, branch_a):
    kept, merged = two_annas(branch_a, branch_a)
    appointment = make_appointment(merged, branch_a, days=-3, status="completed")
    since = timezone.now()
    login(manager)
    merge_through_admin(client, [kept, merged])
    assert changed_appointments(tokens["a"], since) == {appointment.pk: kept.pk}

    since = timezone.now()
    client.post(undo_url(CustomerMerge.objects.get()))
    assert changed_appointments(tokens["a"], since) == {appointment.pk: merged.pk}


def test_a_blocked_deletion_is_a_removal_for_the_branches_that_stop_seeing_the_customer(tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", branches=[branch_a, branch_b])
    make_appointment(shared, branch_a, days=2)
    assert tokens["head office"].send("delete", f"/customers/{shared.pk}/", None).json()["status"] == "blocked"
    # Beta no longer sees the customer; Alpha, with the appointment, does.
    assert tokens["b"].get(f"/customers/{shared.pk}/").status_code == 404
    assert removed(tokens["b"]) == [(shared.pk, "deletion_queued", None)]
    assert removed(tokens["a"]) == []

    # The request cancelled, the customer is back in Beta's sync as a change.
    since = timezone.now()
    deletion.cancel(shared.deletion_requests.get())
    changed = tokens["b"].get("/customers/", {"updated_since": since.isoformat()}).json()["items"]
    assert [item["id"] for item in changed] == [shared.pk]


def test_a_branch_whose_appointment_no_longer_blocks_stops_seeing_the_customer_and_is_told(tokens, branch_a, branch_b):
    everyone = make_customer(first_name="Gloria", last_name="Global", shared_with_all_branches=True)
    in_a = make_appointment(everyone, branch_a, days=2)
    make_appointment(everyone, branch_b, days=3)
    tokens["head office"].send("delete", f"/customers/{everyone.pk}/", None)
    assert removed(tokens["a"]) == removed(tokens["b"]) == []

    in_a.status = "cancelled"
    in_a.save()
    deletion.process_queue()
    assert removed(tokens["a"]) == [(everyone.pk, "deletion_queued", None)]
    assert removed(tokens["b"]) == []


def test_a_deletion_requested_in_bulk_and_blocked_is_a_removal_too(client, login, manager, tokens, branch_a, branch_b):
    shared = make_customer(first_name="Sina", last_name="Shared", branches=[branch_a, branch_b])
    make_appointment(shared, branch_b, days=2)
    post_bulk(login(manager), action_url("delete", shared))
    assert shared.deletion_requests.get().status == DeletionStatus.BLOCKED
    assert removed(tokens["a"]) == [(shared.pk, "deletion_queued", None)]
    assert removed(tokens["b"]) == []


def test_customers_a_merge_undo_brings_back_are_changes_for_a_sync(client, login, manager, tokens, branch_a):
    kept, merged = two_annas(branch_a, branch_a)
    login(manager)
    merge_through_admin(client, [kept, merged])
    since = timezone.now()
    client.post(undo_url(CustomerMerge.objects.get()))
    changed = {item["id"] for item in tokens["a"].get("/customers/", {"updated_since": since.isoformat()}).json()["items"]}
    assert merged.pk in changed


# --- Appointments ---------------------------------------------------------------------------------------


APPOINTMENTS_REMOVED = "/appointments/removed/"


def appointment_url(name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_appointment:{name}", args=args)


def removed_appointments(api, **params):
    response = api.get(APPOINTMENTS_REMOVED, params)
    assert response.status_code == 200, response.content
    return [(item["id"], item["reason"]) for item in response.json()["items"]]


def test_an_appointment_deleted_in_the_admin_is_removed_from_its_branch_s_copy(tokens, login, staff_a, scope_customers, branch_a):
    """A till that keeps Alpha's appointments learned of new and changed ones only: one deleted
    stayed in its copy for good."""
    appointment = make_appointment(scope_customers["local_a"], branch_a)
    number = appointment.pk
    response = login(staff_a).post(appointment_url("delete", number))
    assert response.status_code == 302 and not Appointment.objects.filter(pk=number).exists()
    assert removed_appointments(tokens["a"]) == [(number, "deleted")]
    assert removed_appointments(tokens["b"]) == []
    assert removed_appointments(tokens["head office"]) == [(number, "deleted")]


def test_appointments_deleted_by_the_admin_s_bulk_action_are_each_removed(tokens, login, manager, scope_customers, branch_a, branch_b):
    mine = make_appointment(scope_customers["global_all"], branch_a)
    theirs = make_appointment(scope_customers["global_all"], branch_b, days=2)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "appointment", "delete")) + f"?id={mine.pk}&id={theirs.pk}"
    assert login(manager).post(url).status_code == 302
    assert not Appointment.objects.exists()
    assert removed_appointments(tokens["a"]) == [(mine.pk, "deleted")]
    assert removed_appointments(tokens["b"]) == [(theirs.pk, "deleted")]


def test_an_appointment_moved_to_another_branch_leaves_the_first_branch_s_copy(tokens, login, manager, scope_customers, branch_a, branch_b):
    appointment = make_appointment(scope_customers["global_all"], branch_a, service="Cut")
    make_service("Cut", branch_b)
    since = timezone.now()
    client = login(manager)
    form = client.get(appointment_url("edit", appointment.pk)).context["form"]
    data = {name: form[name].value() for name in ("customer", "service", "status")}
    shown = {name: form[name].as_widget().split('value="')[1].split('"')[0] for name in ("start", "end")}
    response = client.post(appointment_url("edit", appointment.pk), {**data, **shown, "branch": branch_b.pk})
    assert response.status_code == 302, response.context["form"].errors
    assert removed_appointments(tokens["a"]) == [(appointment.pk, "moved")]
    # Beta's copy finds it among its changes; the company's copy keeps it.
    changed = tokens["b"].get("/appointments/", {"updated_since": since.isoformat()}).json()["items"]
    assert [item["id"] for item in changed] == [appointment.pk]
    assert removed_appointments(tokens["b"]) == removed_appointments(tokens["head office"]) == []
    # A change that keeps the branch tells nobody.
    Appointment.objects.get(pk=appointment.pk).save()
    assert removed_appointments(tokens["a"]) == [(appointment.pk, "moved")]


def test_appointment_entries_hold_no_customer_and_are_forgotten_after_the_days_kept(tokens, scope_customers, branch_a):
    appointment = make_appointment(scope_customers["local_a"], branch_a)
    appointment.delete()
    assert {field.name for field in AppointmentRemoval._meta.get_fields()} == {"id", "appointment_number", "reason", "branch", "removed_at"}
    later = (AppointmentRemoval.objects.get().removed_at + datetime.timedelta(seconds=1)).isoformat()
    assert removed_appointments(tokens["a"], since=later) == []
    AppointmentRemoval.objects.update(removed_at=timezone.now() - datetime.timedelta(days=91))
    call_command("clientdb_delete_expired_files", verbosity=0)
    assert not AppointmentRemoval.objects.exists()
