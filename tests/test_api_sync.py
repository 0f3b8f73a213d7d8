"""A client that keeps a copy (issue #12) reads every change once its sync is done: the lists of
changes are ordered oldest first and paged after the change read last (``after_id``), so a
change between two pages loses nothing, and ``Next-Updated-Since`` names a moment no later
commit is dated before — an import dates its rows at its start and commits later."""

import datetime
import threading

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import make_appointment, make_customer
from tests.test_api import Api
from wagtail_clientdb import sync
from wagtail_clientdb.models import Appointment, Customer

LIMIT = 2


def copy_changes(api, path, since, **params):
    """Page through the changes as docs/api.md says: after the change read last. Returns the
    ids read, in order, and the first answer's Next-Updated-Since."""
    read, after_id, next_since, between = [], None, None, params.pop("between_pages", None)
    for _page in range(20):
        asked = {"updated_since": since, "limit": LIMIT, **params}
        if after_id is not None:
            asked["after_id"] = after_id
        response = api.get(path, asked)
        assert response.status_code == 200, response.content
        next_since = next_since or response.headers["Next-Updated-Since"]
        items = response.json()["items"]
        read += [item["id"] for item in items]
        if len(items) < LIMIT:
            return read, next_since
        since, after_id = items[-1]["updated_at"], items[-1]["id"]
        if between:
            between(len(read))
    raise AssertionError(f"the pages never ended: {read}")


def dated(changed, start):
    """Customers or appointments changed a minute apart, from ``start`` on."""
    for minutes, row in enumerate(changed):
        type(row).objects.filter(pk=row.pk).update(updated_at=start + datetime.timedelta(minutes=minutes))


@pytest.fixture
def five(branch_a):
    return [make_customer(first_name=f"Kunde {n}", last_name="Zett", home_branch=branch_a) for n in range(5)]


def test_changes_are_listed_oldest_first_and_paged_after_the_one_read_last(client, staff_a, five):
    start = timezone.now() - datetime.timedelta(hours=1)
    dated(reversed(five), start)
    read, _next = copy_changes(Api(client, staff_a), "/customers/", start.isoformat())
    assert read == [customer.pk for customer in reversed(five)]


def test_a_change_between_two_pages_loses_no_other_change(client, staff_a, five):
    """Between two pages the first customer read changes again (it moves to the end) and the
    second is deleted: by offset the next page would start one customer late and skip it."""
    start = timezone.now() - datetime.timedelta(hours=1)
    dated(five, start)
    api = Api(client, staff_a)

    def change_what_was_read(read_so_far):
        if read_so_far == LIMIT:
            Customer.objects.filter(pk=five[0].pk).update(notes="again", updated_at=timezone.now())
            Customer.objects.filter(pk=five[1].pk).delete()

    read, _next = copy_changes(api, "/customers/", start.isoformat(), between_pages=change_what_was_read)
    assert read == [five[0].pk, five[1].pk, five[2].pk, five[3].pk, five[4].pk, five[0].pk]
    # By offset, the same change between the pages skips the third customer.
    dated(five[2:], start)
    first = api.get("/customers/", {"updated_since": start.isoformat(), "limit": LIMIT}).json()["items"]
    Customer.objects.filter(pk=first[0]["id"]).update(updated_at=timezone.now())
    second = api.get("/customers/", {"updated_since": start.isoformat(), "limit": LIMIT, "offset": LIMIT}).json()["items"]
    assert five[4].pk not in {item["id"] for item in first + second}


def test_changes_of_one_moment_are_paged_by_id(client, manager, branch_a):
    """An import dates every customer it updates alike: more of them than a page are read in turns."""
    records = [{"first_name": f"Gleich {n}", "last_name": "Zeit", "email": f"gleich{n}@example.com"} for n in range(5)]
    api = Api(client, manager)
    assert api.send("post", "/customers/bulk/", {"customers": records}).status_code == 200
    since = timezone.now()
    updated = [{**record, "notes": "again"} for record in records]
    assert api.send("post", "/customers/bulk/", {"customers": updated}).json()["updated"] == 5
    changed = list(Customer.objects.filter(last_name="Zeit").order_by("pk").values_list("pk", "updated_at"))
    assert len({updated_at for _pk, updated_at in changed}) == 1
    read, _next = copy_changes(api, "/customers/", since.isoformat())
    assert read == [pk for pk, _updated_at in changed]


def test_a_branch_s_local_values_date_its_change(client, staff_a, five, scope_customers, allow_branch_edits):
    from wagtail_clientdb import overrides

    start = timezone.now() - datetime.timedelta(hours=1)
    shared = scope_customers["global_all"]
    Customer.objects.update(updated_at=start - datetime.timedelta(hours=1))
    dated(five[:2], start)
    overrides.save_local_values(shared, five[0].home_branch, {"notes": "Alpha's note"})
    read, _next = copy_changes(Api(client, staff_a), "/customers/", start.isoformat())
    assert read == [five[0].pk, five[1].pk, shared.pk]


def test_after_id_needs_the_time_of_the_change_read_last(client, staff_a):
    response = Api(client, staff_a).get("/customers/", {"after_id": 3})
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"][-1] == "after_id"


def test_the_next_sync_asks_from_a_moment_before_now(client, staff_a):
    api = Api(client, staff_a)
    before = timezone.now()
    for path, params in (("/customers/", {"updated_since": "1900-01-01"}), ("/appointments/", {"updated_since": "1900-01-01"}), ("/customers/removed/", {}), ("/appointments/removed/", {})):
        told = datetime.datetime.fromisoformat(api.get(path, params).headers["Next-Updated-Since"])
        assert before - sync.MARGIN - datetime.timedelta(seconds=5) <= told <= timezone.now() - sync.MARGIN
    # A list that is not asked for changes says nothing of the kind.
    assert "Next-Updated-Since" not in api.get("/customers/").headers


def test_appointments_are_paged_after_the_change_read_last(client, staff_a, branch_a, five):
    start = timezone.now() - datetime.timedelta(hours=1)
    booked = [make_appointment(customer, branch_a, days=5 - n) for n, customer in enumerate(five)]
    dated(booked, start)
    api = Api(client, staff_a)

    def change_what_was_read(read_so_far):
        if read_so_far == LIMIT:
            Appointment.objects.filter(pk=booked[0].pk).update(status="cancelled", updated_at=timezone.now())

    read, _next = copy_changes(api, "/appointments/", start.isoformat(), between_pages=change_what_was_read)
    assert read == [*(appointment.pk for appointment in booked), booked[0].pk]


def test_the_schema_names_the_paging_and_the_header(client, staff_a):
    schema = client.get("/api/v3/openapi.json").json()
    for path in ("/api/v3/clientdb/customers/", "/api/v3/clientdb/appointments/"):
        operation = schema["paths"][path]["get"]
        assert "after_id" in {parameter["name"] for parameter in operation["parameters"]}
        assert "Next-Updated-Since" in operation["responses"]["200"]["headers"]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite shows no one's transactions; one process writes at a time")
@pytest.mark.django_db(transaction=True)
def test_a_write_still_open_is_asked_for_again_next_time(client, django_user_model, branch_a):
    """An import dates its customers when it starts and commits later: the sync that runs
    meanwhile does not see them, and the moment it is told to ask from next time is before
    their date — the next sync reads them."""
    # A superuser: the roles' permissions (some made by migrations) are gone after an earlier
    # test's flush of the database.
    api = Api(client, django_user_model.objects.create_superuser("sync", "sync@example.com", "sync"))
    written, commit = threading.Event(), threading.Event()
    problems, importing = [], {}

    def long_import():
        try:
            with transaction.atomic():
                importing["date"] = timezone.now()
                customer = make_customer(first_name="Spät", last_name="Import", home_branch=branch_a)
                Customer.objects.filter(pk=customer.pk).update(updated_at=importing["date"])
                importing["id"] = customer.pk
                written.set()
                commit.wait(10)
        except Exception as error:  # reported below
            problems.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=long_import)
    thread.start()
    assert written.wait(10)
    # Meanwhile another change is made and read: the latest time read is after the import's date.
    other = make_customer(first_name="Zwischen", last_name="Durch", home_branch=branch_a)
    read, next_since = copy_changes(api, "/customers/", (importing["date"] - datetime.timedelta(minutes=1)).isoformat())
    assert read == [other.pk]
    commit.set()
    thread.join()
    assert problems == []
    assert datetime.datetime.fromisoformat(next_since) <= importing["date"]
    read, _next = copy_changes(api, "/customers/", next_since)
    assert importing["id"] in read


def test_a_group_renamed_or_deleted_in_the_admin_is_a_change_of_its_members(client, login, manager, staff_a, five):
    """A copy that shows its customers' groups by name learns of the new name, and of a group
    gone, from its next sync: the members chosen by hand are changed with the group."""
    from tests.test_segments import group_url
    from wagtail_clientdb.models import CustomerGroup

    group = CustomerGroup.objects.create(name="Stammkunden")
    member, other = five[0], five[1]
    member.groups.add(group)
    start = timezone.now() - datetime.timedelta(hours=1)
    dated(five, start)
    api, admin = Api(client, staff_a), login(manager)
    since = (timezone.now() - datetime.timedelta(minutes=1)).isoformat()

    def changed():
        response = api.get("/customers/", {"updated_since": since})
        assert response.status_code == 200, response.content
        return {item["id"]: item["groups"] for item in response.json()["items"]}

    assert changed() == {}
    response = admin.post(group_url("edit", group.pk), {"name": "Treue Kunden", "description": ""})
    assert response.status_code == 302, response.content
    assert changed() == {member.pk: ["Treue Kunden"]}
    since = timezone.now().isoformat()
    admin.post(group_url("edit", group.pk), {"name": "Treue Kunden", "description": "Saved again"})
    assert changed() == {}
    response = admin.post(group_url("delete", group.pk))
    assert response.status_code == 302 and not CustomerGroup.objects.exists()
    assert changed() == {member.pk: []}
    assert other.pk not in changed()


def test_a_branch_s_changes_are_paged_by_the_later_of_record_and_local_values(client, staff_a, branch_a, branch_b, allow_branch_edits):
    """The customers whose record changed last and those whose local values did are read apart
    (:func:`sync.page_of_changes`) and merged: every page, after every change read last, in the
    order of the date the branch sees, ties by id, whichever of the two dates it is."""
    from wagtail_clientdb import overrides
    from wagtail_clientdb.models import CustomerOverride

    start = timezone.now() - datetime.timedelta(hours=1)

    def at(minutes):
        return start + datetime.timedelta(minutes=minutes)

    # name: (the record's change, branch A's local values' change or None); minutes after start.
    dates = {
        "record only": (1, None), "local later": (2, 5), "local earlier": (3, 0), "record at 4": (4, None),
        "local at 4": (-3, 4), "local since, record before": (-1, 6), "both before": (-2, -1),
        "local same minute": (7, 7), "another branch's local values": (8, None),
    }
    customers = {name: make_customer(first_name=name, last_name="Zett", shared_with_all_branches=True) for name in dates}
    overrides.save_local_values(customers["another branch's local values"], branch_b, {"notes": "B"})
    CustomerOverride.objects.filter(branch=branch_b).update(updated_at=at(9))
    for name, (record, local) in dates.items():
        if local is not None:
            overrides.save_local_values(customers[name], branch_a, {"notes": name})
            CustomerOverride.objects.filter(customer=customers[name], branch=branch_a).update(updated_at=at(local))
        Customer.objects.filter(pk=customers[name].pk).update(updated_at=at(record))
    seen_at = {name: max(record, local if local is not None else record) for name, (record, local) in dates.items()}
    expected = sorted((name for name in dates if seen_at[name] >= 0), key=lambda name: (seen_at[name], customers[name].pk))
    api = Api(client, staff_a)
    for since in (0, 4):
        read, _next = copy_changes(api, "/customers/", at(since).isoformat())
        assert read == [customers[name].pk for name in expected if seen_at[name] >= since]
    items = api.get("/customers/", {"updated_since": at(0).isoformat(), "limit": 20}).json()["items"]
    assert [item["updated_at"] for item in items] == [schemas_time(at(seen_at[name])) for name in expected]
    assert api.get("/customers/", {"updated_since": at(0).isoformat(), "limit": 2, "offset": 3}).json()["items"][0]["id"] == customers[expected[3]].pk


def test_a_branch_s_pages_of_changes_are_those_of_one_query_ordered_by_the_date_it_sees(client, staff_a, branch_a, allow_branch_edits):
    """Thirty customers with records and local values dated at random, many alike: paged two at a
    time after the change read last, from several dates, a branch reads what one query ordered by
    the date the branch sees lists (the way lists of changes were read before they were split)."""
    import random

    from wagtail_clientdb import overrides
    from wagtail_clientdb.models import CustomerOverride

    chance = random.Random(44)
    start = timezone.now() - datetime.timedelta(hours=1)
    customers = [make_customer(first_name=f"Kunde {n}", last_name="Zufall", shared_with_all_branches=True) for n in range(30)]
    for customer in customers:
        if chance.random() < 0.5:
            overrides.save_local_values(customer, branch_a, {"notes": "local"})
            CustomerOverride.objects.filter(customer=customer).update(updated_at=start + datetime.timedelta(minutes=chance.randint(-3, 8)))
        Customer.objects.filter(pk=customer.pk).update(updated_at=start + datetime.timedelta(minutes=chance.randint(-3, 8)))
    seen = overrides.with_effective_values(Customer.objects.filter(last_name="Zufall"), branch_a)
    api = Api(client, staff_a)
    for minutes in (-4, 0, 3, 8):
        since = start + datetime.timedelta(minutes=minutes)
        read, _next = copy_changes(api, "/customers/", since.isoformat())
        assert read == list(sync.changed_since(seen, since, field="eff_updated_at").values_list("pk", flat=True))


def schemas_time(moment):
    from wagtail_clientdb.api.v3 import schemas

    return schemas.to_the_microsecond(moment)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan shown is PostgreSQL's")
@pytest.mark.parametrize("archived", ["any", "no"])
@pytest.mark.parametrize("after_one", [False, True], ids=["first-page", "next-page"])
def test_the_company_s_changes_are_read_in_order_from_their_index(client, manager, five, after_one, archived):
    """A head office's copy of a million customers pages through a range of the index of changes
    (``clientdb_customer_changes``), each page starting where the last ended, instead of sorting
    every customer for each page: with the archived customers, as a copy is kept, and without."""
    start = timezone.now() - datetime.timedelta(hours=1)
    dated(five, start)
    asked = {"updated_since": start.isoformat(), "limit": LIMIT, "archived": archived}
    if after_one:
        asked.update(updated_since=(start + datetime.timedelta(minutes=1)).isoformat(), after_id=five[1].pk)
    with CaptureQueriesContext(connection) as queries:
        response = Api(client, manager).get("/customers/", asked)
    assert [item["id"] for item in response.json()["items"]] == [customer.pk for customer in five[2 if after_one else 0 :][:LIMIT]]
    assert_page_read_from("clientdb_customer_changes", queries, "wagtail_clientdb_customer")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan shown is PostgreSQL's")
@pytest.mark.parametrize("after_one", [False, True], ids=["first-page", "next-page"])
@pytest.mark.parametrize("who, index", [("manager", "clientdb_appt_changes"), ("staff_a", "clientdb_appt_branch_changes")])
def test_appointment_changes_are_read_in_order_from_their_index(request, client, branch_a, five, who, index, after_one):
    """The company's and a branch's copies of two million appointments page through a range of
    an index of changes, not a sort of every appointment for each page."""
    start = timezone.now() - datetime.timedelta(hours=1)
    booked = [make_appointment(customer, branch_a, days=5 - n) for n, customer in enumerate(five)]
    dated(booked, start)
    asked = {"updated_since": start.isoformat(), "limit": LIMIT}
    if after_one:
        asked.update(updated_since=(start + datetime.timedelta(minutes=1)).isoformat(), after_id=booked[1].pk)
    with CaptureQueriesContext(connection) as queries:
        response = Api(client, request.getfixturevalue(who)).get("/appointments/", asked)
    assert [item["id"] for item in response.json()["items"]] == [appointment.pk for appointment in booked[2 if after_one else 0 :][:LIMIT]]
    assert_page_read_from(index, queries, "wagtail_clientdb_appointment")


def assert_page_read_from(index, queries, table):
    """The page's query, planned with sorting and scans made prohibitively expensive (the planner
    shows what it can do without), reads a range of ``index`` from ``updated_since`` on, in order."""
    (page,) = [query["sql"] for query in queries.captured_queries if f'ORDER BY "{table}"."updated_at"' in query["sql"]]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + page)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan and "Sort" not in plan, plan
    index_condition = next(line for line in plan.splitlines() if "Index Cond" in line)
    assert "updated_at >=" in index_condition, plan
