"""Archive and restore: out of the daily lists without being erased, through the real admin,
booking page and API."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone
from wagtail.models import APIToken, Site

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_bulk
from wagtail_clientdb import archive, scope
from wagtail_clientdb.models import (
    Appointment,
    BookingPage,
    ClientDBLogEntry,
    Customer,
    DeletionRequest,
    DeletionStatus,
    OpeningHours,
)


def bulk_url(action, *customers):
    ids = "&".join(f"id={customer.pk}" for customer in customers)
    return reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", action)) + f"?{ids}"


def listed(client, **params):
    response = client.get(customer_url("list"), params)
    assert response.status_code == 200
    return {customer.pk for customer in response.context["object_list"]}


def actions_of(customer):
    return list(
        ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action__startswith="wagtail_clientdb.")
        .order_by("timestamp", "pk")
        .values_list("action", flat=True)
    )


def archived_ids():
    return set(Customer.objects.filter(archived_at__isnull=False).values_list("pk", flat=True))


def test_the_listing_hides_archived_customers_and_the_filter_shows_them(login, manager, scope_customers):
    gloria, lena = scope_customers["global_all"], scope_customers["local_a"]
    client = login(manager)
    response = post_bulk(client, bulk_url("archive", gloria, lena))
    assert response.status_code == 302
    assert archived_ids() == {gloria.pk, lena.pk}
    everyone = {customer.pk for customer in scope_customers.values()}
    assert listed(client) == everyone - {gloria.pk, lena.pk}
    assert listed(client, archived="yes") == {gloria.pk, lena.pk}
    assert listed(client, archived="any") == everyone
    # The default is no active filter; the others are, and say which.
    assert client.get(customer_url("list")).context["view"].active_filters == []
    [active] = client.get(customer_url("list"), {"archived": "yes"}).context["view"].active_filters
    assert (str(active.field_label), active.value) == ("Archived", "Archived only")
    page = client.get(customer_url("list"), {"archived": "yes"}).content.decode()
    assert "archived" in page
    # Bad input: refused with the form's message, and archived customers stay out.
    bad = client.get(customer_url("list"), {"archived": "perhaps"})
    assert {customer.pk for customer in bad.context["object_list"]} == everyone - {gloria.pk, lena.pk}
    assert "Select a valid choice" in bad.content.decode()
    assert actions_of(gloria) == ["wagtail_clientdb.archive"]


def test_restore_from_the_bulk_action_and_the_inspect_page(login, manager, scope_customers):
    gloria, gerd = scope_customers["global_all"], scope_customers["global_a"]
    client = login(manager)
    archive.archive(scope.Viewer(manager, True), [gloria, gerd])
    assert post_bulk(client, bulk_url("restore", gloria)).status_code == 302
    assert archived_ids() == {gerd.pk}
    # The inspect page shows the state and offers the way back.
    inspect = client.get(customer_url("inspect", gerd.pk)).content.decode()
    assert "data-clientdb-archived" in inspect and "by manager" in inspect
    restore_url = customer_url("restore", gerd.pk)
    assert restore_url in inspect
    assert client.get(restore_url).status_code == 200
    response = client.post(restore_url)
    assert response.status_code == 302 and response.url == customer_url("inspect", gerd.pk)
    assert archived_ids() == set()
    assert actions_of(gerd) == ["wagtail_clientdb.archive", "wagtail_clientdb.restore"]
    history = client.get(customer_url("history", gerd.pk)).content.decode()
    assert "Restored from the archive" in history and "Archived" in history
    # Archive from the inspect page's button.
    inspect = client.get(customer_url("inspect", gerd.pk)).content.decode()
    assert customer_url("archive", gerd.pk) in inspect
    client.post(customer_url("archive", gerd.pk))
    assert archived_ids() == {gerd.pk}


def test_archiving_raises_the_version_so_stale_bulk_actions_leave_the_customer(login, manager, scope_customers):
    gloria = scope_customers["global_all"]
    client = login(manager)
    page = client.get(bulk_url("add_tags", gloria))
    opened_at = page.context["form"]["opened_at"].value()
    archive.archive(scope.Viewer(manager, True), [gloria])
    client.post(bulk_url("add_tags", gloria), {"opened_at": opened_at, "tags": "late"})
    assert list(gloria.tags.names()) == []


def test_branch_staff_archive_their_own_local_customers_only(login, staff_a, branch_a, scope_customers, allow_branch_edits):
    lena, gloria, gerd, lars = (scope_customers[name] for name in ("local_a", "global_all", "global_a", "local_b"))
    client = login(staff_a)
    assert post_bulk(client, bulk_url("archive", lena)).status_code == 302
    assert archived_ids() == {lena.pk}
    assert lena.pk not in listed(client) and listed(client, archived="yes") == {lena.pk}
    # Shared by the head office (even where the branch keeps local values): not for a branch
    # to archive for everyone. Another branch's customer: not found.
    for customer in (gloria, gerd):
        for method in (client.get, client.post):
            # Wagtail's refusal: back to the dashboard with "Sorry, you do not have permission".
            refused = method(customer_url("archive", customer.pk))
            assert (refused.status_code, refused.url) == (302, reverse("wagtailadmin_home"))
        assert customer_url("archive", customer.pk) not in client.get(customer_url("inspect", customer.pk)).content.decode()
        page = client.get(bulk_url("archive", customer))
        assert page.context["items"] == []
        post_bulk(client, bulk_url("archive", customer))
    for url in (customer_url("archive", lars.pk), customer_url("restore", lars.pk)):
        assert client.get(url).status_code == 404
        assert client.post(url).status_code == 404
    assert client.get(bulk_url("archive", lars)).status_code == 404
    assert archived_ids() == {lena.pk}
    # Nor restore what the head office archived.
    archive.archive(scope.Viewer(None, True), [gloria])
    assert client.post(customer_url("restore", gloria.pk)).url == reverse("wagtailadmin_home")
    assert archived_ids() == {lena.pk, gloria.pk}
    assert client.post(customer_url("restore", lena.pk)).status_code == 302
    assert archived_ids() == {gloria.pk}


def test_an_archived_customer_can_still_be_requested_for_deletion(login, manager, scope_customers, branch_a):
    gloria, gerd = scope_customers["global_all"], scope_customers["global_a"]
    make_appointment(gerd, branch_a, days=3)
    archive.archive(scope.Viewer(manager, True), [gloria, gerd])
    client = login(manager)
    assert post_bulk(client, bulk_url("delete", gloria, gerd)).status_code == 302
    assert not Customer.objects.filter(pk=gloria.pk).exists()
    assert DeletionRequest.objects.get(customer=gerd).status == DeletionStatus.BLOCKED


def test_booking_in_the_admin_restores_the_customer(login, staff_a, branch_a):
    lena = make_customer(first_name="Lena", last_name="Locala", home_branch=branch_a)
    archive.archive(scope.Viewer(staff_a, False, (branch_a,)), [lena])
    cut = make_service("Cut", branch_a)
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    client = login(staff_a)
    response = client.post(
        reverse("wagtailsnippets_wagtail_clientdb_appointment:add"),
        {"customer": lena.pk, "branch": branch_a.pk, "service": cut.pk, "start": start.strftime("%Y-%m-%d %H:%M"), "status": "booked"},
    )
    assert response.status_code == 302
    assert Appointment.objects.get().customer == lena
    lena.refresh_from_db()
    assert lena.archived_at is None and lena.archived_by is None
    assert actions_of(lena) == ["wagtail_clientdb.archive", "wagtail_clientdb.restore"]
    restored = ClientDBLogEntry.objects.get(object_id=str(lena.pk), action="wagtail_clientdb.restore")
    assert restored.data == {"booking": Appointment.objects.get().pk} and restored.user == staff_a
    assert "Restored from the archive by a booking" in client.get(customer_url("history", lena.pk)).content.decode()


def test_a_cancelled_appointment_entered_afterwards_does_not_restore(branch_a):
    from wagtail_clientdb import booking

    lena = make_customer(first_name="Lena", home_branch=branch_a)
    archive.archive(scope.Viewer(None, True), [lena])
    start = timezone.now() - datetime.timedelta(days=3)
    booking.save_appointment(
        Appointment(customer=lena, branch=branch_a, service=make_service("Cut", branch_a), start=start, end=start, status="cancelled")
    )
    assert archived_ids() == {lena.pk}
    booking.save_appointment(
        Appointment(customer=lena, branch=branch_a, service=make_service("Cut", branch_a), start=start, end=start, status="completed")
    )
    assert archived_ids() == set()


@pytest.fixture
def booking_page(branch_a):
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(12))
    make_service("Haircut", branch_a, duration=60)
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=BookingPage(title="Book at Alpha", slug="book-alpha", branch=branch_a))


def test_booking_online_restores_the_customer(client, booking_page, branch_a):
    nora = make_customer(first_name="Nora", last_name="Stamm", email="nora@example.com", home_branch=branch_a)
    archive.archive(scope.Viewer(None, True), [nora])
    haircut = make_service("Haircut", branch_a)
    day = timezone.localdate(timezone.now(), branch_a.zoneinfo) + datetime.timedelta(days=1)
    when = datetime.datetime.combine(day, datetime.time(10), tzinfo=branch_a.zoneinfo)
    form = client.get(booking_page.url, {"service": haircut.pk, "date": day.isoformat()}).context["form"]
    response = client.post(
        booking_page.url,
        {
            "service": haircut.pk, "date": day.isoformat(), "token": form["token"].value(), "start": when.isoformat(),
            "first_name": "Nora", "last_name": "Stamm", "email": "nora@example.com", "phone": "",
        },
    )
    assert response.status_code == 302
    assert Appointment.objects.get().customer == nora
    assert archived_ids() == set()
    restored = ClientDBLogEntry.objects.get(object_id=str(nora.pk), action="wagtail_clientdb.restore")
    assert restored.user is None and restored.data["booking"] == Appointment.objects.get().pk


def test_the_dashboard_search_and_the_chooser_find_archived_customers(login, staff_a, branch_a):
    lena = make_customer(first_name="Lena", last_name="Locala", home_branch=branch_a)
    archive.archive(scope.Viewer(None, True), [lena])
    client = login(staff_a)
    dashboard = client.get(reverse("wagtailadmin_home")).content.decode()
    assert 'name="archived" value="any"' in dashboard
    assert listed(client, q="Locala") == set()
    assert listed(client, q="Locala", archived="any") == {lena.pk}
    chooser = client.get(reverse("wagtailsnippetchoosers_wagtail_clientdb_customer:choose_results"), {"q": "Locala"})
    assert "Lena Locala" in chooser.content.decode() and "archived" in chooser.content.decode()


def test_the_api_lists_archived_customers_only_when_asked(client, manager, scope_customers):
    gloria = scope_customers["global_all"]
    archive.archive(scope.Viewer(manager, True), [gloria])
    _token, secret = APIToken.create_token(user=manager, name="test")
    headers = {"Authorization": f"Bearer {secret}"}

    def ids(**params):
        response = client.get("/api/v3/clientdb/customers/", {"limit": 20, **params}, headers=headers)
        assert response.status_code == 200, response.content
        return {item["id"] for item in response.json()["items"]}

    everyone = {customer.pk for customer in scope_customers.values()}
    assert ids() == everyone - {gloria.pk}
    assert ids(archived="yes") == {gloria.pk}
    assert ids(archived="any") == everyone
    assert client.get("/api/v3/clientdb/customers/", {"archived": "maybe"}, headers=headers).status_code == 422
    read = client.get(f"/api/v3/clientdb/customers/{gloria.pk}/", headers=headers)
    assert read.status_code == 200 and read.json()["archived_at"] is not None


def test_exports_leave_archived_customers_out_unless_asked(login, manager, scope_customers):
    gloria = scope_customers["global_all"]
    archive.archive(scope.Viewer(manager, True), [gloria])
    client = login(manager)
    default = b"".join(client.get(customer_url("list"), {"export": "csv"}).streaming_content).decode("utf-8-sig")
    asked = b"".join(client.get(customer_url("list"), {"export": "csv", "archived": "yes"}).streaming_content).decode("utf-8-sig")
    assert "gloria@example.com" not in default and "lena@example.com" in default
    assert "gloria@example.com" in asked and "lena@example.com" not in asked


def test_the_selected_customers_download_as_xlsx(login, staff_a, branch_a, scope_customers, allow_branch_edits):
    import io

    import openpyxl

    from wagtail_clientdb.models import CustomerOverride

    lena, gloria, lars = scope_customers["local_a"], scope_customers["global_all"], scope_customers["local_b"]
    CustomerOverride.objects.create(customer=gloria, branch=branch_a, email="gloria.alpha@example.com")
    client = login(staff_a)
    response = client.get(bulk_url("export", lena, gloria))
    assert response.status_code == 200
    rows = list(openpyxl.load_workbook(io.BytesIO(b"".join(response.streaming_content)), read_only=True).active.values)
    # The branch's own values, in the listing's order.
    assert [row[2] for row in rows[1:]] == ["gloria.alpha@example.com", "lena@example.com"]
    # Recorded in the history as an export of these two customers.
    entry = ClientDBLogEntry.objects.get(action="wagtail_clientdb.export")
    assert (entry.user, entry.data["rows"], entry.data["filters"]) == (staff_a, 2, f"id: {gloria.pk}, {lena.pk}")
    # Another branch's customer is not found; "select all" is the listing's export, with its filters.
    assert client.get(bulk_url("export", lars)).status_code == 404
    listing = customer_url("list") + "?archived=yes&q=Locala"
    everything = client.get(
        reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "export")), {"id": "all", "next": listing}
    )
    assert everything.status_code == 302 and everything.url == customer_url("list") + "?archived=yes&q=Locala&export=xlsx"


@pytest.mark.parametrize("action", ["archive", "delete"])
def test_select_all_in_a_filtered_listing_acts_on_its_customers_only(login, manager, branch_a, action):
    chosen = make_customer(first_name="Anna", last_name="Archivable", home_branch=branch_a)
    other = make_customer(first_name="Bernd", last_name="Keeper", home_branch=branch_a)
    client = login(manager)
    listing = customer_url("list") + "?q=Archivable"
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", action))
    page = client.get(url, {"id": "all", "next": listing})
    assert page.status_code == 200 and "Archivable" in page.content.decode() and "Keeper" not in page.content.decode()
    response = post_bulk(client, f"{url}?id=all&next={listing.replace('?', '%3F')}")
    assert response.status_code == 302
    remaining = {customer.pk: customer.archived_at for customer in Customer.objects.all()}
    assert remaining[other.pk] is None
    assert (chosen.pk not in remaining) if action == "delete" else remaining[chosen.pk] is not None
