"""Possible duplicates of customers created through the API: the same rules as the admin's form
and the import preview (matching.possible_duplicates), named in the answer within what the
token may see; the duplicate scan then lists the pairs as it lists everyone's."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_customer, make_service
from tests.test_api import Api, empty_cache  # noqa: F401 - the cache fixture, used by every test
from wagtail_clientdb import duplicates
from wagtail_clientdb.models import Customer, DuplicatePair

BIRTHDAY = datetime.date(1985, 4, 12)


@pytest.fixture
def api(client):
    return lambda user: Api(client, user)


def pairs_page(login, user):
    return login(user).get(reverse(DuplicatePair.snippet_viewset.get_url_name("list"))).content.decode()


def pair_of(a, b):
    return DuplicatePair.objects.filter(customer_a_id=min(a, b), customer_b_id=max(a, b)).first()


def test_a_customer_created_through_the_api_is_told_whom_it_may_be_and_the_scan_lists_the_pair(api, login, manager, branch_a):
    katrin = make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, shared_with_all_branches=True)
    response = api(manager).send("post", "/customers/", {
        "first_name": "Kathrin", "last_name": "Schmidt", "birthday": "1985-04-12", "shared_with_all_branches": True,
    })
    assert response.status_code == 201, response.content
    body = response.json()
    # Created all the same (a client has no form to come back to), and told.
    assert Customer.objects.filter(pk=body["id"], first_name="Kathrin").exists()
    assert body["possible_duplicates"] == [{"customer_id": katrin.pk, "rules": ["name_birthday"]}]

    duplicates.scan()
    assert pair_of(katrin.pk, body["id"]) is not None
    html = pairs_page(login, manager)
    assert "Kathrin Schmidt" in html and "Katrin Schmidt" in html and "Similar name and same birthday" in html

    unlike = api(manager).send("post", "/customers/", {"first_name": "Bernd", "branches": ["alpha"]})
    assert unlike.status_code == 201 and unlike.json()["possible_duplicates"] == []


def test_a_branch_token_learns_nothing_of_another_branchs_customer_it_resembles(api, login, manager, staff_a, staff_b, branch_b):
    lars = make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=branch_b)
    response = api(staff_a).send("post", "/customers/", {"first_name": "Lars", "last_name": "Localb", "email": "lars@example.com"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["possible_duplicates"] == []

    # The scan knows them both: the head office sees the pair, neither branch does.
    duplicates.scan()
    assert pair_of(lars.pk, body["id"]) is not None
    assert "Same email" in pairs_page(login, manager)
    for user in (staff_a, staff_b):
        assert "Lars" not in pairs_page(login, user)


def test_a_person_booked_through_the_api_and_created_is_told_whom_it_may_be(api, staff_a, branch_a, branch_b):
    make_service("Cut", branch_a, duration=30)
    jurgen = make_customer(first_name="Jürgen", last_name="Klein", phone_raw="+49 170 7654321", home_branch=branch_a)
    make_customer(first_name="Jürgen", last_name="Klein", phone_raw="+41 79 7654321", home_branch=branch_b)
    def start(days):
        return (timezone.now() + datetime.timedelta(days=days)).replace(microsecond=0).isoformat()

    client = api(staff_a)
    response = client.send("post", "/appointments/", {
        "branch": "alpha", "service": "Cut", "start": start(3), "customer": {"first_name": "Juergen", "last_name": "Klein", "phone": "+43 660 7654321"},
    })
    assert response.status_code == 201, response.content
    # Branch A's Jürgen only: B's is none of A's business.
    assert response.json()["possible_duplicates"] == [{"customer_id": jurgen.pk, "rules": ["name_phone"]}]

    booked = client.send("post", "/appointments/", {"branch": "alpha", "service": "Cut", "start": start(4), "customer_id": jurgen.pk})
    assert booked.status_code == 201 and booked.json()["possible_duplicates"] == []
    found = client.send("post", "/appointments/", {
        "branch": "alpha", "service": "Cut", "start": start(5), "customer": {"first_name": "Jürgen", "phone": "+49 170 7654321"},
    })
    assert found.status_code == 201 and found.json()["customer_id"] == jurgen.pk
    assert found.json()["possible_duplicates"] == []


def test_bulk_records_name_the_customers_they_may_be_within_the_tokens_scope(api, manager, staff_a, branch_a, branch_b):
    katrin = make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, shared_with_all_branches=True)
    lars = make_customer(first_name="Lars", last_name="Localb", birthday=BIRTHDAY, home_branch=branch_b)
    records = [
        {"first_name": "Kathrin", "last_name": "Schmidt", "birthday": "1985-04-12", "email": "kathrin@example.com"},
        {"first_name": "Larss", "last_name": "Localb", "birthday": "1985-04-12", "email": "larss@example.com"},
        {"first_name": "Bernd", "last_name": "Becker", "email": "bernd@example.com"},
    ]
    response = api(staff_a).send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 200, response.content
    assert [r["possible_duplicates"] for r in response.json()["records"]] == [
        [{"customer_id": katrin.pk, "rules": ["name_birthday"]}], [], [],
    ]
    assert lars.pk not in {r["id"] for r in response.json()["records"]}

    # Refused all or nothing: nobody was created, so nobody is named.
    refused = api(manager).send("post", "/customers/bulk/", {"customers": [
        {"first_name": "Katrina", "last_name": "Schmidt", "birthday": "1985-04-12", "email": "katrina@example.com"},
        {"first_name": "X", "email": "not an email"},
    ]})
    assert refused.status_code == 422
    assert [r["possible_duplicates"] for r in refused.json()["records"]] == [[], []]


def test_bulk_records_are_compared_with_the_customers_there_before_the_call_as_a_preview_compares_rows(api, manager):
    """A record is not named a possible duplicate of a customer the same call creates, whichever
    chunk (250 records, then 500, …) created it: as in the file import's preview, which writes
    nothing. The customers there before the call are named in every chunk."""
    katrin = make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, shared_with_all_branches=True)
    filler = [{"first_name": f"Filler{i}", "last_name": "Person", "email": f"filler{i}@example.com"} for i in range(300)]
    records = [
        {"first_name": "Johanna", "last_name": "Weber", "birthday": "1990-01-02", "email": "johanna@example.com"},
        *filler,
        {"first_name": "Johana", "last_name": "Weber", "birthday": "1990-01-02", "email": "johana@example.com"},
        {"first_name": "Kathrin", "last_name": "Schmidt", "birthday": "1985-04-12", "email": "kathrin@example.com"},
    ]
    response = api(manager).send("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 200, response.content
    named = {r["index"]: r["possible_duplicates"] for r in response.json()["records"] if r["possible_duplicates"]}
    assert named == {302: [{"customer_id": katrin.pk, "rules": ["name_birthday"]}]}
    # The duplicate scan lists the two new customers, as it lists everyone's.
    duplicates.scan()
    johanna, johana = (Customer.objects.get(email=f"{name}@example.com").pk for name in ("johanna", "johana"))
    assert pair_of(johanna, johana) is not None
