"""Custom attributes: types, validation, forms, definition changes, filters and display."""

import datetime
import decimal
import time

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from tests.conftest import customer_url, make_appointment, make_customer, post_edit
from wagtail_clientdb import attribute_types, overrides
from wagtail_clientdb.models import Appointment, AttributeDefinition, Customer, CustomerOverride


def definition(key, field_type, **extra):
    return AttributeDefinition.objects.create(label=extra.pop("label", key.replace("_", " ").title()), key=key, field_type=field_type, **extra)


def definition_url(name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_attributedefinition:{name}", args=args)


def customer_post(customer, **attrs):
    data = {"first_name": customer.first_name, "last_name": customer.last_name, "email": customer.email, "sharing": "specific"}
    data.update({f"attr__{key}": value for key, value in attrs.items()})
    return data


# --- The type registry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field_type, extra, text, stored",
    [
        ("text", {}, "  hello ", "hello"),
        ("textarea", {}, "line 1\nline 2", "line 1\nline 2"),
        ("boolean", {}, "Ja", True),
        ("boolean", {}, "0", False),
        ("boolean", {}, "", None),
        ("integer", {}, "42", 42),
        ("integer", {}, 7.0, 7),
        ("integer", {}, "-5", -5),
        ("decimal", {}, "1,50", "1.5"),
        ("decimal", {}, "12.3400", "12.34"),
        ("decimal", {}, 0.1, "0.1"),
        ("choice", {"choices": ["fine", "thick"]}, "THICK", "thick"),
        ("date", {}, "2024-02-29", "2024-02-29"),
        ("date", {}, "29.02.2024", "2024-02-29"),
        ("date", {}, datetime.datetime(2024, 2, 29, 0, 0), "2024-02-29"),
        # A date cell shown with its time, as a spreadsheet writes it to CSV.
        ("date", {}, "29.02.2024 00:00", "2024-02-29"),
        ("date", {}, "2024-02-29 00:00:00", "2024-02-29"),
        ("date", {}, "2024-02-29T00:00:00", "2024-02-29"),
    ],
)
def test_parse_text_gives_stable_typed_json(field_type, extra, text, stored):
    attribute = AttributeDefinition(key="x", label="X", field_type=field_type, **extra)
    assert attribute_types.parse_text(attribute, text) == stored


@pytest.mark.parametrize(
    "field_type, extra, text, message",
    [
        ("boolean", {}, "maybe", "yes or no"),
        ("integer", {}, "4.5", "whole number"),
        ("integer", {}, "zwölf", "whole number"),
        ("decimal", {}, "1.234,5", "number"),
        ("choice", {"choices": ["fine", "thick"]}, "curly", "not one of the options: fine, thick"),
        ("date", {}, "31.02.2024", "not a valid date"),
        ("date", {}, "2024-02-31", "not a valid date"),
        ("date", {}, "02/31/2024", "not a valid date"),
        ("date", {}, "29.02.2024 14:30", "not a valid date. Write dates as YYYY-MM-DD or DD.MM.YYYY."),
        ("text", {}, "x" * 256, "at most 255"),
        ("text", {"regex": r"K-\d{4}", "regex_error_message": "Use K- and four digits."}, "K-12", "Use K- and four digits."),
    ],
)
def test_parse_text_refuses_bad_values_with_a_clear_message(field_type, extra, text, message):
    attribute = AttributeDefinition(key="x", label="X", field_type=field_type, **extra)
    with pytest.raises(ValidationError) as error:
        attribute_types.parse_text(attribute, text)
    assert message in " ".join(error.value.messages)


def test_required_value_must_be_given():
    attribute = AttributeDefinition(key="x", label="X", field_type="text", required=True)
    with pytest.raises(ValidationError):
        attribute_types.parse_text(attribute, "  ", required=True)


def test_display_is_formatted_for_the_type():
    assert attribute_types.display(AttributeDefinition(field_type="boolean"), True) == "yes"
    assert attribute_types.display(AttributeDefinition(field_type="boolean"), False) == "no"
    assert attribute_types.display(AttributeDefinition(field_type="date"), "2024-02-29") == "02/29/2024"
    assert attribute_types.display(AttributeDefinition(field_type="decimal"), "1.5") == "1.5"
    assert attribute_types.to_python(AttributeDefinition(field_type="decimal"), "1.5") == decimal.Decimal("1.5")


def test_slow_regex_is_refused_when_saved():
    with pytest.raises(ValidationError) as error:
        attribute_types.check_pattern(r"^(a|aa)+$")
    assert "too long" in " ".join(error.value.messages)
    with pytest.raises(ValidationError):
        attribute_types.check_pattern(r"[unclosed")
    attribute_types.check_pattern(r"^K-\d{4,6}$")


def test_a_slow_regex_that_slipped_through_is_bounded_at_match_time():
    attribute = AttributeDefinition(key="x", label="X", field_type="text", regex=r"^(a|aa)+$", regex_error_message="Nope")
    started = time.monotonic()
    with pytest.raises(ValidationError) as error:
        attribute_types.parse_text(attribute, "a" * 80 + "!")
    assert time.monotonic() - started < 2
    assert error.value.messages == ["Nope"]


# --- Admin forms -----------------------------------------------------------------------------------------


@pytest.fixture
def all_types(db):
    return {
        "code": definition("code", "text", regex=r"K-\d{4}", regex_error_message="Customer numbers look like K-1234.", sort_order=1),
        "allergies": definition("allergies", "textarea", sort_order=2),
        "vip": definition("vip", "boolean", sort_order=3),
        "visits": definition("visits", "integer", sort_order=4),
        "credit": definition("credit", "decimal", sort_order=5),
        "hair": definition("hair", "choice", choices=["fine", "normal", "thick"], sort_order=6),
        "since": definition("since", "date", sort_order=7),
        "old": definition("old", "text", is_active=False, sort_order=8),
    }


def test_customer_form_has_a_typed_field_per_active_attribute(login, manager, all_types):
    response = login(manager).get(customer_url("add"))
    form = response.context["form"]
    names = [name for name in form.fields if name.startswith("attr__")]
    assert names == ["attr__code", "attr__allergies", "attr__vip", "attr__visits", "attr__credit", "attr__hair", "attr__since"]
    html = response.content.decode()
    assert 'name="attr__hair"' in html and html.count('name="attr__code"') == 1  # rendered once, in its tab
    assert "Attributes" in html


def test_valid_values_are_stored_as_typed_json(login, manager, all_types):
    customer = make_customer(first_name="Anna", last_name="A", email="a@example.com", shared_with_all_branches=True)
    response = post_edit(login(manager), customer, customer_post(customer, code="K-1234", allergies="nuts\nlatex", vip="true", visits="12", credit="10.50", hair="thick", since="2023-05-01"),
    )
    assert response.status_code == 302, response.context["form"].errors
    customer.refresh_from_db()
    assert customer.attributes == {
        "code": "K-1234", "allergies": "nuts\nlatex", "vip": True, "visits": 12, "credit": "10.5", "hair": "thick", "since": "2023-05-01",
    }
    form = login(manager).get(customer_url("edit", customer.pk)).context["form"]
    assert form["attr__credit"].value() == decimal.Decimal("10.5")
    assert form["attr__since"].value() == datetime.date(2023, 5, 1)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("code", "12", "Customer numbers look like K-1234."),
        ("visits", "1.5", "whole number"),
        ("credit", "abc", "number"),
        ("hair", "curly", "not one of the options"),
        ("since", "2024-02-31", "valid date"),
        ("vip", "perhaps", "valid choice"),
    ],
)
def test_invalid_values_get_the_error_and_change_nothing(login, manager, all_types, field, value, message):
    customer = make_customer(first_name="Anna", attributes={"visits": 3}, shared_with_all_branches=True)
    response = post_edit(login(manager), customer, customer_post(customer, **{field: value}))
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[f"attr__{field}"])
    customer.refresh_from_db()
    assert customer.attributes == {"visits": 3}


def test_required_attribute_is_required_and_empty_values_are_removed(login, manager, all_types):
    all_types["hair"].required = True
    all_types["hair"].save()
    customer = make_customer(first_name="Anna", attributes={"visits": 3, "hair": "fine"}, shared_with_all_branches=True)
    client = login(manager)
    response = post_edit(client, customer, customer_post(customer, hair="", visits=""))
    assert "This field is required." in response.context["form"].errors["attr__hair"]
    response = post_edit(client, customer, customer_post(customer, hair="normal", visits=""))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.attributes == {"hair": "normal"}


def test_values_of_inactive_or_unsent_attributes_are_kept(login, manager, all_types):
    customer = make_customer(first_name="Anna", attributes={"old": "legacy", "visits": 3}, shared_with_all_branches=True)
    response = post_edit(login(manager), customer, customer_post(customer, hair="fine"))
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.attributes == {"old": "legacy", "visits": 3, "hair": "fine"}


def test_branch_override_of_an_attribute(login, staff_a, staff_b, branch_a, all_types, allow_branch_edits):
    customer = make_customer(first_name="Anna", attributes={"hair": "fine", "visits": 3}, shared_with_all_branches=True)
    client = login(staff_a)
    form = client.get(customer_url("edit", customer.pk)).context["form"]
    assert form["attr__hair"].value() == "fine"
    data = {"first_name": "Anna", "last_name": "", "email": "", "attr__hair": "thick", "attr__visits": "3"}
    assert post_edit(client, customer, data).status_code == 302
    customer.refresh_from_db()
    assert customer.attributes == {"hair": "fine", "visits": 3}
    assert CustomerOverride.objects.get(customer=customer, branch=branch_a).attributes == {"hair": "thick"}
    inspect_a = client.get(customer_url("inspect", customer.pk))
    hair_row = next(f for f in inspect_a.context["fields"] if f["label"] == "Hair")
    assert (hair_row["value"], hair_row["is_local"]) == ("thick", True)
    form = client.get(customer_url("edit", customer.pk)).context["form"]
    assert dict(form.fields["reset_to_global"].choices) == {"attributes.hair": "Hair"}
    hair_b = next(f for f in login(staff_b).get(customer_url("inspect", customer.pk)).context["fields"] if f["label"] == "Hair")
    assert hair_b["value"] == "fine"


def test_appointment_form_has_the_booking_attributes(login, manager, branch_a, db):
    reason = definition("reason", "choice", applies_to="booking", choices=["cut", "colour"], required=True)
    definition("hair", "text")  # a customer attribute is not asked for bookings
    customer = make_customer(first_name="Anna", shared_with_all_branches=True)
    appointment = make_appointment(customer, branch_a)
    url = reverse("wagtailsnippets_wagtail_clientdb_appointment:edit", args=(appointment.pk,))
    client = login(manager)
    form = client.get(url).context["form"]
    assert [n for n in form.fields if n.startswith("attr__")] == ["attr__reason"]
    data = {
        "customer": customer.pk, "branch": branch_a.pk, "service": appointment.service.pk, "status": "booked",
        "start": appointment.start.strftime("%Y-%m-%d %H:%M"), "end": appointment.end.strftime("%Y-%m-%d %H:%M"),
    }
    response = client.post(url, {**data, "attr__reason": "perm"})
    assert "not one of the options" in " ".join(response.context["form"].errors["attr__reason"])
    response = client.post(url, {**data, "attr__reason": "colour"})
    assert response.status_code == 302
    assert Appointment.objects.get(pk=appointment.pk).attributes == {"reason": "colour"}
    assert reason.pk


# --- Definitions -------------------------------------------------------------------------------------------


def test_key_is_derived_from_the_label(login, manager, db):
    response = login(manager).post(definition_url("add"), {"label": "Hair type (colour)", "applies_to": "customer", "field_type": "text", "sort_order": 0, "is_active": "on"})
    assert response.status_code == 302
    assert AttributeDefinition.objects.get().key == "hair_type_colour"


def test_key_is_unique_per_kind(login, manager, db):
    definition("hair", "text")
    response = login(manager).post(definition_url("add"), {"label": "Hair", "key": "hair", "applies_to": "customer", "field_type": "text", "sort_order": 0})
    assert "already uses this key" in str(response.context["form"].errors)
    response = login(manager).post(definition_url("add"), {"label": "Hair", "key": "hair", "applies_to": "booking", "field_type": "text", "sort_order": 0})
    assert response.status_code == 302


def test_slow_or_broken_regex_is_refused_in_the_definition_form(login, manager, db):
    data = {"label": "Code", "key": "code", "applies_to": "customer", "field_type": "text", "sort_order": 0}
    response = login(manager).post(definition_url("add"), {**data, "regex": r"^(\d|\d\d)+$"})
    assert response.status_code == 200
    assert "takes too long" in str(response.context["form"].errors["regex"])
    assert not AttributeDefinition.objects.exists()


def definition_post(attribute, **changes):
    data = {
        "label": attribute.label, "key": attribute.key, "applies_to": attribute.applies_to, "field_type": attribute.field_type,
        "choices": "\n".join(attribute.choices), "sort_order": attribute.sort_order, "is_active": "on",
    }
    data.update(changes)
    return data


def test_label_can_change_but_key_is_fixed_once_values_exist(login, manager, db):
    hair = definition("hair", "choice", choices=["fine", "thick"])
    make_customer(first_name="A", attributes={"hair": "fine"})
    client = login(manager)
    form = client.get(definition_url("edit", hair.pk)).context["form"]
    assert form.fields["key"].disabled and "1 record" in str(form.fields["key"].help_text)
    response = client.post(definition_url("edit", hair.pk), definition_post(hair, label="Hair type", key="hairdo"))
    assert response.status_code == 302
    hair.refresh_from_db()
    assert (hair.label, hair.key) == ("Hair type", "hair")


def test_removing_a_choice_in_use_is_refused_with_the_count(login, manager, branch_a, db):
    hair = definition("hair", "choice", choices=["fine", "thick", "curly"])
    make_customer(first_name="A", attributes={"hair": "thick"})
    make_customer(first_name="B", attributes={"hair": "thick"})
    shared = make_customer(first_name="C", shared_with_all_branches=True)
    overrides.save_local_values(shared, branch_a, {}, attributes={"hair": "curly"})
    client = login(manager)
    response = client.post(definition_url("edit", hair.pk), definition_post(hair, choices="fine"))
    assert response.status_code == 200
    message = str(response.context["form"].errors["choices"])
    assert "“thick” (2)" in message and "“curly” (1)" in message
    hair.refresh_from_db()
    assert hair.choices == ["fine", "thick", "curly"]
    # Removing an option nobody uses, and adding one, is fine.
    response = client.post(definition_url("edit", hair.pk), definition_post(hair, choices="thick\ncurly\nwavy"))
    assert response.status_code == 302
    hair.refresh_from_db()
    assert hair.choices == ["thick", "curly", "wavy"]


def test_type_change_converts_when_every_value_converts(login, manager, db):
    visits = definition("visits", "text")
    a = make_customer(first_name="A", attributes={"visits": "12"})
    b = make_customer(first_name="B", attributes={"visits": "7"})
    response = login(manager).post(definition_url("edit", visits.pk), definition_post(visits, field_type="integer"))
    assert response.status_code == 302
    a.refresh_from_db(), b.refresh_from_db()
    assert (a.attributes, b.attributes) == ({"visits": 12}, {"visits": 7})


def test_type_change_is_refused_when_a_value_does_not_convert(login, manager, db):
    visits = definition("visits", "text")
    make_customer(first_name="A", attributes={"visits": "12"})
    make_customer(first_name="B", attributes={"visits": "a dozen"})
    response = login(manager).post(definition_url("edit", visits.pk), definition_post(visits, field_type="integer"))
    assert response.status_code == 200
    assert "1 stored value cannot be converted" in str(response.context["form"].errors["field_type"])
    visits.refresh_from_db()
    assert visits.field_type == "text"
    assert Customer.objects.get(first_name="A").attributes == {"visits": "12"}


def test_deactivating_keeps_values_and_deleting_removes_them_everywhere(login, manager, branch_a, db):
    hair = definition("hair", "text")
    customer = make_customer(first_name="A", attributes={"hair": "fine", "visits": 2}, shared_with_all_branches=True)
    overrides.save_local_values(customer, branch_a, {"notes": "local"}, attributes={"hair": "thick"})
    client = login(manager)
    client.post(definition_url("edit", hair.pk), {**definition_post(hair), "is_active": ""})
    customer.refresh_from_db()
    assert customer.attributes["hair"] == "fine"

    confirm = client.get(definition_url("delete", hair.pk))
    assert "values stored for 1 record" in confirm.content.decode() or "value stored for 1 record" in confirm.content.decode()
    client.post(definition_url("delete", hair.pk))
    assert not AttributeDefinition.objects.exists()
    customer.refresh_from_db()
    assert customer.attributes == {"visits": 2}
    assert CustomerOverride.objects.get(customer=customer).attributes == {}


# --- Listing: filters and columns -------------------------------------------------------------------------


@pytest.fixture
def attribute_people(all_types, branch_a):
    return {
        "anna": make_customer(first_name="Anna", last_name="Anna", shared_with_all_branches=True,
                              attributes={"hair": "fine", "vip": True, "visits": 12, "credit": "10.5", "since": "2020-01-15", "allergies": "Nuts and latex"}),
        "bert": make_customer(first_name="Bert", last_name="Bert", shared_with_all_branches=True,
                              attributes={"hair": "thick", "vip": False, "visits": 3, "credit": "9.75", "since": "2023-06-01"}),
        "cara": make_customer(first_name="Cara", last_name="Cara", shared_with_all_branches=True, attributes={"hair": "normal"}),
    }


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"attribute_hair": ["fine", "thick"]}, ["Anna", "Bert"]),
        ({"attribute_vip": "true"}, ["Anna"]),
        ({"attribute_vip": "false"}, ["Bert"]),
        ({"attribute_allergies": "LATEX"}, ["Anna"]),
        ({"attribute_visits_min": "4"}, ["Anna"]),
        ({"attribute_visits_max": "4"}, ["Bert"]),
        ({"attribute_credit_min": "10"}, ["Anna"]),  # 10.5 > 10 > 9.75: numbers, not text
        ({"attribute_credit_max": "9.9"}, ["Bert"]),
        ({"attribute_since_from": "2021-01-01"}, ["Bert"]),
        ({"attribute_since_to": "2021-01-01"}, ["Anna"]),
    ],
)
def test_filter_by_attribute_value(login, manager, attribute_people, params, expected):
    response = login(manager).get(customer_url("list"), params)
    assert response.context["filters"].is_valid(), response.context["filters"].errors
    assert [c.last_name for c in response.context["object_list"]] == expected


@pytest.mark.parametrize("named", [True, False], ids=["local-values-named", "local-values-subquery"])
def test_attribute_filters_use_the_values_the_branch_sees(login, manager, staff_a, branch_a, branch_b, attribute_people, named, monkeypatch):
    """A branch's local value counts where it keeps one, whichever way it goes: it adds a
    customer (Cara), takes one away (Anna), and another branch's local value changes nothing."""
    if not named:
        monkeypatch.setattr(overrides, "MAX_NAMED_LOCAL_MATCHES", 0)
    people = attribute_people
    overrides.save_local_values(people["cara"], branch_a, {}, attributes={"hair": "fine"})
    overrides.save_local_values(people["anna"], branch_a, {}, attributes={"hair": "thick", "vip": False})
    overrides.save_local_values(people["bert"], branch_a, {}, attributes={"vip": True})
    overrides.save_local_values(people["bert"], branch_b, {}, attributes={"hair": "fine"})

    def shown(client, params):
        return [c.last_name for c in client.get(customer_url("list"), params).context["object_list"]]

    client = login(staff_a)
    assert shown(client, {"attribute_hair": "fine"}) == ["Cara"]
    assert shown(client, {"attribute_hair": ["fine", "thick"]}) == ["Anna", "Bert", "Cara"]
    assert shown(client, {"attribute_vip": "true"}) == ["Bert"]
    assert shown(client, {"attribute_vip": "false"}) == ["Anna"]
    client = login(manager)
    assert shown(client, {"attribute_hair": "fine"}) == ["Anna"]
    assert shown(client, {"attribute_hair": "fine", "branch": branch_a.pk}) == ["Cara"]
    assert shown(client, {"attribute_hair": "fine", "branch": branch_b.pk}) == ["Anna", "Bert"]


def test_attribute_columns_can_be_shown(login, manager, attribute_people):
    response = login(manager).get(customer_url("list"), {"show_attributes": ["vip", "since"]})
    labels = [column.label for column in response.context["table"].columns.values()]
    assert labels[-2:] == ["Vip", "Since"]
    html = response.content.decode()
    assert "01/15/2020" in html and ">yes<" in html.replace(" ", "").replace("\n", "")
    # Columns shown are no filter: no chip, no "N matches", the listing is not "filtered".
    assert not response.context["is_filtering"] and response.context["view"].active_filters == []
    assert "matches" not in html
    filtered = login(manager).get(customer_url("list"), {"show_attributes": ["vip"], "attribute_hair": "fine"})
    assert filtered.context["is_filtering"] and len(filtered.context["view"].active_filters) == 1


def test_inspect_shows_formatted_values(login, manager, attribute_people):
    fields = login(manager).get(customer_url("inspect", attribute_people["anna"].pk)).context["fields"]
    values = {f["label"]: f["value"] for f in fields}
    assert values["Vip"] == "yes" and values["Since"] == "01/15/2020" and values["Hair"] == "fine"
