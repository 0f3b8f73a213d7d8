"""Global and local customers, irreversible "all branches", local overrides, the branch switcher."""

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from wagtail_clientdb.models import CustomerTag

from tests.conftest import customer_url, listing_counts, make_customer, post_bulk, post_edit
from wagtail_clientdb import overrides, scope
from wagtail_clientdb.models import Branch, BranchMembership, Customer, CustomerOverride


def listed(response):
    return {c.pk: c for c in response.context["object_list"]}


def edit_post(customer, **changes):
    data = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone_raw": customer.phone_raw,
        "notes": customer.notes,
        "birthday": customer.birthday or "",
    }
    data.update(changes)
    return data


# --- Override round trip --------------------------------------------------------------------


@pytest.fixture
def shared(db, branch_a, branch_b):
    return make_customer(
        first_name="Paula", last_name="Pauls", email="paula@example.com", phone_raw="+49 170 1111111",
        shared_with_all_branches=True,
    )


def test_override_round_trip(login, manager, staff_a, staff_b, shared, allow_branch_edits, branch_a):
    client_a = login(staff_a)
    response = post_edit(client_a, shared, edit_post(shared, phone_raw="0170 2222222"))
    assert response.status_code == 302

    # The global record is untouched; A keeps a local phone.
    shared.refresh_from_db()
    assert shared.phone == "+491701111111"
    override = CustomerOverride.objects.get(customer=shared, branch=branch_a)
    assert (override.phone_raw, override.phone, override.email, override.first_name) == ("0170 2222222", "+491702222222", None, None)

    # A sees the new phone everywhere it looks; B and the head office see the old one.
    assert listed(client_a.get(customer_url("list")))[shared.pk].eff_phone == "+491702222222"
    assert "+49 170 2222222" in client_a.get(customer_url("inspect", shared.pk)).content.decode()
    assert len(listed(client_a.get(customer_url("list"), {"q": "0170 2222222"}))) == 1
    assert listed(login(staff_b).get(customer_url("list")))[shared.pk].eff_phone == "+491701111111"
    assert not listed(login(staff_b).get(customer_url("list"), {"q": "0170 2222222"}))
    central = login(manager)
    assert listed(central.get(customer_url("list")))[shared.pk].eff_phone == "+491701111111"

    # The head office changes the email: A sees it, because A did not override the email.
    response = post_edit(central, shared, {**edit_post(shared, email="paula.new@example.com"), "sharing": "all"})
    assert response.status_code == 302
    row = listed(login(staff_a).get(customer_url("list")))[shared.pk]
    assert (row.eff_email, row.eff_phone) == ("paula.new@example.com", "+491702222222")
    # ... and the manager sees which branch keeps which local value.
    central = login(manager)
    assert "Alpha Salon" in str(central.get(customer_url("edit", shared.pk)).context["local_values"][0]["branch"])


def test_override_shown_in_export_of_the_branch(login, staff_a, staff_b, shared, allow_branch_edits, branch_a):
    overrides.save_local_values(shared, branch_a, {"last_name": "Local-Pauls"})
    body_a = b"".join(login(staff_a).get(customer_url("list"), {"export": "csv"}).streaming_content).decode("utf-8-sig")
    body_b = b"".join(login(staff_b).get(customer_url("list"), {"export": "csv"}).streaming_content).decode("utf-8-sig")
    assert "Local-Pauls" in body_a and "Local-Pauls" not in body_b


def test_override_form_shows_local_fields_and_resets_them(login, staff_a, shared, allow_branch_edits, branch_a):
    overrides.save_local_values(shared, branch_a, {"phone_raw": "0170 2222222", "notes": "Prefers mornings"})
    client = login(staff_a)
    form = client.get(customer_url("edit", shared.pk)).context["form"]
    assert form.initial["phone_raw"] == "+49 170 2222222"
    assert dict(form.fields["reset_to_global"].choices).keys() == {"phone_raw", "notes"}
    assert "Global value: +49 170 1111111" in form.fields["phone_raw"].help_text
    # Branch staff editing a global customer only get the fields that can be local.
    assert "tags" not in form.fields and "groups" not in form.fields and "sharing" not in form.fields

    response = post_edit(client, shared, {**edit_post(shared, phone_raw="0170 2222222", notes="Prefers mornings"), "reset_to_global": ["phone_raw"]},
    )
    assert response.status_code == 302
    override = CustomerOverride.objects.get(customer=shared, branch=branch_a)
    assert (override.phone_raw, override.notes) == (None, "Prefers mornings")

    post_edit(client, shared, {**edit_post(shared), "reset_to_global": ["notes"]})
    assert not CustomerOverride.objects.filter(customer=shared).exists()


def test_a_phone_looks_the_same_in_the_listing_the_form_and_the_local_value_hint(
    login, staff_a, manager, allow_branch_edits, branch_a
):
    customer = make_customer(first_name="Tom", last_name="Typed", phone_raw="030 1234567", shared_with_all_branches=True)
    overrides.save_local_values(customer, branch_a, {"notes": "Local note"})
    shown = "+49 30 1234567"
    for user in (manager, staff_a):
        client = login(user)
        assert shown in client.get(customer_url("list")).content.decode()
        form = client.get(customer_url("edit", customer.pk)).context["form"]
        assert form["phone_raw"].value() == shown
    overrides.save_local_values(customer, branch_a, {"phone_raw": "0170 2222222"})
    form = login(staff_a).get(customer_url("edit", customer.pk)).context["form"]
    assert form["phone_raw"].value() == "+49 170 2222222"
    assert f"Global value: {shown}" in form.fields["phone_raw"].help_text
    # Sending the form back as shown changes nothing: not the typed form, not a local value.
    response = post_edit(login(manager), customer, {**edit_post(customer, phone_raw=shown), "sharing": "all"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert (customer.phone_raw, customer.phone) == ("030 1234567", "+49301234567")
    client = login(staff_a)
    post_edit(client, customer, edit_post(customer, phone_raw="+49 170 2222222", notes="Local note"))
    assert CustomerOverride.objects.get(customer=customer, branch=branch_a).phone_raw == "0170 2222222"


def test_typing_the_global_value_is_no_local_value(shared, branch_a):
    overrides.save_local_values(shared, branch_a, {"phone_raw": "0170 1111111", "email": " PAULA@example.com"})
    assert not CustomerOverride.objects.filter(customer=shared).exists()


def test_branch_cannot_post_fields_outside_its_local_values(login, staff_a, shared, allow_branch_edits):
    client = login(staff_a)
    post_edit(client, shared, {**edit_post(shared), "tags": "hacked", "sharing": "specific", "external_id": "X"})
    shared.refresh_from_db()
    assert (list(shared.tags.names()), shared.external_id, shared.shared_with_all_branches) == ([], "", True)


def test_read_only_global_customer_shows_badge_and_no_edit_link(login, staff_a, shared):
    client = login(staff_a)
    html = client.get(customer_url("list")).content.decode()
    assert "global" in html
    assert customer_url("edit", shared.pk) not in html
    assert customer_url("inspect", shared.pk) in html
    response = client.get(customer_url("edit", shared.pk), follow=True)
    assert "read-only in your branch" in response.content.decode()


def test_setting_change_takes_effect_on_the_next_request(login, staff_a, shared, settings_model):
    client = login(staff_a)
    assert client.get(customer_url("edit", shared.pk)).status_code == 302
    settings_model.branches_may_edit_global_customers = True
    settings_model.save()
    assert client.get(customer_url("edit", shared.pk)).status_code == 200
    settings_model.branches_may_edit_global_customers = False
    settings_model.save()
    response = post_edit(client, shared, edit_post(shared, first_name="Too late"))
    assert response.status_code == 302
    assert not CustomerOverride.objects.exists()


def test_local_customer_is_edited_directly_by_its_branch(login, staff_a, branch_a):
    local = make_customer(first_name="Lea", home_branch=branch_a)
    response = post_edit(login(staff_a), local, edit_post(local, notes="Direct"))
    assert response.status_code == 302
    local.refresh_from_db()
    assert local.notes == "Direct"
    assert not CustomerOverride.objects.exists()


def test_central_change_is_seen_by_every_branch_on_next_request(login, manager, staff_a, staff_b, shared):
    client_a = login(staff_a)
    assert listed(client_a.get(customer_url("list")))[shared.pk].eff_first_name == "Paula"
    Customer.objects.filter(pk=shared.pk).update(first_name="Paulina")
    assert listed(client_a.get(customer_url("list")))[shared.pk].eff_first_name == "Paulina"
    client_b = login(staff_b)
    assert listed(client_b.get(customer_url("list")))[shared.pk].eff_first_name == "Paulina"


# --- All branches is final ---------------------------------------------------------------------


def test_all_branches_is_final_in_the_form(login, manager, shared, branch_a):
    client = login(manager)
    form = client.get(customer_url("edit", shared.pk)).context["form"]
    assert form.fields["sharing"].disabled
    assert "final" in str(form.fields["sharing"].help_text)
    response = post_edit(client, shared, {**edit_post(shared), "sharing": "specific", "share_branches": [branch_a.pk]})
    shared.refresh_from_db()
    assert shared.shared_with_all_branches
    assert not shared.branches.exists()
    # The disabled field keeps its value whatever is posted, so the save succeeds unchanged.
    assert response.status_code == 302


def test_all_branches_is_final_in_the_domain(shared, branch_a):
    with pytest.raises(ValidationError) as error:
        scope.set_sharing(shared, all_branches=False, branches=[branch_a])
    assert error.value.code == "all_branches_final"
    shared.refresh_from_db()
    assert shared.shared_with_all_branches and not shared.branches.exists()
    with pytest.raises(ValidationError):
        scope.check_sharing(shared, all_branches=False)


def test_all_branches_includes_branches_created_later(login, make_user, staff_group, shared):
    later = Branch.objects.create(name="Gamma", slug="gamma")
    user = make_user("gamma_staff", groups=[staff_group], branches=[later])
    assert shared.pk in listed(login(user).get(customer_url("list")))


def test_bulk_share_widens_and_never_narrows(login, manager, shared, branch_a, branch_b):
    specific = make_customer(first_name="Sina", branches=[branch_a])
    local = make_customer(first_name="Lotte", home_branch=branch_b)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "share_with_branches"))
    ids = f"?id={shared.pk}&id={specific.pk}&id={local.pk}"
    response = post_bulk(login(manager), url + ids, {"branches": [branch_b.pk]})
    assert response.status_code == 302
    shared.refresh_from_db(), specific.refresh_from_db(), local.refresh_from_db()
    assert shared.shared_with_all_branches and not shared.branches.exists()
    assert set(specific.branches.all()) == {branch_a, branch_b}
    # A local customer shared by a manager becomes global and stays with its branch.
    assert local.is_global and set(local.branches.all()) == {branch_b}

    post_bulk(login(manager), url + f"?id={specific.pk}", {"all_branches": "on"})
    specific.refresh_from_db()
    assert specific.shared_with_all_branches and not specific.branches.exists()


def test_branch_staff_cannot_share(login, staff_a, branch_a, branch_b):
    local = make_customer(first_name="Lotte", home_branch=branch_a)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "share_with_branches")) + f"?id={local.pk}"
    post_bulk(login(staff_a), url, {"all_branches": "on"})
    local.refresh_from_db()
    assert local.home_branch == branch_a and not local.shared_with_all_branches


def test_manager_shares_with_all_branches_in_the_form(login, manager, branch_a):
    customer = make_customer(first_name="Sina", branches=[branch_a])
    response = post_edit(login(manager), customer, {**edit_post(customer), "sharing": "all"})
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.shared_with_all_branches and not customer.branches.exists()


def test_bulk_add_to_group(login, manager, branch_a):
    from wagtail_clientdb.models import CustomerGroup

    group = CustomerGroup.objects.create(name="VIP")
    customers = [make_customer(first_name=f"C{i}", branches=[branch_a]) for i in range(3)]
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_to_group"))
    post_bulk(login(manager), url + "?" + "&".join(f"id={c.pk}" for c in customers[:2]), {"group": group.pk})
    assert set(group.customers.all()) == set(customers[:2])


# --- The current branch ------------------------------------------------------------------------------


def test_staff_with_two_branches_switches_the_current_branch(login, make_user, staff_group, branch_a, branch_b):
    user = make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    local_a = make_customer(first_name="Anja", home_branch=branch_a)
    local_b = make_customer(first_name="Bea", home_branch=branch_b)
    client = login(user)
    response = client.get(customer_url("list"))
    assert set(listed(response)) == {local_a.pk}  # Alpha comes first by name
    assert "Current branch" in response.content.decode()
    response = client.post(reverse("wagtail_clientdb:switch_branch"), {"branch": branch_b.pk, "next": customer_url("list")})
    assert response.status_code == 302 and response.url == customer_url("list")
    assert set(listed(client.get(customer_url("list")))) == {local_b.pk}
    assert client.get(customer_url("edit", local_a.pk)).status_code == 404

    # A new customer belongs to the current branch.
    client.post(customer_url("add"), {"first_name": "Neu", "last_name": "InB"})
    assert Customer.objects.get(last_name="InB").home_branch == branch_b


def test_the_branch_switcher_offers_the_branches_read_for_the_page(login, make_user, staff_group, branch_a, branch_b):
    """The switcher lists the user's branches as read for the page's scope: one query for both."""
    user = make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    client = login(user)
    client.get(customer_url("list"))
    with CaptureQueriesContext(connection) as queries:
        html = client.get(customer_url("list")).content.decode()
    assert f'<option value="{branch_a.pk}" selected>{branch_a.name}</option>' in html
    assert f'<option value="{branch_b.pk}">{branch_b.name}</option>' in html
    memberships = [q for q in queries if '"wagtail_clientdb_branchmembership"' in q["sql"]]
    assert len(memberships) == 1


def test_a_search_reads_the_company_settings_once(login, staff_a, branch_a):
    """The phone region of the search and whether branches may edit global customers: one row, read once."""
    make_customer(first_name="Lea", last_name="Lang", home_branch=branch_a)
    client = login(staff_a)
    client.get(customer_url("list") + "?q=Lang")
    with CaptureQueriesContext(connection) as queries:
        response = client.get(customer_url("list") + "?q=Lang")
    assert listed(response)
    assert len([q for q in queries if '"wagtail_clientdb_clientdbsettings"' in q["sql"]]) == 1


def test_switching_to_a_foreign_branch_is_refused(login, staff_a, branch_b):
    client = login(staff_a)
    response = client.post(reverse("wagtail_clientdb:switch_branch"), {"branch": branch_b.pk})
    assert response.status_code == 404
    assert scope.SESSION_BRANCH_KEY not in client.session


def test_losing_a_membership_takes_effect_on_the_next_request(login, staff_a, branch_a):
    local = make_customer(first_name="Lea", home_branch=branch_a)
    client = login(staff_a)
    assert client.get(customer_url("edit", local.pk)).status_code == 200
    BranchMembership.objects.filter(user=staff_a).delete()
    assert client.get(customer_url("edit", local.pk)).status_code == 404
    assert not listed(client.get(customer_url("list")))


def test_inactive_branch_gives_no_access(login, staff_a, branch_a):
    local = make_customer(first_name="Lea", home_branch=branch_a)
    branch_a.is_active = False
    branch_a.save()
    assert login(staff_a).get(customer_url("inspect", local.pk)).status_code == 404


# --- No leaks -------------------------------------------------------------------------------------------


def test_filter_options_do_not_leak_other_branches_tags(login, staff_a, branch_b, branch_a):
    bea = make_customer(first_name="Bea", home_branch=branch_b)
    bea.tags.add("secret-b")
    make_customer(first_name="Anja", home_branch=branch_a).tags.add("mine")
    response = login(staff_a).get(customer_url("list"))
    html = response.content.decode()
    assert "mine" in html and "secret-b" not in html
    # The other branch's tag id is no valid choice: the filter is refused, B's customer stays hidden.
    secret = CustomerTag.all_tags.get(name="secret-b")
    response = login(staff_a).get(customer_url("list"), {"tags": secret.pk})
    assert not response.context["filters"].is_valid()
    assert bea.pk not in listed(response)


def test_location_filter_is_for_managers_only(login, staff_a, branch_b):
    hidden = make_customer(first_name="Bea", home_branch=branch_b)
    response = login(staff_a).get(customer_url("list"), {"branch": branch_b.pk})
    assert hidden.pk not in listed(response)
    assert "branch" not in response.context["filters"].form.fields


def test_manager_location_view_shows_the_branch_values(login, manager, shared, branch_a):
    overrides.save_local_values(shared, branch_a, {"first_name": "Paulchen"})
    client = login(manager)
    assert listed(client.get(customer_url("list"), {"branch": branch_a.pk}))[shared.pk].eff_first_name == "Paulchen"
    assert listed(client.get(customer_url("list")))[shared.pk].eff_first_name == "Paula"


def test_branch_scoped_listing_query_count_is_constant(login, make_user, staff_group, branch_a):
    branches = [branch_a] + [Branch.objects.create(name=f"B{i}", slug=f"b{i}") for i in range(6)]
    user = make_user("busy", groups=[staff_group], branches=branches)
    client = login(user)

    def count():
        client.get(customer_url("list"))
        with CaptureQueriesContext(connection) as queries:
            response = client.get(customer_url("list"))
        return queries.captured_queries, response.context["items_count"]

    for i in range(2):
        make_customer(first_name=f"A{i}", branches=branches[:3]).tags.add("t")
        make_customer(first_name=f"L{i}", home_branch=branch_a)
    small = count()
    for i in range(2, 12):
        make_customer(first_name=f"A{i}", branches=branches).tags.add(f"t{i}")
        make_customer(first_name=f"L{i}", home_branch=branch_a)
        CustomerOverride.objects.create(customer=Customer.objects.get(first_name=f"A{i}"), branch=branch_a, notes="x")
    large = count()
    assert (small[1], large[1]) == (4, 24)
    # The full page is counted; otherwise the same queries.
    assert len(listing_counts(large[0])) > len(listing_counts(small[0]))
    assert len(large[0]) - len(listing_counts(large[0])) == len(small[0]) - len(listing_counts(small[0]))
