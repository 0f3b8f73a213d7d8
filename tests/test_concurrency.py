"""Concurrency on PostgreSQL with real threads and connections (issue #16): what two people do
at the same moment ends as if one had gone first. (Booking against deletion, the last free
place and booking counters are raced in test_deletion, test_booking and test_booking_counts.)"""

import datetime
import threading

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
