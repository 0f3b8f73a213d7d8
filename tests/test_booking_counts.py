"""Booking counts ("most bookings") follow every change of a customer's appointments, per
branch and company-wide, also when two changes of the same customer happen at once."""

import datetime
import io
import threading
import time

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.utils import timezone

from tests.conftest import customer_url, make_appointment, make_customer, make_service
from wagtail_clientdb import booking, booking_counts
from wagtail_clientdb.models import Appointment, BranchBookings, Customer, VisitCounting
from wagtail_clientdb.tasks import count_passed_visits


def counts(customer):
    customer.refresh_from_db()
    per_branch = dict(BranchBookings.objects.filter(customer=customer).values_list("branch__slug", "count"))
    return customer.bookings_total, per_branch


def test_counts_follow_bookings_cancellations_moves_and_deletions(branch_a, branch_b):
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    lars = make_customer(first_name="Lars", shared_with_all_branches=True)
    in_a = make_appointment(anna, branch_a, days=1)
    in_b = make_appointment(anna, branch_b, days=2)
    make_appointment(anna, branch_b, days=3, status="cancelled")
    assert counts(anna) == (2, {"alpha": 1, "beta": 1})

    booking.set_status(in_a, "cancelled")
    assert counts(anna) == (1, {"beta": 1})
    booking.set_status(in_b, "cancelled")
    in_b.status = "booked"
    in_b.save()
    assert counts(anna) == (1, {"beta": 1})

    in_b.customer = lars  # booked for the wrong person, corrected
    in_b.save()
    assert (counts(anna), counts(lars)) == ((0, {}), (1, {"beta": 1}))
    in_b.branch = branch_a
    in_b.save()
    assert counts(lars) == (1, {"alpha": 1})
    in_b.delete()
    assert counts(lars) == (0, {})


def test_counts_of_appointments_written_in_bulk_are_made_by_recount_all(branch_a, branch_b):
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    template = make_appointment(anna, branch_a)
    Appointment.objects.bulk_create(
        [Appointment(customer=anna, branch=branch, start=template.start, end=template.end, service=template.service)
         for branch in (branch_a, branch_b, branch_b)]
    )
    assert counts(anna) == (1, {"alpha": 1})  # bulk_create sends no signals
    booking_counts.recount_all()
    assert counts(anna) == (4, {"alpha": 2, "beta": 2})


def test_most_bookings_counts_the_branch_a_listing_shows(login, manager, staff_a, branch_a, branch_b):
    often_in_b = make_customer(first_name="Bea", last_name="Often", shared_with_all_branches=True)
    once_in_a = make_customer(first_name="Alf", last_name="Once", shared_with_all_branches=True)
    for days in (1, 2, 3):
        make_appointment(often_in_b, branch_b, days=days)
    make_appointment(once_in_a, branch_a)

    def ranked(user):
        listed = login(user).get(customer_url("list"), {"ordering": "-bookings_count"}).context["object_list"]
        return [(c.last_name, c.bookings_count) for c in listed]

    assert ranked(manager) == [("Often", 3), ("Once", 1)]
    assert ranked(staff_a) == [("Once", 1), ("Often", 0)]


@pytest.mark.django_db(transaction=True)
def test_two_bookings_of_one_customer_at_the_same_time_are_both_counted(branch_a):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    make_service("Haircut", branch_a)  # before, or the second booking would wait for the first's new service
    first_saved, commit_first = threading.Event(), threading.Event()
    problems = []

    def book(days, after=None, before_commit=None):
        try:
            if after:
                after.wait(10)
            with transaction.atomic():
                make_appointment(anna, branch_a, days=days)
                if before_commit:
                    before_commit()
        except Exception as error:  # reported by the test below
            problems.append(error)
        finally:
            connections.close_all()

    first = threading.Thread(target=book, args=(1,), kwargs={"before_commit": lambda: (first_saved.set(), commit_first.wait(10))})
    second = threading.Thread(target=book, args=(2,), kwargs={"after": first_saved})
    first.start(), second.start()
    # The second booking's recount waits for the first booking's transaction: let that commit
    # only once the second is waiting, so that both recounts overlap.
    wait_for_a_lock_wait()
    commit_first.set()
    first.join(), second.join()
    assert problems == []
    assert counts(anna) == (2, {"alpha": 1 + 1})


def visits_kept(customer):
    customer.refresh_from_db()
    per_branch = dict(BranchBookings.objects.filter(customer=customer).values_list("branch__slug", "visits"))
    return customer.visits_total, customer.no_shows_total, per_branch


def test_visits_are_kept_up_to_the_mark_and_no_shows_always(branch_a, branch_b):
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    booking_counts.count_passed_visits()
    make_appointment(anna, branch_a, days=-40, status="completed")
    make_appointment(anna, branch_a, days=-5)  # took place, never marked: a visit
    make_appointment(anna, branch_b, days=-10, status="no_show")
    make_appointment(anna, branch_b, days=-3, status="cancelled")
    coming = make_appointment(anna, branch_b, days=3)
    assert visits_kept(anna) == (2, 1, {"alpha": 2, "beta": 0})

    # Time passes: the booking of the third day becomes a visit once the mark moves past it.
    assert booking_counts.count_passed_visits(now=coming.start + datetime.timedelta(minutes=1)) == 1
    assert visits_kept(anna) == (3, 1, {"alpha": 2, "beta": 1})
    assert booking_counts.count_passed_visits(now=coming.start) == 0  # never backwards
    # What was added is what a recount from the appointments finds.
    booking_counts.recount([anna.pk])
    assert visits_kept(anna) == (3, 1, {"alpha": 2, "beta": 1})
    booking.set_status(coming, "cancelled")  # cancelled afterwards: no visit after all
    assert visits_kept(anna) == (2, 1, {"alpha": 2, "beta": 0})


def test_without_a_mark_nothing_is_kept_and_recount_all_sets_it(branch_a):
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    VisitCounting.objects.all().delete()
    make_appointment(anna, branch_a, days=-5)
    assert visits_kept(anna) == (0, 0, {"alpha": 0})
    before = timezone.now()
    booking_counts.recount_all()
    assert visits_kept(anna) == (1, 0, {"alpha": 1})
    assert booking_counts.visits_counted_until() >= before


@pytest.mark.django_db(transaction=True)
def test_moving_the_mark_waits_for_a_booking_being_counted(branch_a):
    """A booking counts its visits up to the mark it read; the mark must not move past the
    booking's appointment until the booking is saved, or that visit would be counted by nobody."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    make_service("Haircut", branch_a)
    booking_counts.count_passed_visits(now=timezone.now() - datetime.timedelta(days=30))
    booked, commit_booking = threading.Event(), threading.Event()
    problems, added = [], []

    def book_a_past_visit():
        try:
            with transaction.atomic():
                make_appointment(anna, branch_a, days=-1)  # entered afterwards at the desk
                booked.set()
                commit_booking.wait(10)
        except Exception as error:  # reported by the test below
            problems.append(error)
        finally:
            connections.close_all()

    def move_the_mark():
        try:
            booked.wait(10)
            added.append(booking_counts.count_passed_visits())
        except Exception as error:  # reported by the test below
            problems.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=book_a_past_visit), threading.Thread(target=move_the_mark)]
    for thread in threads:
        thread.start()
    wait_for_a_lock_wait()
    commit_booking.set()
    for thread in threads:
        thread.join()
    assert problems == []
    assert added == [1]
    assert visits_kept(anna) == (1, 0, {"alpha": 1})


@pytest.mark.django_db(transaction=True)
def test_moving_the_mark_gives_way_to_a_customer_being_edited(branch_a):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time")
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    booking_counts.count_passed_visits(now=timezone.now() - datetime.timedelta(days=30))
    make_appointment(anna, branch_a, days=-1)
    mark = booking_counts.visits_counted_until()
    locked, release = threading.Event(), threading.Event()

    def edit():
        with transaction.atomic():
            list(Customer.objects.select_for_update().filter(pk=anna.pk))
            locked.set()
            release.wait(10)
        connections.close_all()

    editing = threading.Thread(target=edit)
    editing.start()
    locked.wait(10)
    try:
        assert booking_counts.count_passed_visits(attempts=2) is None
        assert booking_counts.visits_counted_until() == mark
    finally:
        release.set()
        editing.join()
    assert booking_counts.count_passed_visits() == 1
    assert visits_kept(anna) == (1, 0, {"alpha": 1})


def wait_for_a_lock_wait():
    """Until a connection of the test database waits for a lock (at most 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                return
        time.sleep(0.01)


def test_the_command_and_the_task_add_the_visits_that_took_place(branch_a):
    anna = make_customer(first_name="Anna", shared_with_all_branches=True)
    VisitCounting.objects.all().delete()
    booking_counts.count_passed_visits(now=timezone.now() - datetime.timedelta(days=10))
    make_appointment(anna, branch_a, days=-5)
    assert visits_kept(anna) == (0, 0, {"alpha": 0})
    out = io.StringIO()
    call_command("clientdb_count_visits", stdout=out)
    assert out.getvalue().startswith("1 visit(s) counted;")
    assert visits_kept(anna) == (1, 0, {"alpha": 1})
    make_appointment(anna, branch_a, days=-1)
    booking_counts.count_passed_visits(now=timezone.now() - datetime.timedelta(days=2))  # the mark never moves back
    assert count_passed_visits.enqueue().return_value == 0
    assert visits_kept(anna) == (2, 0, {"alpha": 2})
