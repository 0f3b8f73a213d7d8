"""Concurrency on PostgreSQL with real threads and connections (issue #16): what two people do
at the same moment ends as if one had gone first: one customer per person however they
arrive (booking, desk, import), no change silently lost. (Booking against deletion, the last
free place and booking counters are raced in test_deletion, test_booking and
test_booking_counts; a retention run against a booking in test_retention.)"""

import datetime
import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import make_customer, make_service
from wagtail_clientdb import booking, overrides, registration, scope
from wagtail_clientdb.models import Appointment, ConsentChannel, Customer, CustomerSource

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("real row and advisory locks need PostgreSQL")


def race(*actions):
    """Run ``actions`` in threads released at the same moment; their results (or exceptions)."""
    barrier = threading.Barrier(len(actions))
    results = [None] * len(actions)

    def run(index, action):
        barrier.wait()
        try:
            results[index] = action()
        except Exception as error:  # noqa: BLE001 - the outcome is what the test looks at
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(index, action)) for index, action in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_bookings_with_one_new_email_make_one_customer(branch_a):
    cut = make_service("Cut", branch_a, duration=30)
    viewer = scope.Viewer(None, False, (branch_a,))
    for round_number in range(15):
        email = f"twin{round_number}@example.com"

        def book(hour):
            def action():
                found = registration.register(
                    viewer,
                    registration.ContactDetails(first_name="Tina", last_name="Twin", email=email, phone=""),
                    source=CustomerSource.ONLINE_BOOKING,
                    channel=ConsentChannel.FORM,
                )
                start = timezone.now().replace(microsecond=0) + datetime.timedelta(days=3, hours=hour)
                booking.save_appointment(
                    Appointment(customer=found.customer, branch=branch_a, service=cut, start=start, end=start + datetime.timedelta(minutes=30))
                )
                return found.customer.pk
            return action

        first, second = race(book(1), book(2))
        assert not isinstance(first, Exception) and not isinstance(second, Exception), (first, second)
        assert first == second
        assert Customer.objects.filter(email=email).count() == 1
        assert Appointment.objects.filter(customer_id=first).count() == 2


def test_two_editors_saving_one_customer_never_lose_a_change(manager, django_user_model):
    from django.test import Client

    from tests.conftest import customer_url

    customer = make_customer(first_name="Paula", last_name="Pauls", shared_with_all_branches=True)
    colleague = django_user_model.objects.create_user("colleague", password="pw")
    colleague.groups.set(manager.groups.all())
    editors = []
    for user in (manager, colleague):
        client = Client()
        client.force_login(user)
        form = client.get(customer_url("edit", customer.pk)).context["form"]
        editors.append((client, {"first_name": "Paula", "last_name": "Pauls", "sharing": "all", "edit_base": form["edit_base"].value()}))

    def save(client, data, notes):
        return lambda: client.post(customer_url("edit", customer.pk), {**data, "notes": notes}).status_code

    results = race(save(*editors[0], "from the desk"), save(*editors[1], "from the phone"))
    # One is saved (a redirect); the other is shown the form again, naming the change made meanwhile.
    assert sorted(results) == [200, 302], results
    assert Customer.objects.get(pk=customer.pk).notes in ("from the desk", "from the phone")


def test_a_branch_and_the_head_office_saving_at_once_keep_both_changes(manager, branch_a, allow_branch_edits):
    customer = make_customer(first_name="Paula", last_name="Pauls", email="paula@example.com", shared_with_all_branches=True)

    def local_note():
        overrides.save_local_values(Customer.objects.get(pk=customer.pk), branch_a, {"notes": "Alpha's note"})

    def global_email():
        fresh = Customer.objects.get(pk=customer.pk)
        fresh.email = "paula.new@example.com"
        fresh.save()

    race(local_note, global_email)
    customer.refresh_from_db()
    assert customer.email == "paula.new@example.com"
    assert overrides.effective_customer(customer, branch_a).notes == "Alpha's note"


def test_an_import_the_desk_and_a_booking_creating_one_email_make_one_customer(manager, branch_a):
    """A confirmed import with a new email, the admin's "add customer" and an online booking of
    the same person at one moment: one customer. The booking finds whoever came first; the desk
    is shown the customer already there; the import finds it unchanged."""
    from django.test import Client

    from tests.conftest import customer_url
    from tests.import_files import csv_bytes
    from tests.test_import import confirm, job_of, upload

    booking_viewer = scope.Viewer(None, False, (branch_a,))
    outcomes = []
    for round_number in range(10):
        email = f"ida{round_number}@example.com"
        # The booking is quicker than the two requests: it starts later in some rounds, so
        # that each of the three is first in some.
        booking_delay, desk_delay = (round_number % 5) * 0.04, ((round_number + 2) % 3) * 0.02
        importer, desk = Client(), Client()
        importer.force_login(manager)
        desk.force_login(manager)
        job = job_of(upload(importer, f"new{round_number}.csv", csv_bytes([["Ida Import", "", email]])))
        assert job.counts == {"new": 1, "updated": 0, "unchanged": 0, "invalid": 0}

        def run_import():
            assert confirm(importer, job, sharing="all").status_code == 302
            job.refresh_from_db()
            return job.status, job.counts

        def book():
            time.sleep(booking_delay)
            return registration.register(
                booking_viewer,
                registration.ContactDetails(first_name="Ida", last_name="Import", email=email),
                source=CustomerSource.ONLINE_BOOKING,
                channel=ConsentChannel.FORM,
            )

        def add():
            time.sleep(desk_delay)
            response = desk.post(
                customer_url("add"), {"first_name": "Ida", "last_name": "Import", "email": email, "sharing": "all"}
            )
            return response.status_code, response.context["form"].errors if response.status_code == 200 else None

        imported, booked, added = race(run_import, book, add)
        for result in (imported, booked, added):
            assert not isinstance(result, Exception), result
        [customer] = Customer.objects.filter(email=email)
        assert imported == ("imported", {"new": 1, "updated": 0, "unchanged": 0, "invalid": 0}) or imported == (
            "imported", {"new": 0, "updated": 0, "unchanged": 1, "invalid": 0}
        ), imported
        assert booked.customer.pk == customer.pk
        # The booking created the customer, or found it (by its email).
        assert booked.matched_by in ("", "email")
        status, errors = added
        if status == 200:
            # Someone else was first: the desk is shown them, and nothing is created.
            assert "This may be a customer you already have" in str(errors), errors
        else:
            assert status == 302
        first = "import" if imported[1]["new"] else "booking" if not booked.matched_by else "desk"
        assert (status == 302) == (first == "desk"), (first, imported, booked.matched_by, status)
        outcomes.append(first)
    assert len(outcomes) == 10


def test_an_import_and_an_edit_of_one_customer_never_lose_a_change(manager):
    """A confirmed import changing a customer's notes while someone saves the customer's
    edit form: both changes end up saved, or the one based on what was there before is
    refused with what changed. Never is one silently overwritten."""
    from django.test import Client

    from tests.conftest import customer_url
    from tests.import_files import csv_bytes
    from tests.test_import import confirm, job_of, upload

    outcomes = []
    for round_number in range(10):
        email = f"eddie{round_number}@example.com"
        customer = make_customer(first_name="Eddie", last_name="Edit", email=email, notes="old", shared_with_all_branches=True)
        importer, desk = Client(), Client()
        importer.force_login(manager)
        desk.force_login(manager)
        job = job_of(upload(importer, f"update{round_number}.csv", csv_bytes([["Eddie Edit", "", email, "from the import"]])))
        assert job.counts == {"new": 0, "updated": 1, "unchanged": 0, "invalid": 0}
        form = desk.get(customer_url("edit", customer.pk)).context["form"]
        data = {
            "first_name": "Edward", "last_name": "Edit", "email": email, "notes": "old",
            "sharing": "all", "edit_base": form["edit_base"].value(),
        }

        # Either starts a little later in some rounds, so that each is first in some.
        import_delay = (round_number % 3) * 0.03

        def run_import():
            time.sleep(import_delay)
            assert confirm(importer, job, sharing="all").status_code == 302
            job.refresh_from_db()
            return job.status, job.counts

        def edit():
            response = desk.post(customer_url("edit", customer.pk), data)
            return response.status_code, response.context["form"].errors if response.status_code == 200 else None

        imported, edited = race(run_import, edit)
        assert not isinstance(imported, Exception) and not isinstance(edited, Exception), (imported, edited)
        customer.refresh_from_db()
        import_applied = imported == ("imported", {"new": 0, "updated": 1, "unchanged": 0, "invalid": 0})
        edit_applied = edited[0] == 302
        # Exactly one went first and the other was refused, naming why.
        assert import_applied != edit_applied, (imported, edited)
        assert customer.notes == ("from the import" if import_applied else "old")
        assert customer.first_name == ("Edward" if edit_applied else "Eddie")
        if edit_applied:
            job.refresh_from_db()
            assert job.status == "refused" and job.counts["invalid"] == 1, (job.status, job.counts)
            assert "after the preview" in str(job.invalid_rows), job.invalid_rows
        else:
            assert "Someone else saved this customer" in str(edited[1]), edited
        outcomes.append("import" if import_applied else "edit")
    assert len(outcomes) == 10
