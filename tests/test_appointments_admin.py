"""Appointments in the admin: booking with a new customer typed in, status changes, the week view."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone, translation

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_bulk
from wagtail_clientdb import overrides, times
from wagtail_clientdb.models import Appointment, ClosedDay, ConsentEvent, Customer, OpeningHours


def url(name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_appointment:{name}", args=args)


def slot(days=3, hour=10):
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%d %H:%M")


def new_customer_booking(branch, service, **customer):
    return {
        "branch": branch.pk,
        "service": service.pk,
        "start": slot(),
        "status": "booked",
        **{f"new_{name}": value for name, value in customer.items()},
    }


def test_a_new_customer_typed_into_the_booking_form_is_created_locally(login, staff_a, branch_a):
    cut = make_service("Cut", branch_a, duration=45)
    response = login(staff_a).post(
        url("add"), new_customer_booking(branch_a, cut, first_name="Neo", last_name="Neu", phone="0170 4440001", consent="on")
    )
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.first_name, customer.phone, customer.home_branch, customer.source) == ("Neo", "+491704440001", branch_a, "manual")
    assert list(ConsentEvent.objects.values_list("given", "channel")) == [(True, "admin")]
    appointment = Appointment.objects.get()
    # Without an end, the service's duration decides it.
    assert (appointment.customer, appointment.end - appointment.start) == (customer, datetime.timedelta(minutes=45))


@pytest.mark.parametrize("typed", [{"email": "ANNA@example.com"}, {"phone": "+49 (170) 444-0002"}])
def test_a_known_customer_typed_in_again_is_matched_and_the_user_told(login, staff_a, branch_a, typed):
    anna = make_customer(first_name="Anna", email="anna@example.com", phone_raw="0170 4440002", shared_with_all_branches=True)
    cut = make_service("Cut", branch_a)
    response = login(staff_a).post(url("add"), new_customer_booking(branch_a, cut, first_name="Anne", **typed), follow=True)
    # A whole sentence per key, which German and French can word ("gleiche Telefon" was a noun put into one).
    same = "email address" if "email" in typed else "phone number"
    told = f"“Anna” was already a customer (same {same}): the appointment is theirs."
    assert told in [str(message).strip() for message in response.context["messages"]]
    with translation.override("de"):
        assert translation.gettext(told.replace("Anna", "%(customer)s")) == (
            f"„%(customer)s“ war bereits Kunde (gleiche {'E-Mail-Adresse' if 'email' in typed else 'Telefonnummer'}): "
            "Der Termin gehört zu diesem Kunden."
        )
    assert Customer.objects.count() == 1
    assert Appointment.objects.get().customer == anna
    anna.refresh_from_db()
    assert anna.first_name == "Anna"  # a booking is no place to rename someone


def test_a_customer_of_another_branch_is_not_matched(login, staff_a, branch_a, branch_b):
    make_customer(first_name="Bea", email="bea@example.com", home_branch=branch_b)
    response = login(staff_a).post(url("add"), new_customer_booking(branch_a, make_service("Cut", branch_a), email="bea@example.com"))
    assert response.status_code == 302
    assert Appointment.objects.get().customer.home_branch == branch_a
    assert Customer.objects.filter(email="bea@example.com").count() == 2


def test_ambiguous_or_missing_customer_is_a_form_error(login, staff_a, branch_a):
    cut = make_service("Cut", branch_a)
    for name in ("One", "Two"):
        make_customer(first_name=name, email="same@example.com", home_branch=branch_a)
    client = login(staff_a)
    response = client.post(url("add"), new_customer_booking(branch_a, cut, email="same@example.com"))
    assert "Matches 2 customers" in str(response.context["form"].errors["new_email"])
    response = client.post(url("add"), new_customer_booking(branch_a, cut))
    assert "Choose a customer, or enter a new customer" in str(response.context["form"].errors["customer"])
    response = client.post(url("add"), {**new_customer_booking(branch_a, cut, first_name="X"), "customer": Customer.objects.first().pk})
    assert "not both" in str(response.context["form"].errors["customer"])
    assert not Appointment.objects.exists() and Customer.objects.count() == 2


def test_a_manager_s_new_customer_is_shared_with_the_branch_of_the_appointment(login, manager, branch_a):
    login(manager).post(url("add"), new_customer_booking(branch_a, make_service("Cut", branch_a), first_name="Mia"))
    customer = Customer.objects.get()
    assert customer.is_global and list(customer.branches.all()) == [branch_a]


def test_a_customer_is_booked_only_in_a_branch_that_sees_them(login, manager, branch_a, branch_b):
    """The head office sees every customer, but a branch holds appointments only of customers it
    sees: another branch's local customer is refused there, and a shared one is booked."""
    cut = make_service("Cut", branch_a)
    theirs = make_customer(first_name="Bea", home_branch=branch_b)
    shared = make_customer(first_name="Cem", branches=[branch_a])
    client = login(manager)
    booking = {"branch": branch_a.pk, "service": cut.pk, "start": slot(), "status": "booked"}
    response = client.post(url("add"), {**booking, "customer": theirs.pk})
    assert "does not see this customer" in str(response.context["form"].errors["customer"])
    assert not Appointment.objects.exists()
    assert client.post(url("add"), {**booking, "customer": shared.pk}).status_code == 302
    assert Appointment.objects.get().customer == shared


def test_a_start_beyond_the_calendar_is_a_form_error_as_in_the_api(login, manager, branch_a):
    """Year 9999 broke the end's sum (a server error), year 1 was saved: the API's rule, from
    :mod:`wagtail_clientdb.times`, in the form too."""
    cut = make_service("Cut", branch_a)
    customer = make_customer(first_name="Ada", shared_with_all_branches=True)
    client = login(manager)
    for start in ("9999-12-31 23:30", "0001-01-01 10:00"):
        response = client.post(url("add"), {"customer": customer.pk, "branch": branch_a.pk, "service": cut.pk, "start": start, "status": "booked"})
        assert response.status_code == 200
        assert response.context["form"].errors["start"] == ["Give a time between the years 1900 and 2999."]
    assert not Appointment.objects.exists()


def test_only_services_the_branch_offers(login, staff_a, branch_a, branch_b):
    make_service("Beard trim", branch_b)
    form = login(staff_a).get(url("add")).context["form"]
    assert [s.name for s in form.fields["service"].queryset] == []
    colour = make_service("Colour", branch_b)
    customer = make_customer(first_name="Anna", home_branch=branch_a)
    response = login(staff_a).post(url("add"), {"customer": customer.pk, "branch": branch_a.pk, "service": colour.pk, "start": slot(), "status": "booked"})
    assert "service" in response.context["form"].errors


def test_status_buttons_and_bulk_change(login, staff_a, branch_a):
    anna = make_customer(first_name="Anna", home_branch=branch_a)
    past, future = make_appointment(anna, branch_a, days=-1), make_appointment(anna, branch_a, days=2)
    client = login(staff_a)
    html = client.get(url("list"), {"period": "all"}).content.decode()
    assert url("set_status", past.pk, "no_show") in html
    assert url("set_status", future.pk, "no_show") not in html  # it has not started
    assert url("set_status", future.pk, "cancelled") in html
    client.post(url("set_status", past.pk, "no_show"), {"next": url("list")})
    response = client.post(url("set_status", future.pk, "completed"), {"next": url("list")}, follow=True)
    assert "has not started yet" in response.content.decode()
    past.refresh_from_db(), future.refresh_from_db()
    assert (past.status, future.status) == ("no_show", "booked")

    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "appointment", "change_status")) + f"?id={future.pk}&next={url('list')}"
    post_bulk(client, bulk, {"status": "cancelled"})
    future.refresh_from_db()
    assert future.status == "cancelled"
    # The customer shows the counts; "most bookings" leaves the cancelled one out.
    html = client.get(customer_url("inspect", anna.pk)).content.decode()
    assert "1 no-show, 1 cancellation" in html
    listed = client.get(customer_url("list")).context["object_list"]
    assert [c.bookings_count for c in listed] == [1]

    # Each change is in the appointment's history, by whom, in the reader's words.
    for appointment, status in ((past, "No-show"), (future, "Cancelled")):
        history = client.get(url("history", appointment.pk)).content.decode()
        assert f"Status changed to {status}" in history and "staff_a" in history
    assert "has not started" not in client.get(url("history", future.pk)).content.decode()
    assert client.get(url("history", future.pk)).content.decode().count("Status changed to") == 1


def test_other_branches_appointments_cannot_change_status(login, staff_a, branch_b):
    lars = make_customer(first_name="Lars", home_branch=branch_b)
    theirs = make_appointment(lars, branch_b, days=-1)
    response = login(staff_a).post(url("set_status", theirs.pk, "no_show"))
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == "booked"


def test_week_view_shows_one_branchs_week(login, staff_a, manager, branch_a, branch_b):
    OpeningHours.objects.create(branch=branch_a, weekday=timezone.localdate().weekday(), opens=datetime.time(9), closes=datetime.time(17))
    anna = make_customer(first_name="Anna", home_branch=branch_a)
    lars = make_customer(first_name="Lars", home_branch=branch_b)
    make_appointment(anna, branch_a, days=0, service="Colour")
    make_appointment(lars, branch_b, days=0, service="Beard trim")
    html = login(staff_a).get(url("week")).content.decode()
    assert "Colour" in html and "Anna" in html and "Beard trim" not in html and "Lars" not in html
    assert formats.time_format(datetime.time(9), "TIME_FORMAT") in html  # the opening hours
    html = login(staff_a).get(url("week"), {"branch": branch_b.pk}).content.decode()
    assert "Lars" not in html  # not a branch of staff A: A's own week instead
    html = login(manager).get(url("week"), {"branch": branch_b.pk}).content.decode()
    assert "Lars" in html and "Anna" not in html


def test_week_view_reads_the_weeks_opening_hours_and_closed_days_at_once(login, staff_a, branch_a):
    """Each day's opening hours, a closed day "Closed" although its weekday has hours: two
    queries for the whole week, not two a day."""
    monday = datetime.date(2030, 1, 14)
    for weekday in range(5):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(13))
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(14), closes=datetime.time(18))
    ClosedDay.objects.create(branch=branch_a, date=monday + datetime.timedelta(days=2), reason="Holiday")
    client = login(staff_a)
    client.get(url("week"), {"week": monday.isoformat()})
    with CaptureQueriesContext(connection) as queries:
        html = client.get(url("week"), {"week": monday.isoformat()}).content.decode()
    days = re.findall(r'<p class="help">\s*(.*?)\s*</p>', html, re.S)
    morning, afternoon = (
        times.span(*(datetime.datetime.combine(monday, hour, tzinfo=branch_a.zoneinfo) for hour in hours), branch_a)
        for hours in ((datetime.time(9), datetime.time(13)), (datetime.time(14), datetime.time(18)))
    )
    assert days == [f"{morning}, {afternoon}"] * 2 + ["Closed"] + [f"{morning}, {afternoon}"] * 2 + ["Closed"] * 2
    hours_and_closed_days = [q for q in queries if "openinghours" in q["sql"] or "closedday" in q["sql"]]
    assert len(hours_and_closed_days) == 2


def test_week_view_reads_what_it_shows_of_each_appointment_with_it(login, staff_a, branch_a):
    """The customer (as the branch knows them), service and staff member of each appointment come
    with it: as many queries for six appointments as for one, and the names shown."""
    from wagtail_clientdb import overrides

    client = login(staff_a)
    monday = times.today(branch_a) - datetime.timedelta(days=times.today(branch_a).weekday())

    def week_with(first, count):
        for i in range(first, first + count):
            customer = make_customer(first_name=f"Kundin{i}", last_name="Week", email=f"k{i}@example.org", shared_with_all_branches=True)
            overrides.save_local_values(customer, branch_a, {"first_name": f"Lokal{i}"})
            appointment = make_appointment(customer, branch_a, service=f"Service {i}")
            appointment.start = times.start_of_day(monday, branch_a) + datetime.timedelta(days=i % 5, hours=9 + i)
            appointment.end, appointment.staff = appointment.start + datetime.timedelta(minutes=30), staff_a
            appointment.save()
        client.get(url("week"))
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url("week")).content.decode()
        return len(queries), html

    few, _html = week_with(0, 1)
    many, html = week_with(1, 5)
    assert many == few
    for i in range(6):
        assert f"Lokal{i} Week" in html and f"Service {i} · staff_a" in html


def test_week_view_shows_each_appointment_with_its_link_time_status_and_staff(login, staff_a, branch_a):
    anna = make_customer(first_name="Anna", home_branch=branch_a)
    today = times.today(branch_a)
    wednesday = today - datetime.timedelta(days=today.weekday() - 2)
    done = make_appointment(anna, branch_a, service="Colour")
    done.start = times.start_of_day(wednesday, branch_a) + datetime.timedelta(hours=9)
    done.end, done.status, done.staff = done.start + datetime.timedelta(minutes=45), "completed", staff_a
    done.save()
    kept = make_appointment(anna, branch_a, service="Cut")
    kept.start, kept.end = done.start + datetime.timedelta(hours=2), done.end + datetime.timedelta(hours=2)
    kept.customer = None  # a deleted customer's past appointment
    kept.save()
    html = login(staff_a).get(url("week")).content.decode()
    for appointment in (done, kept):
        assert f'href="{url("edit", appointment.pk)}"' in html
        assert times.span(appointment.start, appointment.end, branch_a) in html
    assert "(deleted customer)" in html
    assert "Colour · staff_a" in html
    assert html.count("clientdb-status--completed") == 1 and html.count("clientdb-status--booked") == 1


def test_staff_members_are_named_as_wagtail_names_users_on_every_page(login, make_user, staff_group, manager, branch_a):
    """Full name, else username (Wagtail's rule, its history pages included): in the appointment
    listing, the week view, the appointment form's choices and a customer's history alike."""
    named = make_user("ada", groups=[staff_group], branches=[branch_a], first_name="Ada", last_name="Lovelace")
    unnamed = make_user("grace", groups=[staff_group], branches=[branch_a], first_name=" ", last_name="")
    customer = make_customer(first_name="Ines", home_branch=branch_a)
    day = times.today(branch_a)
    for hours, staff in ((9, named), (11, unnamed)):
        appointment = make_appointment(customer, branch_a, service="Cut")
        appointment.start = times.start_of_day(day, branch_a) + datetime.timedelta(hours=hours)
        appointment.end, appointment.staff = appointment.start + datetime.timedelta(minutes=30), staff
        appointment.save()
    client = login(manager)
    pages = {
        "listing": client.get(url("list"), {"period": "all"}).content.decode(),
        "week": client.get(url("week"), {"branch": branch_a.pk, "week": day.isoformat()}).content.decode(),
        "form": client.get(url("edit", appointment.pk)).content.decode(),
        "history": client.get(customer_url("inspect", customer.pk)).content.decode(),
    }
    for page, html in pages.items():
        assert "Ada Lovelace" in html and re.search(r"[>·]\s*grace\s*<", html), page
        assert not re.search(r"[>·]\s*ada\s*<", html), page
    # The staff filter's choice, and the active filter it becomes.
    filtered = client.get(url("list"), {"period": "all", "staff": named.pk}).content.decode()
    assert re.search(r"Staff member:\s*</span>\s*<b[^>]*>Ada Lovelace</b>", filtered)


def test_each_appointment_is_opened_from_the_listing_and_from_the_customers_history(login, staff_a, branch_a):
    """The start links to the appointment's edit page, with the row's buttons, as Wagtail's
    listings link their first column; a customer's history links each appointment the same way."""
    customer = make_customer(first_name="Ines", home_branch=branch_a)
    appointments = [make_appointment(customer, branch_a, days=days, service="Cut") for days in (1, 2)]
    client = login(staff_a)
    html = client.get(url("list")).content.decode()
    for appointment in appointments:
        assert re.search(rf'<a href="{url("edit", appointment.pk)}"><span id="snippet_{appointment.pk}_title">', html)
        assert f'aria-describedby="snippet_{appointment.pk}_title"' in html
        assert f'href="{url("inspect", appointment.pk)}"' in html
    history = client.get(customer_url("inspect", customer.pk)).content.decode()
    for appointment in appointments:
        assert f'<a href="{url("edit", appointment.pk)}">' in history


def test_an_appointment_moved_to_another_start_keeps_its_length(login, staff_a, branch_a):
    """Only the start changed on the edit page: the end moves with it (before, the old end
    refused the later start). An end typed as well is kept as typed."""
    customer = make_customer(first_name="Ines", home_branch=branch_a)
    appointment = make_appointment(customer, branch_a, days=3, service="Cut")
    appointment.start = times.start_of_day(times.today(branch_a) + datetime.timedelta(days=3), branch_a) + datetime.timedelta(hours=12)
    appointment.end = appointment.start + datetime.timedelta(minutes=30)
    appointment.save()
    client = login(staff_a)
    form = client.get(url("edit", appointment.pk)).context["form"]
    data = {name: form[name].value() for name in ("customer", "branch", "service", "status")}
    shown = {name: form[name].as_widget().split('value="')[1].split('"')[0] for name in ("start", "end")}
    later = (appointment.start + datetime.timedelta(hours=1)).astimezone(times.zone_of(branch_a)).strftime("%Y-%m-%d %H:%M")
    response = client.post(url("edit", appointment.pk), {**data, "start": later, "end": shown["end"]})
    assert response.status_code == 302, response.context["form"].errors
    appointment.refresh_from_db()
    assert appointment.end - appointment.start == datetime.timedelta(minutes=30)
    assert appointment.start.astimezone(times.zone_of(branch_a)).hour == 13
    # Both changed: as typed.
    start, end = appointment.start + datetime.timedelta(hours=1), appointment.start + datetime.timedelta(hours=3)
    typed = {k: v.astimezone(times.zone_of(branch_a)).strftime("%Y-%m-%d %H:%M") for k, v in (("start", start), ("end", end))}
    assert client.post(url("edit", appointment.pk), {**data, **typed}).status_code == 302
    appointment.refresh_from_db()
    assert appointment.end - appointment.start == datetime.timedelta(hours=2)


def test_appointments_are_searched_by_their_customer_as_the_customer_listing_searches(login, staff_a, branch_a, allow_branch_edits):
    """The full name as shown, in either order, the branch's own name for a shared customer,
    the phone typed another way; the service and notes as before."""
    ines = make_customer(first_name="Ines", last_name="Imhof", phone_raw="030 1234567", shared_with_all_branches=True)
    overrides.save_local_values(ines, branch_a, {"last_name": "Imhof-Lokal"})
    other = make_customer(first_name="Otto", last_name="Imhof", home_branch=branch_a)
    mine = make_appointment(ines, branch_a, days=2, service="Colour")
    theirs = make_appointment(other, branch_a, days=3, service="Cut")
    client = login(staff_a)

    def found(query):
        return {a.pk for a in client.get(url("list"), {"q": query}).context["object_list"]}

    assert found("Ines Imhof-Lokal") == found("Imhof-Lokal Ines") == {mine.pk}
    assert found("Imhof") == {mine.pk, theirs.pk}
    assert found("+49 30 1234567") == {mine.pk}
    assert found("Colour") == {mine.pk}


def test_appointments_name_the_customer_as_the_appointments_branch_knows_them(login, staff_a, staff_b, manager, branch_a, branch_b):
    """A customer shared with both branches whose name branch A keeps for itself: A's
    appointments show A's name wherever appointments are shown (the dashboard's today's
    appointments too); B's show the record's."""
    from wagtail_clientdb import overrides

    shared = make_customer(first_name="Johanna", last_name="Weber", shared_with_all_branches=True)
    overrides.save_local_values(shared, branch_a, {"first_name": "Jo"})
    in_a = make_appointment(shared, branch_a, days=0, service="Colour")
    in_b = make_appointment(shared, branch_b, days=0, service="Beard trim")

    def shown(client, page, *args, **params):
        return client.get(url(page, *args), params).content.decode()

    staff = login(staff_a)
    dashboard = staff.get(reverse("wagtailadmin_home")).content.decode()
    for html in (shown(staff, "list"), shown(staff, "week"), shown(staff, "inspect", in_a.pk), dashboard):
        assert "Jo Weber" in html and "Johanna" not in html
    staff = login(staff_b)
    for html in (shown(staff, "list"), shown(staff, "week"), shown(staff, "inspect", in_b.pk)):
        assert "Johanna Weber" in html and "Jo Weber" not in html
    boss = login(manager)
    listed = shown(boss, "list")
    assert "Jo Weber" in listed and "Johanna Weber" in listed  # each appointment as its branch knows it
    assert "Jo Weber" in shown(boss, "inspect", in_a.pk) and "Johanna Weber" in shown(boss, "inspect", in_b.pk)
