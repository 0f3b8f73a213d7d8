"""Every Client DB listing renders through its real admin URL, with its filters, search and ordering."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.conftest import make_appointment, make_customer, make_service
from wagtail_clientdb.models import AttributeDefinition, Branch, CustomerGroup


def url(model, name="list", *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_{model}:{name}", args=args)


@pytest.fixture
def data(branch_a, branch_b):
    anna = make_customer(first_name="Anna", last_name="Apfel", shared_with_all_branches=True)
    lars = make_customer(first_name="Lars", last_name="Birne", home_branch=branch_b)
    past = make_appointment(anna, branch_a, days=-5, status="completed", service="Colour")
    future = make_appointment(anna, branch_a, days=5, service="Cut")
    other = make_appointment(lars, branch_b, days=2, service="Beard trim")
    CustomerGroup.objects.create(name="VIP", is_default=True)
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])
    AttributeDefinition.objects.create(label="Reason", key="reason", applies_to="booking", field_type="text")
    return {"past": past, "future": future, "other": other, "lars": lars}


def names(response):
    return [str(obj) for obj in response.context["object_list"]]


def test_the_client_db_menu_groups_all_listings(login, manager, db):
    html = login(manager).get(reverse("wagtailadmin_home")).content.decode()
    assert "Client DB" in html
    for model in ("customer", "appointment", "customergroup", "service", "attributedefinition", "branch", "deletionrequest"):
        assert url(model) in html


@pytest.mark.parametrize("model", ["customer", "appointment", "customergroup", "service", "attributedefinition", "branch", "deletionrequest"])
def test_listing_renders_for_a_manager(login, manager, data, model):
    response = login(manager).get(url(model))
    assert response.status_code == 200


def test_appointment_listing_is_scoped_filtered_searched_and_ordered(login, manager, staff_a, data, branch_b):
    client = login(manager)
    assert len(client.get(url("appointment"), {"period": "all"}).context["object_list"]) == 3
    assert [a.service.name for a in client.get(url("appointment"), {"period": "all", "status": "completed"}).context["object_list"]] == ["Colour"]
    assert [a.service.name for a in client.get(url("appointment"), {"branch": branch_b.pk}).context["object_list"]] == ["Beard trim"]
    assert [a.service.name for a in client.get(url("appointment"), {"q": "beard"}).context["object_list"]] == ["Beard trim"]
    ordered = [a.service.name for a in client.get(url("appointment"), {"period": "all", "ordering": "start"}).context["object_list"]]
    assert ordered == ["Colour", "Beard trim", "Cut"]
    staff = login(staff_a)
    assert {a.service.name for a in staff.get(url("appointment"), {"period": "all"}).context["object_list"]} == {"Colour", "Cut"}
    assert staff.get(url("appointment", "edit", data["other"].pk)).status_code == 404
    assert staff.get(url("appointment", "inspect", data["other"].pk)).status_code == 404


def test_appointment_listing_starts_with_today_and_later_from_the_next_one(login, manager, staff_a, data, branch_a):
    anna = data["future"].customer
    this_morning = make_appointment(anna, branch_a, days=0, service="Early")
    this_morning.start = timezone.localtime().replace(hour=0, minute=1, second=0, microsecond=0)
    this_morning.end = this_morning.start + datetime.timedelta(minutes=30)
    this_morning.save()
    client = login(manager)
    response = client.get(url("appointment"))
    assert [a.service.name for a in response.context["object_list"]] == ["Early", "Beard trim", "Cut"]
    assert not response.context["is_filtering"]
    past = client.get(url("appointment"), {"period": "past"})
    assert [a.service.name for a in past.context["object_list"]] == ["Colour"] and past.context["is_filtering"]
    everything = [a.service.name for a in client.get(url("appointment"), {"period": "all"}).context["object_list"]]
    assert everything == ["Cut", "Beard trim", "Early", "Colour"]  # newest first
    asked = [a.service.name for a in client.get(url("appointment"), {"ordering": "-start"}).context["object_list"]]
    assert asked == ["Cut", "Beard trim", "Early"]
    assert [a.service.name for a in login(staff_a).get(url("appointment")).context["object_list"]] == ["Early", "Cut"]


def test_the_service_filter_offers_the_services_of_the_viewers_branches(login, manager, staff_a, data):
    def offered(user):
        filters = login(user).get(url("appointment")).context["filters"]
        return sorted(service.name for service in filters.form.fields["service"].queryset)

    assert offered(manager) == ["Beard trim", "Colour", "Cut"]
    assert offered(staff_a) == ["Colour", "Cut"]


def test_appointment_inspect_shows_booking_attributes(login, manager, data):
    data["future"].attributes = {"reason": "Wedding"}
    data["future"].save()
    fields = login(manager).get(url("appointment", "inspect", data["future"].pk)).context["fields"]
    assert {"label": "Reason", "value": "Wedding", "component": None} in fields


def test_appointment_form_offers_only_visible_customers_and_own_branches(login, staff_a, data, branch_a):
    form = login(staff_a).get(url("appointment", "add")).context["form"]
    assert data["lars"] not in form.fields["customer"].queryset
    assert list(form.fields["branch"].queryset) == [branch_a]
    response = login(staff_a).post(url("appointment", "add"), {"customer": data["lars"].pk, "branch": branch_a.pk, "service": make_service("x", branch_a).pk})
    assert "customer" in response.context["form"].errors


def test_group_attribute_and_branch_listings_search_and_filter(login, manager, data, branch_a):
    client = login(manager)
    assert names(client.get(url("customergroup"), {"q": "vi"})) == ["VIP"]
    assert names(client.get(url("attributedefinition"), {"applies_to": "booking"})) == ["Reason"]
    assert names(client.get(url("attributedefinition"), {"q": "hair"})) == ["Hair"]
    assert names(client.get(url("branch"), {"q": "alpha"})) == ["Alpha Salon"]
    Branch.objects.filter(pk=branch_a.pk).update(is_active=False)
    assert names(client.get(url("branch"), {"is_active": "false"})) == ["Alpha Salon"]


def test_branch_staff_see_only_their_branches(login, staff_a, branch_b, data):
    assert login(staff_a).get(url("branch", "edit", branch_b.pk)).status_code in (302, 404)


@pytest.mark.parametrize("language, words", [("de", ["Kunden", "Buchungen", "Erstellt am"]), ("fr", ["Clients", "Réservations", "Créé le"])])
def test_the_admin_speaks_german_and_french(login, manager, data, language, words):
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(manager)
    profile.preferred_language = language
    profile.save()
    html = login(manager).get(url("customer")).content.decode()
    for word in words:
        assert word in html


def test_the_customer_page_heads_its_fields_as_the_language_writes_them(login, manager, data):
    """"E-Mail", not "E-mail": a field's name begins with a capital, the rest as translated."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(manager)
    profile.preferred_language = "de"
    profile.save()
    customer = data["lars"]
    customer.email = "lars@example.com"
    customer.save()
    html = login(manager).get(reverse("wagtailsnippets_wagtail_clientdb_customer:inspect", args=(customer.pk,))).content.decode()
    assert ">E-Mail<" in html.replace("\n", "").replace(" ", "") and ">E-mail<" not in html.replace("\n", "").replace(" ", "")


def test_an_empty_deletion_queue_says_so_in_plain_words(login, manager, db):
    html = login(manager).get(url("deletionrequest")).content.decode()
    assert "No customers are waiting to be deleted." in html
    assert "to display" not in html


def test_appointment_statuses_have_their_own_colours(login, manager, data, branch_a):
    data["future"].status = "cancelled"
    data["future"].save()
    html = login(manager).get(url("appointment"), {"period": "all"}).content.decode()
    assert "clientdb-status--cancelled" in html and "clientdb-status--completed" in html
    assert "wagtail_clientdb/css/admin.css" in html
    from django.contrib.staticfiles import finders

    css = open(finders.find("wagtail_clientdb/css/admin.css")).read()
    for status in ("booked", "completed", "cancelled", "no_show"):
        assert f".clientdb-status--{status}" in css


def test_the_phone_region_is_chosen_by_country_name_in_the_admins_language(login, make_user):
    from django.utils import translation

    from wagtail_clientdb.contact import phone_region_choices

    with translation.override("de"):
        german = dict(phone_region_choices())
        order = [code for code, _label in phone_region_choices()]
    assert german["DE"] == "Deutschland (+49)" and german["AT"] == "Österreich (+43)"
    assert order.index("AT") < order.index("PE")  # "Österreich" among the O's, not after "Z"
    with translation.override("fr"):
        assert dict(phone_region_choices())["DE"] == "Allemagne (+49)"
    settings_url = reverse("wagtailsettings:edit", args=("wagtail_clientdb", "clientdbsettings"))
    response = login(make_user("owner", is_superuser=True)).get(settings_url, follow=True)
    assert response.status_code == 200 and "Germany (+49)" in response.content.decode()


@pytest.mark.parametrize("model", ["customer", "appointment"])
def test_header_buttons_keep_their_order_in_every_language(login, manager, model, db):
    from wagtail.users.models import UserProfile

    client = login(manager)
    orders = {}
    for language in ("en", "de", "fr"):
        profile = UserProfile.get_for_user(manager)
        profile.preferred_language = language
        profile.save()
        buttons = client.get(url(model)).context["view"].get_header_buttons()
        orders[language] = [button.url or button.icon_name for button in buttons]
    assert orders["en"] == orders["de"] == orders["fr"]
    assert orders["en"][0] == url(model, "add")


def test_the_export_is_a_labelled_button_not_hidden_behind_dots(login, manager, db):
    response = login(manager).get(url("customer"))
    html, view = response.content.decode(), response.context["view"]
    view_buttons = view.get_header_buttons()
    export_button = next(button for button in view_buttons if str(button.label) == "Export")
    assert [str(button.label) for button in sorted(export_button.dropdown_buttons)] == [
        "Download XLSX", "Download CSV (separated by commas)", "Download CSV (separated by semicolons)"
    ]
    assert "Download XLSX" in html and "?export=xlsx" in html
    # Nothing of the downloads is left in the unlabelled "…" menu.
    assert not any("export=" in (button.url or "") for button in view.get_header_more_buttons())
