"""The Client DB API on Wagtail's API v3, through the real URLs with real bearer tokens."""

import datetime
import gc
import json

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from wagtail.models import APIToken

from tests.conftest import make_appointment, make_customer, make_service
from wagtail_clientdb import overrides
from wagtail_clientdb.models import (
    Appointment,
    AttributeDefinition,
    ClientDBLogEntry,
    Customer,
    CustomerGroup,
    CustomerOverride,
    CustomerTag,
    DeletionRequest,
)

API = "/api/v3/clientdb"


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


class Api:
    """A client that speaks to the API with one user's bearer token."""

    def __init__(self, client, user):
        self.client = client
        _token, self.secret = APIToken.create_token(user=user, name=f"{user.username} token")

    def headers(self, extra=None):
        return {"Authorization": f"Bearer {self.secret}", **(extra or {})}

    def get(self, path, params=None):
        return self.client.get(API + path, params or {}, headers=self.headers())

    def send(self, method, path, data, headers=None, params=""):
        return getattr(self.client, method)(
            API + path + params, json.dumps(data, default=str), content_type="application/json", headers=self.headers(headers)
        )


@pytest.fixture
def api(client):
    return lambda user: Api(client, user)


@pytest.fixture
def world(scope_customers, branch_a, branch_b):
    CustomerGroup.objects.create(name="VIP")
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])
    scope_customers["local_b"].tags.add("b-only")
    return scope_customers


def ids(response):
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


# --- Authentication and scope ----------------------------------------------------------------------------


def test_requests_need_a_token_and_sessions_do_not_count(client, login, manager, world):
    assert client.get(API + "/customers/").status_code == 401
    login(manager)
    assert client.get(API + "/customers/").status_code == 401
    assert client.get(API + "/customers/", headers={"Authorization": "Bearer wagtail_forged"}).status_code == 401


def test_each_token_sees_exactly_its_users_customers(api, manager, staff_a, staff_b, editor, world):
    expected = {
        manager: {"global_all", "global_a", "local_a", "local_b"},
        staff_a: {"global_all", "global_a", "local_a"},
        staff_b: {"global_all", "local_b"},
    }
    for user, names in expected.items():
        assert ids(api(user).get("/customers/")) == {world[name].pk for name in names}
    assert api(editor).get("/customers/").status_code == 403


def test_a_branch_token_gets_404_for_another_branchs_customer_and_search_never_finds_it(api, staff_a, world):
    local_b = world["local_b"]
    client = api(staff_a)
    for method, path, data in [
        ("get", f"/customers/{local_b.pk}/", None),
        ("patch", f"/customers/{local_b.pk}/", {"notes": "x"}),
        ("delete", f"/customers/{local_b.pk}/", None),
    ]:
        response = client.get(path) if method == "get" else client.send(method, path, data, {"If-Match": '"1.0"'})
        assert response.status_code == 404, (method, response.content)
        assert "Localb" not in response.content.decode()
    for params in ({"q": "Lars"}, {"q": "lars@example.com"}, {"tag": "b-only"}):
        assert local_b.pk not in ids(client.get("/customers/", params))
    local_b.refresh_from_db()
    assert local_b.notes == "" and not DeletionRequest.objects.exists()


def test_a_token_in_several_branches_chooses_one_of_its_own(api, make_user, staff_group, branch_a, branch_b, world):
    both = make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    client = api(both)
    response = client.get("/customers/")
    assert response.status_code == 422 and "alpha, beta" in response.content.decode()
    assert world["local_b"].pk in ids(client.get("/customers/", {"branch": "beta"}))
    assert world["local_b"].pk not in ids(client.get("/customers/", {"branch": "alpha"}))
    make_user("other", groups=[staff_group], branches=[branch_a])
    assert api(make_user("alpha_only", groups=[staff_group], branches=[branch_a])).get("/customers/", {"branch": "beta"}).status_code == 422


def test_branch_tokens_see_their_branchs_local_values(api, staff_a, staff_b, world, branch_a, allow_branch_edits):
    from wagtail_clientdb import overrides

    overrides.save_local_values(world["global_all"], branch_a, {"notes": "A's note"})
    row_a = api(staff_a).get(f"/customers/{world['global_all'].pk}/").json()
    row_b = api(staff_b).get(f"/customers/{world['global_all'].pk}/").json()
    assert (row_a["notes"], row_a["local_fields"]) == ("A's note", ["notes"])
    assert (row_b["notes"], row_b["local_fields"]) == ("", [])


def test_a_branch_s_local_change_is_an_update_for_the_branch_only(api, staff_a, staff_b, manager, world, branch_a, allow_branch_edits):
    """A sync by ``updated_since`` meets what changed of the customer as its branch sees it: its
    own local values changed, or dropped; other branches and the head office see no change."""
    from wagtail_clientdb import overrides

    customer = world["global_all"]
    since = timezone.now()
    Customer.objects.filter(pk=customer.pk).update(updated_at=since - datetime.timedelta(hours=1))

    def synced(user):
        client = api(user)
        return ids(client.get("/customers/", {"updated_since": since.isoformat()})), client.get(f"/customers/{customer.pk}/").json()["updated_at"]

    before = {user: synced(user)[1] for user in (staff_a, staff_b, manager)}
    overrides.save_local_values(customer, branch_a, {"notes": "A's note"})
    changed, updated_at = synced(staff_a)
    assert customer.pk in changed and updated_at > before[staff_a]
    assert synced(staff_b) == (set(), before[staff_b]) and synced(manager) == (set(), before[manager])
    # Dropping the local values is a change for the branch too (none are left to date it).
    Customer.objects.filter(pk=customer.pk).update(updated_at=since - datetime.timedelta(hours=1))
    CustomerOverride.objects.filter(customer=customer).update(updated_at=since - datetime.timedelta(hours=1))
    assert customer.pk not in synced(staff_a)[0]
    overrides.reset_to_global(customer, branch_a, ["notes"])
    assert customer.pk in synced(staff_a)[0] and not CustomerOverride.objects.filter(customer=customer).exists()


# --- Listing filters and reading ---------------------------------------------------------------------------


def test_filters_search_and_pagination(api, manager, world, branch_a):
    anna = make_customer(first_name="Anna", email="anna@example.com", phone_raw="+49 170 1234567", marketing_consent=True, attributes={"hair": "fine"}, shared_with_all_branches=True)
    anna.groups.add(CustomerGroup.objects.get(name="VIP"))
    anna.tags.add("regular")
    client = api(manager)
    assert ids(client.get("/customers/", {"q": "0170 1234567"})) == {anna.pk}
    assert ids(client.get("/customers/", {"tag": "regular"})) == {anna.pk}
    assert ids(client.get("/customers/", {"group": "vip"})) == {anna.pk}
    assert ids(client.get("/customers/", {"consent": "true"})) == {anna.pk}
    assert ids(client.get("/customers/", {"attribute": "hair:FINE"})) == {anna.pk}
    assert client.get("/customers/", {"attribute": "eyes:blue"}).status_code == 422
    later = timezone.now()
    Customer.objects.filter(pk=world["local_a"].pk).update(updated_at=later + datetime.timedelta(seconds=1))
    assert ids(client.get("/customers/", {"updated_since": later.isoformat()})) == {world["local_a"].pk}
    assert ids(client.get("/customers/", {"branch": "alpha"})) == {anna.pk, *(world[n].pk for n in ("global_all", "global_a", "local_a"))}
    assert client.get("/customers/", {"branch": "nowhere"}).json()["errors"][0]["loc"] == ["query", "branch"]
    page = client.get("/customers/", {"limit": 2, "offset": 1}).json()
    assert page["count"] == 5 and len(page["items"]) == 2
    assert client.get("/customers/", {"limit": 100000}).status_code == 400


def test_a_search_lists_last_names_starting_with_it_first_as_the_admin_does(api, manager):
    aschmann = make_customer(first_name="Zoe", last_name="Aschmann", shared_with_all_branches=True)
    schmidt = make_customer(first_name="Anna", last_name="Schmidt", shared_with_all_branches=True)
    items = api(manager).get("/customers/", {"q": "schm"}).json()["items"]
    assert [item["id"] for item in items] == [schmidt.pk, aschmann.pk]


def test_listing_takes_the_same_number_of_queries_for_more_customers(api, manager, world):
    client = api(manager)

    def add_customers(number):
        for n in range(number):
            customer = make_customer(first_name=f"Many{n}", shared_with_all_branches=True)
            customer.tags.add(f"t{n}")
            customer.groups.add(CustomerGroup.objects.get(name="VIP"))

    add_customers(1)
    client.get("/customers/")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as few:
        assert len(ids(client.get("/customers/", {"limit": 20}))) < 20
    add_customers(19)
    with CaptureQueriesContext(connection) as many:
        assert len(ids(client.get("/customers/", {"limit": 20}))) == 20
    assert len(many) == len(few)


def test_read_shows_attributes_groups_tags_scope_and_consent_history(api, manager, world, branch_a):
    from wagtail_clientdb.consent import record_consent

    customer = world["global_a"]
    record_consent(customer, True, "admin", manager)
    response = api(manager).get(f"/customers/{customer.pk}/")
    body = response.json()
    assert body["scope"] == {"kind": "specific_branches", "branches": ["alpha"]}
    assert body["consent_history"][0]["channel"] == "admin"
    assert response["ETag"] == f'"{body["version"]}"'


# --- Writing --------------------------------------------------------------------------------------------------


def test_create_validates_and_scopes_like_the_admin(api, manager, staff_a, world, branch_a):
    response = api(staff_a).send("post", "/customers/", {
        "first_name": "Neo", "email": "NEO@Example.com", "phone": "0170 9990001", "attributes": {"hair": "Thick"},
        "groups": ["VIP"], "tags": ["new", "from api"], "marketing_consent": True,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    customer = Customer.objects.get(pk=body["id"])
    assert (customer.email, customer.phone, customer.attributes, customer.home_branch, customer.source) == (
        "neo@example.com", "+491709990001", {"hair": "thick"}, branch_a, "api",
    )
    assert sorted(customer.tags.names()) == ["from api", "new"] and customer.marketing_consent
    assert ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action="wagtail_clientdb.create_via_api").exists()

    response = api(manager).send("post", "/customers/", {"first_name": "Global", "shared_with_all_branches": True, "external_id": "X-1"})
    assert response.status_code == 201 and response.json()["scope"]["kind"] == "all_branches"

    # A manager's new customer is shared with all branches or some: one no branch sees is refused,
    # with the same rule (and words) as the admin's form.
    before = Customer.objects.count()
    response = api(manager).send("post", "/customers/", {"first_name": "Nobody"})
    assert response.status_code == 422 and "Choose the branches that should see the new customer" in response.content.decode()
    assert Customer.objects.count() == before
    response = api(manager).send("post", "/customers/", {"first_name": "Alpha only", "branches": ["alpha"]})
    assert response.status_code == 201 and response.json()["scope"] == {"kind": "specific_branches", "branches": ["alpha"]}


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"first_name": "X", "source": "import"}, "source"),
        ({"first_name": "X", "id": 5}, "id"),
        ({"first_name": "X", "external_id": "E-1"}, "external_id"),
        ({"first_name": "X", "shared_with_all_branches": True}, "shared_with_all_branches"),
        ({"first_name": "X", "branches": ["beta"]}, "branches"),
        ({"first_name": "X", "email": "not-an-email"}, "email"),
        ({"first_name": "X", "phone": "call me"}, "phone"),
        ({"first_name": "X", "attributes": {"hair": "green"}}, "hair"),
        ({"first_name": "X", "groups": ["Nope"]}, "groups"),
        ({"first_name": "X\x00"}, "first_name"),
        ({"first_name": "X", "tags": ["a\x00"]}, "tags"),
        ({"first_name": "X", "attributes": {"hair": "fine\x00"}}, "attributes"),
    ],
)
def test_mass_assignment_and_bad_values_are_field_errors(api, staff_a, world, payload, field):
    before = Customer.objects.count()
    response = api(staff_a).send("post", "/customers/", payload)
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    # Our own checks locate a field as django-ninja's do.
    assert any(error["loc"][:2] == ["body", "payload"] and field in error["loc"] for error in response.json()["errors"]), response.json()
    assert Customer.objects.count() == before


@pytest.mark.parametrize("path", ["/customers/", "/appointments/"])
def test_a_null_character_in_a_query_is_a_field_error_not_a_server_error(api, manager, world, path):
    response = api(manager).get(path, {"branch": "al\x00pha", "q": "x"})
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"] == ["query", "branch"]
    assert response.json()["errors"][0]["msg"] == "Null characters are not allowed."


def test_updates_need_the_version_and_a_stale_one_is_412(api, manager, world):
    customer = world["global_all"]
    client = api(manager)
    read = client.get(f"/customers/{customer.pk}/")
    assert client.send("patch", f"/customers/{customer.pk}/", {"notes": "x"}).status_code == 428
    response = client.send("patch", f"/customers/{customer.pk}/", {"notes": "First"}, {"If-Match": read["ETag"]})
    assert response.status_code == 200, response.content
    assert response.json()["notes"] == "First"
    stale = client.send("patch", f"/customers/{customer.pk}/", {"notes": "Second"}, {"If-Match": read["ETag"]})
    assert stale.status_code == 412
    # "Any version" is the blind overwrite the header prevents: asked for the version instead.
    assert client.send("patch", f"/customers/{customer.pk}/", {"notes": "Third"}, {"If-Match": "*"}).status_code == 428
    customer.refresh_from_db()
    assert customer.notes == "First"
    assert ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action="wagtail_clientdb.edit_via_api").exists()


def test_if_match_is_a_list_of_etags_any_of_which_may_match(api, manager, world):
    """RFC 9110: If-Match lists ETags; a proxy's weak form and the body's bare version count too.
    A header that is no list of ETags is the caller's mistake (422), not a stale version (412)."""
    customer = world["global_all"]
    client = api(manager)
    path = f"/customers/{customer.pk}/"
    version = client.get(path).json()["version"]
    response = client.send("patch", path, {"notes": "Listed"}, {"If-Match": f'"0.0", "{version}"'})
    assert response.status_code == 200, response.content
    for given in (f'W/"{response.json()["version"]}"', None):
        version = client.get(path).json()["version"]
        response = client.send("patch", path, {"notes": f"As {given}"}, {"If-Match": given or version})
        assert response.status_code == 200, (given, response.content)
    assert client.send("patch", path, {"notes": "Stale"}, {"If-Match": '"0.0", "1.1"'}).status_code == 412
    for malformed in ('"unclosed', 'a b', '"1.0", *', '"a"b"'):
        with translation.override("de"):
            response = client.send("patch", path, {"notes": "Malformed"}, {"If-Match": malformed})
        assert response.status_code == 422, (malformed, response.content)
        assert response.json()["errors"][0]["loc"] == ["header", "If-Match"]
        assert "ETag" in response.json()["errors"][0]["msg"] and "keine" in response.json()["errors"][0]["msg"]
    customer.refresh_from_db()
    assert customer.notes == "As None"


def test_an_appointments_if_match_may_list_versions(api, manager, world, branch_a):
    appointment = make_appointment(world["local_a"], branch_a, days=-1)
    client = api(manager)
    etag = client.get(f"/appointments/{appointment.pk}/")["ETag"]
    response = client.send("patch", f"/appointments/{appointment.pk}/", {"status": "no_show"}, {"If-Match": f'"1", {etag}'})
    assert response.status_code == 200, response.content
    assert client.send("patch", f"/appointments/{appointment.pk}/", {"status": "completed"}, {"If-Match": f'"1", {etag}'}).status_code == 412


def test_the_head_office_changes_a_customer_read_as_a_branch_sees_it(api, manager, world, branch_a):
    customer = world["global_all"]
    overrides.save_local_values(customer, branch_a, {"notes": "Alpha's note"})
    client = api(manager)
    read = client.get(f"/customers/{customer.pk}/", {"branch": "alpha"})
    assert read.json()["notes"] == "Alpha's note"
    response = client.send("patch", f"/customers/{customer.pk}/", {"email": "gloria.new@example.com"}, {"If-Match": read["ETag"]}, "?branch=alpha")
    assert response.status_code == 200, response.content
    customer.refresh_from_db()
    assert customer.email == "gloria.new@example.com"


def test_a_branch_token_changes_a_global_customer_as_local_values_only(api, staff_a, world, branch_a, allow_branch_edits):
    customer = world["global_all"]
    client = api(staff_a)
    etag = client.get(f"/customers/{customer.pk}/")["ETag"]
    response = client.send("patch", f"/customers/{customer.pk}/", {"notes": "Local"}, {"If-Match": etag})
    assert response.status_code == 200 and response.json()["local_fields"] == ["notes"]
    customer.refresh_from_db()
    assert customer.notes == "" and CustomerOverride.objects.get(customer=customer, branch=branch_a).notes == "Local"
    etag = response["ETag"]
    response = client.send("patch", f"/customers/{customer.pk}/", {"groups": ["VIP"]}, {"If-Match": etag})
    assert response.status_code == 422


def test_a_branch_token_may_not_change_a_read_only_global_customer(api, staff_a, world):
    customer = world["global_all"]
    client = api(staff_a)
    etag = client.get(f"/customers/{customer.pk}/")["ETag"]
    response = client.send("patch", f"/customers/{customer.pk}/", {"notes": "Local"}, {"If-Match": etag})
    assert response.status_code == 403
    customer.refresh_from_db()
    assert customer.notes == "" and not CustomerOverride.objects.filter(customer=customer).exists()


def test_errors_are_translated(api, manager, world):
    customer = world["global_all"]
    client = api(manager)
    with translation.override("de"):
        response = client.send("patch", f"/customers/{customer.pk}/", {"notes": "x"}, {"If-Match": '"0.0"'})
        assert response.status_code == 412
        assert response.json()["detail"].startswith("Der Kunde wurde geändert")
        response = client.send("post", "/customers/", {"first_name": "X", "groups": ["Nope"]})
        assert response.json()["errors"][0]["msg"] == "Unbekannte Gruppe: Nope."


def test_all_branches_is_final_through_the_api_too(api, manager, world):
    customer = world["global_all"]
    client = api(manager)
    etag = client.get(f"/customers/{customer.pk}/")["ETag"]
    response = client.send("patch", f"/customers/{customer.pk}/", {"shared_with_all_branches": False, "branches": ["alpha"]}, {"If-Match": etag})
    assert response.status_code == 422
    customer.refresh_from_db()
    assert customer.shared_with_all_branches


def test_delete_goes_through_the_queue_and_answers_its_state(api, manager, world, branch_a):
    blocked = world["global_a"]
    make_appointment(blocked, branch_a, days=2)
    response = api(manager).send("delete", f"/customers/{blocked.pk}/", None)
    assert response.status_code == 202
    assert response.json()["status"] == "blocked" and "upcoming appointment" in response.json()["errors"][0]
    assert Customer.objects.filter(pk=blocked.pk).exists()
    response = api(manager).send("delete", f"/customers/{world['local_a'].pk}/", None)
    assert response.json()["status"] == "done"
    logged = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.delete_via_api")
    assert sorted(logged.values_list("object_id", flat=True)) == sorted([str(blocked.pk), str(world["local_a"].pk)])


def test_a_deletion_the_queue_refuses_is_not_recorded(api, staff_a, world):
    response = api(staff_a).send("delete", f"/customers/{world['global_all'].pk}/", None)
    assert response.status_code == 403
    assert not ClientDBLogEntry.objects.filter(action="wagtail_clientdb.delete_via_api").exists()
    assert Customer.objects.filter(pk=world["global_all"].pk).exists()


# --- Bulk import ---------------------------------------------------------------------------------------------


def bulk_payload():
    return {
        "customers": [
            {"external_id": "CRM-1", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "tags": ["vip", "tea lover"]},
            {"external_id": "CRM-2", "first_name": "Alan", "phone": "0170 7770002", "groups": ["VIP"], "attributes": {"hair": "fine"}},
            {"first_name": "Grace", "email": "grace@example.com", "branches": ["alpha"], "marketing_consent": True},
        ]
    }


def test_bulk_import_creates_global_customers_and_changes_nothing_the_second_time(api, manager, world, branch_a):
    client = api(manager)
    first = client.send("post", "/customers/bulk/", bulk_payload())
    assert first.status_code == 200, first.content
    body = first.json()
    assert (body["saved"], body["created"], body["errors"]) == (True, 3, 0)
    ada = Customer.objects.get(external_id="CRM-1")
    assert ada.shared_with_all_branches and sorted(ada.tags.names()) == ["tea lover", "vip"]
    grace = Customer.objects.get(email="grace@example.com")
    assert list(grace.branches.all()) == [branch_a] and grace.marketing_consent
    assert {c.source for c in Customer.objects.filter(email__in=["ada@example.com", "grace@example.com"])} == {"api"}
    assert list(grace.consent_events.values_list("given", "channel", "recorded_by")) == [(True, "api", manager.pk)]
    assert [r["id"] for r in body["records"]] == [ada.pk, Customer.objects.get(external_id="CRM-2").pk, grace.pk]
    assert ClientDBLogEntry.objects.filter(action="wagtail_clientdb.create_via_api").count() == 3
    (entry,) = ClientDBLogEntry.objects.for_instance(ada)
    assert (entry.action, entry.label, entry.user, entry.data) == ("wagtail_clientdb.create_via_api", str(ada), manager, {"bulk": True})
    assert entry.message == "Created via API"

    second = client.send("post", "/customers/bulk/", bulk_payload()).json()
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 3)
    assert Customer.objects.filter(email="ada@example.com").count() == 1


def test_bulk_import_is_all_or_nothing_unless_partial(api, manager, world):
    payload = bulk_payload()
    payload["customers"][1]["email"] = "broken"
    response = api(manager).send("post", "/customers/bulk/", payload)
    assert response.status_code == 422
    body = response.json()
    assert body["saved"] is False and body["records"][1]["result"] == "error" and "email" in body["records"][1]["errors"]
    assert [r["id"] for r in body["records"]] == [None, None, None]
    # The valid records were not saved either: no count or result reads as done.
    assert [r["result"] for r in body["records"]] == ["not_saved", "error", "not_saved"]
    assert (body["created"], body["updated"], body["unchanged"], body["errors"]) == (0, 0, 0, 1)
    assert not Customer.objects.filter(external_id__startswith="CRM").exists()
    response = api(manager).send("post", "/customers/bulk/", {**payload, "partial": True})
    assert response.status_code == 200 and response.json()["created"] == 2
    saved_ids = [r["id"] for r in response.json()["records"]]
    assert saved_ids[1] is None
    assert set(Customer.objects.filter(pk__in=saved_ids).values_list("external_id", flat=True)) == {"CRM-1", ""}
    assert Customer.objects.filter(external_id="CRM-1").exists() and not Customer.objects.filter(external_id="CRM-2").exists()


def test_bulk_import_with_an_idempotency_key_does_the_work_once(api, manager, world):
    client = api(manager)
    first = client.send("post", "/customers/bulk/", bulk_payload(), {"Idempotency-Key": "import-2026-11-30"})
    Customer.objects.filter(external_id="CRM-1").update(notes="Changed after the first call")
    retry = client.send("post", "/customers/bulk/", bulk_payload(), {"Idempotency-Key": "import-2026-11-30"})
    assert retry.status_code == first.status_code and retry.json() == first.json()
    # The first answer is written by the view, the replay by django-ninja: the same to a client.
    assert retry["Content-Type"] == first["Content-Type"] == "application/json; charset=utf-8"
    assert Customer.objects.get(external_id="CRM-1").notes == "Changed after the first call"
    other = bulk_payload()
    other["customers"].pop()
    assert client.send("post", "/customers/bulk/", other, {"Idempotency-Key": "import-2026-11-30"}).status_code == 422


def test_a_failed_bulk_call_leaves_its_idempotency_key_free_for_the_retry(api, manager, world, monkeypatch):
    from wagtail_clientdb.api.v3 import router

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    client = api(manager)
    with monkeypatch.context() as patched:
        patched.setattr(router, "import_records", fail)
        client.client.raise_request_exception = False
        failed = client.send("post", "/customers/bulk/", bulk_payload(), {"Idempotency-Key": "retry-me"})
        assert failed.status_code == 500
    retry = client.send("post", "/customers/bulk/", bulk_payload(), {"Idempotency-Key": "retry-me"})
    assert retry.status_code == 200 and retry.json()["created"] == 3


def test_bulk_records_matching_another_branchs_local_customers_neither_change_nor_reveal_them(api, staff_a, world, branch_a):
    local_b = world["local_b"]
    before = Customer.objects.get(pk=local_b.pk)
    records = [
        {"email": local_b.email, "first_name": "Changed"},
        {"phone": local_b.phone, "first_name": "Also changed"},
    ]
    response = api(staff_a).send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 200, response.content
    body = response.json()
    # Branch A cannot see B's local customer: for A these are new people, created in A.
    assert [r["result"] for r in body["records"]] == ["created", "created"]
    assert local_b.pk not in {r["id"] for r in body["records"]}
    assert str(local_b.pk) not in response.content.decode() and local_b.last_name not in response.content.decode()
    assert Customer.objects.get(pk=local_b.pk).first_name == before.first_name
    assert Customer.objects.get(pk=local_b.pk).version == before.version
    created = Customer.objects.filter(pk__in=[r["id"] for r in body["records"]])
    assert {c.home_branch for c in created} == {branch_a}


def test_a_branch_token_may_not_set_head_office_fields_in_bulk(api, staff_a, world):
    records = [{"first_name": "X", "external_id": "CRM-9"}, {"first_name": "Y", "branches": ["alpha"]}]
    response = api(staff_a).send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["errors"]]
    assert locs == [["body", "payload", "customers", 0, "external_id"], ["body", "payload", "customers", 1, "branches"]]
    assert not Customer.objects.filter(first_name__in=["X", "Y"]).exists()


def test_bulk_consent_changes_only_when_a_record_says_so(api, manager, world):
    kept = make_customer(first_name="Kept", email="kept@example.com", marketing_consent=True, shared_with_all_branches=True)
    gone = make_customer(first_name="Gone", email="gone@example.com", marketing_consent=True, shared_with_all_branches=True)
    records = [{"email": "kept@example.com", "notes": "From the CRM"}, {"email": "gone@example.com", "marketing_consent": False}]
    response = api(manager).send("post", "/customers/bulk/", {"customers": records})
    assert response.json()["updated"] == 2, response.content
    kept.refresh_from_db(), gone.refresh_from_db()
    assert (kept.notes, kept.marketing_consent, gone.marketing_consent) == ("From the CRM", True, False)


def test_tags_are_named_in_any_case_by_one_rule(api, manager, world):
    """The tag rule (wagtail_clientdb.tags), as the admin's tag field follows it: an existing
    tag of another case is that tag, in its spelling; a new one keeps the spelling sent, once;
    a name of only invisible characters is no name, as an empty one."""
    gloria = world["global_all"]
    gloria.tags.add("Regular")
    client = api(manager)
    response = client.send(
        "post",
        "/customers/",
        {
            "first_name": "Neo",
            "shared_with_all_branches": True,
            "tags": ["regular", "REGULAR", "New\u200b", "new", "\u200b", "\ufeff\u00ad", ""],
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["tags"] == ["New", "Regular"]
    neo = Customer.objects.get(pk=response.json()["id"])
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["New", "Regular", "b-only"]

    # The tags a customer has, sent in another case, are no change.
    read = client.get(f"/customers/{gloria.pk}/")
    response = client.send("patch", f"/customers/{gloria.pk}/", {"tags": ["REGULAR"]}, {"If-Match": read["ETag"]})
    assert response.status_code == 200, response.content
    assert (response["ETag"], response.json()["tags"]) == (read["ETag"], ["Regular"])
    # The filter finds a tag in any case.
    assert ids(client.get("/customers/", {"tag": "rEGULAR"})) == {gloria.pk, neo.pk}
    # A name longer than a tag's is refused, not cut.
    response = client.send("patch", f"/customers/{gloria.pk}/", {"tags": ["x" * 101]}, {"If-Match": read["ETag"]})
    assert response.status_code == 422 and "A tag has at most 100 characters." in response.content.decode()


def test_bulk_records_name_tags_in_any_case(api, manager, world):
    """The bulk import by the same rule: "VIP" and "vip" in one call are one tag; a customer's
    tag sent in another case is no change; a name of only invisible characters is none."""
    world["global_all"].tags.add("Regular")
    records = [
        {"email": "gloria@example.com", "tags": ["REGULAR"]},
        {"external_id": "T-1", "first_name": "Tia", "tags": ["vip", "regular"]},
        {"external_id": "T-2", "first_name": "Udo", "tags": ["VIP", "\u200b"]},
        {"external_id": "T-3", "first_name": "Vera", "tags": ["\u200b\ufeff"]},
    ]
    client = api(manager)
    body = client.send("post", "/customers/bulk/", {"customers": records}).json()
    assert (body["saved"], body["created"], body["updated"], body["unchanged"]) == (True, 3, 0, 1), body
    tags_of = {c.external_id: sorted(c.tags.names()) for c in Customer.objects.filter(external_id__startswith="T-")}
    assert tags_of == {"T-1": ["Regular", "vip"], "T-2": ["vip"], "T-3": []}
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["Regular", "b-only", "vip"]
    # A name longer than a tag's is refused, as the single call refuses it, not cut.
    response = client.send(
        "post", "/customers/bulk/", {"customers": [{"external_id": "T-4", "first_name": "Wim", "tags": ["x" * 101]}]}
    )
    assert response.status_code == 422
    assert response.json()["records"][0]["errors"] == {"tags": ["A tag has at most 100 characters."]}
    assert not Customer.objects.filter(external_id="T-4").exists()


def test_bulk_records_with_unknown_fields_or_null_characters_are_refused(api, manager, world):
    client = api(manager)
    response = client.send("post", "/customers/bulk/", {"customers": [{"first_name": "X", "source": "import"}]})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "payload", "customers", 0, "source"]]
    records = [{"first_name": "X\x00Y"}, {"first_name": "Z", "tags": ["a\x00"]}]
    response = client.send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 422
    assert [r["errors"] for r in response.json()["records"]] == [
        {"first_name": ["The cell contains a NUL character."]},
        {"tags": ["The cell contains a NUL character."]},
    ]
    assert not Customer.objects.filter(first_name__in=["X", "Z"]).exists()


def test_the_head_office_bulk_keeps_the_sharing_of_customers_it_already_has(api, manager, world, branch_b):
    local_b = world["local_b"]
    response = api(manager).send("post", "/customers/bulk/", {"customers": [{"email": local_b.email, "notes": "From the CRM"}]})
    assert response.json()["updated"] == 1
    local_b.refresh_from_db()
    assert local_b.notes == "From the CRM" and local_b.home_branch == branch_b and not local_b.shared_with_all_branches


def test_bulk_reports_every_refused_record_beyond_the_first_chunk(api, manager, db):
    records = [{"first_name": f"P{n}", "email": "broken" if n in (5, 2500) else f"p{n}@example.com"} for n in range(2600)]
    response = api(manager).send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 422
    body = response.json()
    assert [r["index"] for r in body["records"] if r["result"] == "error"] == [5, 2500]
    assert body["errors"] == 2 and len(body["records"]) == 2600
    assert not Customer.objects.filter(first_name__startswith="P").exists()


def test_bulk_records_let_each_chunks_customers_go_once_it_is_written(manager, monkeypatch):
    """Only the ids are kept for the answer: 10,000 customers kept to the end were walked by
    every chunk's garbage collection."""
    from wagtail_clientdb import scope
    from wagtail_clientdb.imports import records

    kept = []
    import_chunks = records.import_chunks

    def watched(resource, chunks, *, collect, **options):
        def collected(result, chunk):
            refused = collect(result, chunk)
            kept.append(len(resource.instance_by_line))
            return refused

        return import_chunks(resource, chunks, collect=collected, **options)

    monkeypatch.setattr(records, "import_chunks", watched)
    people = [{"first_name": f"P{n}"} for n in range(600)]
    saved, results, _batch = records.import_records(scope.Viewer(manager, True), people)
    assert saved and kept == [0, 0]
    created = Customer.objects.filter(first_name__startswith="P").values_list("pk", flat=True)
    assert sorted(r.id for r in results) == sorted(created)


def test_a_bulk_call_sets_off_no_garbage_collection_of_its_own(api, manager, db):
    """Its body's validation, its import and its answer run with collection deferred, as a file
    import's chunks do: thousands of records would otherwise set off collections of the older
    generations, which walk every object of Django and Wagtail."""
    client = api(manager)
    assert client.send("post", "/customers/bulk/", {"customers": [{"first_name": "Warm"}]}).status_code == 200
    records = [{"first_name": f"P{n}", "email": f"p{n}@example.com", "tags": ["a", "b"]} for n in range(3000)]
    older = []

    def note(phase, info):
        # The import collects the youngest generation itself after each chunk.
        if phase == "start" and info["generation"] > 0:
            older.append(info["generation"])

    gc.callbacks.append(note)
    try:
        response = client.send("post", "/customers/bulk/", {"customers": records})
    finally:
        gc.callbacks.remove(note)
    assert response.status_code == 200 and response.json()["created"] == 3000
    assert older == []


def test_bulk_refuses_more_than_ten_thousand_records(api, manager, db):
    response = api(manager).send("post", "/customers/bulk/", {"customers": [{"first_name": "X"}] * 10_001})
    assert response.status_code == 422


# --- Appointments -------------------------------------------------------------------------------------------


def test_appointments_are_scoped_created_and_updated_with_their_version(api, staff_a, world, branch_a, branch_b):
    make_service("Cut", branch_a, duration=30)
    theirs = make_appointment(world["local_b"], branch_b, days=2)
    ours = make_appointment(world["local_a"], branch_a, days=-1)
    client = api(staff_a)
    assert ids(client.get("/appointments/")) == {ours.pk}
    assert client.get(f"/appointments/{theirs.pk}/").status_code == 404
    start = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
    response = client.send("post", "/appointments/", {
        "branch": "alpha", "service": "Cut", "start": start.isoformat(),
        "customer": {"first_name": "Lena", "email": "lena@example.com"},
    })
    assert response.status_code == 201, response.content
    created = Appointment.objects.get(pk=response.json()["id"])
    # Found by the identity rule: the existing local customer with this email.
    assert created.customer == world["local_a"] and created.end - created.start == datetime.timedelta(minutes=30)
    response = client.send("post", "/appointments/", {"branch": "beta", "service": "Cut", "start": start.isoformat(), "customer_id": world["local_a"].pk})
    assert response.status_code == 422
    etag = client.get(f"/appointments/{ours.pk}/")["ETag"]
    response = client.send("patch", f"/appointments/{ours.pk}/", {"status": "no_show"}, {"If-Match": etag})
    assert response.status_code == 200 and response.json()["status"] == "no_show"
    assert client.send("patch", f"/appointments/{ours.pk}/", {"status": "completed"}, {"If-Match": etag}).status_code == 412


@pytest.mark.parametrize(
    "person, field",
    [({}, "first_name"), ({"email": "not an email"}, "email"), ({"first_name": "Kim", "phone": "call me"}, "phone")],
)
def test_a_person_booked_through_the_api_is_checked_like_a_new_customer(api, staff_a, world, branch_a, person, field):
    make_service("Cut", branch_a, duration=30)
    start = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
    before = (Customer.objects.count(), Appointment.objects.count())
    response = api(staff_a).send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start.isoformat(), "customer": person})
    assert response.status_code == 422, response.content
    assert ["body", "payload", "customer", field] in [error["loc"] for error in response.json()["errors"]]
    assert (Customer.objects.count(), Appointment.objects.count()) == before


def test_booking_attributes_are_checked_by_the_attribute_registry(api, staff_a, world, branch_a):
    make_service("Cut", branch_a, duration=30)
    AttributeDefinition.objects.create(label="Guests", key="guests", applies_to="booking", field_type="integer")
    start = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
    booking = {"branch": "alpha", "service": "Cut", "start": start.isoformat(), "customer_id": world["local_a"].pk}
    refused = api(staff_a).send("post", "/appointments/", {**booking, "attributes": {"guests": "many", "colour": "red"}})
    assert refused.status_code == 422
    locs = sorted(tuple(error["loc"]) for error in refused.json()["errors"])
    assert locs == [("body", "payload", "attributes", "colour"), ("body", "payload", "attributes", "guests")]
    taken = api(staff_a).send("post", "/appointments/", {**booking, "attributes": {"guests": "2"}})
    assert taken.status_code == 201 and taken.json()["attributes"] == {"guests": 2}


def test_rate_limit_per_token(api, manager, world, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "API_RATE_LIMIT": "3/m"}
    client = api(manager)
    statuses = [client.get("/customers/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert api(manager).get("/customers/").status_code == 200  # another token


def test_the_schema_is_served_and_names_every_endpoint(client, db):
    schema = client.get("/api/v3/openapi.json").json()
    paths = {path for path in schema["paths"] if "/clientdb/" in path}
    assert paths == {
        "/api/v3/clientdb/customers/", "/api/v3/clientdb/customers/{customer_id}/", "/api/v3/clientdb/customers/bulk/",
        "/api/v3/clientdb/customers/removed/",
        "/api/v3/clientdb/customers/bulk/{batch_id}/", "/api/v3/clientdb/customers/bulk/{batch_id}/rollback/",
        "/api/v3/clientdb/services/", "/api/v3/clientdb/appointments/", "/api/v3/clientdb/appointments/{appointment_id}/",
        "/api/v3/clientdb/appointments/removed/",
        "/api/v3/clientdb/segments/", "/api/v3/clientdb/segments/{segment_id}/customers/",
    }


def test_the_schema_declares_the_headers_and_the_errors_in_wagtails_shape(client, db):
    """A client generated from the schema sends If-Match and may send Idempotency-Key, and knows
    every error answer's shape."""
    paths = {path: operations for path, operations in client.get("/api/v3/openapi.json").json()["paths"].items() if "/clientdb/" in path}

    def headers(path, method):
        return {p["name"]: p["required"] for p in paths[f"/api/v3/clientdb/{path}"][method].get("parameters", []) if p["in"] == "header"}

    assert headers("customers/{customer_id}/", "patch") == {"If-Match": True}
    assert headers("appointments/{appointment_id}/", "patch") == {"If-Match": True}
    assert headers("customers/bulk/", "post") == {"Idempotency-Key": False}
    assert headers("appointments/", "post") == {"Idempotency-Key": False}
    assert headers("customers/", "get") == {}
    assert {"412", "428"} <= set(paths["/api/v3/clientdb/customers/{customer_id}/"]["patch"]["responses"])
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status in ("401", "403", "404", "422", "429"):
                content = operation["responses"][status]["content"]
                assert "application/problem+json" in content, (method, path, status)
    # The bulk call's 422 is either its per-record answer or a problem (a body that is not records).
    assert set(paths["/api/v3/clientdb/customers/bulk/"]["post"]["responses"]["422"]["content"]) == {
        "application/json", "application/problem+json",
    }


# --- What an integrator met (a review with the docs in hand) ----------------------------------------------


def test_contact_data_longer_than_the_database_keeps_is_a_field_error(api, manager, world):
    client = api(manager)
    long_email = "a" * 300 + "@example.com"
    response = client.send("post", "/customers/", {"first_name": "Lang", "email": long_email})
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["body", "payload", "email"]]
    response = client.send("post", "/customers/", {"first_name": "Lang", "phone": "+49 170 " + "1 " * 40})
    assert response.status_code == 422 and not Customer.objects.filter(first_name="Lang").exists()
    etag = client.get(f"/customers/{world['global_all'].pk}/")["ETag"]
    response = client.send("patch", f"/customers/{world['global_all'].pk}/", {"email": long_email}, {"If-Match": etag})
    assert response.status_code == 422


def test_times_beyond_the_calendar_are_filter_edges_or_field_errors(api, manager, world, branch_a):
    """"Since the beginning" is a first sync's question, not a server error."""
    client = api(manager)
    assert client.get("/customers/", {"updated_since": "0001-01-01"}).json()["count"] == 4
    assert client.get("/appointments/", {"start_after": "0001-01-01T00:00", "start_before": "9999-12-31T23:59"}).status_code == 200
    make_service("Cut", branch_a, duration=30)
    for start in ("0001-01-01T10:00", "9999-12-31T23:30"):
        response = client.send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start, "customer_id": world["global_all"].pk})
        assert response.status_code == 422, start
        assert [(error["loc"], error["msg"]) for error in response.json()["errors"]] == [
            (["body", "payload", "start"], "Give a time between the years 1900 and 2999.")
        ]
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("offset", ["+16:00", "-23:59"])
def test_an_offset_postgresql_cannot_store_is_read_as_the_moment_it_names(api, manager, world, branch_a, offset):
    """ISO 8601 allows offsets up to ±23:59, PostgreSQL none beyond ±15:59: a list's bound and
    an appointment's start are the same moment in UTC, not a server error."""
    client = api(manager)
    for path, name in (("/customers/", "updated_since"), ("/customers/removed/", "since"), ("/appointments/", "start_after")):
        assert client.get(path, {name: "2026-06-01T10:00:00" + offset}).status_code == 200, path
    make_service("Cut", branch_a, duration=30)
    start = "2027-08-01T10:00:00" + offset
    response = client.send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start, "customer_id": world["global_all"].pk})
    assert response.status_code == 201, response.content
    assert Appointment.objects.get().start == datetime.datetime.fromisoformat(start)
    # The years are those of the moment stored: 23:59 on the last evening, twelve hours west, is the year 3000.
    response = client.send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": "2999-12-31T23:59:00-12:00", "customer_id": world["global_all"].pk})
    assert response.status_code == 422


def test_an_offset_beyond_what_the_database_counts_to_is_a_field_error(api, manager, world):
    response = api(manager).get("/customers/", {"offset": 2**63})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "offset"]


def test_an_idempotency_key_too_long_to_keep_is_refused_not_cut(api, manager, world):
    """Cut to the 255 characters kept, two keys alike up to there were one: a new call was
    answered with another's result and never done."""
    client = api(manager)
    long_key = "k" * 255
    assert client.send("post", "/customers/bulk/", bulk_payload(), {"Idempotency-Key": long_key}).status_code == 200
    response = client.send("post", "/customers/bulk/", {"customers": [{"first_name": "Neu", "email": "neu@example.com"}]}, {"Idempotency-Key": long_key + "2"})
    assert response.status_code == 422
    assert "255" in response.json()["detail"]
    assert not Customer.objects.filter(email="neu@example.com").exists()


def test_a_shared_customer_keeps_at_least_one_branch(api, manager, world):
    """Sharing a customer with "these branches: none" left a customer nobody but the head office sees."""
    customer = world["global_a"]
    client = api(manager)
    etag = client.get(f"/customers/{customer.pk}/")["ETag"]
    response = client.send("patch", f"/customers/{customer.pk}/", {"branches": []}, {"If-Match": etag})
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["errors"]] == ["branches"]
    assert list(customer.branches.values_list("slug", flat=True)) == ["alpha"]
    # "All branches is final" names its field too.
    everyone = world["global_all"]
    etag = client.get(f"/customers/{everyone.pk}/")["ETag"]
    response = client.send("patch", f"/customers/{everyone.pk}/", {"shared_with_all_branches": False}, {"If-Match": etag})
    assert [error["loc"][-1] for error in response.json()["errors"]] == ["shared_with_all_branches"]


def test_half_a_character_is_a_field_error_and_a_partial_bulk_call_saves_the_rest(api, manager, world):
    """JSON can send half of a UTF-16 character ("\\ud800"), which no database stores: it was
    a server error, and in a partial bulk call it took the valid records down with it."""
    client = api(manager)
    half = '"Jo\\ud800"'

    def raw(method, path, body, headers=None):
        return getattr(client.client, method)(API + path, body, content_type="application/json", headers=client.headers(headers))

    response = raw("post", "/customers/", '{"first_name": %s, "last_name": "X", "shared_with_all_branches": true}' % half)
    assert response.status_code == 422
    assert "half of a character" in response.json()["errors"][0]["msg"]
    customer = world["global_all"]
    etag = client.get(f"/customers/{customer.pk}/")["ETag"]
    response = raw("patch", f"/customers/{customer.pk}/", '{"tags": [%s]}' % half, {"If-Match": etag})
    assert response.status_code == 422
    body = '{"partial": true, "customers": [{"first_name": "Gut", "email": "gut@example.com"}, {"first_name": %s, "email": "halb@example.com"}]}' % half
    answer = raw("post", "/customers/bulk/", body).json()
    assert [record["result"] for record in answer["records"]] == ["created", "error"]
    assert "half of a character" in str(answer["records"][1]["errors"])
    assert list(Customer.objects.filter(email__in=["gut@example.com", "halb@example.com"]).values_list("email", flat=True)) == ["gut@example.com"]


def test_a_switchboard_number_names_the_person_at_its_extension(api, manager, world):
    """E.164 has no place for an extension: two people behind one switchboard were one key,
    and the second record renamed the first customer."""
    client = api(manager)

    def bulk(*records):
        answer = client.send("post", "/customers/bulk/", {"customers": list(records)}).json()
        return [(record["result"], record["id"]) for record in answer["records"]]

    anna = {"first_name": "Anna", "last_name": "Zentrale", "phone": "+49 30 5550000 x11"}
    bernd = {"first_name": "Bernd", "last_name": "Zentrale", "phone": "+49 30 5550000 ext. 22"}
    [(created, anna_id)] = bulk(anna)
    [(created_too, bernd_id)] = bulk(bernd)
    assert (created, created_too) == ("created", "created") and anna_id != bernd_id
    assert Customer.objects.get(pk=anna_id).first_name == "Anna"
    # Each is found again by the number and the extension: the same records change nothing.
    assert bulk(anna, bernd) == [("unchanged", anna_id), ("unchanged", bernd_id)]
    assert bulk({"first_name": "Anna", "last_name": "Zentrale", "phone": "030 5550000 x 11", "notes": "Ruft zurück"}) == [("updated", anna_id)]
    # The switchboard's number alone is neither of them.
    [(result, _id)] = bulk({"first_name": "Empfang", "phone": "+49 30 5550000"})
    assert result == "created"


@pytest.mark.parametrize("start", ["2027-03-28T02:30:00", "2027-10-31T02:30:00"])
def test_a_local_time_the_branch_s_clock_skips_or_shows_twice_is_refused(api, manager, world, branch_a, start):
    """02:30 does not exist in Berlin when the clocks go forward and exists twice when they go
    back: it was moved to 03:30 or taken as the first, silently; the admin's form refuses both."""
    branch_a.timezone = "Europe/Berlin"
    branch_a.save()
    make_service("Cut", branch_a, duration=30)
    response = api(manager).send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start, "customer_id": world["global_all"].pk})
    assert response.status_code == 422
    assert [error["loc"][-1] for error in response.json()["errors"]] == ["start"]
    assert "may be ambiguous or it may not exist" in response.json()["errors"][0]["msg"]
    assert not Appointment.objects.exists()


def test_a_change_that_changes_nothing_keeps_the_version(api, manager, world):
    """A client sending its copy back (or a retry) moved the version and updated_at: the other
    till's next change was refused as stale and every sync read the customer again."""
    customer = world["global_all"]
    customer.tags.add("regular")
    client = api(manager)
    read = client.get(f"/customers/{customer.pk}/")
    etag, updated_at = read["ETag"], read.json()["updated_at"]
    same = {"first_name": customer.first_name, "notes": customer.notes, "tags": ["regular"], "groups": [], "shared_with_all_branches": True}
    for payload in ({}, same):
        response = client.send("patch", f"/customers/{customer.pk}/", payload, {"If-Match": etag})
        assert response.status_code == 200, response.content
        assert (response["ETag"], response.json()["updated_at"]) == (etag, updated_at), payload
    changed = client.send("patch", f"/customers/{customer.pk}/", {**same, "tags": ["regular", "new"]}, {"If-Match": etag})
    assert changed["ETag"] != etag and changed.json()["updated_at"] > updated_at


def test_a_booking_s_branch_is_a_field_of_its_body_and_what_is_missing_is_said_in_the_user_s_language(api, manager, staff_a, world, branch_a):
    make_service("Cut", branch_a, duration=30)
    booked = {"service": "Cut", "start": "2030-06-03T09:00:00+02:00", "customer_id": world["global_all"].pk}
    for branch, message in (("", "Name the branch to book in."), ("nope", "No such branch: nope.")):
        response = api(manager).send("post", "/appointments/", {**booked, "branch": branch})
        assert [(error["loc"], error["msg"]) for error in response.json()["errors"]] == [(["body", "payload", "branch"], message)]
    response = api(staff_a).send("post", "/appointments/", {**booked, "branch": "beta"})
    assert response.json()["errors"][0]["loc"] == ["body", "payload", "branch"]
    assert not Appointment.objects.exists()
    client = api(manager)
    with translation.override("de"):
        for path, german in (("/customers/999999/", "Kein solcher Kunde."), ("/appointments/999999/", "Kein solcher Termin.")):
            response = client.get(path)
            assert (response.status_code, response.json()["detail"]) == (404, german)


def test_a_branch_finds_a_shared_customer_by_the_email_it_keeps_for_them(api, staff_a, world, branch_a, allow_branch_edits):
    """A branch that keeps its own email for a shared customer booked them by that email and
    got a second, local customer (named as a possible duplicate of the first)."""
    from wagtail_clientdb import overrides

    shared = world["global_all"]
    overrides.save_local_values(shared, branch_a, {"email": "gloria.alpha@example.com", "phone_raw": "0171 2223334"})
    make_service("Cut", branch_a, duration=30)
    client = api(staff_a)
    for person in ({"first_name": "Gloria", "email": "gloria.alpha@example.com"}, {"first_name": "Gloria", "phone": "+49 171 2223334"}):
        response = client.send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": "2030-06-03T09:00:00+02:00", "customer": person})
        assert response.status_code == 201, response.content
        assert response.json()["customer_id"] == shared.pk, person
    assert Customer.objects.count() == len(world)
    # The file import of the branch finds them the same way.
    answer = client.send("post", "/customers/bulk/", {"customers": [{"first_name": "Gloria", "email": "gloria.alpha@example.com", "notes": "Mag Tee"}]}).json()
    assert [(record["result"], record["id"]) for record in answer["records"]] == [("updated", shared.pk)]


def test_an_attribute_value_of_the_wrong_json_type_is_a_field_error(api, manager, world):
    """A list or an object was stored as Python's text of it ("['a', 'b']"), an empty one removed
    the value, NaN became "nan" and true became "1" in a text attribute."""
    AttributeDefinition.objects.create(label="Visits", key="visits", field_type="integer")
    AttributeDefinition.objects.create(label="Allergies", key="allergies", field_type="text")
    customer = world["global_all"]
    customer.attributes = {"visits": 3, "allergies": "nuts"}
    customer.save()
    client = api(manager)
    for given in ({"visits": []}, {"visits": {}}, {"allergies": {"a": 1}}, {"allergies": ["a", "b"]}, {"allergies": True}):
        etag = client.get(f"/customers/{customer.pk}/")["ETag"]
        response = client.send("patch", f"/customers/{customer.pk}/", {"attributes": given}, {"If-Match": etag})
        assert response.status_code == 422, given
        assert [error["loc"][-1] for error in response.json()["errors"]] == [next(iter(given))], given
    nan = client.client.patch(
        API + f"/customers/{customer.pk}/", '{"attributes": {"visits": NaN}}', content_type="application/json",
        headers=client.headers({"If-Match": client.get(f"/customers/{customer.pk}/")["ETag"]}),
    )
    assert nan.status_code == 422
    answer = client.send("post", "/customers/bulk/", {"customers": [{"email": "liste@example.com", "attributes": {"allergies": ["a", "b"]}}]}).json()
    assert answer["saved"] is False and "attributes.allergies" in answer["records"][0]["errors"]
    customer.refresh_from_db()
    assert customer.attributes == {"visits": 3, "allergies": "nuts"}


def test_a_bulk_record_s_text_is_read_as_sent_not_as_an_export_s_escaped_cell(api, manager, world):
    """The file import takes a leading "'" off a cell its export escaped ("'=1+1"); a client's
    record is no such cell: the bulk call kept "=1+1", the single create "'=1+1"."""
    client = api(manager)
    records = [{"first_name": "'=1+1", "last_name": "'+49", "email": "formel@example.com"}]
    assert client.send("post", "/customers/bulk/", {"customers": records}).json()["created"] == 1
    assert Customer.objects.filter(email="formel@example.com").values_list("first_name", "last_name").get() == ("'=1+1", "'+49")


def test_a_body_larger_than_django_reads_is_a_413_in_the_api_s_shape(api, manager, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    client = api(manager)
    response = client.send("post", "/customers/", {"first_name": "Lang", "notes": "x" * 2000, "shared_with_all_branches": True})
    assert (response.status_code, response["Content-Type"]) == (413, "application/problem+json")
    assert "1,000 bytes" in response.json()["detail"]
    assert not Customer.objects.filter(first_name="Lang").exists()


def test_a_bulk_call_larger_than_django_reads_is_read_up_to_its_own_limit(api, manager, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200
    records = [{"first_name": f"Gross{n}", "email": f"gross{n}@example.com", "notes": "x" * 50} for n in range(10)]
    client = api(manager)
    response = client.send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 200 and response.json()["created"] == 10
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "API_BULK_MAX_BYTES": 500}
    response = client.send("post", "/customers/bulk/", {"customers": [{**r, "email": "x" + r["email"]} for r in records]})
    assert response.status_code == 413 and response["Content-Type"] == "application/problem+json"
    assert "larger than 500 bytes" in response.json()["detail"]
    assert Customer.objects.filter(first_name__startswith="Gross").count() == 10


def test_a_bulk_record_with_an_attribute_nobody_defined_is_refused_not_dropped(api, manager, world):
    records = [{"first_name": "Kim", "attributes": {"hair": "fine"}}, {"first_name": "Lou", "attributes": {"nope": 1}}]
    for partial in (False, True):
        response = api(manager).send("post", "/customers/bulk/", {"customers": records, "partial": partial})
        assert response.status_code == 422
        assert [error["loc"] for error in response.json()["errors"]] == [["body", "payload", "customers", 1, "attributes", "nope"]]
    assert not Customer.objects.filter(first_name__in=["Kim", "Lou"]).exists()


def test_an_appointment_is_booked_only_in_a_branch_that_sees_the_customer(api, manager, world, branch_a):
    make_service("Cut", branch_a, duration=30)
    start = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0).isoformat()
    response = api(manager).send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start, "customer_id": world["local_b"].pk})
    assert response.status_code == 422 and "does not see this customer" in response.content.decode()
    assert not Appointment.objects.exists()
    assert api(manager).send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start, "customer_id": world["global_a"].pk}).status_code == 201


def test_a_booked_appointment_is_answered_in_utc_and_lasts_its_service_across_a_clock_change(api, manager, world, branch_a):
    make_service("Colour", branch_a, duration=60)
    client = api(manager)
    booked = {"branch": "alpha", "service": "Colour", "customer_id": world["global_all"].pk}
    answer = client.send("post", "/appointments/", {**booked, "start": "2030-06-03T09:00:00+02:00"}).json()
    assert (answer["start"], answer["end"]) == ("2030-06-03T07:00:00Z", "2030-06-03T08:00:00Z")
    assert client.get(f"/appointments/{answer['id']}/").json()["start"] == answer["start"]
    # The night the clocks go forward (Europe/Berlin, 31 March 2030), and back (27 October: the
    # first 02:30, given with its offset, since the clock shows 02:30 twice).
    for start in ("2030-03-31T01:30:00", "2030-10-27T01:30:00", "2030-10-27T02:30:00+02:00"):
        answer = client.send("post", "/appointments/", {**booked, "start": start}).json()
        lasts = datetime.datetime.fromisoformat(answer["end"]) - datetime.datetime.fromisoformat(answer["start"])
        assert lasts == datetime.timedelta(minutes=60), start


def test_a_customer_deleted_at_once_is_named_in_the_answer(api, manager, world):
    response = api(manager).send("delete", f"/customers/{world['local_a'].pk}/", None)
    assert response.json() == {"status": "done", "customer_id": world["local_a"].pk, "errors": []}


def test_a_branch_gives_a_local_value_back_to_the_company_with_null(api, staff_a, world, allow_branch_edits):
    """null, from a branch changing a shared customer, gives the field (or attribute) back to the
    company's value; an empty text stays a local value of its own, as in the admin."""
    customer = world["global_all"]
    customer.notes, customer.attributes = "Company note", {"hair": "fine"}
    customer.save()
    client = api(staff_a)
    path = f"/customers/{customer.pk}/"

    def patch(data):
        response = client.send("patch", path, data, {"If-Match": client.get(path)["ETag"]})
        assert response.status_code == 200, response.content
        return response.json()

    mine = patch({"notes": "A's note", "attributes": {"hair": "thick"}})
    assert (mine["notes"], mine["attributes"], sorted(mine["local_fields"])) == ("A's note", {"hair": "thick"}, ["attributes.hair", "notes"])
    back = patch({"notes": None, "attributes": {"hair": None}})
    assert (back["notes"], back["attributes"], back["local_fields"]) == ("Company note", {"hair": "fine"}, [])
    assert not CustomerOverride.objects.filter(customer=customer).exists()
    blank = patch({"notes": ""})
    assert (blank["notes"], blank["local_fields"]) == ("", ["notes"])
    customer.refresh_from_db()
    assert (customer.notes, customer.attributes) == ("Company note", {"hair": "fine"})


def test_services_tell_a_booking_what_it_may_name(api, staff_a, manager, world, branch_a, branch_b):
    make_service("Cut", branch_a, duration=30)
    make_service("Beard", branch_b, duration=20)
    retired = make_service("Perm", branch_a)
    retired.is_active = False
    retired.save()
    assert api(staff_a).get("/services/").json()["items"] == [{"name": "Cut", "duration": 30, "branches": ["alpha"]}]
    assert [s["name"] for s in api(manager).get("/services/").json()["items"]] == ["Beard", "Cut"]
    assert [s["name"] for s in api(manager).get("/services/", {"branch": "beta"}).json()["items"]] == ["Beard"]


def test_a_sync_finds_the_appointments_booked_or_changed_since(api, manager, world, branch_a):
    old = make_appointment(world["global_all"], branch_a, days=2)
    Appointment.objects.filter(pk=old.pk).update(updated_at=timezone.now() - datetime.timedelta(days=1))
    since = timezone.now()
    new = make_appointment(world["global_a"], branch_a, days=3)
    client = api(manager)
    assert ids(client.get("/appointments/", {"updated_since": since.isoformat()})) == {new.pk}
    read = client.get(f"/appointments/{new.pk}/").json()
    assert read["updated_at"].endswith("Z") and read["updated_at"] >= since.astimezone(datetime.UTC).isoformat()[:19]


def test_several_groups_find_the_customers_in_any_of_them_as_in_the_admin(api, manager, world):
    vip = CustomerGroup.objects.get(name="VIP")
    regulars = CustomerGroup.objects.create(name="Regulars")
    vip.customers.add(world["global_all"])
    regulars.customers.add(world["local_a"])
    client = api(manager)
    assert ids(client.get("/customers/", {"group": ["VIP", "Regulars"]})) == {world["global_all"].pk, world["local_a"].pk}
    assert ids(client.get("/customers/", {"group": ["VIP", "Nobody"]})) == {world["global_all"].pk}
    assert ids(client.get("/customers/", {"group": ["Nobody"]})) == set()


def test_a_record_repeating_an_earlier_one_names_it_by_its_index(api, manager, world):
    records = [{"first_name": "Ida", "email": "ida@example.com"}, {"first_name": "Jo"}, {"first_name": "Ida 2", "email": "ida@example.com"}]
    answer = api(manager).send("post", "/customers/bulk/", {"customers": records, "partial": True}).json()
    assert answer["records"][2]["errors"] == {"email": ["The same value as record 0 of this call."]}


def test_an_address_that_is_no_endpoint_is_answered_in_the_api_s_error_shape(api, manager, world):
    for path in ("/customers/abc/", "/customers/1/nothing/", "/nowhere/"):
        response = api(manager).get(path)
        assert (response.status_code, response["Content-Type"]) == (404, "application/problem+json"), path
    assert api(manager).send("patch", "/appointments/x/", {}).status_code == 404


def test_a_booking_retried_with_its_idempotency_key_is_booked_once(api, manager, world, branch_a):
    """A client that lost the answer sends the booking again: one appointment, the first answer."""
    make_service("Cut", branch_a, duration=30)
    client = api(manager)
    booked = {"branch": "alpha", "service": "Cut", "start": "2030-06-03T09:00:00+02:00", "customer_id": world["global_all"].pk}
    first = client.send("post", "/appointments/", booked, {"Idempotency-Key": "desk-42"})
    retry = client.send("post", "/appointments/", booked, {"Idempotency-Key": "desk-42"})
    assert first.status_code == retry.status_code == 201 and retry.json() == first.json()
    assert Appointment.objects.count() == 1
    # The same key for another call (another address or body) is refused, not replayed.
    assert client.send("post", "/customers/bulk/", {"customers": [{"first_name": "Uli"}]}, {"Idempotency-Key": "desk-42"}).status_code == 422
    # A refused booking leaves its key free for the corrected one.
    refused = client.send("post", "/appointments/", {**booked, "customer_id": world["local_b"].pk}, {"Idempotency-Key": "desk-43"})
    assert refused.status_code == 422
    assert client.send("post", "/appointments/", {**booked, "start": "2030-06-04T09:00:00+02:00"}, {"Idempotency-Key": "desk-43"}).status_code == 201
