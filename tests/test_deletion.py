"""The "Customers to delete" queue (DESIGN.md, "Deleting customers")."""

import datetime
import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone, translation

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_bulk
from wagtail_clientdb import booking, deletion, scope
from wagtail_clientdb.deletion import BookingRefused
from wagtail_clientdb.models import Appointment, Customer, DeletionRequest, DeletionStatus
from wagtail_clientdb.tasks import process_deletion_queue


def queue_url(name="list", *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_deletionrequest:{name}", args=args)


def listed_pks(client):
    return {c.pk for c in client.get(customer_url("list")).context["object_list"]}


@pytest.fixture
def shared(db):
    return make_customer(first_name="Doris", last_name="Delete", email="doris@example.com", notes="likes tea", shared_with_all_branches=True)


def test_customer_without_appointments_is_deleted_at_once(login, manager, shared):
    response = login(manager).post(customer_url("delete", shared.pk))
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=shared.pk).exists()
    request = DeletionRequest.objects.get()
    assert (request.status, request.customer, request.customer_number, request.requested_by) == ("done", None, shared.pk, manager)
    assert request.completed_at is not None
    # The record keeps no personal data.
    assert "Doris" not in str(request) and "doris" not in str(request.errors)


def test_blocked_in_one_branch_only(login, manager, staff_a, staff_b, branch_a, shared):
    appointment = make_appointment(shared, branch_a, days=3, service="Colour")
    login(manager).post(customer_url("delete", shared.pk))
    request = DeletionRequest.objects.get()
    assert request.status == DeletionStatus.BLOCKED
    assert list(request.blocking_branches.all()) == [branch_a]
    [error] = request.errors
    local_start = timezone.localtime(appointment.start, branch_a.zoneinfo)
    assert datetime.datetime.fromisoformat(error["local_start"]) == local_start
    assert error["appointment"] == appointment.pk and "message" not in error  # facts, not words
    shown = formats.date_format(local_start, "SHORT_DATETIME_FORMAT")
    assert deletion.describe_errors(request) == f"Alpha Salon: upcoming appointment “Colour” on {shown}"
    # Each reader gets the words in their own language, whoever's action blocked it.
    with translation.override("de"):
        german = deletion.describe_errors(request)
        shown = formats.date_format(local_start, "SHORT_DATETIME_FORMAT")
    assert german == f"Alpha Salon: anstehender Termin „Colour“ am {shown}" and "." in shown

    # Gone from B at once, still in A (with a badge), and in the head office's view.
    assert shared.pk not in listed_pks(login(staff_b))
    assert login(staff_b).get(customer_url("inspect", shared.pk)).status_code == 404
    client_a = login(staff_a)
    assert shared.pk in listed_pks(client_a)
    assert "pending deletion" in client_a.get(customer_url("list")).content.decode()
    assert shared.pk in listed_pks(login(manager))

    # The queue view names the blocking appointment.
    html = login(manager).get(queue_url()).content.decode()
    assert "Colour" in html and "Alpha Salon" in html and "Try again now" in html


def test_appointment_in_another_branch_blocks_too(login, manager, branch_b, branch_a):
    customer = make_customer(first_name="Sina", branches=[branch_a])
    make_appointment(customer, branch_b, days=1)
    login(manager).post(customer_url("delete", customer.pk))
    assert DeletionRequest.objects.get().status == DeletionStatus.BLOCKED
    assert Customer.objects.filter(pk=customer.pk).exists()


def test_unblocked_when_the_appointment_is_cancelled(login, manager, branch_a, shared, django_capture_on_commit_callbacks):
    appointment = make_appointment(shared, branch_a, days=3)
    login(manager).post(customer_url("delete", shared.pk))
    assert Customer.objects.filter(pk=shared.pk).exists()
    url = reverse("wagtailsnippets_wagtail_clientdb_appointment:edit", args=(appointment.pk,))
    data = {
        "customer": shared.pk, "branch": branch_a.pk, "service": appointment.service.pk, "status": "cancelled",
        "start": timezone.localtime(appointment.start).strftime("%Y-%m-%d %H:%M"),
        "end": timezone.localtime(appointment.end).strftime("%Y-%m-%d %H:%M"),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = login(manager).post(url, data)
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=shared.pk).exists()
    assert DeletionRequest.objects.get().status == DeletionStatus.DONE
    kept = Appointment.objects.get(pk=appointment.pk)
    assert (kept.customer, kept.status) == (None, "cancelled")


def test_unblocked_after_the_appointment_has_taken_place(db, manager, branch_a, shared):
    appointment = make_appointment(shared, branch_a, days=2)
    deletion.request_deletion(scope.viewer_for_user(manager), shared)
    assert deletion.process_queue(now=timezone.now() + datetime.timedelta(days=1)) == 0
    assert deletion.process_queue(now=appointment.start + datetime.timedelta(minutes=1)) == 1
    assert not Customer.objects.filter(pk=shared.pk).exists()


def queue_of(count, manager, branch, *, days):
    """``count`` customers of ``branch`` queued for deletion, each blocked by an appointment in ``days``."""
    viewer = scope.viewer_for_user(manager)
    customers = [make_customer(first_name=f"Q{n}", home_branch=branch) for n in range(count)]
    for customer in customers:
        make_appointment(customer, branch, days=days)
        deletion.request_deletion(viewer, customer)
    return customers


def test_the_queue_is_processed_in_chunks_with_the_same_rules(db, manager, branch_a, django_assert_max_num_queries):
    blocked, freed, withdrawn = queue_of(3, manager, branch_a, days=2)
    freed.appointments.update(status="cancelled")
    deletion.cancel(DeletionRequest.objects.get(customer=withdrawn))
    assert deletion.process_queue() == 1
    assert not Customer.objects.filter(pk=freed.pk).exists()
    assert DeletionRequest.objects.get(customer=blocked).status == DeletionStatus.BLOCKED
    # A cancelled request is not made anew: the customer stays, its request cancelled.
    assert list(DeletionRequest.objects.filter(customer_number=withdrawn.pk).values_list("status", flat=True)) == [DeletionStatus.CANCELLED]
    # The cost does not grow with the queue: request by request, 11 deletions took about 16
    # queries each; a queue of 11 and one of 30 take the same queries.
    Appointment.objects.update(status="cancelled")
    queries = []
    for size in (10, 29):
        queue_of(size, manager, branch_a, days=3)
        Appointment.objects.filter(start__gt=timezone.now() + datetime.timedelta(days=2, hours=12)).update(status="cancelled")
        with CaptureQueriesContext(connection) as captured:
            assert deletion.process_queue() == size + 1
        queries.append(len(captured))
        assert DeletionRequest.objects.filter(status__in=deletion.OPEN).count() == 0
        # One more, freed, as in the first round: each round deletes its queue and one more.
        queue_of(1, manager, branch_a, days=2)[0].appointments.update(status="cancelled")
    assert queries[0] == queries[1] < 40


def test_appointment_later_today_is_upcoming(db, manager, branch_a, shared):
    start = timezone.now() + datetime.timedelta(minutes=30)
    Appointment.objects.create(customer=shared, branch=branch_a, start=start, end=start + datetime.timedelta(hours=1), service=make_service("Cut", branch_a))
    request = deletion.request_deletion(scope.viewer_for_user(manager), shared)
    assert request.status == DeletionStatus.BLOCKED


def test_past_appointments_are_kept_without_personal_data(login, manager, branch_a, shared):
    past = make_appointment(shared, branch_a, days=-10, status="completed")
    past.notes = "Doris asked about her allergy"
    past.attributes = {"reason": "allergy"}
    past.save()
    login(manager).post(customer_url("delete", shared.pk))
    past.refresh_from_db()
    assert (past.customer, past.notes, past.attributes, past.service.name, past.branch) == (None, "", {}, "Haircut", branch_a)


def test_local_customer_deleted_by_its_branch(login, staff_a, branch_a):
    local = make_customer(first_name="Lea", home_branch=branch_a)
    login(staff_a).post(customer_url("delete", local.pk))
    assert not Customer.objects.filter(pk=local.pk).exists()
    assert DeletionRequest.objects.get().requested_in_branch == branch_a


def test_branch_staff_cannot_delete_a_global_customer(login, staff_a, shared, branch_a):
    client = login(staff_a)
    assert client.post(customer_url("delete", shared.pk)).url == reverse("wagtailadmin_home")
    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "delete")) + f"?id={shared.pk}"
    post_bulk(client, bulk)
    assert Customer.objects.filter(pk=shared.pk).exists()
    assert not DeletionRequest.objects.exists()
    with pytest.raises(Exception):
        deletion.request_deletion(scope.viewer_for_user(staff_a), shared)


def test_bulk_delete_uses_the_queue(login, manager, branch_a, shared):
    other = make_customer(first_name="Olga", shared_with_all_branches=True)
    make_appointment(shared, branch_a, days=1)
    url = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "delete")) + f"?id={shared.pk}&id={other.pk}&next={customer_url('list')}"
    response = post_bulk(login(manager), url, follow=True)
    assert "1 deleted, 1 queued" in response.content.decode()
    assert Customer.objects.filter(pk=shared.pk).exists() and not Customer.objects.filter(pk=other.pk).exists()


def test_cancel_request_restores_visibility(login, manager, staff_b, branch_a, shared):
    make_appointment(shared, branch_a, days=3)
    login(manager).post(customer_url("delete", shared.pk))
    request = DeletionRequest.objects.get()
    assert shared.pk not in listed_pks(login(staff_b))
    response = login(manager).post(queue_url("cancel", request.pk))
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == DeletionStatus.CANCELLED
    assert shared.pk in listed_pks(login(staff_b))
    # A cancelled request is not tried again.
    assert deletion.process_queue(now=timezone.now() + datetime.timedelta(days=30)) == 0


def test_try_again_now(login, manager, branch_a, shared):
    appointment = make_appointment(shared, branch_a, days=3)
    login(manager).post(customer_url("delete", shared.pk))
    request = DeletionRequest.objects.get()
    Appointment.objects.filter(pk=appointment.pk).update(status="completed")  # no signal: only "try again" notices
    response = login(manager).post(queue_url("retry", request.pk), follow=True)
    assert "The customer was deleted." in response.content.decode()
    assert not Customer.objects.filter(pk=shared.pk).exists()


def test_queue_actions_are_post_only_and_scoped(login, manager, staff_a, staff_b, branch_a):
    local = make_customer(first_name="Lea", home_branch=branch_a)
    make_appointment(local, branch_a, days=3)
    login(staff_a).post(customer_url("delete", local.pk))
    request = DeletionRequest.objects.get()
    assert login(staff_a).get(queue_url("cancel", request.pk)).status_code == 405
    assert login(staff_b).post(queue_url("cancel", request.pk)).status_code == 404
    assert request.pk not in {r.pk for r in login(staff_b).get(queue_url()).context["object_list"]}
    assert login(staff_a).post(queue_url("cancel", request.pk)).status_code == 302
    assert login(manager).get(queue_url("add")).status_code == 302  # nobody adds requests by hand


def test_booking_a_customer_queued_for_deletion_is_refused(login, manager, branch_a, shared):
    make_appointment(shared, branch_a, days=3)
    login(manager).post(customer_url("delete", shared.pk))
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=5))
    response = login(manager).post(
        reverse("wagtailsnippets_wagtail_clientdb_appointment:add"),
        {"customer": shared.pk, "branch": branch_a.pk, "service": make_service("Cut", branch_a).pk, "status": "booked",
         "start": start.strftime("%Y-%m-%d %H:%M"), "end": (start + datetime.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M")},
    )
    assert response.status_code == 200
    assert "queued for deletion" in str(response.context["form"].errors["customer"])
    assert Appointment.objects.filter(customer=shared).count() == 1
    # Completing or cancelling the existing booking stays possible: that is what unblocks.
    appointment = Appointment.objects.get(customer=shared)
    appointment.status = "cancelled"
    booking.save_appointment(appointment)


def test_management_command_and_task(db, manager, branch_a, shared, capsys):
    appointment = make_appointment(shared, branch_a, days=3)
    deletion.request_deletion(scope.viewer_for_user(manager), shared)
    call_command("clientdb_process_deletions")
    assert "0 customer(s) deleted, 1 request(s) still blocked." in capsys.readouterr().out
    Appointment.objects.filter(pk=appointment.pk).update(start=timezone.now() - datetime.timedelta(hours=2), end=timezone.now() - datetime.timedelta(hours=1))
    result = process_deletion_queue.enqueue()
    assert result.return_value == 1
    assert not Customer.objects.filter(pk=shared.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_booking_and_deletion_race_never_loses_an_upcoming_appointment(manager_group, make_user, branch_a):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    manager = make_user("racer", groups=[manager_group])
    viewer = scope.viewer_for_user(manager)
    outcomes = {"deleted": 0, "blocked": 0}
    cut = make_service("Cut", branch_a)
    for _round in range(40):
        customer = make_customer(first_name="Race", shared_with_all_branches=True)
        start = timezone.now() + datetime.timedelta(days=2)
        barrier = threading.Barrier(2)
        result = {}

        def book():
            barrier.wait()
            try:
                appointment = Appointment(customer_id=customer.pk, branch=branch_a, start=start, end=start + datetime.timedelta(hours=1), service=cut)
                result["booked"] = booking.save_appointment(appointment).pk
            except BookingRefused:
                result["booked"] = None
            finally:
                connections.close_all()

        def delete():
            barrier.wait()
            try:
                result["request"] = deletion.request_deletion(viewer, customer).pk
            finally:
                connections.close_all()

        threads = [threading.Thread(target=book), threading.Thread(target=delete)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        request = DeletionRequest.objects.get(pk=result["request"])
        if request.status == DeletionStatus.DONE:
            assert result["booked"] is None
            assert not Customer.objects.filter(pk=customer.pk).exists()
            outcomes["deleted"] += 1
        else:
            assert request.status == DeletionStatus.BLOCKED
            assert result["booked"] is not None
            assert [e["appointment"] for e in request.errors] == [result["booked"]]
            assert Appointment.objects.get(pk=result["booked"]).customer_id == customer.pk
            outcomes["blocked"] += 1
        # No upcoming appointment ever lost its customer.
        assert not Appointment.objects.upcoming().filter(customer__isnull=True).exists()
    assert sum(outcomes.values()) == 40
