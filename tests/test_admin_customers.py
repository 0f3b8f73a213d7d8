"""The customer admin through its real URLs: listing, filters, search, ordering, forms, inspect."""

import datetime
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.conftest import customer_url, listing_counts, make_appointment, make_customer, post_edit
from wagtail_clientdb import times
from wagtail_clientdb.models import ConsentEvent, Customer, CustomerGroup, CustomerOverride
from wagtail_clientdb.overrides import save_local_values


def listed_names(response):
    return [row.last_name for row in response.context["object_list"]]


@pytest.fixture
def people(db, branch_a, branch_b):
    vip = CustomerGroup.objects.create(name="VIP")
    walkin = CustomerGroup.objects.create(name="Walk-in")
    anna = make_customer(
        first_name="Anna", last_name="Schmidt", email="anna@example.com", phone_raw="+49 170 1234567",
        shared_with_all_branches=True, marketing_consent=True, source="import",
    )
    anna.groups.add(vip)
    anna.tags.add("blonde", "regular")
    bernd = make_customer(first_name="Bernd", last_name="Müller", email="bernd@example.org", phone_raw="030 1234567",
                          shared_with_all_branches=True)
    bernd.groups.add(walkin)
    bernd.tags.add("regular")
    clara = make_customer(first_name="Clara", last_name="Adler", email="clara@example.net", branches=[branch_a], source="online_booking")
    for days in (-30, -10, 5):
        make_appointment(clara, branch_a, days=days)
    make_appointment(anna, branch_a, days=-1)
    return {"anna": anna, "bernd": bernd, "clara": clara, "vip": vip}


def test_listing_columns(login, manager, people):
    response = login(manager).get(customer_url("list"))
    html = response.content.decode()
    assert response.status_code == 200
    for text in ["Anna Schmidt", "anna@example.com", "+49 170 1234567", "VIP", "blonde, regular", "All branches", "Alpha Salon", "global"]:
        assert text in html
    clara = next(c for c in response.context["object_list"] if c.pk == people["clara"].pk)
    assert clara.bookings_count == 3


def test_default_ordering_is_by_name(login, manager, people):
    response = login(manager).get(customer_url("list"))
    assert listed_names(response) == ["Adler", "Müller", "Schmidt"]
    response = login(manager).get(customer_url("list"), {"ordering": "-name"})
    assert listed_names(response) == ["Schmidt", "Müller", "Adler"]


def test_ordering_by_most_bookings_and_creation(login, manager, people):
    client = login(manager)
    assert listed_names(client.get(customer_url("list"), {"ordering": "-bookings_count"})) == ["Adler", "Schmidt", "Müller"]
    assert listed_names(client.get(customer_url("list"), {"ordering": "created_at"})) == ["Schmidt", "Müller", "Adler"]
    assert listed_names(client.get(customer_url("list"), {"ordering": "-created_at"})) == ["Adler", "Müller", "Schmidt"]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"tags": "blonde"}, ["Schmidt"]),
        ({"marketing_consent": "true"}, ["Schmidt"]),
        ({"marketing_consent": "false"}, ["Adler", "Müller"]),
        ({"source": "online_booking"}, ["Adler"]),
    ],
)
def test_filters(login, manager, people, params, expected):
    params = dict(params)
    if "tags" in params:
        from wagtail_clientdb.models import CustomerTag

        params["tags"] = CustomerTag.all_tags.get(name=params["tags"]).pk
    assert listed_names(login(manager).get(customer_url("list"), params)) == expected


def test_filter_by_group_and_several_tags(login, manager, people):
    from wagtail_clientdb.models import CustomerTag

    client = login(manager)
    assert listed_names(client.get(customer_url("list"), {"groups": people["vip"].pk})) == ["Schmidt"]
    regular, blonde = CustomerTag.all_tags.get(name="regular"), CustomerTag.all_tags.get(name="blonde")
    # A customer matching two chosen tags is listed once.
    assert listed_names(client.get(customer_url("list"), {"tags": [regular.pk, blonde.pk]})) == ["Müller", "Schmidt"]


def test_filter_by_location(login, manager, people, branch_a, branch_b):
    local_b = make_customer(first_name="Dora", last_name="Zander", home_branch=branch_b)
    client = login(manager)
    assert listed_names(client.get(customer_url("list"), {"branch": branch_a.pk})) == ["Adler", "Müller", "Schmidt"]
    assert listed_names(client.get(customer_url("list"), {"branch": branch_b.pk})) == ["Müller", "Schmidt", local_b.last_name]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("schmidt", ["Schmidt"]),
        ("anna schmidt", ["Schmidt"]),
        ("EXAMPLE.ORG", ["Müller"]),
        ("+49 170 1234567", ["Schmidt"]),
        ("0170 1234567", ["Schmidt"]),
        ("0170/123 45 67", ["Schmidt"]),
        ("+491701234567", ["Schmidt"]),
        ("1234567", ["Müller", "Schmidt"]),
        ("030-1234567", ["Müller"]),
        ("nobody", []),
    ],
)
def test_search_by_name_email_and_phone_in_any_format(login, manager, people, query, expected):
    assert listed_names(login(manager).get(customer_url("list"), {"q": query})) == expected


@pytest.mark.parametrize("role", ["manager", "staff_a"])
def test_a_whole_email_address_finds_the_addresses_holding_it_and_no_other(login, request, role, people, branch_a):
    """An address is looked up by its own part (``anna@``) and then checked whole: the same own
    part at another domain is not found; an address holding the whole one is; and a branch
    finds its local value."""
    make_customer(first_name="Anna", last_name="Other", email="anna@example.net", shared_with_all_branches=True)
    make_customer(first_name="Hanna", last_name="Longer", email="hanna@example.com", shared_with_all_branches=True)
    local = make_customer(first_name="Dora", last_name="Local", email="dora@example.org", shared_with_all_branches=True)
    save_local_values(local, branch_a, {"email": "anna@example.com"})
    found = listed_names(login(request.getfixturevalue(role)).get(customer_url("list"), {"q": "Anna@Example.com"}))
    expected = ["Local", "Longer", "Schmidt"] if role == "staff_a" else ["Longer", "Schmidt"]
    assert found == expected


def test_listing_query_count_does_not_grow_with_page_size(login, manager, branch_a, branch_b):
    client = login(manager)

    def count_queries():
        client.get(customer_url("list"))  # warm caches (settings, content types)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(customer_url("list"))
        assert response.status_code == 200
        return queries.captured_queries, len(response.context["object_list"])

    group = CustomerGroup.objects.create(name="G")

    def add_customers(n, offset):
        for i in range(n):
            customer = make_customer(first_name=f"F{offset + i}", last_name=f"L{offset + i}", branches=[branch_a, branch_b])
            customer.groups.add(group)
            customer.tags.add(f"t{i}")
            make_appointment(customer, branch_a)

    add_customers(3, 0)
    few_queries, few_rows = count_queries()
    add_customers(17, 3)
    many_queries, many_rows = count_queries()
    assert (few_rows, many_rows) == (3, 20)
    # A full page is counted; otherwise the same queries.
    assert len(listing_counts(many_queries)) > len(listing_counts(few_queries))
    assert len(many_queries) - len(listing_counts(many_queries)) == len(few_queries) - len(listing_counts(few_queries))


def test_inspect_view_shows_contact_and_appointment_history(login, manager, people, branch_a):
    clara = people["clara"]
    response = login(manager).get(customer_url("inspect", clara.pk))
    assert response.status_code == 200
    html = response.content.decode()
    assert "clara@example.net" in html
    assert html.count("Haircut") == 3
    assert len(response.context["appointments"]) == 3
    assert response.context["appointments"][0].start > response.context["appointments"][-1].start


def test_inspect_view_reads_what_the_history_shows_of_each_appointment_with_it(login, manager, staff_a, branch_a):
    """The service, branch, staff member and status of each appointment come with it: as many
    queries for six appointments as for one."""
    customer = make_customer(first_name="Hanna", shared_with_all_branches=True)
    client = login(manager)

    def history_with(first, count):
        for i in range(first, first + count):
            appointment = make_appointment(customer, branch_a, days=-i - 1, service=f"Service {i}", status="completed")
            appointment.staff = staff_a
            appointment.save()
        client.get(customer_url("inspect", customer.pk))
        with CaptureQueriesContext(connection) as queries:
            html = client.get(customer_url("inspect", customer.pk)).content.decode()
        return len(queries), html

    few, _html = history_with(0, 1)
    many, html = history_with(1, 5)
    assert many == few
    for i in range(6):
        assert re.search(rf"<td>Service {i}</td>\s*<td>{branch_a.name}</td>\s*<td>staff_a</td>", html)
    assert html.count("clientdb-status--completed") == 6


def test_a_customers_pages_name_them_as_the_branch_knows_them(login, manager, staff_a, branch_a, allow_branch_edits):
    """Title, header, breadcrumbs and the message after saving, the history and usage pages, the
    listing and an appointment's chosen customer: the branch's own name of a shared customer, as
    its listing shows it."""
    sabine = make_customer(first_name="Sabine", last_name="Schulz", email="sabine@example.com", shared_with_all_branches=True)
    client = login(staff_a)
    response = post_edit(client, sabine, {"first_name": "Sabine", "last_name": "Schulz-Lokal", "email": sabine.email}, follow=True)
    messages = [str(message) for message in response.context["messages"]]
    assert any("Sabine Schulz-Lokal" in message for message in messages), messages
    for view in ("inspect", "edit", "history", "usage"):
        html = client.get(customer_url(view, sabine.pk)).content.decode()
        title = re.search(r"<title>(.*?)</title>", html, re.DOTALL).group(1)
        assert "Sabine Schulz-Lokal" in title and "Sabine Schulz " not in title + " ", view
        assert html.count("Sabine Schulz-Lokal") >= 2, view
    # Nowhere else either: the listing's row (its "More" menu's label too), an appointment's
    # form with the customer chosen, and the chooser's answer when the customer is chosen.
    appointment = make_appointment(sabine, branch_a)
    appointment_edit = reverse("wagtailsnippets_wagtail_clientdb_appointment:edit", args=[appointment.pk])
    chosen = reverse("wagtailsnippetchoosers_wagtail_clientdb_customer:chosen", args=[sabine.pk])
    for url in (customer_url("list"), customer_url("list") + "?q=Schulz", appointment_edit, chosen):
        page = client.get(url).content.decode()
        assert "Sabine Schulz-Lokal" in page and not re.search(r"Sabine Schulz(?!-Lokal)", page), url
    # The head office reads the company record.
    manager_page = login(manager).get(appointment_edit).content.decode()
    assert "Sabine Schulz<" in manager_page and "Schulz-Lokal" not in manager_page


def test_manager_creates_customer(login, manager, branch_a):
    response = login(manager).post(
        customer_url("add"),
        {
            "first_name": "Neu",
            "last_name": "Kunde",
            "email": " Neu.Kunde@Example.COM ",
            "phone_raw": "0170 7654321",
            "marketing_consent": "on",
            "tags": "new, test",
            "sharing": "specific",
            "share_branches": [branch_a.pk],
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    customer = Customer.objects.get(last_name="Kunde")
    assert customer.email == "neu.kunde@example.com"
    assert customer.phone == "+491707654321"
    assert customer.is_global and list(customer.branches.all()) == [branch_a]
    assert sorted(customer.tags.names()) == ["new", "test"]
    assert customer.marketing_consent
    event = ConsentEvent.objects.get(customer=customer)
    assert (event.given, event.channel, event.recorded_by) == (True, "admin", manager)


def test_consent_withdrawal_is_recorded(login, manager, people):
    anna = people["anna"]
    client = login(manager)
    response = post_edit(client, anna, {"first_name": "Anna", "last_name": "Schmidt", "email": anna.email, "sharing": "all"})
    assert response.status_code == 302
    anna.refresh_from_db()
    assert not anna.marketing_consent
    assert list(anna.consent_events.values_list("given", "channel")) == [(False, "admin")]
    assert "withdrawn" in client.get(customer_url("inspect", anna.pk)).content.decode()


@pytest.mark.parametrize(
    "data, field, message",
    [
        ({"email": "not-an-email"}, "email", "valid email"),
        ({"phone_raw": "call me maybe"}, "phone_raw", "valid phone number"),
        ({"first_name": ""}, "__all__", "at least a name"),
    ],
)
def test_bad_input_gets_a_form_error_and_changes_nothing(login, manager, people, data, field, message):
    anna = people["anna"]
    before = Customer.objects.values().get(pk=anna.pk)
    post = {"first_name": "Anna", "last_name": "Schmidt", "email": anna.email, "marketing_consent": "on", **data}
    if field == "__all__":
        post.update(last_name="", email="")
    response = post_edit(login(manager), anna, post)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert message in " ".join(errors[field])
    assert Customer.objects.values().get(pk=anna.pk) == before


def test_duplicate_external_id_gets_a_form_error(login, manager, people):
    people["bernd"].external_id = "K-7"
    people["bernd"].save()
    response = login(manager).post(customer_url("add"), {"first_name": "X", "external_id": "K-7", "sharing": "specific"})
    assert response.status_code == 200
    assert "already has this external ID" in str(response.context["form"].errors)
    assert Customer.objects.filter(external_id="K-7").count() == 1


def test_second_default_group_gets_a_form_error(login, manager, db):
    CustomerGroup.objects.create(name="Online", is_default=True)
    from django.urls import reverse

    response = login(manager).post(
        reverse("wagtailsnippets_wagtail_clientdb_customergroup:add"), {"name": "Walk-in", "is_default": "on"}
    )
    assert response.status_code == 200
    assert "already the default group" in str(response.context["form"].errors)
    assert not CustomerGroup.objects.filter(name="Walk-in").exists()


def test_a_new_customers_sharing_is_chosen_not_defaulted(login, manager, branch_a):
    client = login(manager)
    form = client.get(customer_url("add")).context["form"]
    assert form["sharing"].value() in (None, "") and form.fields["sharing"].required
    response = client.post(customer_url("add"), {"first_name": "Nobody", "last_name": "Sees"})
    assert response.status_code == 200 and "sharing" in response.context["form"].errors
    response = client.post(customer_url("add"), {"first_name": "Nobody", "last_name": "Sees", "sharing": "specific"})
    assert "Choose the branches that should see the new customer" in " ".join(response.context["form"].errors["share_branches"])
    assert not Customer.objects.exists()
    client.post(customer_url("add"), {"first_name": "Some", "last_name": "Sees", "sharing": "specific", "share_branches": [branch_a.pk]})
    assert list(Customer.objects.get().branches.all()) == [branch_a]


def test_a_shared_customer_keeps_at_least_one_branch_in_the_edit_form(login, manager, scope_customers, branch_a):
    """Editing a customer shared with specific branches down to none made a customer no branch sees."""
    customer = scope_customers["global_a"]
    response = post_edit(login(manager), customer, {"first_name": customer.first_name, "last_name": customer.last_name, "sharing": "specific"})
    assert response.status_code == 200
    assert "keeps at least one branch" in " ".join(response.context["form"].errors["sharing"])
    assert list(customer.branches.all()) == [branch_a]


def test_the_notice_says_whose_view_the_listing_shows(login, manager, branch_a):
    client = login(manager)
    html = client.get(customer_url("list")).content.decode()
    assert "You are seeing the whole company" in html
    for response in (
        client.get(customer_url("list"), {"branch": branch_a.pk}),
        client.get(customer_url("list_results"), {"branch": branch_a.pk}),  # what the filters fetch
    ):
        html = response.content.decode()
        assert "You are seeing the customers as Alpha Salon sees them" in html
        assert "You are seeing the whole company" not in html


def test_the_delete_confirmation_counts_the_customers_appointments(login, manager, branch_a):
    from tests.conftest import make_appointment

    anna = make_customer(first_name="Anna", last_name="Apfel", shared_with_all_branches=True)
    for days in (-30, -20, -10, 5, 12):
        make_appointment(anna, branch_a, days=days, status="completed" if days < 0 else "booked")
    make_appointment(anna, branch_a, days=3, status="cancelled")
    html = login(manager).get(customer_url("delete", anna.pk)).content.decode()
    assert "Appointments of this customer: 2 upcoming, 4 past or cancelled." in html
    assert "referenced" not in html.lower()


def test_the_customer_page_dates_the_last_change_the_branch_sees(login, staff_a, staff_b, branch_a, branch_b, allow_branch_edits):
    customer = make_customer(first_name="Ute", shared_with_all_branches=True)
    long_ago = timezone.now() - datetime.timedelta(days=30)
    Customer.objects.filter(pk=customer.pk).update(updated_at=long_ago)
    save_local_values(customer, branch_a, {"notes": "Mag Tee"})

    def updated(user):
        fields = login(user).get(customer_url("inspect", customer.pk)).context["fields"]
        return next(field["value"] for field in fields if field["label"] == "Updated")

    assert updated(staff_b) == times.moment(long_ago, branch_b)
    assert updated(staff_a) == times.moment(CustomerOverride.objects.get().updated_at, branch_a) != times.moment(long_ago, branch_a)


def test_a_number_typed_from_its_beginning_is_found_from_its_beginning(login, manager, settings_model):
    """"0170" is the beginning of a mobile number, not "170" anywhere: a Berlin landline with
    "170" in the middle is not found by it. Digits typed without a prefix are found anywhere."""
    settings_model.default_phone_region = "DE"
    settings_model.save()
    mobile = make_customer(first_name="Mobil", phone_raw="0170 5550123", shared_with_all_branches=True)
    landline = make_customer(first_name="Festnetz", phone_raw="030 1701234", shared_with_all_branches=True)
    abroad = make_customer(first_name="Wien", phone_raw="+43 660 1701999", shared_with_all_branches=True)

    def found(query):
        return {row.pk for row in login(manager).get(customer_url("list"), {"q": query}).context["object_list"]}

    assert found("0170") == found("+49 170") == found("0049170") == {mobile.pk}
    assert found("030 170") == {landline.pk}
    assert found("1701") == {landline.pk, abroad.pk}
    assert found("+43 660") == {abroad.pk}


def test_the_tag_field_names_tags_in_any_case_and_no_tag_of_invisible_characters(login, manager, branch_a):
    """One rule for tag names (wagtail_clientdb.tags): an existing tag of another case is that
    tag, in its spelling; a new one keeps the spelling typed, once; a name of only invisible
    characters (zero-width space, byte order mark, soft hyphen) is no name, as an empty one."""
    from wagtail_clientdb.models import CustomerTag

    make_customer(first_name="Rita", branches=[branch_a]).tags.add("Regular")
    client = login(manager)
    response = client.post(
        customer_url("add"),
        {
            "first_name": "Neu",
            "last_name": "Kunde",
            "tags": 'regular, REGULAR, Neu\u200b, neu, "\u200b\ufeff", \u00ad',
            "sharing": "specific",
            "share_branches": [branch_a.pk],
        },
    )
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    customer = Customer.objects.get(last_name="Kunde")
    assert sorted(customer.tags.names()) == ["Neu", "Regular"]
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["Neu", "Regular"]

    edit = {
        "first_name": "Neu",
        "last_name": "Kunde",
        "email": "",
        "phone_raw": "",
        "notes": "",
        "sharing": "specific",
        "share_branches": [branch_a.pk],
    }
    response = post_edit(client, customer, {**edit, "tags": "NEU, rEGULAR"})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    assert sorted(customer.tags.names()) == ["Neu", "Regular"]
    # Nothing visible: as if the field were empty.
    response = post_edit(client, customer, {**edit, "tags": "\u200b"})
    assert response.status_code == 302, response.context["form"].errors if response.context else ""
    assert not customer.tags.exists()
    assert sorted(CustomerTag.all_tags.values_list("name", flat=True)) == ["Neu", "Regular"]
