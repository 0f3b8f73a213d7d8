"""Blocked from online booking: the block follows the person (any email, phone or local value
of theirs, or the same name and birthday), applies in every branch unless a manager names
some, is honoured by the booking page and the API with a polite note, and never stops staff."""

import datetime

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from wagtail.models import Site

from tests.conftest import customer_url, make_customer, make_service
from tests.test_api import Api
from tests.test_booking import at, book, tomorrow
from wagtail_clientdb import booking, booking_blocks, overrides
from wagtail_clientdb.models import Appointment, BookingPage, ClientDBLogEntry, Customer, OnlineBookingBlock, OpeningHours


@pytest.fixture(autouse=True)
def empty_cache():
    # The booking pages count bookings per address in the cache; every test starts afresh.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def open_branches(branch_a, branch_b):
    for branch in (branch_a, branch_b):
        for weekday in range(7):
            OpeningHours.objects.create(branch=branch, weekday=weekday, opens=datetime.time(9), closes=datetime.time(12))
    return branch_a, branch_b


@pytest.fixture
def haircut(open_branches):
    return make_service("Haircut", *open_branches, duration=60)


@pytest.fixture
def pages(open_branches, haircut):
    home = Site.objects.get(is_default_site=True).root_page
    return {
        branch.slug: home.add_child(instance=BookingPage(title=f"Book at {branch}", slug=f"book-{branch.slug}", branch=branch))
        for branch in open_branches
    }


@pytest.fixture
def blocked(db, branch_a, manager):
    customer = make_customer(
        first_name="Nora", last_name="Neukundin", email="nora@example.com", phone_raw="+49 170 5550001",
        birthday=datetime.date(1990, 5, 17), home_branch=branch_a,
    )
    booking_blocks.block(customer, reason="Three no-shows in a row", user=manager)
    return customer


def refused_politely(response):
    html = response.content.decode()
    return response.status_code == 400 and "Please call the branch" in html and "no-shows" not in html and "blocked" not in html.lower()


def test_a_blocked_person_with_a_new_email_but_the_same_phone_is_not_booked(client, pages, haircut, blocked, branch_a):
    before = Customer.objects.count()
    response = book(client, pages["alpha"], haircut, at(branch_a, tomorrow(branch_a), 9), email="nora.new@example.com")
    assert refused_politely(response)
    assert not Appointment.objects.exists() and Customer.objects.count() == before


def test_the_block_follows_the_person_into_other_branches(client, pages, haircut, blocked, branch_b):
    # The blocked customer is local to Alpha: Beta's page does not see her, and still refuses her.
    response = book(client, pages["beta"], haircut, at(branch_b, tomorrow(branch_b), 9), phone="", email="nora@example.com")
    assert refused_politely(response)
    assert not Appointment.objects.exists()


@pytest.mark.parametrize("fields", [
    {"email": "other@example.com", "phone": "0170 5550001"},  # the phone typed another way
    {"email": "NORA@example.com", "phone": ""},  # the email in other letters
])
def test_any_key_of_the_blocked_person_refuses(client, pages, haircut, blocked, branch_a, fields):
    assert refused_politely(book(client, pages["alpha"], haircut, at(branch_a, tomorrow(branch_a), 10), **fields))


def test_a_branchs_local_phone_of_a_blocked_global_customer_refuses(client, pages, haircut, branch_a, allow_branch_edits, manager):
    customer = make_customer(first_name="Gloria", email="gloria@example.com", shared_with_all_branches=True)
    overrides.save_local_values(customer, branch_a, {"phone_raw": "0170 7770007"})
    booking_blocks.block(customer, reason="Abusive on the phone", user=manager)
    response = book(
        client, pages["alpha"], haircut, at(branch_a, tomorrow(branch_a), 9), first_name="G.", email="g@example.com", phone="+49 170 7770007"
    )
    assert refused_politely(response)


def test_the_same_name_and_birthday_is_the_same_person(blocked, branch_b, haircut):
    lookalike = make_customer(first_name="nora", last_name="NEUKUNDIN", birthday=datetime.date(1990, 5, 17), home_branch=branch_b)
    namesake = make_customer(first_name="Nora", last_name="Neukundin", birthday=datetime.date(1991, 5, 17), home_branch=branch_b)
    assert booking_blocks.block_for(lookalike, branch_b) is not None
    assert booking_blocks.block_for(namesake, branch_b) is None


def test_a_block_a_manager_limits_to_one_branch_lets_the_others_book(client, pages, haircut, blocked, branch_a, branch_b, manager):
    booking_blocks.block(blocked, reason="Owes Alpha money", branches=[branch_a], user=manager)
    assert refused_politely(book(client, pages["alpha"], haircut, at(branch_a, tomorrow(branch_a), 9)))
    response = book(client, pages["beta"], haircut, at(branch_b, tomorrow(branch_b), 9))
    assert response.status_code == 302
    assert Appointment.objects.get().branch == branch_b


def test_staff_still_book_a_blocked_customer_in_the_admin(blocked, branch_a, haircut):
    start = at(branch_a, tomorrow(branch_a), 10)
    appointment = Appointment(customer=blocked, branch=branch_a, service=haircut, start=start, end=start + datetime.timedelta(hours=1))
    booking.save_appointment(appointment)
    assert appointment.pk and appointment.source == "manual"


def test_the_api_refuses_a_blocked_person_with_the_same_polite_note(client, staff_a, blocked, branch_a, haircut):
    api = Api(client, staff_a)
    start = (timezone.now() + datetime.timedelta(days=3)).replace(microsecond=0)
    for customer in ({"customer_id": blocked.pk}, {"customer": {"first_name": "N.", "phone": "0170 5550001"}}):
        response = api.send("post", "/appointments/", {"branch": "alpha", "service": "Haircut", "start": start.isoformat(), **customer})
        assert response.status_code == 422 and "Please call the branch" in response.content.decode(), response.content
        assert "no-shows" not in response.content.decode()
    assert not Appointment.objects.exists()


# --- The admin ---------------------------------------------------------------------------------------


def block_url(customer):
    return reverse("wagtailsnippets_wagtail_clientdb_customer:booking_block", args=(customer.pk,))


def test_staff_block_a_customer_in_every_branch_and_the_customer_page_says_so(login, staff_a, branch_a):
    customer = make_customer(first_name="Olaf", email="olaf@example.com", home_branch=branch_a)
    client = login(staff_a)
    html = client.get(customer_url("inspect", customer.pk)).content.decode()
    assert block_url(customer) in html and "data-clientdb-booking-blocked" not in html
    form = client.get(block_url(customer)).context["form"]
    assert "branches" not in form.fields  # every branch, unless a manager says otherwise
    assert client.post(block_url(customer), {"reason": ""}).status_code == 200  # a reason is required
    assert not OnlineBookingBlock.objects.exists()
    response = client.post(block_url(customer), {"reason": "Never pays", "branches": []})
    assert response.status_code == 302
    block = OnlineBookingBlock.objects.get(customer=customer)
    assert (block.reason, list(block.branches.all()), block.created_by) == ("Never pays", [], staff_a)
    html = client.get(customer_url("inspect", customer.pk)).content.decode()
    assert "Blocked from online booking" in html and "in every branch" in html and "Never pays" in html
    assert ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action="wagtail_clientdb.booking_block").exists()

    client.post(block_url(customer), {"lift": "1"})
    assert not OnlineBookingBlock.objects.exists()
    assert ClientDBLogEntry.objects.filter(object_id=str(customer.pk), action="wagtail_clientdb.booking_unblock").exists()


def test_a_manager_names_the_branches_a_block_applies_to(login, manager, branch_a, branch_b):
    customer = make_customer(first_name="Olaf", shared_with_all_branches=True)
    client = login(manager)
    client.post(block_url(customer), {"reason": "Owes money", "branches": [branch_b.pk]})
    assert list(OnlineBookingBlock.objects.get().branches.all()) == [branch_b]
    assert "only in Beta Salon" in client.get(customer_url("inspect", customer.pk)).content.decode()


def test_nobody_blocks_a_customer_they_cannot_see(login, staff_b, branch_a):
    customer = make_customer(first_name="Olaf", home_branch=branch_a)
    client = login(staff_b)
    assert client.get(block_url(customer)).status_code == 404
    assert client.post(block_url(customer), {"reason": "x"}).status_code == 404
    assert not OnlineBookingBlock.objects.exists()


def test_the_duplicate_rules_find_a_blocked_person_under_a_misspelt_name(blocked, branch_b):
    # Another email, no phone, a misspelt name, the same birthday: the duplicate rules' "similar
    # name and same birthday" — the same person for the block, in any branch.
    lookalike = make_customer(first_name="Norah", last_name="Neukundin", email="norah@example.org", birthday=datetime.date(1990, 5, 17), home_branch=branch_b)
    stranger = make_customer(first_name="Bert", last_name="Neumann", email="bert@example.org", birthday=datetime.date(1990, 5, 17), home_branch=branch_b)
    assert booking_blocks.block_for(lookalike, branch_b) is not None
    assert booking_blocks.block_for(stranger, branch_b) is None
