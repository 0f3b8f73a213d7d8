"""Every time the app shows is on the right clock, in the language's format (wagtail_clientdb.times).

The company runs on Europe/Berlin (tests/settings.py); a branch in New York makes the clocks
differ. An appointment at 09:30 New York time is stored as 14:30 UTC, which is 15:30 in Berlin:
every page must show it as 9:30 (the branch's clock), never 14:30 (UTC) nor 15:30 (the
company's). Moments that belong to no branch (a customer created, an import uploaded, a log
entry) are shown on the clock of the view: New York for the branch's staff, Berlin for the
head office. Each page is read in English and in German.
"""

import csv
import datetime
import io
import re
import zoneinfo

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import TestCase
from django.urls import reverse
from django.utils import timezone, translation
from wagtail.log_actions import log
from wagtail.models import Site

from tests.conftest import customer_url, make_customer, make_service, speak
from tests.import_files import csv_bytes, refused_rows
from wagtail_clientdb import deletion, scope, times
from wagtail_clientdb.models import (
    Appointment,
    BookingPage,
    Branch,
    ClientDBLogEntry,
    ConsentEvent,
    Customer,
    CustomerOverride,
    DeletionRequest,
    ExportJob,
    ImportJob,
    OpeningHours,
)

NEW_YORK = zoneinfo.ZoneInfo("America/New_York")
UTC = datetime.timezone.utc

#: 2030-01-15 09:30 in New York = 14:30 UTC = 15:30 in Berlin.
APPOINTMENT = datetime.datetime(2030, 1, 15, 14, 30, tzinfo=UTC)
#: When the customer was created: 2024-01-15 09:30 in New York = 14:30 UTC = 15:30 in Berlin.
CREATED = datetime.datetime(2024, 1, 15, 14, 30, tzinfo=UTC)

#: What each language shows: on the branch's clock, on the company's, and what must never show.
SHOWN = {
    "en": {
        "appointment": "01/15/2030 9:30 a.m.",
        "appointment_end": "01/15/2030 10:15 a.m.",
        "hours": "9:30 a.m.–10:15 a.m.",
        "day": "01/15/2030",
        "long_day": "Tuesday, Jan. 15, 2030",
        "created_branch": "01/15/2024 9:30 a.m.",
        "created_company": "01/15/2024 3:30 p.m.",
        "birthday": "05/01/1990",
        "wrong": ["2:30 p.m.", "14:30", "3:30 p.m.", "15:30"],
    },
    "de": {
        "appointment": "15.01.2030 09:30",
        "appointment_end": "15.01.2030 10:15",
        "hours": "09:30–10:15",
        "day": "15.01.2030",
        "long_day": "Dienstag, 15. Januar 2030",
        "created_branch": "15.01.2024 09:30",
        "created_company": "15.01.2024 15:30",
        "birthday": "01.05.1990",
        "wrong": ["14:30", "15:30", "2:30 p.m.", "3:30 p.m."],
    },
}
LANGUAGES = pytest.mark.parametrize("language", ["en", "de"])


def snippet_url(model, name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_{model}:{name}", args=args)


def html_of(response):
    assert response.status_code == 200
    return response.content.decode()


def text_of(html):
    """The page's text, tags left out and spaces joined (a line may break inside a sentence)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def tooltips(html):
    """The exact moments of the "… ago" dates of a listing."""
    return re.findall(r'data-clientdb-moment="([^"]*)"', html)


def assert_never_wrong(text, language, *, allowed=()):
    for wrong in SHOWN[language]["wrong"]:
        if wrong not in allowed:
            assert wrong not in text, wrong


@pytest.fixture
def branch_ny(db):
    branch = Branch.objects.create(name="Gamma NYC", slug="gamma", timezone="America/New_York")
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch, weekday=weekday, opens=datetime.time(8), closes=datetime.time(18))
    return branch


@pytest.fixture
def staff_ny(make_user, staff_group, branch_ny):
    return make_user("staff_ny", groups=[staff_group], branches=[branch_ny])


@pytest.fixture
def cut(branch_ny):
    return make_service("Cut", branch_ny, duration=45)


@pytest.fixture
def nora(branch_ny):
    customer = make_customer(first_name="Nora", last_name="York", email="nora@example.com", home_branch=branch_ny,
                             birthday=datetime.date(1990, 5, 1))
    Customer.objects.filter(pk=customer.pk).update(created_at=CREATED, updated_at=CREATED)
    return Customer.objects.get(pk=customer.pk)


@pytest.fixture
def appointment(nora, branch_ny, cut):
    return Appointment.objects.create(
        customer=nora, branch=branch_ny, service=cut, start=APPOINTMENT, end=APPOINTMENT + datetime.timedelta(minutes=45)
    )


# --- The rule ------------------------------------------------------------------------------------------


def test_the_clock_is_the_branchs_in_a_branch_view_and_the_companys_otherwise(branch_ny, staff_ny, manager):
    assert times.zone_of(branch_ny) == NEW_YORK
    assert times.zone_of(scope.Viewer(staff_ny, False, (branch_ny,))) == NEW_YORK
    assert times.zone_of(scope.Viewer(manager, True)) == zoneinfo.ZoneInfo("Europe/Berlin")
    assert times.zone_of(None) == zoneinfo.ZoneInfo("Europe/Berlin")
    with translation.override("de"):
        assert times.moment(APPOINTMENT, branch_ny) == "15.01.2030 09:30"
        assert times.moment(APPOINTMENT) == "15.01.2030 15:30"
        assert times.day(datetime.date(1990, 5, 1)) == "01.05.1990"
    # Not the active time zone, whatever Wagtail activated for the user.
    with timezone.override(UTC), translation.override("en"):
        assert times.moment(APPOINTMENT, branch_ny) == "01/15/2030 9:30 a.m."
        assert times.moment(APPOINTMENT) == "01/15/2030 3:30 p.m."
    # A time given without an offset (the API, forms) is read on the clock it belongs to.
    assert times.aware(datetime.datetime(2030, 1, 15, 9, 30), branch_ny) == APPOINTMENT


# --- Appointments: listing, inspect, edit form, week view, messages --------------------------------------


@LANGUAGES
def test_the_appointment_listing_shows_the_branchs_clock_to_branch_and_head_office(login, staff_ny, manager, appointment, language):
    for user in (staff_ny, manager):
        speak(user, language)
        text = text_of(html_of(login(user).get(snippet_url("appointment", "list"))))
        assert SHOWN[language]["appointment"] in text
        assert_never_wrong(text, language)


@LANGUAGES
def test_the_appointment_inspect_page_shows_start_and_end_on_the_branchs_clock(login, manager, appointment, language):
    speak(manager, language)
    text = text_of(html_of(login(manager).get(snippet_url("appointment", "inspect", appointment.pk))))
    assert SHOWN[language]["appointment"] in text and SHOWN[language]["appointment_end"] in text
    assert_never_wrong(text, language)


def test_the_appointment_form_shows_and_reads_times_on_the_branchs_clock(login, manager, appointment, cut, branch_ny, nora):
    client = login(manager)
    html = html_of(client.get(snippet_url("appointment", "edit", appointment.pk)))
    assert re.search(r'name="start" value="2030-01-15 09:30"', html)
    assert re.search(r'name="end" value="2030-01-15 10:15"', html)
    data = {
        "customer": nora.pk, "branch": branch_ny.pk, "service": cut.pk, "status": "booked",
        "start": "2030-01-15 10:00", "end": "2030-01-15 10:45",
    }
    response = client.post(snippet_url("appointment", "edit", appointment.pk), data)
    assert response.status_code == 302
    appointment.refresh_from_db()
    assert appointment.start == datetime.datetime(2030, 1, 15, 15, 0, tzinfo=UTC)  # 10:00 in New York
    # A new appointment too: typed on the clock of the branch chosen.
    response = client.post(snippet_url("appointment", "add"), {**data, "start": "2030-01-16 09:00", "end": ""})
    assert response.status_code == 302
    assert Appointment.objects.filter(start=datetime.datetime(2030, 1, 16, 14, 0, tzinfo=UTC)).exists()


@LANGUAGES
def test_the_week_view_shows_days_hours_and_appointments_on_the_branchs_clock(login, manager, appointment, branch_ny, language):
    speak(manager, language)
    html = html_of(login(manager).get(snippet_url("appointment", "week"), {"branch": branch_ny.pk, "week": "2030-01-15"}))
    text = text_of(html)
    assert SHOWN[language]["hours"] in text
    assert SHOWN[language]["day"] in text
    assert ("8 a.m.–6 p.m." if language == "en" else "08:00–18:00") in text  # the opening hours
    assert_never_wrong(text, language)


@LANGUAGES
def test_spans_formatted_once_a_time_of_day_are_the_spans_formatted_one_by_one(branch_ny, language):
    """The week view formats each time of day once (``times.spans_on_the_clock_of``): the same
    text as each span formatted on its own, on both sides of the change to summer time."""
    with translation.override(language):
        span = times.spans_on_the_clock_of(branch_ny)
        for day in (8, 9, 10, 11, 12):  # summer time begins in New York on 2030-03-10
            for hour in (0, 9, 13, 23):
                start = datetime.datetime(2030, 3, day, hour, 30, tzinfo=UTC)
                end = start + datetime.timedelta(minutes=45)
                assert span(start, end) == times.span(start, end, branch_ny)
        winter, summer = (datetime.datetime(2030, 3, day, 9, 30, tzinfo=UTC) for day in (8, 12))
        assert span(winter, winter) != span(summer, summer)  # 4:30 and 5:30 in New York


@LANGUAGES
def test_an_appointment_in_a_message_is_on_its_branchs_clock(login, manager, appointment, language):
    speak(manager, language)
    client = login(manager)
    response = client.post(snippet_url("appointment", "set_status", appointment.pk, "cancelled"), follow=True)
    text = text_of(html_of(response))
    assert f"Cut – {SHOWN[language]['appointment']}" in text


def test_the_appointment_listing_days_begin_at_the_branchs_midnight(login, staff_ny, nora, branch_ny, cut):
    # 20:00 on the 15th in New York is already the 16th in UTC and in Berlin.
    late = datetime.datetime(2030, 1, 15, 20, 0, tzinfo=NEW_YORK)
    Appointment.objects.create(customer=nora, branch=branch_ny, service=cut, start=late, end=late + datetime.timedelta(minutes=45))
    response = login(staff_ny).get(snippet_url("appointment", "list"), {"period": "all", "start_from": "2030-01-15", "start_to": "2030-01-15"})
    assert "01/15/2030 8 p.m." in text_of(html_of(response))
    response = login(staff_ny).get(snippet_url("appointment", "list"), {"period": "all", "start_from": "2030-01-16", "start_to": "2030-01-16"})
    assert "8 p.m." not in text_of(html_of(response))


# --- Customers: inspect, listing, history, edit form ----------------------------------------------------


@LANGUAGES
def test_the_customer_inspect_page_shows_no_utc(login, staff_ny, manager, nora, appointment, language):
    event = ConsentEvent.objects.create(customer=nora, given=True, channel="admin")
    ConsentEvent.objects.filter(pk=event.pk).update(recorded_at=CREATED)
    shown = SHOWN[language]
    for user, created in ((staff_ny, shown["created_branch"]), (manager, shown["created_company"])):
        speak(user, language)
        html = html_of(login(user).get(customer_url("inspect", nora.pk)))
        text = text_of(html)
        assert text.count(created) >= 3  # created, updated, the consent given
        assert shown["appointment"] in text  # the appointment history, on the branch's clock
        assert shown["birthday"] in text
        assert_never_wrong(text, language, allowed=created.split(" ", 1)[1:])
        assert "+00:00" not in text and "UTC" not in text


@LANGUAGES
def test_the_customer_listing_created_column_is_on_the_clock_of_the_view(login, staff_ny, manager, nora, language):
    shown = SHOWN[language]
    for user, created in ((staff_ny, shown["created_branch"]), (manager, shown["created_company"])):
        speak(user, language)
        assert created in tooltips(html_of(login(user).get(customer_url("list"))))
    # A manager looking through the branch ("Location") sees the branch's clock.
    html = html_of(login(manager).get(customer_url("list"), {"branch": nora.home_branch_id}))
    assert shown["created_branch"] in tooltips(html)


@LANGUAGES
def test_the_history_of_a_customer_is_on_the_clock_of_the_view(login, staff_ny, nora, language):
    log(nora, "wagtail.edit", user=staff_ny)
    ClientDBLogEntry.objects.filter(object_id=str(nora.pk)).update(timestamp=CREATED)
    speak(staff_ny, language)
    html = html_of(login(staff_ny).get(customer_url("history", nora.pk)))
    assert SHOWN[language]["created_branch"] in tooltips(html)


@LANGUAGES
def test_a_birthday_in_a_local_value_hint_is_in_the_languages_date_format(login, staff_ny, allow_branch_edits, branch_ny, language):
    anna = make_customer(first_name="Anna", birthday=datetime.date(1990, 5, 1), shared_with_all_branches=True)
    CustomerOverride.objects.create(customer=anna, branch=branch_ny, birthday=datetime.date(1991, 6, 2))
    speak(staff_ny, language)
    text = text_of(html_of(login(staff_ny).get(customer_url("edit", anna.pk))))
    assert SHOWN[language]["birthday"] in text and "1990-05-01" not in text


@LANGUAGES
def test_a_birthday_changed_meanwhile_is_named_in_the_languages_date_format(login, staff_ny, nora, language):
    from tests.test_versions import edit_page

    speak(staff_ny, language)
    client = login(staff_ny)
    data = edit_page(client, nora)
    Customer.objects.filter(pk=nora.pk).update(birthday=datetime.date(1990, 5, 1) + datetime.timedelta(days=1))
    nora.refresh_from_db()
    nora.save()  # raises the version, as a save at the desk would
    response = client.post(customer_url("edit", nora.pk), {**data, "notes": "Mine"})
    assert response.status_code == 200
    text = text_of(response.content.decode())
    assert ("05/02/1990" if language == "en" else "02.05.1990") in text and "1990-05-02" not in text


# --- Deletion queue ------------------------------------------------------------------------------------


@LANGUAGES
def test_the_deletion_queue_names_the_blocking_appointment_on_its_branchs_clock(login, staff_ny, manager, nora, appointment, branch_ny, language):
    request = deletion.request_deletion(scope.Viewer(staff_ny, False, (branch_ny,)), nora)
    assert request.status == "blocked"
    DeletionRequest.objects.filter(pk=request.pk).update(requested_at=CREATED)
    shown = SHOWN[language]
    blocked = {"en": "upcoming appointment “Cut” on", "de": "anstehender Termin „Cut“ am"}
    for user, requested in ((staff_ny, shown["created_branch"]), (manager, shown["created_company"])):
        speak(user, language)
        html = html_of(login(user).get(snippet_url("deletionrequest", "list")))
        assert f"Gamma NYC: {blocked[language]} {shown['appointment']}" in text_of(html)
        assert requested in tooltips(html)
        text = text_of(html_of(login(user).get(snippet_url("deletionrequest", "inspect", request.pk))))
        assert requested in text


# --- Dashboard -----------------------------------------------------------------------------------------


@LANGUAGES
def test_the_dashboard_shows_todays_appointments_on_their_branchs_clock(login, staff_ny, manager, nora, branch_ny, cut, language):
    # Noon in Berlin is 6:00 in New York, on the same day.
    noon = datetime.datetime.combine(times.today(), datetime.time(12), tzinfo=times.company_zone())
    Appointment.objects.create(customer=nora, branch=branch_ny, service=cut, start=noon, end=noon + datetime.timedelta(minutes=45))
    speak(manager, language)
    text = text_of(html_of(login(manager).get(reverse("wagtailadmin_home"))))
    assert ("6 a.m." if language == "en" else "06:00") in text
    assert ("12 p.m." if language == "en" else "12:00") not in text
    # The branch's own today: 9:30 there.
    nine_thirty = datetime.datetime.combine(times.today(branch_ny), datetime.time(9, 30), tzinfo=NEW_YORK)
    Appointment.objects.create(customer=nora, branch=branch_ny, service=cut, start=nine_thirty, end=nine_thirty + datetime.timedelta(minutes=45))
    speak(staff_ny, language)
    text = text_of(html_of(login(staff_ny).get(reverse("wagtailadmin_home"))))
    assert ("9:30 a.m." if language == "en" else "09:30") in text


@LANGUAGES
def test_the_dashboards_recent_imports_are_on_the_clock_of_the_view(login, staff_ny, branch_ny, language):
    job = ImportJob.objects.create(created_by=staff_ny, branch=branch_ny, original_name="ny.csv", status="imported")
    ImportJob.objects.filter(pk=job.pk).update(created_at=CREATED)
    speak(staff_ny, language)
    assert SHOWN[language]["created_branch"] in tooltips(html_of(login(staff_ny).get(reverse("wagtailadmin_home"))))


# --- Import and export jobs ----------------------------------------------------------------------------


@LANGUAGES
def test_import_and_export_pages_say_when_on_the_clock_of_the_view(login, staff_ny, branch_ny, language):
    job = ImportJob.objects.create(created_by=staff_ny, branch=branch_ny, original_name="ny.csv", status="imported", counts={"new": 1})
    ImportJob.objects.filter(pk=job.pk).update(created_at=CREATED, finished_at=CREATED + datetime.timedelta(minutes=5))
    export = ExportJob.objects.create(created_by=staff_ny, branch=branch_ny, format="csv", status="failed", error="Disk full")
    ExportJob.objects.filter(pk=export.pk).update(created_at=CREATED)
    speak(staff_ny, language)
    client = login(staff_ny)
    shown = SHOWN[language]
    text = text_of(html_of(client.get(customer_url("import_job", job.pk))))
    assert shown["created_branch"] in text
    assert shown["created_branch"].replace("9:30", "9:35").replace("09:30", "09:35") in text
    assert_never_wrong(text, language)
    text = text_of(html_of(client.get(customer_url("export_job", export.pk))))
    assert shown["created_branch"] in text


@LANGUAGES
def test_an_import_refusing_a_row_changed_after_the_preview_says_when_on_the_branchs_clock(login, staff_ny, nora, language):
    speak(staff_ny, language)
    client = login(staff_ny)
    rows = [["Email", "Notes"], ["nora@example.com", "From the file"]]
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("list.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    changed = datetime.datetime(2030, 1, 15, 14, 30, tzinfo=UTC)  # after the preview
    Customer.objects.filter(pk=nora.pk).update(updated_at=changed)
    client.post(customer_url("import_job", job.pk), {})
    job.refresh_from_db()
    with translation.override(language):
        assert SHOWN[language]["appointment"] in refused_rows(job)[0]["message"]
    report = b"".join(client.get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
    assert SHOWN[language]["appointment"] in report


def created_cell(csv_text):
    header, row = list(csv.reader(io.StringIO(csv_text.lstrip("\ufeff"))))
    return dict(zip(header, row))["Created"]


def test_exports_write_creation_times_on_the_clock_of_the_view(login, staff_ny, manager, nora, branch_ny, settings, capsys):
    client = login(staff_ny)
    csv_text = b"".join(client.get(customer_url("list"), {"export": "csv"}).streaming_content).decode("utf-8-sig")
    assert created_cell(csv_text) == "2024-01-15 09:30:00"
    csv_text = b"".join(login(manager).get(customer_url("list"), {"export": "csv"}).streaming_content).decode("utf-8-sig")
    assert created_cell(csv_text) == "2024-01-15 15:30:00"
    # Written in the background, the same.
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}
    response = login(staff_ny).get(customer_url("list"), {"export": "csv"})
    job = ExportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])
    download = login(staff_ny).get(customer_url("export_download", job.pk))
    assert created_cell(b"".join(download.streaming_content).decode("utf-8-sig")) == "2024-01-15 09:30:00"
    # The export command as the branch sees it.
    call_command("clientdb_export", "--branch", "gamma")
    assert created_cell(capsys.readouterr().out) == "2024-01-15 09:30:00"


# --- The booking page and its email --------------------------------------------------------------------


@pytest.fixture
def page(branch_ny, cut):
    home = Site.objects.get(is_default_site=True).root_page
    return home.add_child(instance=BookingPage(title="Book at Gamma", slug="book-gamma", branch=branch_ny))


@LANGUAGES
def test_the_booking_page_and_its_email_are_on_the_branchs_clock(client, page, cut, branch_ny, appointment, language):
    from wagtail_clientdb.public_booking import booked_token

    shown = SHOWN[language]
    with translation.override(language):
        url = page.url + page.reverse_subpage("booked", args=(booked_token(appointment),))
        text = text_of(html_of(client.get(url)))
        assert f"{shown['long_day']}, {shown['hours']}" in text
        assert_never_wrong(text, language)
        # The free times of a day: 8:00 is the first, on the branch's clock.
        day = times.today(branch_ny) + datetime.timedelta(days=1)
        response = client.get(page.url, {"service": cut.pk, "date": day.isoformat()})
        first = response.context["form"].fields["start"].choices[0]
        assert first == (datetime.datetime.combine(day, datetime.time(8), tzinfo=NEW_YORK).isoformat(), "8 a.m." if language == "en" else "08:00")
        assert times.long_day(day) in text_of(html_of(response))
        # Booking: the email says the day and time as the branch knows them.
        nine = datetime.datetime.combine(day, datetime.time(9, 30), tzinfo=NEW_YORK)
        token = response.context["form"]["token"].value()
        with TestCase.captureOnCommitCallbacks(execute=True):
            booked = client.post(page.url, {
                "service": cut.pk, "date": day.isoformat(), "start": nine.isoformat(), "token": token,
                "first_name": "Olga", "last_name": "Ost", "email": "olga@example.com", "phone": "",
            })
        assert booked.status_code == 302
    [email] = mail.outbox
    with translation.override(language):
        assert times.moment(nine, branch_ny) in email.subject
        assert f"{times.long_day(nine, branch_ny)}, {times.span(nine, nine + datetime.timedelta(minutes=45), branch_ny)}" in email.body
        deadline = nine - datetime.timedelta(hours=24)
        assert times.moment(deadline, branch_ny) in email.body


# --- API -----------------------------------------------------------------------------------------------


def test_the_api_gives_times_with_their_offset_and_reads_times_without_one_on_the_branchs_clock(client, appointment, staff_ny, cut, nora):
    from tests.test_api import Api

    client = Api(client, staff_ny)
    listed = client.get("/appointments/").json()["items"]
    [start] = [item["start"] for item in listed]
    assert datetime.datetime.fromisoformat(start.replace("Z", "+00:00")) == APPOINTMENT
    assert start.endswith(("Z", "+00:00"))
    response = client.send("post", "/appointments/", {"branch": "gamma", "service": "Cut", "start": "2030-01-17T09:30:00", "customer_id": nora.pk})
    assert response.status_code == 201, response.content
    assert Appointment.objects.get(pk=response.json()["id"]).start == datetime.datetime(2030, 1, 17, 14, 30, tzinfo=UTC)
