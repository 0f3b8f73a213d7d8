"""The listings take the same number of queries however many branches, tags, groups and
attributes the company has: their cost must grow with the page, never with the catalogue."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb.models import AttributeDefinition, Branch, CustomerGroup, CustomerOverride


def queries_of(client, url):
    client.get(url)  # warm caches (settings, content types)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def grow_the_company(n, home, *, start):
    """``n`` more branches, groups, tags and attributes, and a customer using each of them."""
    for i in range(start, start + n):
        branch = Branch.objects.create(name=f"Branch {i}", slug=f"branch-{i}", timezone="Europe/Berlin")
        group = CustomerGroup.objects.create(name=f"Group {i}")
        AttributeDefinition.objects.create(label=f"Attribute {i}", key=f"attribute_{i}", field_type="text")
        AttributeDefinition.objects.create(label=f"Booking {i}", key=f"booking_{i}", field_type="text", applies_to="booking")
        customer = make_customer(
            first_name=f"First {i}", last_name=f"Last {i}", branches=[home, branch], attributes={f"attribute_{i}": "x"}
        )
        customer.groups.add(group)
        customer.tags.add(f"tag {i}")
        CustomerOverride.objects.create(customer=customer, branch=home, notes=f"local {i}")
        appointment = make_appointment(customer, home)
        appointment.attributes = {f"booking_{i}": "y"}
        appointment.save()


@pytest.mark.parametrize(
    "listing",
    [
        "wagtailsnippets_wagtail_clientdb_customer:list",
        "wagtailsnippets_wagtail_clientdb_appointment:list",
        "wagtailsnippets_wagtail_clientdb_appointment:week",
    ],
)
def test_listings_take_the_same_queries_for_a_bigger_company(login, manager, staff_a, branch_a, listing):
    url = reverse(listing)
    grow_the_company(2, branch_a, start=0)
    small = {user: queries_of(login(user), url) for user in (manager, staff_a)}
    grow_the_company(8, branch_a, start=2)
    big = {user: queries_of(login(user), url) for user in (manager, staff_a)}
    assert big == small


@pytest.mark.skipif(connection.vendor != "postgresql", reason="only PostgreSQL reads through server-side cursors")
@pytest.mark.parametrize(
    "listing, choices",
    [
        ("wagtailsnippets_wagtail_clientdb_customer:list", "wagtail_clientdb_customertag"),
        ("wagtailsnippets_wagtail_clientdb_appointment:list", "wagtail_clientdb_service"),
    ],
)
def test_filter_choices_are_read_in_one_query(login, manager, staff_a, branch_a, listing, choices):
    """Tags, groups, branches and services offered by the filters: one query each, not a
    server-side cursor (DECLARE, FETCH, FETCH, CLOSE) as Django's model choice fields read them."""
    grow_the_company(2, branch_a, start=0)
    for user in (manager, staff_a):
        client = login(user)
        client.get(reverse(listing))
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(listing)).status_code == 200
        assert [q for q in queries if f'FROM "{choices}"' in q["sql"]]
        assert not [q for q in queries if q["sql"].startswith("DECLARE")]
