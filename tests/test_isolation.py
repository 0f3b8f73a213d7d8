"""Branch isolation below the app's own views: every endpoint Wagtail serves around the app's
models (choosers, bulk-action pages, site history, usage, tag autocomplete) and the forms.

Branch A's staff is the hostile user; branch B's data carries names that appear nowhere else.
The generic sweep over every admin URL is tests/test_isolation_walk.py; these are the cases a
tester found, one by one.
"""

import datetime

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone
from wagtail.log_actions import registry as log_action_registry

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_edit
from wagtail_clientdb import deletion, scope
from wagtail_clientdb.models import (
    Appointment,
    ClientDBLogEntry,
    Customer,
    CustomerGroup,
    DeletionRequest,
    DeletionStatus,
)

B_SECRET = "Zebulonsecretb"


@pytest.fixture
def b_data(db, branch_a, branch_b, staff_b):
    """Branch B's customers and appointments; their names are B's secrets."""
    local_b = make_customer(first_name=B_SECRET, last_name="Localb", email="zebulon@b.example", home_branch=branch_b)
    local_b.tags.add("zebtag-b")
    queued_b = make_customer(first_name=B_SECRET + "queued", last_name="Queuedb", home_branch=branch_b)
    make_appointment(queued_b, branch_b, days=2, service=B_SECRET + "-blocker")
    deletion.request_deletion(scope.Viewer(staff_b, False, (branch_b,)), queued_b)
    shared = make_customer(first_name="Gloria", last_name="Shared", shared_with_all_branches=True)
    shared.tags.add("zebshared")
    appointment_b = make_appointment(shared, branch_b, days=3, service=B_SECRET + "-service")
    appointment_b_local = make_appointment(local_b, branch_b, days=4, service=B_SECRET + "-haircut")
    assert DeletionRequest.objects.get().status == DeletionStatus.BLOCKED
    return {
        "local_b": local_b,
        "queued_b": queued_b,
        "shared": shared,
        "appointments": [appointment_b, appointment_b_local, *Appointment.objects.filter(customer=queued_b)],
    }


def chooser_url(model, name, *args):
    return reverse(f"wagtailsnippetchoosers_wagtail_clientdb_{model}:{name}", args=args)


def body(response):
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


@pytest.mark.parametrize("model", ["customer", "appointment", "deletionrequest"])
def test_chooser_views_reach_only_the_viewers_objects(login, staff_a, b_data, model):
    pks = {
        "customer": Customer.objects.values_list("pk", flat=True),
        "appointment": Appointment.objects.values_list("pk", flat=True),
        "deletionrequest": DeletionRequest.objects.values_list("pk", flat=True),
    }[model]
    client = login(staff_a)
    ids = "&".join(f"id={pk}" for pk in pks)
    for url in (
        chooser_url(model, "choose"),
        chooser_url(model, "choose_results"),
        chooser_url(model, "choose_results") + "?q=Zebulon",
        chooser_url(model, "chosen_multiple") + "?" + ids,
    ):
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert B_SECRET not in body(response), url
    for pk in pks:
        response = client.get(chooser_url(model, "chosen", pk))
        assert B_SECRET not in body(response)


def test_chooser_shows_the_viewers_own_objects(login, staff_a, staff_b, b_data):
    """The markers are real: branch B's staff finds them through the same views."""
    client = login(staff_b)
    assert B_SECRET in body(client.get(chooser_url("customer", "choose_results") + "?q=Zebulon"))
    ids = "&".join(f"id={a.pk}" for a in b_data["appointments"])
    assert B_SECRET in body(client.get(chooser_url("appointment", "chosen_multiple") + "?" + ids))
    assert login(staff_a).get(chooser_url("customer", "chosen", b_data["shared"].pk)).status_code == 200


@pytest.mark.parametrize("model", ["customer", "appointment", "customergroup", "deletionrequest", "branch"])
def test_chooser_create_post_is_refused_not_an_error(login, manager, staff_a, b_data, model):
    for user in (manager, staff_a):
        response = login(user).post(chooser_url(model, "create"), {"first_name": "X", "name": "X"})
        assert response.status_code in (302, 403, 404)
    assert not Customer.objects.filter(first_name="X").exists() and not CustomerGroup.objects.filter(name="X").exists()


def test_bulk_delete_page_of_the_deletion_queue_names_nothing_of_other_branches(login, staff_a, b_data):
    client = login(staff_a)
    pks = DeletionRequest.objects.values_list("pk", flat=True)
    for ids in ["id=all", "&".join(f"id={pk}" for pk in pks)]:
        response = client.get(reverse("wagtail_bulk_action", args=("wagtail_clientdb", "deletionrequest", "delete")) + "?" + ids)
        assert response.status_code in (200, 404)
        assert B_SECRET not in body(response)
    client.post(reverse("wagtail_bulk_action", args=("wagtail_clientdb", "deletionrequest", "delete")) + "?id=all")
    assert DeletionRequest.objects.count() == 1


@pytest.mark.parametrize("model", ["appointment", "customergroup", "branch"])
def test_bulk_delete_select_all_reaches_only_the_viewers_objects(login, staff_a, b_data, branch_b, model):
    before = {
        "appointment": lambda: Appointment.objects.filter(branch=branch_b).count(),
        "customergroup": lambda: CustomerGroup.objects.count(),
        "branch": lambda: branch_b.__class__.objects.filter(pk=branch_b.pk).count(),
    }[model]
    CustomerGroup.objects.create(name="Regulars")
    count = before()
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", model, "delete")) + "?id=all"
    client = login(staff_a)
    assert B_SECRET not in body(client.get(url)) if client.get(url).status_code == 200 else True
    client.post(url)
    assert before() == count


def test_site_history_lists_only_objects_the_viewer_may_reach(login, manager, staff_a, staff_b, branch_a, b_data):
    # Created through the admin, so that Wagtail writes its log entries (follow: the
    # "created" message is shown to its author, not left for the next user of the client).
    response = login(staff_b).post(customer_url("add"), {"first_name": B_SECRET + "logged", "last_name": "Viab"}, follow=True)
    assert response.redirect_chain
    response = login(staff_a).post(customer_url("add"), {"first_name": "Annalogged", "last_name": "Viaa"}, follow=True)
    assert response.redirect_chain
    for url in (reverse("wagtailadmin_reports:site_history"), reverse("wagtailadmin_reports:site_history_results")):
        seen_by_a = body(login(staff_a).get(url))
        assert "Annalogged" in seen_by_a and B_SECRET not in seen_by_a
        assert B_SECRET + "logged" in body(login(manager).get(url))
    csv_export = body(login(staff_a).get(reverse("wagtailadmin_reports:site_history") + "?export=csv"))
    assert "Annalogged" in csv_export and B_SECRET not in csv_export


def test_site_history_unions_the_apps_log_first():
    """Django 6.1 takes a union's default ordering from its first query; on PostgreSQL that
    fails when the first query is empty for the reader. The app's log model has none."""
    models = list(log_action_registry.get_log_entry_models())
    assert models[0] is ClientDBLogEntry and ClientDBLogEntry._meta.ordering == []
    assert len(models) >= 3


def test_history_of_a_deleted_customer_keeps_no_name(login, manager, staff_b, branch_b):
    login(staff_b).post(customer_url("add"), {"first_name": "Forgetme", "last_name": "Please"}, follow=True)
    customer = Customer.objects.get(first_name="Forgetme")
    login(manager).post(customer_url("delete", customer.pk), follow=True)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert "Forgetme" not in body(login(manager).get(reverse("wagtailadmin_reports:site_history")))


def test_usage_pages_list_no_other_branchs_objects(login, staff_a, b_data, allow_branch_edits):
    """Wagtail's reference index would list B's appointments of a shared customer, and B's
    customers of a group: the app's models stay out of it."""
    group = CustomerGroup.objects.create(name="Regulars")
    group.customers.add(b_data["local_b"], b_data["shared"])
    staff_a.user_permissions.add(Permission.objects.get(codename="change_customergroup"))
    client = login(staff_a)
    for url in (
        customer_url("usage", b_data["shared"].pk),
        reverse("wagtailsnippets_wagtail_clientdb_customergroup:usage", args=(group.pk,)),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert B_SECRET not in body(response)


def test_tag_autocomplete_suggests_only_tags_of_visible_customers(login, staff_a, staff_b, b_data, branch_a):
    make_customer(first_name="Anna", home_branch=branch_a).tags.add("zebtag-a")
    model_url = reverse("wagtailadmin_tag_model_autocomplete", args=("wagtail_clientdb", "customertag")) + "?term=zeb"
    assert sorted(login(staff_a).get(model_url).json()) == ["zebshared", "zebtag-a"]
    assert sorted(login(staff_b).get(model_url).json()) == ["zebshared", "zebtag-b"]
    # Wagtail's own tag pool (pages, images, documents) holds no customer tags at all.
    assert login(staff_a).get(reverse("wagtailadmin_tag_autocomplete") + "?term=zeb").json() == []


def test_customer_edit_form_uses_the_scoped_tag_autocomplete(login, staff_a, branch_a):
    customer = make_customer(first_name="Anna", home_branch=branch_a)
    html = body(login(staff_a).get(customer_url("edit", customer.pk)))
    assert reverse("wagtailadmin_tag_model_autocomplete", args=("wagtail_clientdb", "customertag")) in html


def appointment_post(customer, branch, **extra):
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=5)).replace(microsecond=0)
    return {
        "customer": customer.pk,
        "branch": branch.pk,
        "start": start.strftime("%Y-%m-%d %H:%M"),
        "end": (start + datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
        "service": make_service("Cut", branch).pk,
        "status": "booked",
        **extra,
    }


def test_appointment_form_never_names_a_refused_customer(login, staff_a, branch_a, b_data):
    url = reverse("wagtailsnippets_wagtail_clientdb_appointment:add")
    response = login(staff_a).post(url, appointment_post(b_data["local_b"], branch_a))
    assert response.status_code == 200
    assert response.context["form"].errors["customer"]
    assert B_SECRET not in body(response)
    assert not Appointment.objects.filter(branch=branch_a).exists()


def test_appointment_form_offers_only_the_staff_of_the_viewers_branches(
    login, make_user, staff_group, staff_a, staff_b, manager, branch_a, branch_b
):
    colleague = make_user("colleague_a", groups=[staff_group], branches=[branch_a], first_name="Carla", last_name="Colleague")
    url = reverse("wagtailsnippets_wagtail_clientdb_appointment:add")
    form = login(staff_a).get(url).context["form"]
    assert set(form.fields["staff"].queryset) == {staff_a, colleague}
    assert "staff_b" not in body(login(staff_a).get(url))
    assert set(login(manager).get(url).context["form"].fields["staff"].queryset) == {staff_a, colleague, staff_b}

    customer = make_customer(first_name="Anna", home_branch=branch_a)
    response = login(staff_a).post(url, appointment_post(customer, branch_a, staff=staff_b.pk))
    assert response.status_code == 200 and "staff" in response.context["form"].errors
    response = login(manager).post(url, appointment_post(customer, branch_a, staff=staff_b.pk))
    assert "does not work in Alpha Salon" in str(response.context["form"].errors["staff"])
    response = login(staff_a).post(url, appointment_post(customer, branch_a, staff=colleague.pk))
    assert response.status_code == 302
    assert Appointment.objects.get(customer=customer).staff == colleague


def test_listing_filters_and_group_counts_count_only_visible_customers(login, staff_a, b_data, branch_a):
    group = CustomerGroup.objects.create(name="Regulars")
    group.customers.add(b_data["local_b"], b_data["shared"], make_customer(first_name="Anna", home_branch=branch_a))
    response = login(staff_a).get(reverse("wagtailsnippets_wagtail_clientdb_customergroup:list"))
    assert [row.customer_count for row in response.context["object_list"]] == ["2"]


def test_a_branch_user_who_loses_the_branch_sees_nothing_on_the_next_request(login, staff_a, branch_a):
    customer = make_customer(first_name="Anna", home_branch=branch_a)
    client = login(staff_a)
    assert client.get(customer_url("inspect", customer.pk)).status_code == 200
    staff_a.clientdb_branch_memberships.all().delete()
    assert client.get(customer_url("inspect", customer.pk)).status_code == 404
    assert "Anna" not in body(client.get(chooser_url("customer", "choose_results")))
    assert post_edit(client, customer, {"first_name": "Changed"}).status_code == 404


def test_deleting_a_branch_still_in_use_is_refused_with_a_message(login, manager, branch_a):
    make_customer(first_name="Anna", home_branch=branch_a)
    client = login(manager)
    response = client.post(reverse("wagtailsnippets_wagtail_clientdb_branch:delete", args=(branch_a.pk,)), follow=True)
    assert "Not deleted: still in use by Customers (1)" in body(response)
    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "branch", "delete")) + f"?id={branch_a.pk}&next=/admin/"
    response = client.post(bulk, follow=True)
    assert "Not deleted: still in use by Customers (1)" in body(response)
    assert branch_a.__class__.objects.filter(pk=branch_a.pk).exists()
