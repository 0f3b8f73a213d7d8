"""Rolling back a confirmed import (issue #15, "Import batches"), through the real admin pages
and API with real files: what an import records, and what "Roll back this import" does."""

import datetime
import json

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from wagtail.models import APIToken

from tests.conftest import customer_url, make_appointment, make_customer, post_edit
from tests.import_files import csv_bytes, xlsx_bytes
from tests.test_import import confirm, job_of, upload
from wagtail_clientdb import import_rollback, overrides, retention
from wagtail_clientdb.models import (
    AttributeDefinition,
    BranchMembership,
    ClientDBLogEntry,
    Customer,
    CustomerGroup,
    CustomerOverride,
    DeletionRequest,
    ImportBatch,
)

API = "/api/v3/clientdb"


def rollback_url(batch):
    return customer_url("import_rollback", batch.pk)


def page_text(response):
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def roll_back_in_the_admin(client, job):
    """The import page's button, the confirmation page, and the confirmation, as a browser does.
    Returns (the confirmation page's text, the report page's response)."""
    job_page = page_text(client.get(customer_url("import_job", job.pk)))
    assert "data-clientdb-rollback" in job_page and "Roll back this import" in job_page
    batch = ImportBatch.objects.get(job=job)
    confirmation = client.post(rollback_url(batch))  # the button: nothing happens yet
    text = page_text(confirmation)
    assert "What rolling back will do" in text and "data-clientdb-rollback-confirm" in text
    assert ImportBatch.objects.get(pk=batch.pk).rolled_back_at is None
    done = client.post(rollback_url(batch), {"confirm": "1"})
    assert done.status_code == 302 and done.url == rollback_url(batch)
    return text, client.get(done.url)


def counts(text):
    """The counts table of the rollback page: kind → number."""
    import re

    return {kind: int(number) for kind, number in re.findall(r'data-count="(\w+)">(\d+)<', text)}


@pytest.fixture
def vip(db):
    return CustomerGroup.objects.create(name="VIP")


@pytest.fixture
def hair(db):
    return AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])


# --- The case of the issue ---------------------------------------------------------------------------------


def test_rollback_of_an_import_that_created_3_and_updated_2_customers_one_edited_since(login, manager, vip, hair):
    anna = make_customer(
        first_name="Anna", last_name="Alt", email="anna@example.com", phone_raw="+49 170 1111111",
        notes="likes tea", shared_with_all_branches=True, attributes={"hair": "fine"},
    )
    anna.tags.add("regular")
    bert = make_customer(first_name="Bert", last_name="Brandt", email="bert@example.com", notes="first visit", shared_with_all_branches=True, marketing_consent=True)
    rows = [
        ["First name", "Last name", "Email", "Phone", "Notes", "Hair", "Tags", "Groups", "Marketing consent"],
        ["Anna", "Neu", "anna@example.com", "0170 2222222", "likes coffee", "thick", "new, imported", "VIP", "1"],
        ["Bert", "Brandt", "bert@example.com", "", "second visit", "", "", "", "0"],
        ["Carl", "Cramer", "carl@example.com", "", "", "", "imported", "VIP", "1"],
        ["Dora", "Dorn", "dora@example.com", "", "", "", "", "", ""],
        ["Emil", "Ende", "emil@example.com", "", "", "", "", "", ""],
    ]
    client = login(manager)
    job = job_of(upload(client, "customers.csv", csv_bytes(rows)))
    assert job.counts == {"new": 3, "updated": 2, "unchanged": 0, "invalid": 0}
    confirm(client, job)
    job.refresh_from_db()
    assert job.status == "imported"
    batch = ImportBatch.objects.get(job=job)
    assert (batch.source, batch.created, batch.updated, batch.created_by) == ("import", 3, 2, manager)
    anna.refresh_from_db()
    assert (anna.last_name, anna.phone, anna.notes, anna.marketing_consent) == ("Neu", "+491702222222", "likes coffee", True)
    created = list(Customer.objects.filter(email__in=["carl@example.com", "dora@example.com", "emil@example.com"]))
    assert len(created) == 3

    # Somebody edits Bert's notes in the admin after the import.
    response = post_edit(client, bert, {
        "first_name": "Bert", "last_name": "Brandt", "email": "bert@example.com", "phone_raw": "",
        "notes": "edited at the desk", "sharing": "all",
    })
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    bert.refresh_from_db()
    assert bert.notes == "edited at the desk" and not bert.marketing_consent  # the import withdrew it

    confirmation, report = roll_back_in_the_admin(client, job)
    assert counts(confirmation) == {"deleted": 3, "blocked": 0, "kept": 0, "restored": 1, "not_restored": 1}
    assert "Bert Brandt" in confirmation and "changed since the import: notes" in confirmation
    text = page_text(report)
    assert "What the rollback did" in text
    assert counts(text) == {"deleted": 3, "blocked": 0, "kept": 0, "restored": 1, "not_restored": 1}
    assert "Bert Brandt</strong>: changed since the import: notes" in text
    assert "Roll back this import" not in text

    # The 3 created customers are gone; Anna has everything back; Bert keeps the desk's edit.
    assert not Customer.objects.filter(pk__in=[c.pk for c in created]).exists()
    assert DeletionRequest.objects.filter(
        customer_number__in=[c.pk for c in created], status="done", reason="import_rollback"
    ).count() == 3
    anna.refresh_from_db()
    assert (anna.first_name, anna.last_name, anna.phone, anna.phone_raw, anna.notes, anna.attributes) == (
        "Anna", "Alt", "+491701111111", "+49 170 1111111", "likes tea", {"hair": "fine"}
    )
    assert sorted(anna.tags.names()) == ["regular"] and not anna.groups.exists()
    assert not anna.marketing_consent
    assert list(anna.consent_events.values_list("given", "channel")) == [(False, "admin"), (True, "import")]
    bert.refresh_from_db()
    assert (bert.notes, bert.marketing_consent) == ("edited at the desk", False)

    batch.refresh_from_db()
    assert batch.rolled_back_by == manager and batch.rolled_back_at is not None
    entries = ClientDBLogEntry.objects.filter(action__startswith="wagtail_clientdb.import_rollback")
    assert sorted(entries.values_list("action", "object_id")) == sorted(
        [("wagtail_clientdb.import_rollback_restore", str(anna.pk))]
        + [("wagtail_clientdb.import_rollback_delete", str(c.pk)) for c in created]
    )
    (restored,) = ClientDBLogEntry.objects.for_instance(anna).filter(action="wagtail_clientdb.import_rollback_restore")
    assert restored.message == "Values from before an import restored" and restored.data["batch"] == batch.pk
    # The job page says so, and offers no second rollback.
    job_page = page_text(client.get(customer_url("import_job", job.pk)))
    assert "This import was rolled back" in job_page and "data-clientdb-rollback " not in job_page


def test_a_second_rollback_is_refused_and_changes_nothing(login, manager):
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Ada Lovelace", "ada@example.com"]])))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    roll_back_in_the_admin(client, job)
    assert not Customer.objects.exists()
    # The same person imported again by another file, then the first batch's rollback repeated.
    again = job_of(upload(client, "b.csv", csv_bytes([["Name", "Email"], ["Ada Lovelace", "ada@example.com"]])))
    confirm(client, again)
    response = client.post(rollback_url(batch), {"confirm": "1"}, follow=True)
    assert "already rolled back" in page_text(response)
    assert Customer.objects.filter(email="ada@example.com").count() == 1
    with pytest.raises(import_rollback.RollbackRefused):
        import_rollback.roll_back(batch, manager)
    assert "data-clientdb-rollback-confirm" not in page_text(client.get(rollback_url(batch)))


# --- Created customers and the deletion rules --------------------------------------------------------


def test_a_created_customer_with_an_upcoming_appointment_stays_in_the_deletion_queue(
    login, manager, branch_a, django_capture_on_commit_callbacks
):
    rows = [["Name", "Email"], ["Carl Cramer", "carl@example.com"], ["Dora Dorn", "dora@example.com"]]
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job)
    carl, dora = Customer.objects.get(first_name="Carl"), Customer.objects.get(first_name="Dora")
    upcoming = make_appointment(carl, branch_a, days=2, service="Colouring")
    past = make_appointment(dora, branch_a, days=-3, status="completed")
    confirmation, report = roll_back_in_the_admin(client, job)
    assert counts(confirmation)["blocked"] == 1 and counts(confirmation)["deleted"] == 1
    assert "Carl Cramer</strong>: Alpha Salon: upcoming appointment “Colouring”" in confirmation
    text = page_text(report)
    assert counts(text) == {"deleted": 1, "blocked": 1, "kept": 0, "restored": 0, "not_restored": 0}
    assert "Carl Cramer</strong>: Alpha Salon: upcoming appointment “Colouring”" in text
    # Carl waits in the queue, seen only where the appointment is; Dora is gone, her past visit kept without her.
    request = DeletionRequest.objects.get(customer=carl)
    assert request.status == "blocked" and list(request.blocking_branches.all()) == [branch_a]
    assert [error["appointment"] for error in request.errors] == [upcoming.pk]
    assert not Customer.objects.filter(pk=dora.pk).exists()
    past.refresh_from_db()
    assert past.customer is None and past.notes == ""
    # When the appointment is cancelled, the queue deletes Carl.
    upcoming.status = "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        upcoming.save()
    assert not Customer.objects.filter(pk=carl.pk).exists()


def test_a_created_customer_changed_since_the_import_is_kept(login, manager, branch_a, allow_branch_edits):
    rows = [["Name", "Email"], ["Carl Cramer", "carl@example.com"], ["Dora Dorn", "dora@example.com"], ["Emil Ende", "emil@example.com"]]
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job)
    carl, dora = Customer.objects.get(first_name="Carl"), Customer.objects.get(first_name="Dora")
    carl.notes = "called to confirm"
    carl.save()
    overrides.save_local_values(dora, branch_a, {"notes": "Alpha's note"})
    _confirmation, report = roll_back_in_the_admin(client, job)
    text = page_text(report)
    assert counts(text)["kept"] == 2 and counts(text)["deleted"] == 1
    assert "Carl Cramer</strong>: changed since the import, so it is kept" in text
    assert set(Customer.objects.values_list("first_name", flat=True)) == {"Carl", "Dora"}


# --- Restoring --------------------------------------------------------------------------------------------------


def test_changes_since_to_values_the_import_did_not_touch_do_not_stop_the_restore(login, manager):
    anna = make_customer(first_name="Anna", last_name="Alt", email="anna@example.com", notes="old", shared_with_all_branches=True)
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes([["Email", "Notes"], ["anna@example.com", "new"]])))
    confirm(client, job)
    anna.refresh_from_db()
    anna.last_name = "Altmann"  # not a value the import changed
    anna.save()
    _confirmation, report = roll_back_in_the_admin(client, job)
    assert counts(page_text(report))["restored"] == 1
    anna.refresh_from_db()
    assert (anna.last_name, anna.notes) == ("Altmann", "old")


def test_tags_the_import_named_in_another_case_are_known_as_what_it_left(login, manager):
    """The import names a tag the customer has in another case (the same tag, wagtail_clientdb.tags):
    a later change of something else does not make the rollback think the tags changed since."""
    anna = make_customer(first_name="Anna", last_name="Alt", email="anna@example.com", shared_with_all_branches=True)
    anna.tags.add("regular")
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes([["Email", "Tags"], ["anna@example.com", "REGULAR, New"]])))
    confirm(client, job)
    assert sorted(anna.tags.names()) == ["New", "regular"]
    anna.refresh_from_db()
    anna.last_name = "Altmann"  # not a value the import changed
    anna.save()
    confirmation, _report = roll_back_in_the_admin(client, job)
    assert counts(confirmation)["restored"] == 1, confirmation
    assert list(anna.tags.names()) == ["regular"]


def test_sharing_with_all_branches_stays_and_the_rest_is_restored(login, manager, branch_a, branch_b):
    gerd = make_customer(first_name="Gerd", email="gerd@example.com", notes="old", branches=[branch_a])
    local_b = make_customer(first_name="Lars", email="lars@example.com", home_branch=branch_b)
    rows = [["Email", "Notes", "Branches"], ["gerd@example.com", "new", "*"], ["lars@example.com", "", "alpha"]]
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job)
    gerd.refresh_from_db(), local_b.refresh_from_db()
    assert gerd.shared_with_all_branches and local_b.home_branch is None
    assert set(local_b.branches.all()) == {branch_a, branch_b}
    _confirmation, report = roll_back_in_the_admin(client, job)
    text = page_text(report)
    assert "Gerd</strong>: its sharing stays “all branches”, which is final" in text
    gerd.refresh_from_db(), local_b.refresh_from_db()
    assert gerd.notes == "old" and gerd.shared_with_all_branches
    assert local_b.home_branch == branch_b and not local_b.branches.exists()


def test_a_branch_import_with_local_values_is_rolled_back(login, staff_a, branch_a, allow_branch_edits):
    gloria = make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", phone_raw="+49 170 1111111", notes="central", shared_with_all_branches=True)
    overrides.save_local_values(gloria, branch_a, {"last_name": "Alpha-Name"})
    held = CustomerOverride.objects.get(customer=gloria, branch=branch_a)
    lena = make_customer(first_name="Lena", email="lena@example.com", notes="old", home_branch=branch_a)
    rows = [
        ["First name", "Last name", "Email", "Phone", "Notes"],
        ["Gloria", "Alpha-Neu", "gloria@example.com", "0170 2222222", "alpha note"],
        ["Lena", "", "lena@example.com", "", "new"],
        ["Nina", "Neu", "nina@example.com", "", ""],
    ]
    client = login(staff_a)
    job = job_of(upload(client, "kunden.xlsx", xlsx_bytes(rows)))
    assert job.counts == {"new": 1, "updated": 2, "unchanged": 0, "invalid": 0}
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    assert (batch.branch, batch.created, batch.updated) == (branch_a, 1, 2)
    held.refresh_from_db()
    assert (held.last_name, held.phone, held.notes) == ("Alpha-Neu", "+491702222222", "alpha note")
    gloria.refresh_from_db()
    assert (gloria.last_name, gloria.notes, gloria.version) == ("Global", "central", 1)

    _confirmation, report = roll_back_in_the_admin(client, job)
    assert counts(page_text(report)) == {"deleted": 1, "blocked": 0, "kept": 0, "restored": 2, "not_restored": 0}
    held.refresh_from_db()
    # Alpha's local values are as before the import: its own last name, no local phone or notes.
    assert (held.last_name, held.phone_raw, held.phone, held.notes) == ("Alpha-Name", None, None, None)
    gloria.refresh_from_db()
    assert (gloria.last_name, gloria.phone, gloria.notes) == ("Global", "+491701111111", "central")
    lena.refresh_from_db()
    assert lena.notes == "old"
    assert not Customer.objects.filter(email="nina@example.com").exists()


def test_local_values_changed_since_are_not_restored(login, staff_a, branch_a, allow_branch_edits):
    gloria = make_customer(first_name="Gloria", email="gloria@example.com", notes="central", shared_with_all_branches=True)
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes([["Email", "Notes"], ["gloria@example.com", "alpha note"]])))
    confirm(client, job)
    overrides.save_local_values(gloria, branch_a, {"notes": "alpha note, edited"})
    _confirmation, report = roll_back_in_the_admin(client, job)
    assert "Gloria</strong>: changed since the import: notes" in page_text(report)
    assert CustomerOverride.objects.get(customer=gloria, branch=branch_a).notes == "alpha note, edited"


# --- Who may roll back ---------------------------------------------------------------------------------------------


def test_who_may_roll_back_an_import(login, make_user, staff_group, staff_a, staff_b, manager, branch_a):
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Nina Neu", "nina@example.com"]])))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    colleague = make_user("colleague_a", groups=[staff_group], branches=[branch_a])
    for user in (staff_b, colleague):
        other = login(user)
        assert other.get(rollback_url(batch)).status_code == 404
        assert other.post(rollback_url(batch), {"confirm": "1"}).status_code == 404
        assert rollback_url(batch) not in page_text(other.get(customer_url("import_batches")))
    assert Customer.objects.filter(email="nina@example.com").exists()
    # The head office may: the list of earlier imports shows the branch's import.
    client = login(manager)
    listing = page_text(client.get(customer_url("import_batches")))
    assert "a.csv" in listing and rollback_url(batch) in listing
    client.post(rollback_url(batch), {"confirm": "1"})
    assert not Customer.objects.filter(email="nina@example.com").exists()


def test_staff_who_left_the_branch_can_no_longer_roll_back(login, staff_a, branch_a):
    client = login(staff_a)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Nina Neu", "nina@example.com"]])))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    BranchMembership.objects.filter(user=staff_a).delete()
    assert client.post(rollback_url(batch), {"confirm": "1"}).status_code in (302, 403, 404)
    assert Customer.objects.filter(email="nina@example.com").exists()
    with pytest.raises(PermissionDenied):
        import_rollback.roll_back(batch, staff_a)


# --- What is recorded, and for how long ------------------------------------------------------------------------


def test_previews_and_refused_imports_leave_no_batch(login, manager):
    client = login(manager)
    rows = [["Name", "Email"], ["Ada", "ada@example.com"], ["Bad", "not-an-email"]]
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    assert not ImportBatch.objects.exists()
    # Refused as a whole at the import itself (all or nothing): nothing written, no batch.
    Customer.objects.create(first_name="Other", email="ada@example.com")
    confirm(client, job, import_valid_rows="")
    job.refresh_from_db()
    assert not ImportBatch.objects.exists()


def test_the_record_of_an_import_is_deleted_after_the_retention_period(login, manager, settings):
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Ada", "ada@example.com"]])))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    assert batch.parts.count() == 1
    retention.delete_expired_files(now=timezone.now() + datetime.timedelta(days=29))
    assert batch.parts.count() == 1
    retention.delete_expired_files(now=timezone.now() + datetime.timedelta(days=31))
    batch.refresh_from_db()
    assert batch.records_deleted_at is not None and not batch.parts.exists()
    text = page_text(client.get(rollback_url(batch)))
    assert "can no longer be rolled back" in text and "data-clientdb-rollback-confirm" not in text
    assert client.post(rollback_url(batch), {"confirm": "1"}).status_code == 302
    assert Customer.objects.filter(email="ada@example.com").exists()


# --- The API's bulk import -----------------------------------------------------------------------------------------


class Api:
    def __init__(self, client, user):
        self.client = client
        _token, self.secret = APIToken.create_token(user=user, name=f"{user.username} token")

    def call(self, method, path, data=None):
        return getattr(self.client, method)(
            API + path, json.dumps(data) if data is not None else None, content_type="application/json",
            headers={"Authorization": f"Bearer {self.secret}"},
        )


@pytest.fixture(autouse=True)
def empty_cache():
    from django.core.cache import cache

    cache.clear()


def test_an_api_bulk_batch_is_rolled_back_through_the_api(client, manager, staff_a, vip, branch_a):
    grace = make_customer(first_name="Grace", email="grace@example.com", notes="old", shared_with_all_branches=True)
    api = Api(client, manager)
    records = [
        {"external_id": "CRM-1", "first_name": "Ada", "email": "ada@example.com", "tags": ["vip"]},
        {"external_id": "CRM-2", "first_name": "Alan", "groups": ["VIP"]},
        {"email": "grace@example.com", "notes": "From the CRM", "marketing_consent": True},
    ]
    response = api.call("post", "/customers/bulk/", {"customers": records})
    assert response.status_code == 200, response.content
    body = response.json()
    batch = ImportBatch.objects.get(pk=body["batch"])
    assert (batch.source, batch.job, batch.created, batch.updated) == ("api", None, 2, 1)
    ada = Customer.objects.get(external_id="CRM-1")
    make_appointment(ada, branch_a, days=5)

    # What rolling back would do; a branch token does not see the head office's batch.
    assert Api(client, staff_a).call("get", f"/customers/bulk/{batch.pk}/").status_code == 404
    preview = api.call("get", f"/customers/bulk/{batch.pk}/").json()
    assert preview["rollback"]["done"] is False and preview["refusal"] is None
    assert (preview["rollback"]["deleted"], preview["rollback"]["restored"]) == (1, 1)
    assert [b["customer_id"] for b in preview["rollback"]["blocked"]] == [ada.pk]
    assert Customer.objects.filter(external_id="CRM-2").exists()

    response = api.call("post", f"/customers/bulk/{batch.pk}/rollback/")
    assert response.status_code == 200, response.content
    done = response.json()["rollback"]
    assert done["done"] is True and (done["deleted"], done["restored"]) == (1, 1)
    assert "upcoming appointment" in done["blocked"][0]["errors"][0]
    assert not Customer.objects.filter(external_id="CRM-2").exists()
    assert DeletionRequest.objects.get(customer=ada).status == "blocked"
    grace.refresh_from_db()
    assert (grace.notes, grace.marketing_consent) == ("old", False)
    assert list(grace.consent_events.values_list("given", "channel")) == [(False, "api"), (True, "api")]

    # Once only.
    again = api.call("post", f"/customers/bulk/{batch.pk}/rollback/")
    assert again.status_code == 409 and "already rolled back" in again.content.decode()


def test_an_api_bulk_batch_is_listed_and_rolled_back_in_the_admin(client, login, manager):
    api = Api(client, manager)
    body = api.call("post", "/customers/bulk/", {"customers": [{"first_name": "Ada", "email": "ada@example.com"}]}).json()
    batch = ImportBatch.objects.get(pk=body["batch"])
    admin = login(manager)
    listing = page_text(admin.get(customer_url("import_batches")))
    assert f"API bulk import {batch.pk}" in listing
    confirmation = page_text(admin.get(rollback_url(batch)))
    assert counts(confirmation)["deleted"] == 1
    admin.post(rollback_url(batch), {"confirm": "1"})
    assert not Customer.objects.filter(email="ada@example.com").exists()


def test_a_customer_changed_twice_by_one_call_gets_the_value_from_before_both(client, manager):
    # Two records meaning the same person (by email, then by phone). A file import refuses the
    # second row (the customer changed after the preview); a bulk call has no preview.
    anna = make_customer(first_name="Anna", email="anna@example.com", phone_raw="+49 170 1111111", notes="old", shared_with_all_branches=True)
    api = Api(client, manager)
    records = [{"email": "anna@example.com", "notes": "first"}, {"phone": "+49 170 1111111", "notes": "second", "first_name": "Annie"}]
    body = api.call("post", "/customers/bulk/", {"customers": records}).json()
    anna.refresh_from_db()
    assert (body["updated"], anna.notes, anna.first_name) == (2, "second", "Annie")
    assert api.call("post", f"/customers/bulk/{body['batch']}/rollback/").json()["rollback"]["restored"] == 1
    anna.refresh_from_db()
    assert (anna.notes, anna.first_name) == ("old", "Anna")


def test_a_bulk_call_that_changes_nothing_has_no_batch(client, manager):
    make_customer(first_name="Ada", email="ada@example.com", shared_with_all_branches=True)
    body = Api(client, manager).call("post", "/customers/bulk/", {"customers": [{"first_name": "Ada", "email": "ada@example.com"}]}).json()
    assert body["unchanged"] == 1 and body["batch"] is None
    assert not ImportBatch.objects.exists()


# --- Large imports: the rollback runs in the background ---------------------------------------------------------


def test_a_large_rollback_runs_as_a_background_task(login, manager, settings, django_capture_on_commit_callbacks):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "ROLLBACK_BACKGROUND_CUSTOMERS": 2}
    rows = [["Name", "Email"], *([f"Person {n}", f"p{n}@example.com"] for n in range(5))]
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(rollback_url(batch), {"confirm": "1"}, follow=True)
    text = page_text(response)
    assert "Rolling back" in text and "The rollback has started" in text
    assert Customer.objects.count() == 5
    # A second click while it waits is refused.
    assert "being rolled back" in page_text(client.post(rollback_url(batch), {"confirm": "1"}, follow=True))
    assert "being rolled back" in page_text(client.get(customer_url("import_job", job.pk)))
    for callback in callbacks:  # the worker runs the task
        callback()
    assert not Customer.objects.exists()
    text = page_text(client.get(rollback_url(batch)))
    assert "What the rollback did" in text and counts(text)["deleted"] == 5 and "Rolling back" not in text
    batch.refresh_from_db()
    assert batch.rollback_queued_at is None and batch.rollback_error == "" and batch.rolled_back_by == manager


def test_a_background_rollback_that_fails_changes_nothing_and_says_why(login, manager, settings, monkeypatch, django_capture_on_commit_callbacks):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "ROLLBACK_BACKGROUND_CUSTOMERS": 0}
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes([["Name", "Email"], ["Ada", "ada@example.com"]])))
    confirm(client, job)
    batch = ImportBatch.objects.get(job=job)

    def fail(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(import_rollback, "_restore", fail)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(rollback_url(batch), {"confirm": "1"})
    text = page_text(client.get(rollback_url(batch)))
    assert "The rollback failed unexpectedly; nothing was changed." in text
    assert Customer.objects.filter(email="ada@example.com").exists()
    batch.refresh_from_db()
    assert batch.rolled_back_at is None and batch.rollback_queued_at is None
    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(rollback_url(batch), {"confirm": "1"})
    assert not Customer.objects.filter(email="ada@example.com").exists()


def test_a_large_bulk_batch_is_rolled_back_in_the_background_through_the_api(client, manager, settings, django_capture_on_commit_callbacks):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "ROLLBACK_BACKGROUND_CUSTOMERS": 0}
    api = Api(client, manager)
    body = api.call("post", "/customers/bulk/", {"customers": [{"first_name": "Ada", "email": "ada@example.com"}]}).json()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api.call("post", f"/customers/bulk/{body['batch']}/rollback/")
    assert response.status_code == 202 and response.json()["rolling_back"] is True
    assert "being rolled back" in response.json()["refusal"]
    assert api.call("post", f"/customers/bulk/{body['batch']}/rollback/").status_code == 409
    for callback in callbacks:
        callback()
    done = api.call("get", f"/customers/bulk/{body['batch']}/").json()
    assert done["rolling_back"] is False and done["rollback"]["done"] is True and done["rollback"]["deleted"] == 1
    assert not Customer.objects.filter(email="ada@example.com").exists()


def test_an_external_id_and_a_birthday_the_import_added_are_taken_back(login, manager):
    # A row with an external ID matches a customer without one by email, and gives it the ID.
    anna = make_customer(first_name="Anna", email="anna@example.com", birthday=datetime.date(1990, 4, 1), shared_with_all_branches=True)
    rows = [["Email", "External ID", "Birthday"], ["anna@example.com", "CRM-1", "1991-05-02"]]
    client = login(manager)
    job = job_of(upload(client, "a.csv", csv_bytes(rows)))
    confirm(client, job)
    anna.refresh_from_db()
    assert (anna.external_id, anna.birthday) == ("CRM-1", datetime.date(1991, 5, 2))
    roll_back_in_the_admin(client, job)
    anna.refresh_from_db()
    assert (anna.external_id, anna.birthday) == ("", datetime.date(1990, 4, 1))
