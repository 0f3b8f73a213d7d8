"""Every cell of the permission matrix (docs/permissions.md), through the real admin URLs.

Roles: branch manager, staff of branch A, staff of branch B, an editor in no branch.
Customers: shared with all branches, shared with A only, local to A, local to B.
"""

import csv
import io

import openpyxl
import pytest
from django.urls import reverse

from tests.conftest import customer_url, post_bulk, post_edit
from wagtail_clientdb.models import Customer

CUSTOMERS = ["global_all", "global_a", "local_a", "local_b"]

VISIBLE = {
    "manager": {"global_all", "global_a", "local_a", "local_b"},
    "staff_a": {"global_all", "global_a", "local_a"},
    "staff_b": {"global_all", "local_b"},
    "editor": set(),
}

# How each role may change each visible customer, with and without
# "branches may edit global customers".
EDIT_MODE = {
    False: {
        "manager": dict.fromkeys(CUSTOMERS, "direct"),
        "staff_a": {"global_all": "read_only", "global_a": "read_only", "local_a": "direct"},
        "staff_b": {"global_all": "read_only", "local_b": "direct"},
        "editor": {},
    },
    True: {
        "manager": dict.fromkeys(CUSTOMERS, "direct"),
        "staff_a": {"global_all": "override", "global_a": "override", "local_a": "direct"},
        "staff_b": {"global_all": "override", "local_b": "direct"},
        "editor": {},
    },
}

DELETABLE = {
    "manager": set(CUSTOMERS),
    "staff_a": {"local_a"},
    "staff_b": {"local_b"},
    "editor": set(),
}

ROLES = list(VISIBLE)


@pytest.fixture
def users(manager, staff_a, staff_b, editor):
    return {"manager": manager, "staff_a": staff_a, "staff_b": staff_b, "editor": editor}


@pytest.mark.parametrize("role", ROLES)
def test_listing_shows_exactly_the_visible_customers(login, users, scope_customers, role):
    response = login(users[role]).get(customer_url("list"))
    assert response.status_code == 200
    listed = {c.pk for c in response.context["object_list"]}
    assert listed == {scope_customers[name].pk for name in VISIBLE[role]}
    assert response.context["items_count"] == len(VISIBLE[role])
    html = response.content.decode()
    for name in set(CUSTOMERS) - VISIBLE[role]:
        assert scope_customers[name].last_name not in html
        assert scope_customers[name].email not in html


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
@pytest.mark.parametrize("view", ["inspect", "history", "usage"])
def test_object_views_answer_404_for_invisible_customers(login, users, scope_customers, role, name, view):
    response = login(users[role]).get(customer_url(view, scope_customers[name].pk))
    if name in VISIBLE[role]:
        assert response.status_code == 200
    else:
        assert response.status_code == 404
        assert scope_customers[name].last_name not in response.content.decode()


@pytest.mark.parametrize("may_edit", [False, True])
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_edit_view(login, users, scope_customers, settings_model, role, name, may_edit):
    settings_model.branches_may_edit_global_customers = may_edit
    settings_model.save()
    customer = scope_customers[name]
    client = login(users[role])
    response = client.get(customer_url("edit", customer.pk))
    mode = EDIT_MODE[may_edit][role].get(name)
    if mode is None:
        assert response.status_code == 404
    elif mode == "read_only":
        assert response.status_code == 302
        assert response.url == customer_url("inspect", customer.pk)
    else:
        assert response.status_code == 200
        assert response.context["edit_mode"] == mode


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_edit_post_changes_only_what_the_role_may_change(login, users, scope_customers, role, name):
    customer = scope_customers[name]
    before = Customer.objects.values().get(pk=customer.pk)
    response = post_edit(login(users[role]), customer, {"first_name": "Changed", "last_name": customer.last_name, "email": customer.email, "sharing": "specific", "share_branches": [branch.pk for branch in customer.branches.all()]},
    )
    customer.refresh_from_db()
    if EDIT_MODE[False][role].get(name) == "direct":
        assert response.status_code == 302
        assert customer.first_name == "Changed"
    else:
        assert response.status_code in (302, 404)
        assert Customer.objects.values().get(pk=customer.pk) == before


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_delete_view(login, users, scope_customers, role, name):
    customer = scope_customers[name]
    client = login(users[role])
    response = client.get(customer_url("delete", customer.pk))
    if name not in VISIBLE[role]:
        assert response.status_code == 404
    elif name in DELETABLE[role]:
        assert response.status_code == 200
    else:
        # Refused: Wagtail turns PermissionDenied into a redirect with a message.
        assert response.status_code == 302
        assert response.url == reverse("wagtailadmin_home")
    response = client.post(customer_url("delete", customer.pk))
    assert Customer.objects.filter(pk=customer.pk).exists() == (name not in DELETABLE[role])


@pytest.mark.parametrize("role", ROLES)
def test_create_makes_global_customers_for_managers_and_local_ones_for_branches(login, users, branch_a, branch_b, role):
    data = {"first_name": "Neu", "last_name": role, "sharing": "specific", "share_branches": [branch_a.pk]}
    response = login(users[role]).post(customer_url("add"), data)
    created = Customer.objects.filter(last_name=role).first()
    if role == "editor":
        assert response.status_code == 302 and response.url == reverse("wagtailadmin_home")
        assert created is None
    elif role == "manager":
        assert created.is_global
    else:
        assert created.home_branch == {"staff_a": branch_a, "staff_b": branch_b}[role]
        assert not created.shared_with_all_branches


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
def test_export_contains_exactly_the_visible_customers(login, users, scope_customers, role, export_format):
    response = login(users[role]).get(customer_url("list"), {"export": export_format})
    assert response.status_code == 200
    body = b"".join(response.streaming_content)
    if export_format == "csv":
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    else:
        rows = list(openpyxl.load_workbook(io.BytesIO(body), read_only=True).active.values)
    emails = {row[2] for row in rows[1:]}
    assert emails == {scope_customers[name].email for name in VISIBLE[role]}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_bulk_add_tags(login, users, scope_customers, role, name):
    customer = scope_customers[name]
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_tags")) + f"?id={customer.pk}"
    client = login(users[role])
    response = client.get(url)
    if name not in VISIBLE[role]:
        assert response.status_code == 404
    else:
        assert response.status_code == 200
    post_bulk(client, url, {"tags": "bulk"})
    tagged = customer.tags.filter(name="bulk").exists()
    assert tagged == (EDIT_MODE[False][role].get(name) == "direct")


@pytest.mark.parametrize("role", ROLES)
def test_bulk_select_all_reaches_only_visible_customers(login, users, scope_customers, role):
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_tags")) + "?id=all"
    client = login(users[role])
    post_bulk(client, url, {"tags": "everyone"})
    tagged = set(Customer.objects.filter(tags__name="everyone").values_list("pk", flat=True))
    directly_editable = {n for n, mode in EDIT_MODE[False][role].items() if mode == "direct"}
    assert tagged == {scope_customers[n].pk for n in directly_editable}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_chooser_lists_and_chooses_only_visible_customers(login, users, scope_customers, role, name):
    client = login(users[role])
    customer = scope_customers[name]
    listing = client.get(reverse("wagtailsnippetchoosers_wagtail_clientdb_customer:choose_results"))
    assert (customer.last_name in listing.content.decode()) == (name in VISIBLE[role])
    chosen = client.get(reverse("wagtailsnippetchoosers_wagtail_clientdb_customer:chosen", args=(customer.pk,)))
    assert chosen.status_code == (200 if name in VISIBLE[role] else 404)


#: Whom each role may merge (with a duplicate of the same scope) and undo the merge of.
MERGEABLE = {
    "manager": set(CUSTOMERS),
    "staff_a": {"local_a"},
    "staff_b": {"local_b"},
    "editor": set(),
}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", CUSTOMERS)
def test_merge(login, users, scope_customers, role, name):
    customer = scope_customers[name]
    duplicate = Customer.objects.create(
        first_name=customer.first_name, last_name=customer.last_name, home_branch=customer.home_branch,
        shared_with_all_branches=customer.shared_with_all_branches,
    )
    duplicate.branches.set(customer.branches.all())
    client = login(users[role])
    url = reverse("wagtailsnippets_wagtail_clientdb_customer:merge") + f"?id={customer.pk}&id={duplicate.pk}"
    response = client.get(url)
    if name in MERGEABLE[role]:
        assert response.status_code == 200
    elif name in VISIBLE[role]:
        assert response.status_code == 302  # back to the listing, with the reason
    else:
        assert response.status_code in (403, 404) and customer.last_name not in response.content.decode()
    client.post(url, {"survivor": customer.pk, "versions": f'{{"{customer.pk}": {customer.version}, "{duplicate.pk}": {duplicate.version}}}', "confirm": "1"})
    assert Customer.objects.filter(pk=duplicate.pk).exists() == (name not in MERGEABLE[role])


#: Saved filters: a private one of staff A, one shared with branch A, one with the company.
VISIBLE_SEGMENTS = {
    "manager": {"branch_a", "company"},
    "staff_a": {"private_a", "branch_a", "company"},
    "staff_b": {"company"},
    "editor": {"company"},
}
#: Who may change them (the owner; managers the shared ones).
CHANGEABLE_SEGMENTS = {"manager": {"branch_a", "company"}, "staff_a": {"private_a", "branch_a"}, "staff_b": set(), "editor": set()}


@pytest.mark.parametrize("role", ROLES)
def test_segments_are_listed_opened_and_changed_by_their_sharing(login, users, branch_a, role):
    from wagtail_clientdb.models import Segment

    segments = {
        "private_a": Segment.objects.create(name="Private A", owner=users["staff_a"], visibility="private"),
        "branch_a": Segment.objects.create(name="Branch A", owner=users["staff_a"], visibility="branch", branch=branch_a),
        "company": Segment.objects.create(name="Company", owner=users["manager"], visibility="company"),
    }
    client = login(users[role])
    listing = client.get(reverse("wagtailsnippets_wagtail_clientdb_segment:list"))
    assert {s.pk for s in listing.context["object_list"]} == {segments[n].pk for n in VISIBLE_SEGMENTS[role]}
    for name, segment in segments.items():
        response = client.get(reverse("wagtailsnippets_wagtail_clientdb_segment:edit", args=(segment.pk,)))
        if name not in VISIBLE_SEGMENTS[role]:
            assert response.status_code == 404
        else:
            assert response.status_code == (200 if name in CHANGEABLE_SEGMENTS[role] else 302)
