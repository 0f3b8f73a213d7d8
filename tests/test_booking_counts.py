"""Booking counts ("most bookings") follow every change of a customer's appointments, per
branch and company-wide, also when two changes of the same customer happen at once."""

import threading
import time

import pytest
from django.db import connection, connections, transaction

from tests.conftest import customer_url, make_appointment, make_customer, make_service
from wagtail_clientdb import booking, booking_counts
from wagtail_clientdb.models import Appointment, BranchBookings


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
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if cursor.fetchone()[0]:
                break
        time.sleep(0.01)
    commit_first.set()
    first.join(), second.join()
    assert problems == []
    assert counts(anna) == (2, {"alpha": 1 + 1})
