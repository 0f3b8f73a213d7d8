"""The public booking page: free times, first and returning bookers, abuse, cancellation.

Everything goes through the page's real URL with the Django test client, as a visitor's
browser would (the page works without JavaScript).
"""

import datetime
import re
import threading

import pytest
from django.core import mail
from django.core.cache import cache
from django.db import connection, connections
from django.test import TestCase
from django.utils import timezone
from wagtail.models import Site

from tests.conftest import make_customer, make_service
from wagtail_clientdb import booking
from wagtail_clientdb.models import (
    Appointment,
    AttributeDefinition,
    BookingPage,
    ClosedDay,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerOverride,
    OpeningHours,
)
from wagtail_clientdb.public_booking import BOOKED_SALT


CaptureCommits = TestCase.captureOnCommitCallbacks


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


def tomorrow(branch):
    return timezone.localdate(timezone.now(), branch.zoneinfo) + datetime.timedelta(days=1)


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


@pytest.fixture
def online_group(db):
    return CustomerGroup.objects.create(name="Online customers", is_default=True)


def at(branch, day, hour, minute=0):
    return datetime.datetime.combine(day, datetime.time(hour, minute), tzinfo=branch.zoneinfo)


def booking_form(client, page, service, day):
    response = client.get(page.url, {"service": service.pk, "date": day.isoformat()})
    assert response.status_code == 200
    return response


def book(client, page, service, when, **fields):
    """Open the page for the day of ``when`` and send the form, as a visitor does (the
    confirmation email goes out once the booking is committed)."""
    day = when.astimezone(page.branch.zoneinfo).date()
    form = booking_form(client, page, service, day).context["form"]
    data = {
        "service": service.pk,
        "date": day.isoformat(),
        "token": form["token"].value(),
        "start": when.isoformat(),
        "first_name": "Nora",
        "last_name": "Neukundin",
        "email": "nora@example.com",
        "phone": "+49 170 5550001",
        **fields,
    }
    with CaptureCommits(execute=True):
        return client.post(page.url, {k: v for k, v in data.items() if v is not None})


def test_the_page_offers_free_times_within_opening_hours(client, page, haircut, open_branch):
    day = tomorrow(open_branch)
    slots = booking_form(client, page, haircut, day).context["slots"]
    # 09:00 to 11:00 every 15 minutes: a one-hour service must end by 12:00.
    assert [s.strftime("%H:%M") for s in slots] == ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45", "11:00"]
    ClosedDay.objects.create(branch=open_branch, date=day, reason="Holiday")
    assert booking_form(client, page, haircut, day).context["slots"] == []


def test_a_time_taken_is_offered_again_only_where_a_place_is_left(client, page, haircut, open_branch, online_group):
    day = tomorrow(open_branch)
    assert book(client, page, haircut, at(open_branch, day, 10)).status_code == 302
    offered = {s.strftime("%H:%M") for s in booking_form(client, page, haircut, day).context["slots"]}
    assert offered == {"09:00", "11:00"}  # 09:15 to 10:45 would overlap 10:00–11:00
    open_branch.parallel_bookings = 2
    open_branch.save()
    offered = {s.strftime("%H:%M") for s in booking_form(client, page, haircut, day).context["slots"]}
    assert "10:00" in offered and "10:30" in offered


def test_first_booking_creates_a_customer_in_the_default_group_with_consent(client, page, haircut, open_branch, online_group):
    start = at(open_branch, tomorrow(open_branch), 9, 30)
    response = book(client, page, haircut, start, marketing_consent="on")
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.first_name, customer.email, customer.phone, customer.source) == (
        "Nora", "nora@example.com", "+491705550001", "online_booking",
    )
    assert customer.home_branch == open_branch and not customer.shared_with_all_branches
    assert list(customer.groups.all()) == [online_group]
    assert customer.marketing_consent
    assert list(ConsentEvent.objects.values_list("given", "channel")) == [(True, "form")]
    appointment = Appointment.objects.get()
    assert (appointment.customer, appointment.start, appointment.service, appointment.source) == (customer, start, haircut, "online_booking")
    assert appointment.end == start + datetime.timedelta(hours=1)
    # The confirmation page and the email with its cancel link.
    confirmed = client.get(response.url)
    assert "your appointment is booked" in confirmed.content.decode()
    [email] = mail.outbox
    assert email.to == ["nora@example.com"] and "Haircut" in email.subject
    assert re.search(r"http://testserver/book-alpha/cancel/\S+/", email.body)


def test_online_customers_are_global_when_the_company_says_so(client, page, haircut, open_branch, settings_model):
    settings_model.online_customers_are_global = True
    settings_model.save()
    book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9))
    customer = Customer.objects.get()
    assert customer.is_global and customer.shared_with_all_branches


@pytest.fixture
def asked(db):
    """A customer attribute and a booking attribute shown (and required) in the booking form."""
    hair = AttributeDefinition.objects.create(
        label="Hair type", key="hair", field_type="choice", choices=["fine", "thick"],
        show_in_booking_form=True, required_in_booking_form=True,
    )
    wish = AttributeDefinition.objects.create(
        label="Wish", key="wish", applies_to="booking", show_in_booking_form=True, required_in_booking_form=True
    )
    AttributeDefinition.objects.create(label="Internal note", key="internal", show_in_booking_form=False)
    return hair, wish


def test_required_booking_attributes_are_enforced_and_saved(client, page, haircut, open_branch, asked):
    start = at(open_branch, tomorrow(open_branch), 9)
    response = book(client, page, haircut, start)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) == {"attr__hair", "attr__wish"}
    assert "attr__internal" not in response.context["form"].fields
    assert not Customer.objects.exists() and not Appointment.objects.exists()
    response = book(client, page, haircut, start, attr__hair="thick", attr__wish="Short, please")
    assert response.status_code == 302
    assert Customer.objects.get().attributes == {"hair": "thick"}
    assert Appointment.objects.get().attributes == {"wish": "Short, please"}


@pytest.mark.parametrize("how", ["email", "phone in another format"])
def test_a_returning_customer_is_matched_and_only_what_was_asked_changes(client, page, haircut, open_branch, asked, how):
    known = make_customer(
        first_name="Nora", last_name="Stammkundin", email="nora@example.com", phone_raw="+49 170 5550001",
        notes="Prefers mornings", attributes={"hair": "fine", "internal": "VIP"}, marketing_consent=True, home_branch=open_branch,
    )
    fields = {"email": "nora@example.com", "phone": ""} if how == "email" else {"email": "nora.new@example.com", "phone": "0170 5550001"}
    response = book(
        client, page, haircut, at(open_branch, tomorrow(open_branch), 10),
        first_name="Norah", last_name="Typo", attr__hair="thick", attr__wish="x", **fields,
    )
    assert response.status_code == 302
    assert Customer.objects.count() == 1
    known.refresh_from_db()
    assert Appointment.objects.get().customer == known
    # Only the attribute the form asked for; not the name, the email, the notes, the consent.
    assert (known.first_name, known.last_name, known.email, known.notes) == ("Nora", "Stammkundin", "nora@example.com", "Prefers mornings")
    assert known.attributes == {"hair": "thick", "internal": "VIP"}
    assert known.marketing_consent  # an unticked box changes nothing


def test_a_returning_global_customer_keeps_the_answers_as_the_branchs_local_values(
    client, page, haircut, open_branch, asked, allow_branch_edits
):
    known = make_customer(first_name="Gina", email="gina@example.com", attributes={"hair": "fine"}, shared_with_all_branches=True)
    book(client, page, haircut, at(open_branch, tomorrow(open_branch), 10), email="gina@example.com", attr__hair="thick", attr__wish="x")
    known.refresh_from_db()
    assert known.attributes == {"hair": "fine"}
    assert CustomerOverride.objects.get(customer=known, branch=open_branch).attributes == {"hair": "thick"}


@pytest.mark.parametrize("scope", ["local", "global"])
def test_a_question_a_returning_customer_leaves_unanswered_changes_nothing(
    client, page, haircut, open_branch, allow_branch_edits, scope
):
    # Found by the load test (docs/performance.md): "—" in an optional question came as "no
    # value", and wiped the answer the customer had given before (for a global customer: a
    # local "no value" of the branch hiding it). Like an unticked consent box, a question left
    # unanswered says nothing.
    AttributeDefinition.objects.create(
        label="Hair type", key="hair", field_type="choice", choices=["fine", "thick"], show_in_booking_form=True
    )
    where = {"home_branch": open_branch} if scope == "local" else {"shared_with_all_branches": True}
    known = make_customer(first_name="Nora", email="nora@example.com", attributes={"hair": "fine"}, **where)
    response = book(client, page, haircut, at(open_branch, tomorrow(open_branch), 10), attr__hair="")
    assert response.status_code == 302
    assert Appointment.objects.get().customer == known
    known.refresh_from_db()
    assert known.attributes == {"hair": "fine"}
    assert not CustomerOverride.objects.filter(customer=known).exists()


def test_customers_of_other_branches_are_not_matched(client, page, haircut, open_branch, branch_b):
    make_customer(first_name="Bea", email="nora@example.com", home_branch=branch_b)
    book(client, page, haircut, at(open_branch, tomorrow(open_branch), 10))
    assert Customer.objects.filter(email="nora@example.com").count() == 2
    assert Appointment.objects.get().customer.home_branch == open_branch


@pytest.mark.parametrize(
    "fields, field",
    [({"email": "not-an-email"}, "email"), ({"phone": "call me"}, "phone"), ({"first_name": ""}, "first_name"), ({"start": "nonsense"}, "start")],
)
def test_invalid_input_creates_nothing(client, page, haircut, open_branch, fields, field):
    response = book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9), **fields)
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Customer.objects.exists() and not Appointment.objects.exists()


def test_a_full_time_creates_nothing(client, page, haircut, open_branch):
    start = at(open_branch, tomorrow(open_branch), 9)
    make_customer(first_name="Early", home_branch=open_branch)
    Appointment.objects.create(
        customer=Customer.objects.get(), branch=open_branch, service=haircut, start=start, end=start + datetime.timedelta(hours=1)
    )
    response = book(client, page, haircut, start)
    assert response.status_code == 400 and "start" in response.context["form"].errors
    assert Customer.objects.count() == 1 and Appointment.objects.count() == 1
    # Taken between showing the form and booking: refused by the booking itself, nothing left behind.
    with pytest.raises(booking.SlotTaken):
        booking.book_online(open_branch, haircut, start, Customer.objects.get(), booking_token="late")


def test_sending_the_form_twice_books_once(client, page, haircut, open_branch):
    start = at(open_branch, tomorrow(open_branch), 9)
    day = start.date()
    form = booking_form(client, page, haircut, day).context["form"]
    data = {
        "service": haircut.pk, "date": day.isoformat(), "token": form["token"].value(), "start": start.isoformat(),
        "first_name": "Nora", "last_name": "N", "email": "nora@example.com",
    }
    first, second = client.post(page.url, data), client.post(page.url, data)
    assert first.status_code == second.status_code == 302
    # Both lead to the same booking's page (the signed links differ when a second passes between them).
    def booked(response):
        return booking.unsigned_token(response.url.rstrip("/").rsplit("/", 1)[1], BOOKED_SALT)

    assert booked(first) == booked(second) == Appointment.objects.get().pk
    assert Appointment.objects.count() == 1 and Customer.objects.count() == 1


def test_robots_and_floods_are_refused_politely(client, page, haircut, open_branch, settings):
    start = at(open_branch, tomorrow(open_branch), 9)
    response = book(client, page, haircut, start, website="http://spam.example")
    assert response.status_code == 429 and "cannot take this booking online" in response.content.decode()
    assert not Customer.objects.exists()
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "BOOKING_RATE_LIMIT": 2}
    cache.clear()
    for hour in (9, 10):
        assert book(client, page, haircut, at(open_branch, tomorrow(open_branch), hour), email=f"p{hour}@example.com").status_code == 302
    response = book(client, page, haircut, at(open_branch, tomorrow(open_branch), 11), email="p11@example.com")
    assert response.status_code == 429
    assert Appointment.objects.count() == 2


def test_the_booking_form_is_protected_against_csrf(page, haircut, open_branch):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    response = strict.post(page.url, {"service": haircut.pk, "date": tomorrow(open_branch).isoformat()})
    assert response.status_code == 403


def cancel_link():
    return re.search(r"http://testserver(/book-alpha/cancel/\S+/)", mail.outbox[-1].body)[1]


def test_the_cancel_link_works_once_and_refuses_a_tampered_token(client, page, haircut, open_branch):
    book(client, page, haircut, at(open_branch, timezone.localdate(timezone.now(), open_branch.zoneinfo) + datetime.timedelta(days=3), 9))
    link = cancel_link()
    assert "Do you want to cancel" in client.get(link).content.decode()
    assert Appointment.objects.get().status == "booked"  # a mail scanner's GET cancels nothing
    response = client.post(link)
    assert "Your appointment is cancelled" in response.content.decode()
    assert Appointment.objects.get().status == "cancelled"
    assert client.post(link).status_code == 409
    again = client.get(link)  # the link opened again after cancelling
    assert again.status_code == 409 and "no longer booked" in again.content.decode()
    tampered = link.replace("cancel/", "cancel/x")
    assert client.post(tampered).status_code == 404
    # The freed time is offered again.
    day = timezone.localdate(timezone.now(), open_branch.zoneinfo) + datetime.timedelta(days=3)
    assert "09:00" in {s.strftime("%H:%M") for s in booking_form(client, page, haircut, day).context["slots"]}


def test_cancelling_too_late_is_refused(client, page, haircut, open_branch, settings_model):
    settings_model.online_cancellation_hours = 72
    settings_model.save()
    book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9))
    response = client.post(cancel_link())
    assert response.status_code == 409 and "no longer be cancelled online" in response.content.decode()
    opened = client.get(cancel_link())
    assert opened.status_code == 409 and "no longer be cancelled online" in opened.content.decode()
    assert Appointment.objects.get().status == "booked"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_bookings_racing_for_the_last_place_leave_exactly_one(branch_a):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(17))
    service = make_service("Haircut", branch_a)
    customers = [make_customer(first_name=f"Racer {i}", home_branch=branch_a) for i in range(2)]
    day = tomorrow(branch_a)
    for round_number in range(8):
        start = at(branch_a, day, 9 + round_number)
        barrier = threading.Barrier(2)
        outcomes = []

        def race(customer, token):
            barrier.wait()
            try:
                booking.book_online(branch_a, service, start, customer, booking_token=token)
                outcomes.append("booked")
            except booking.SlotTaken:
                outcomes.append("taken")
            finally:
                connections.close_all()

        threads = [threading.Thread(target=race, args=(c, f"{round_number}-{i}")) for i, c in enumerate(customers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["booked", "taken"]
        assert Appointment.objects.filter(start=start).count() == 1


def test_a_person_queued_for_deletion_is_not_booked_and_told_nothing_internal(client, page, haircut, open_branch, manager):
    from wagtail_clientdb import deletion, scope

    known = make_customer(first_name="Nora", email="nora@example.com", home_branch=open_branch)
    upcoming = at(open_branch, tomorrow(open_branch), 11)
    Appointment.objects.create(
        customer=known, branch=open_branch, service=haircut, start=upcoming, end=upcoming + datetime.timedelta(hours=1)
    )
    deletion.request_deletion(scope.viewer_for_user(manager), known)
    response = book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Please call the branch" in html and "deletion" not in html
    assert Appointment.objects.count() == 1


def test_a_mail_server_that_is_down_costs_the_email_not_the_booking_page(client, page, haircut, open_branch, online_group, settings):
    """The appointment is saved and the visitor told so; the email's failure is the background
    task's (a page that answered with an error once the booking was saved was booked again)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 2  # nobody listens there
    response = book(client, page, haircut, at(open_branch, tomorrow(open_branch), 9, 30))
    assert response.status_code == 302
    assert "your appointment is booked" in client.get(response.url).content.decode()
    assert Appointment.objects.count() == 1 and not mail.outbox
