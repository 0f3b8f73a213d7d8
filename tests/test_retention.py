"""Deleting customers with no appointment for years (issue #16): the setting, the selection, the
command with its dry run and the task, all through the deletion queue's rules."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb import booking, retention
from wagtail_clientdb.deletion import BookingRefused
from wagtail_clientdb.models import (
    Appointment,
    ClientDBLogEntry,
    ClientDBSettings,
    Customer,
    DeletionReason,
    DeletionRequest,
    DeletionStatus,
)
from wagtail_clientdb.tasks import delete_inactive_customers

YEAR = datetime.timedelta(days=365)


def entered(customer, years_ago):
    Customer.objects.filter(pk=customer.pk).update(created_at=timezone.now() - years_ago * YEAR)
    return customer


def past_appointment(customer, branch, years_ago, **kwargs):
    return make_appointment(customer, branch, days=-round(years_ago * 365), status="completed", **kwargs)


@pytest.fixture
def people(branch_a, branch_b):
    """Customers on either side of a three-year limit."""
    inactive = entered(make_customer(first_name="Olga", last_name="Old", shared_with_all_branches=True, notes="allergic"), 6)
    old_visit = past_appointment(inactive, branch_a, 4)
    old_visit.notes, old_visit.attributes = "prefers Olga's usual", {"colour": "red"}
    old_visit.save()
    cancelled_long_ago = past_appointment(inactive, branch_b, 3.5)
    never_came = entered(make_customer(first_name="Nina", last_name="Never", home_branch=branch_a), 5)
    recent = entered(make_customer(first_name="Rita", last_name="Recent", home_branch=branch_b), 6)
    past_appointment(recent, branch_b, 5)
    past_appointment(recent, branch_a, 1)  # in another branch: counts all the same
    # A cancelled appointment last year is an appointment too.
    cancelled_recently = entered(make_customer(first_name="Carl", last_name="Cancelled", shared_with_all_branches=True), 8)
    past_appointment(cancelled_recently, branch_a, 7)
    make_appointment(cancelled_recently, branch_a, days=-200, status="cancelled")
    booked = entered(make_customer(first_name="Bea", last_name="Booked", shared_with_all_branches=True), 9)
    past_appointment(booked, branch_a, 8)
    upcoming = make_appointment(booked, branch_b, days=30)
    new = make_customer(first_name="Nora", last_name="New", home_branch=branch_a)
    return {
        "inactive": inactive,
        "never_came": never_came,
        "recent": recent,
        "cancelled_recently": cancelled_recently,
        "booked": booked,
        "new": new,
        "old_visit": old_visit,
        "cancelled_long_ago": cancelled_long_ago,
        "upcoming": upcoming,
    }


def counts():
    return (
        Customer.objects.count(),
        Appointment.objects.filter(customer__isnull=False).count(),
        DeletionRequest.objects.count(),
        ClientDBLogEntry.objects.count(),
    )


def test_the_selection_is_exactly_who_had_no_appointment_for_the_years(people):
    selected = retention.with_last_appointment(retention.inactive_customers(3))
    assert {c.pk for c in selected} == {people["inactive"].pk, people["never_came"].pk}
    last = {c.pk: c.last_appointment for c in selected}
    assert last[people["inactive"].pk] == people["cancelled_long_ago"].start
    assert last[people["never_came"].pk] is None
    # A longer limit leaves out who came within it; a customer entered later than the limit is never selected.
    assert set(retention.inactive_customers(5).values_list("pk", flat=True)) == set()
    assert set(retention.inactive_customers(4).values_list("pk", flat=True)) == {people["never_came"].pk}
    with pytest.raises(ValueError):
        retention.inactive_customers(0)


def test_the_29th_of_february_goes_back_to_the_28th():
    leap = datetime.datetime(2028, 2, 29, 10, tzinfo=datetime.UTC)
    assert retention.years_before(leap, 1) == datetime.datetime(2027, 2, 28, 10, tzinfo=datetime.UTC)
    assert retention.years_before(leap, 4) == datetime.datetime(2024, 2, 29, 10, tzinfo=datetime.UTC)


def test_dry_run_lists_who_would_be_deleted_and_changes_nothing(people, capsys):
    DeletionRequest.objects.create(customer=people["never_came"], customer_number=people["never_came"].pk)
    before = counts()
    call_command("clientdb_anonymise_inactive", "--dry-run", "--years", "3")
    out = capsys.readouterr().out
    assert counts() == before
    lines = out.strip().splitlines()
    inactive, never_came = people["inactive"], people["never_came"]
    last_visit = timezone.localtime(people["cancelled_long_ago"].start).date().isoformat()
    assert lines[0] == (
        f"#{inactive.pk}  Olga Old  last appointment: {last_visit}  "
        f"created: {timezone.localtime(Customer.objects.get(pk=inactive.pk).created_at).date().isoformat()}"
    )
    assert lines[1].startswith(f"#{never_came.pk}  Nina Never  last appointment: none  created: ")
    assert lines[1].endswith("(already in the deletion queue)")
    assert lines[2].startswith("2 customer(s) with no appointment since ")
    assert lines[2].endswith("would be deleted (1 of them already in the deletion queue). Dry run: nothing was changed.")
    assert len(lines) == 3
    for name in ("Rita", "Carl", "Bea", "Nora"):
        assert name not in out


def test_a_run_deletes_the_inactive_keeps_their_history_without_them_and_leaves_the_others(people, settings_model, capsys):
    settings_model.anonymise_after_years = 3
    settings_model.save()
    call_command("clientdb_anonymise_inactive")
    assert "2 customer(s) with no appointment for 3 year(s) deleted, 0 blocked" in capsys.readouterr().out

    inactive, never_came = people["inactive"], people["never_came"]
    assert not Customer.objects.filter(pk__in=[inactive.pk, never_came.pk]).exists()
    for key in ("recent", "cancelled_recently", "booked", "new"):
        assert Customer.objects.filter(pk=people[key].pk).exists(), key
    # Their past appointments stay for the records, without the person.
    for key in ("old_visit", "cancelled_long_ago"):
        kept = Appointment.objects.get(pk=people[key].pk)
        assert (kept.customer_id, kept.notes, kept.attributes) == (None, "", {})
    assert Appointment.objects.get(pk=people["upcoming"].pk).customer_id == people["booked"].pk

    # The queue says who asked (nobody: the retention rule) and why; no personal data stays.
    requests = DeletionRequest.objects.filter(customer_number__in=[inactive.pk, never_came.pk])
    assert {(r.status, r.reason, r.requested_by_id, r.requested_in_branch_id) for r in requests} == {
        (DeletionStatus.DONE, DeletionReason.RETENTION, None, None)
    }
    assert requests.count() == 2
    entry = ClientDBLogEntry.objects.get(object_id=str(inactive.pk), action=retention.DELETION_ACTION)
    assert entry.label == f"Customer #{inactive.pk} (deleted)" and entry.user is None
    assert entry.message == "Deletion requested: no appointment for 3 years"
    assert "Olga" not in str(entry.data)

    # A second run finds nobody.
    call_command("clientdb_anonymise_inactive")
    assert "0 customer(s) with no appointment for 3 year(s) deleted" in capsys.readouterr().out


def test_an_open_request_is_tried_again_not_requested_twice(people, manager):
    never_came = people["never_came"]
    asked = DeletionRequest.objects.create(customer=never_came, customer_number=never_came.pk, requested_by=manager)
    result = retention.delete_inactive_customers(3)
    assert (result.deleted, result.blocked) == (2, 0)
    asked.refresh_from_db()
    assert (asked.status, asked.reason, asked.requested_by) == (DeletionStatus.DONE, DeletionReason.REQUESTED, manager)
    assert DeletionRequest.objects.filter(customer_number=never_came.pk).count() == 1
    # Retention did not ask for this one: its history says nothing of it.
    assert not ClientDBLogEntry.objects.filter(object_id=str(never_came.pk), action=retention.DELETION_ACTION).exists()


def test_the_queue_shows_why(people, login, manager):
    retention.delete_inactive_customers(3)
    html = login(manager).get(reverse("wagtailsnippets_wagtail_clientdb_deletionrequest:list")).content.decode()
    assert html.count("No appointment for a long time") >= 2
    filtered = login(manager).get(
        reverse("wagtailsnippets_wagtail_clientdb_deletionrequest:list"), {"reason": DeletionReason.IMPORT_ROLLBACK}
    )
    assert list(filtered.context["object_list"]) == []


def test_refused_while_the_setting_is_off_unless_years_are_given(people, capsys):
    before = counts()
    with pytest.raises(CommandError, match="switched off"):
        call_command("clientdb_anonymise_inactive")
    with pytest.raises(CommandError, match="switched off"):
        call_command("clientdb_anonymise_inactive", "--dry-run")
    with pytest.raises(CommandError, match="1 or more"):
        call_command("clientdb_anonymise_inactive", "--years", "0")
    assert counts() == before
    call_command("clientdb_anonymise_inactive", "--years", "4")
    assert "1 customer(s) with no appointment for 4 year(s) deleted" in capsys.readouterr().out
    assert not Customer.objects.filter(pk=people["never_came"].pk).exists()
    assert Customer.objects.filter(pk=people["inactive"].pk).exists()


def test_the_task_follows_the_setting(people, settings_model):
    before = counts()
    assert delete_inactive_customers.enqueue().return_value is None
    assert counts() == before
    settings_model.anonymise_after_years = 3
    settings_model.save()
    assert delete_inactive_customers.enqueue().return_value == {"years": 3, "deleted": 2, "blocked": 0}
    assert not Customer.objects.filter(pk=people["inactive"].pk).exists()


def test_the_setting_is_edited_in_the_admin(login, make_user, settings_model):
    client = login(make_user("owner", is_superuser=True))
    page = client.get(reverse("wagtailsettings:edit", args=("wagtail_clientdb", "clientdbsettings")), follow=True)
    url = page.redirect_chain[-1][0]
    assert "no appointment for (years)" in page.content.decode()
    data = {"default_phone_region": "DE", "online_cancellation_hours": "24"}
    response = client.post(url, {**data, "anonymise_after_years": "0"})
    assert response.status_code == 200 and "anonymise_after_years" in response.context["form"].errors
    assert ClientDBSettings.load().anonymise_after_years is None
    assert client.post(url, {**data, "anonymise_after_years": "5"}).status_code == 302
    assert ClientDBSettings.load().anonymise_after_years == 5
    client.post(url, {**data, "anonymise_after_years": ""})
    assert ClientDBSettings.load().anonymise_after_years is None


def test_the_selection_and_a_run_take_the_same_queries_for_more_customers(branch_a):
    def make(count):
        for number in range(count):
            customer = entered(make_customer(first_name=f"Q{number}", shared_with_all_branches=True), 6)
            past_appointment(customer, branch_a, 5)

    def queries(action):
        with CaptureQueriesContext(connection) as captured:
            action()
        return len(captured.captured_queries)

    make(3)
    small = queries(lambda: list(retention.with_last_appointment(retention.inactive_customers(3))))
    small_run = queries(lambda: retention.delete_inactive_customers(3))
    make(30)
    large = queries(lambda: list(retention.with_last_appointment(retention.inactive_customers(3))))
    large_run = queries(lambda: retention.delete_inactive_customers(3))
    assert small == large == 1
    assert small_run == large_run
    assert not Customer.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_booking_made_during_a_run_is_never_lost(branch_a):
    """The selection is read before the customers are locked: a booking in between blocks the
    deletion (or is refused after it), as the deletion queue guarantees."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    from tests.test_concurrency import race

    service = make_appointment(make_customer(), branch_a, days=-1).service
    outcomes = []
    for round_number in range(12):
        customer = entered(make_customer(first_name=f"Race{round_number}", shared_with_all_branches=True), 6)
        start = timezone.now().replace(microsecond=0) + datetime.timedelta(days=2, hours=round_number)

        def book():
            return booking.save_appointment(
                Appointment(customer_id=customer.pk, branch=branch_a, service=service, start=start, end=start + datetime.timedelta(hours=1))
            )

        run, booked = race(lambda: retention.delete_inactive_customers(3), book)
        assert not isinstance(run, Exception), run
        if isinstance(booked, BookingRefused):
            assert not Customer.objects.filter(pk=customer.pk).exists()
            assert not Appointment.objects.filter(start=start).exists()
            outcomes.append("deleted")
        else:
            assert not isinstance(booked, Exception), booked
            assert Appointment.objects.get(pk=booked.pk).customer_id == customer.pk
            request = DeletionRequest.objects.filter(customer=customer).first()
            assert request is None or request.status == DeletionStatus.BLOCKED
            outcomes.append("blocked" if request else "booked first")
            if request:
                request.delete()
    assert len(outcomes) == 12
