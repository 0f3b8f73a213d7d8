"""The audit trail (issue #16): who changed what about a customer, where and through which door,
in the customer's history and the history report, scoped by the branch rules; and the signals
a project connects to, sent once a change is committed."""

import datetime
import re

import pytest
from django.urls import reverse
from wagtail.log_actions import LogContext
from wagtail.models import Site

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_bulk, post_edit
from tests.import_files import csv_bytes
from tests.test_api import Api
from tests.test_booking import at, book, tomorrow
from tests.test_import import confirm, job_of, upload
from wagtail_clientdb import deletion, scope, signals
from wagtail_clientdb.models import (
    BookingPage,
    ClientDBLogEntry,
    ConsentEvent,
    Customer,
    CustomerGroup,
    DeletionStatus,
    ExportJob,
    OpeningHours,
)


def entries(customer, action):
    return list(ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action=action).order_by("pk"))


def history_of(client, customer):
    return client.get(customer_url("history", customer.pk)).content.decode()


def test_an_edit_names_the_fields_it_changed_and_the_branch(login, manager, branch_a):
    anna = make_customer(first_name="Anna", last_name="Alt", email="anna@example.com", home_branch=branch_a)
    client = login(manager)
    response = post_edit(client, anna, {"first_name": "Anna", "last_name": "Neu", "email": anna.email, "notes": "VIP", "sharing": "specific"})
    assert response.status_code == 302
    (entry,) = entries(anna, "wagtail_clientdb.edit")
    assert entry.data["fields"] == ["last_name", "notes"] and entry.user == manager and entry.branch is None
    assert entry.message == "Changed: last name, notes"
    assert "Changed: last name, notes" in history_of(client, anna)
    # Saving without a change logs nothing.
    post_edit(client, anna, {"first_name": "Anna", "last_name": "Neu", "email": anna.email, "notes": "VIP", "sharing": "specific"})
    assert len(entries(anna, "wagtail_clientdb.edit")) == 1


def test_a_branchs_local_values_are_logged_as_the_branchs(login, staff_a, manager, branch_a, allow_branch_edits):
    gloria = make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    response = post_edit(login(staff_a), gloria, {"first_name": "Glo", "last_name": "Global", "email": gloria.email})
    assert response.status_code == 302
    (entry,) = entries(gloria, "wagtail_clientdb.edit")
    assert entry.data["fields"] == ["first_name"] and entry.data["local_branch"] == branch_a.pk
    assert entry.branch == branch_a and entry.message == "Changed the local values of Alpha Salon: first name"
    gloria.refresh_from_db()
    assert gloria.first_name == "Gloria"


def test_another_branch_does_not_read_which_local_values_a_branch_changed(login, staff_a, staff_b, manager, branch_a, allow_branch_edits):
    """A's own values of a shared customer are A's: B, who sees the customer and its history,
    does not see that A changed them, nor which; A and the head office do."""
    gloria = make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    post_edit(login(staff_a), gloria, {"first_name": "Glo", "last_name": "Global", "email": gloria.email})
    message = "Changed the local values of Alpha Salon: first name"
    site_history = reverse("wagtailadmin_reports:site_history")
    for user, shown in ((staff_a, True), (manager, True), (staff_b, False)):
        client = login(user)
        assert (message in history_of(client, gloria)) is shown, user
        assert (message in client.get(site_history).content.decode()) is shown, user
    assert history_of(login(staff_b), gloria).count("Gloria") >= 1


def test_sharing_consent_and_bulk_changes_are_logged(login, manager, branch_a, branch_b):
    lena = make_customer(first_name="Lena", email="lena@example.com", home_branch=branch_a)
    client = login(manager)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "share_with_branches")) + f"?id={lena.pk}"
    assert post_bulk(client, url, {"branches": [branch_b.pk]}).status_code == 302
    (shared,) = entries(lena, "wagtail_clientdb.sharing")
    assert shared.data == {"all_branches": False, "branches": ["Alpha Salon", "Beta Salon"]}
    assert shared.message == "Shared with: Alpha Salon, Beta Salon"
    group = CustomerGroup.objects.create(name="VIP")
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_to_group")) + f"?id={lena.pk}"
    assert post_bulk(client, url, {"group": group.pk}).status_code == 302
    assert [e.message for e in entries(lena, "wagtail_clientdb.edit")] == ["Changed: groups"]
    post_edit(client, lena, {"first_name": "Lena", "email": lena.email, "marketing_consent": "on", "sharing": "specific", "share_branches": [branch_b.pk]})
    (given,) = entries(lena, "wagtail_clientdb.consent_given")
    assert given.user == manager and given.message == "Marketing consent given (Admin)"


def test_an_import_is_logged_with_its_counts_and_each_customer_with_its_fields(login, manager, staff_b):
    kept = make_customer(first_name="Kept", email="kept@example.com")
    client = login(manager)
    rows = [["First name", "Email", "Notes", "Marketing consent"], ["Kept", "kept@example.com", "new note", "1"], ["New", "new@example.com", "", ""]]
    job = job_of(upload(client, "people.csv", csv_bytes(rows)))
    confirm(client, job)
    (summary,) = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.import", object_id=str(job.pk))
    assert summary.user == manager and summary.data["counts"] == {"new": 1, "updated": 1, "unchanged": 0, "invalid": 0}
    assert summary.message == "Imported “people.csv”: 1 new, 1 updated, 0 unchanged, 0 refused"
    (changed,) = entries(kept, "wagtail_clientdb.import_edit")
    assert changed.data["job"] == job.pk and changed.message == f"Changed by import #{job.pk}: notes, marketing consent"
    new = Customer.objects.get(email="new@example.com")
    assert entries(new, "wagtail_clientdb.import_create")[0].message == f"Created by import #{job.pk}"
    # The consent names the import as its source document.
    event = ConsentEvent.objects.get(customer=kept)
    assert event.import_job_id == job.pk
    assert entries(kept, "wagtail_clientdb.consent_given")[0].message == f"Marketing consent given (Import, import #{job.pk})"
    # The head office sees the import in the history; another branch's staff do not.
    assert ClientDBLogEntry.objects.viewable_by_user(manager).filter(pk=summary.pk).exists()
    assert not ClientDBLogEntry.objects.viewable_by_user(staff_b).filter(pk=summary.pk).exists()


def test_an_exports_filters_chosen_by_id_are_logged_by_their_names(login, manager, branch_a):
    anna = make_customer(first_name="Anna", last_name="Alpha", shared_with_all_branches=True)
    anna.tags.add("VIP")
    group = CustomerGroup.objects.create(name="Regulars")
    anna.groups.add(group)
    tag = anna.tags.get()
    login(manager).get(customer_url("list"), {"tags": tag.pk, "groups": group.pk, "branch": branch_a.pk, "q": "Alpha", "export": "csv"})
    (entry,) = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.export")
    assert entry.data["filters"] == f"branch: {branch_a.name}; groups: Regulars; q: Alpha; tags: VIP"
    assert entry.message.endswith(f"filters: branch: {branch_a.name}; groups: Regulars; q: Alpha; tags: VIP")


def test_an_export_is_logged_with_who_which_filters_and_how_many_rows(login, manager, staff_a, staff_b, branch_a):
    make_customer(first_name="Anna", last_name="Alpha", home_branch=branch_a)
    make_customer(first_name="Berta", last_name="Alpha", home_branch=branch_a)
    client = login(staff_a)
    response = client.get(customer_url("list") + "?q=Alpha&export=csv")
    assert response.status_code == 200
    job = ExportJob.objects.get()
    (entry,) = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.export", object_id=str(job.pk))
    assert (entry.user, entry.branch, entry.data["rows"], entry.data["format"]) == (staff_a, branch_a, 2, "csv")
    assert entry.message == "Exported 2 customers as CSV; filters: q: Alpha"
    assert ClientDBLogEntry.objects.viewable_by_user(manager).filter(pk=entry.pk).exists()
    assert not ClientDBLogEntry.objects.viewable_by_user(staff_b).filter(pk=entry.pk).exists()
    # The export's own page says there is no file to download again.
    shown = client.get(customer_url("export_job", job.pk)).content.decode()
    assert "2 customers exported. The file is not kept here" in shown and "data-clientdb-export-download" not in shown


def test_deletion_requested_blocked_cancelled_and_completed_are_logged(manager, branch_a):
    viewer = scope.Viewer(manager, True)
    carla = make_customer(first_name="Carla", email="carla@example.com", home_branch=branch_a)
    visit = make_appointment(carla, branch_a, days=2)
    with LogContext(user=manager):
        request = deletion.request_deletion(viewer, carla)
        assert request.status == DeletionStatus.BLOCKED
        deletion.cancel(request)
        request = deletion.request_deletion(viewer, carla)
    assert [e.action.rsplit(".", 1)[1] for e in ClientDBLogEntry.objects.filter(object_id=str(carla.pk)).order_by("pk")] == [
        "deletion_requested", "deletion_blocked", "deletion_cancelled", "deletion_requested", "deletion_blocked",
    ]
    assert entries(carla, "wagtail_clientdb.deletion_blocked")[0].message == "Deletion blocked by upcoming appointments in: Alpha Salon"
    visit.status = "cancelled"
    visit.save()
    deletion.process(request)
    request.refresh_from_db()
    assert request.status == DeletionStatus.DONE and not Customer.objects.filter(pk=carla.pk).exists()
    (done,) = ClientDBLogEntry.objects.filter(action="wagtail_clientdb.deletion_completed", object_id=str(request.pk))
    assert done.label == f"Customer #{carla.pk} (deleted)" and done.message == f"Customer #{carla.pk} deleted"
    # The customer's own entries no longer carry the name.
    assert set(ClientDBLogEntry.objects.filter(object_id=str(carla.pk), content_type__model="customer").values_list("label", flat=True)) == {
        f"Customer #{carla.pk} (deleted)"
    }


def test_the_history_report_filters_by_branch_and_shows_only_what_the_reader_may_see(login, manager, staff_a, staff_b, branch_a, branch_b):
    lena = make_customer(first_name="Lena", last_name="Localalpha", home_branch=branch_a)
    lars = make_customer(first_name="Lars", last_name="Localbeta", home_branch=branch_b)
    post_edit(login(staff_a), lena, {"first_name": "Lena", "last_name": "Localalpha", "notes": "Alpha note"})
    post_edit(login(staff_b), lars, {"first_name": "Lars", "last_name": "Localbeta", "notes": "Beta note"})
    # The results alone: the page around them would also show the messages of the saves above.
    url = reverse("wagtail_clientdb:history_results")
    page = login(manager).get(reverse("wagtail_clientdb:history"))
    assert page.status_code == 200
    # The pages' comment filter is Wagtail's page history's; customers have no comments.
    assert "branch" in page.context["filters"].form.fields and "is_commenting_action" not in page.context["filters"].form.fields
    results = login(manager).get(url, {"branch": branch_a.pk}).content.decode()
    assert "Localalpha" in results and "Localbeta" not in results
    results = login(manager).get(url).content.decode()
    assert "Localalpha" in results and "Localbeta" in results
    results = login(staff_b).get(url).content.decode()
    assert "Localbeta" in results and "Localalpha" not in results
    # Another branch as a filter value is no way in.
    assert "Localalpha" not in login(staff_b).get(url, {"branch": branch_a.pk}).content.decode()


def test_signals_are_sent_after_commit_with_the_changed_fields(login, manager, branch_a, django_capture_on_commit_callbacks):
    received = []

    def remember(signal_name):
        def receiver(sender, customer_id, **kwargs):
            received.append((signal_name, customer_id, kwargs.get("changed_fields"), kwargs.get("reason")))

        return receiver

    receivers = {name: remember(name) for name in ("created", "changed", "deleted")}
    signals.customer_created.connect(receivers["created"], sender=Customer)
    signals.customer_changed.connect(receivers["changed"], sender=Customer)
    signals.customer_deleted.connect(receivers["deleted"], sender=Customer)
    try:
        client = login(manager)
        # Each request's commit runs what waited for it; nothing is sent before.
        with django_capture_on_commit_callbacks(execute=False) as waiting:
            client.post(customer_url("add"), {"first_name": "Sina", "last_name": "Signal", "sharing": "specific", "share_branches": [branch_a.pk]})
        assert waiting and not received
        for callback in waiting:
            callback()
        sina = Customer.objects.get(last_name="Signal")
        with django_capture_on_commit_callbacks(execute=True):
            post_edit(client, sina, {"first_name": "Sina", "last_name": "Signal", "email": "sina@example.com", "sharing": "specific", "share_branches": [branch_a.pk]})
        with django_capture_on_commit_callbacks(execute=True):
            client.post(customer_url("delete", sina.pk))
    finally:
        for name, signal in (("created", signals.customer_created), ("changed", signals.customer_changed), ("deleted", signals.customer_deleted)):
            signal.disconnect(receivers[name], sender=Customer)
    assert ("created", sina.pk, None, None) in received
    assert ("changed", sina.pk, ["email"], None) in received
    assert received[-1] == ("deleted", sina.pk, None, "deletion_request")


# --- Consent semantics: only an explicit yes or no changes it -----------------------------------------


@pytest.fixture
def open_branch(branch_a):
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(12))
    return branch_a


@pytest.fixture
def haircut(open_branch):
    return make_service("Haircut", open_branch, duration=60)


@pytest.fixture
def page(open_branch, haircut):
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=BookingPage(title="Book at Alpha", slug="book-alpha", branch=open_branch))



def test_a_booking_form_consent_names_the_booking_and_an_unticked_box_withdraws_nothing(client, page, haircut, open_branch):
    book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9), marketing_consent="on")
    nora = Customer.objects.get(email="nora@example.com")
    first = nora.appointments.get()
    event = ConsentEvent.objects.get(customer=nora)
    assert (event.given, event.channel, event.appointment) == (True, "form", first)
    (entry,) = entries(nora, "wagtail_clientdb.consent_given")
    assert entry.message == f"Marketing consent given (Booking form, appointment #{first.pk})"
    # She books again without ticking the box: her consent stays, and nothing is recorded.
    assert book(client, page, haircut, at(open_branch, tomorrow(open_branch), 11)).status_code == 302
    nora.refresh_from_db()
    assert nora.marketing_consent and nora.appointments.count() == 2 and ConsentEvent.objects.filter(customer=nora).count() == 1


def test_the_api_changes_consent_only_when_it_is_sent(client, manager, scope_customers):
    gloria = scope_customers["global_all"]
    api = Api(client, manager)

    def patch(data):
        version = api.get(f"/customers/{gloria.pk}/").headers["ETag"]
        return api.send("patch", f"/customers/{gloria.pk}/", data, {"If-Match": version})

    assert patch({"marketing_consent": True}).status_code == 200
    assert patch({"notes": "no word on consent"}).status_code == 200
    gloria.refresh_from_db()
    assert gloria.marketing_consent
    assert patch({"marketing_consent": False}).status_code == 200
    assert list(gloria.consent_events.order_by("pk").values_list("given", "channel")) == [(True, "api"), (False, "api")]
    assert [e.message for e in entries(gloria, "wagtail_clientdb.edit_via_api")] == ["Changed via API: notes"]


def test_removing_tags_and_a_group_in_bulk_changes_and_logs_only_the_selected(login, manager, branch_a):
    group = CustomerGroup.objects.create(name="VIP")
    chosen = make_customer(first_name="Rita", email="rita@example.com", home_branch=branch_a)
    other = make_customer(first_name="Otto", email="otto@example.com", home_branch=branch_a)
    for customer in (chosen, other):
        customer.tags.add("regular", "vip")
        group.customers.add(customer)
    client = login(manager)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "remove_tags")) + f"?id={chosen.pk}"
    assert post_bulk(client, url, {"tags": "vip"}).status_code == 302
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "remove_from_group")) + f"?id={chosen.pk}"
    assert post_bulk(client, url, {"group": group.pk}).status_code == 302
    assert list(chosen.tags.names()) == ["regular"] and not group.customers.filter(pk=chosen.pk).exists()
    assert sorted(other.tags.names()) == ["regular", "vip"] and group.customers.filter(pk=other.pk).exists()
    assert [e.message for e in entries(chosen, "wagtail_clientdb.edit")] == ["Changed: tags", "Changed: groups"]
    assert not entries(other, "wagtail_clientdb.edit")


def test_a_date_column_and_an_action_or_status_of_the_same_english_word_read_apart_in_german(login, manager, branch_a):
    """"Created" heads a date column ("Erstellt am") and is Wagtail's name of an action
    ("Erstellt"); "Requested" heads the deletion queue's date ("Angefordert am") and is a
    request's reason ("Angefordert"). The app's catalog told them apart by context, not
    Wagtail's words over."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(manager)
    profile.preferred_language = "de"
    profile.save()
    client = login(manager)
    client.post(customer_url("add"), {"first_name": "Neu", "last_name": "Kunde", "sharing": "all"})
    customer = Customer.objects.get(last_name="Kunde")
    history = history_of(client, customer)
    assert re.search(r">\s*Erstellt\s*<", history) and "Erstellt am" not in history
    assert "Erstellt am" in client.get(customer_url("list")).content.decode()
    deletion.request_deletion(scope.Viewer(manager, True), customer)
    queue = client.get(reverse("wagtailsnippets_wagtail_clientdb_deletionrequest:list")).content.decode()
    assert "Angefordert am" in queue and re.search(r">\s*Angefordert\s*<", queue)
