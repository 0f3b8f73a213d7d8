"""Hostile inputs beyond the import's (issue #16): markup and SQL in every text field and
attribute, overlong values, control characters, right-to-left marks, emoji, invalid UTF-8,
forged posts with another branch's ids, tampered signed tokens, odd pagination and unknown
filter values. Each case ends in a clear error or in safe storage and rendering, and nothing
changes where nothing may change."""

import datetime
import unicodedata

import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse
from django.utils.html import escape
from django.utils import timezone
from django.utils.http import urlsafe_base64_encode
from wagtail.models import Site

from tests.conftest import customer_url, make_appointment, make_customer, make_service, post_edit
from tests.test_api import Api
from wagtail_clientdb.models import AttributeDefinition, BookingPage, Customer, OpeningHours

#: Text that must be stored as typed and shown as text, never run.
STORED_AS_TEXT = {
    "script": "<script>alert('x')</script>",
    "image tag": '"><img src=x onerror=alert(1)>',
    "sql": "Robert'); DROP TABLE wagtail_clientdb_customer;--",
    "template": "{{ request.user.password }}{% debug %}",
    "right-to-left override": "Anna\u202egnp.exe",
    "emoji": "Zoë 👩\u200d🎤🇩🇪",
    "combining marks": "Zoe\u0308 Ne\u0301el",
    "zero-width": "An\u200bna",
    "arabic": "مريم",
    "percent": "100% %s %(name)s",
}
#: Text a form must refuse with a message, creating nothing.
REFUSED = {
    "nul": "Anna\x00",
    "overlong": "A" * 5000,
}

LISTING_PARAMS = [
    {"p": "-1"}, {"p": "0"}, {"p": "99999999999999999999999"}, {"p": "abc"}, {"p": "1e9"},
    {"branch": "999999"}, {"branch": "<script>"}, {"tags": "abc"}, {"tags": "-5"}, {"groups": "999999"},
    {"marketing_consent": "maybe"}, {"source": "hacker"}, {"ordering": "password"}, {"ordering": "-customer__password"},
    {"q": "%"}, {"q": "_"}, {"q": "'\""}, {"q": "\\"}, {"q": "a" * 2000}, {"attr__hair": "<b>"}, {"show_attributes": "x"},
    {"export": "pdf"}, {"delimiter": "pipe", "export": "csv"},
]


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()


@pytest.fixture
def hair(db):
    return AttributeDefinition.objects.create(label="Hair", key="hair", field_type="text")


def customers_table_exists():
    return "wagtail_clientdb_customer" in connection.introspection.table_names()


@pytest.mark.parametrize("field", ["first_name", "last_name", "notes", "attr__hair"])
@pytest.mark.parametrize("payload", list(STORED_AS_TEXT.values()), ids=list(STORED_AS_TEXT))
def test_markup_and_sql_are_stored_as_typed_and_shown_as_text(login, manager, hair, field, payload):
    client = login(manager)
    data = {"first_name": "Anna", "last_name": "Apfel", "sharing": "all", field: payload}
    response = client.post(customer_url("add"), data)
    assert response.status_code == 302, response.context["form"].errors if response.context else response
    customer = Customer.objects.get()
    stored = customer.attributes.get("hair") if field == "attr__hair" else getattr(customer, field)
    assert stored == unicodedata.normalize("NFC", payload.strip())
    assert customers_table_exists()
    for url in (customer_url("list"), customer_url("inspect", customer.pk), customer_url("edit", customer.pk)):
        html = client.get(url, {"show_attributes": "hair"} if "list" in url else {}).content.decode()
        assert "<script>alert('x')</script>" not in html and "<img src=x onerror" not in html
    # Shown as the text it is (escaped), a template tag included, on the customer's page.
    assert escape(stored) in client.get(customer_url("inspect", customer.pk)).content.decode()


@pytest.mark.parametrize("field", ["first_name", "notes", "attr__hair"])
@pytest.mark.parametrize("payload", list(REFUSED.values()), ids=list(REFUSED))
def test_nul_and_overlong_values_are_refused_with_a_message(login, manager, hair, field, payload):
    client = login(manager)
    response = client.post(customer_url("add"), {"first_name": "Anna", "sharing": "all", field: payload})
    if field == "notes" and payload == REFUSED["overlong"]:
        # Notes may be long; 5,000 characters are kept.
        assert response.status_code == 302 and Customer.objects.get().notes == payload
        return
    assert response.status_code == 200 and response.context["form"].errors
    assert not Customer.objects.exists()


def test_control_characters_do_not_break_the_listing_or_its_exports(login, manager):
    make_customer(first_name="Bell\x07 and \x0bvtab", last_name="Esc\x1b[31m", shared_with_all_branches=True)
    client = login(manager)
    assert client.get(customer_url("list")).status_code == 200
    for export_format in ("csv", "xlsx"):
        response = client.get(customer_url("list"), {"export": export_format})
        assert response.status_code == 200 and b"".join(response.streaming_content)


@pytest.mark.parametrize("params", LISTING_PARAMS, ids=lambda params: "&".join(f"{k}={v[:12]}" for k, v in params.items()))
def test_odd_pagination_and_unknown_filter_values_never_fail(login, staff_a, scope_customers, params):
    # Odd values are ignored (the first page, no filter, the default order): the listing answers.
    response = login(staff_a).get(customer_url("list"), params)
    assert response.status_code == 200
    if not getattr(response, "streaming", False):
        html = response.content.decode()
        # The only scripts are Wagtail's own date pickers of the date filters.
        assert html.count("<script>") == html.count('<script>initDateChooser("id_')
        assert "Localb" not in html and "lars@example.com" not in html


@pytest.mark.parametrize("url_name", ["list", "week"])
@pytest.mark.parametrize("params", [{"p": "-3"}, {"p": "x"}, {"branch": "abc"}, {"period": "bogus"}, {"status": "deleted"},
                                    {"start_after": "31.02.2020"}, {"week": "9999-99"}, {"date": "0000-00-00"}])
def test_the_appointment_listings_take_odd_parameters_calmly(login, staff_a, branch_a, url_name, params):
    response = login(staff_a).get(reverse(f"wagtailsnippets_wagtail_clientdb_appointment:{url_name}"), params)
    assert response.status_code == 200


def test_invalid_utf8_in_the_query_string_and_a_form(login, manager, client):
    client = login(manager)
    assert client.get(customer_url("list") + "?q=%FF%FE%FD").status_code == 200
    response = client.post(
        customer_url("add"), "first_name=%FF%FEAnna&sharing=all", content_type="application/x-www-form-urlencoded"
    )
    # Bytes that are no UTF-8 arrive as replacement characters: stored as such, never as mojibake.
    assert response.status_code == 302
    assert Customer.objects.get().first_name == "\ufffd\ufffdAnna"


# --- Forged posts with another branch's ids ---------------------------------------------------------


def test_forged_edits_deletes_and_bulk_actions_on_another_branchs_customer_change_nothing(login, staff_a, scope_customers):
    theirs = scope_customers["local_b"]
    before = Customer.objects.filter(pk=theirs.pk).values().get()
    client = login(staff_a)
    assert post_edit(client, theirs, {"first_name": "Hijacked"}).status_code == 404
    assert client.post(customer_url("delete", theirs.pk)).status_code == 404
    bulk = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "add_tags"))
    response = client.post(f"{bulk}?id={theirs.pk}", {"tags": "stolen"})
    assert response.status_code in (200, 302, 403, 404)
    assert Customer.objects.filter(pk=theirs.pk).values().get() == before
    assert not theirs.tags.exists()


def test_a_forged_appointment_for_another_branchs_customer_is_refused(login, staff_a, scope_customers, branch_a):
    make_service("Cut", branch_a, duration=30)
    start = timezone.localtime(timezone.now() + datetime.timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
    response = login(staff_a).post(
        reverse("wagtailsnippets_wagtail_clientdb_appointment:add"),
        {"customer": scope_customers["local_b"].pk, "branch": branch_a.pk, "service": 1, "start": start.strftime("%Y-%m-%d %H:%M"), "status": "booked"},
    )
    assert response.status_code in (200, 403, 404)
    assert not scope_customers["local_b"].appointments.exists()


def test_the_api_refuses_another_branchs_ids(client, staff_a, scope_customers):
    api = Api(client, staff_a)
    theirs = scope_customers["local_b"]
    assert api.get(f"/customers/{theirs.pk}/").status_code == 404
    assert api.send("patch", f"/customers/{theirs.pk}/", {"first_name": "X"}, {"If-Match": '"1.0"'}).status_code == 404
    assert api.send("delete", f"/customers/{theirs.pk}/", None).status_code in (404, 405)
    assert Customer.objects.get(pk=theirs.pk).first_name == theirs.first_name


@pytest.mark.parametrize(
    "params, status",
    [("limit=-1", 422), ("offset=-5", 422), ("limit=100000000000000000000", 400), ("offset=99999999999", 200), ("limit=abc", 422)],
)
def test_the_api_takes_odd_pagination_calmly(client, staff_a, scope_customers, params, status):
    response = Api(client, staff_a).get(f"/customers/?{params}")
    assert response.status_code == status
    if status == 200:
        assert response.json()["items"] == []
    else:
        assert response.headers["Content-Type"].startswith("application/") and response.json()


def test_forged_api_tokens_are_refused(client, scope_customers):
    for header in ("Bearer ", "Bearer wagtail_" + "A" * 60, "Bearer ' OR 1=1 --", "Basic YWRtaW46YWRtaW4=", "Bearer \u202e"):
        response = client.get("/api/v3/clientdb/customers/", headers={"Authorization": header})
        assert response.status_code == 401


# --- Tampered signed tokens ----------------------------------------------------------------------


@pytest.fixture
def booked(db, branch_a):
    for weekday in range(7):
        OpeningHours.objects.create(branch=branch_a, weekday=weekday, opens=datetime.time(9), closes=datetime.time(17))
    home = Site.objects.get(is_default_site=True).root_page
    page = home.add_child(instance=BookingPage(title="Book", slug="book", branch=branch_a))
    appointment = make_appointment(make_customer(first_name="Tina", email="tina@example.com", home_branch=branch_a), branch_a, days=3)
    return page, appointment


@pytest.mark.parametrize("tamper", [
    # The first character: a base64 text's last one may differ only in bits its decoding drops,
    # so a changed last character can still carry the same signature.
    lambda token: ("A" if token[0] != "A" else "B") + token[1:],
    lambda token: urlsafe_base64_encode(b"1"),  # an id without a signature
    lambda token: "1:" + token,
    lambda token: "../../admin/",
    lambda token: token + "%00",
])
def test_tampered_cancel_and_booked_links_are_refused(client, booked, tamper):
    from wagtail_clientdb import booking
    from wagtail_clientdb.public_booking import booked_token

    page, appointment = booked
    for kind, token in (("cancel", booking.cancel_token(appointment)), ("booked", booked_token(appointment))):
        response = client.get(f"{page.url}{kind}/{tamper(token)}/")
        assert response.status_code in (400, 404), (kind, response.status_code)
        response = client.post(f"{page.url}{kind}/{tamper(token)}/")
        assert response.status_code in (400, 404, 405)
    appointment.refresh_from_db()
    assert appointment.status == "booked"


@pytest.mark.parametrize("payload", list(STORED_AS_TEXT.values())[:5], ids=list(STORED_AS_TEXT)[:5])
def test_the_booking_page_stores_markup_as_text(client, booked, payload):
    from tests.test_booking import at, book, tomorrow

    page, _appointment = booked
    response = book(client, page, make_service("Haircut", page.branch, duration=60), at(page.branch, tomorrow(page.branch), 11),
                    first_name=payload, email="new@example.com", phone="")
    assert response.status_code in (302, 400)
    html = response.content.decode() if response.status_code == 400 else client.get(response.url).content.decode()
    assert "<script>alert" not in html and "<img src=x" not in html
    assert customers_table_exists()
