import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb.contact import format_phone, normalise_email, parse_phone
from wagtail_clientdb.models import Appointment, Customer, CustomerGroup


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+49 170 1234567", "+491701234567"),
        ("0170 1234567", "+491701234567"),
        ("0170/123 45 67", "+491701234567"),
        ("(0170) 123-4567", "+491701234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0049 170 1234567", "+491701234567"),
    ],
)
def test_phone_numbers_in_common_formats_become_e164(raw, expected):
    assert parse_phone(raw, "DE").e164 == expected


@pytest.mark.parametrize("raw", ["12", "call me", "+49 170", "0000000000000000"])
def test_unparseable_phone_keeps_the_raw_input(raw):
    parsed = parse_phone(raw, "DE")
    assert parsed.e164 == ""
    assert parsed.raw == raw
    assert not parsed.is_valid


def test_email_is_trimmed_and_lower_cased():
    assert normalise_email("  Anna.Schmidt@Example.COM ") == "anna.schmidt@example.com"
    # Full-width characters (e.g. from a Japanese keyboard) are folded by NFKC.
    assert normalise_email("ａｎｎａ@example.com") == "anna@example.com"


def test_customer_save_normalises_contact(db):
    customer = make_customer(first_name="Anna", email=" Anna@Example.com", phone_raw="0170 1234567")
    customer.refresh_from_db()
    assert customer.email == "anna@example.com"
    assert customer.phone == "+491701234567"
    assert customer.phone_raw == "0170 1234567"
    assert customer.phone_display == format_phone("+491701234567") == "+49 170 1234567"


def test_customer_with_unparseable_phone_is_stored_raw_and_flagged(db):
    customer = make_customer(first_name="Anna", phone_raw="ask at desk")
    customer.refresh_from_db()
    assert customer.phone == ""
    assert customer.phone_raw == "ask at desk"
    assert not customer.phone_is_valid


def test_phone_region_comes_from_the_settings(db, settings_model):
    settings_model.default_phone_region = "GB"
    settings_model.save()
    customer = make_customer(first_name="Ann", phone_raw="020 7946 0958")
    assert customer.phone == "+442079460958"


def test_only_one_default_group(db):
    CustomerGroup.objects.create(name="Online", is_default=True)
    CustomerGroup.objects.create(name="VIP")
    second = CustomerGroup(name="Walk-in", is_default=True)
    with pytest.raises(ValidationError) as error:
        second.full_clean()
    assert "already the default group" in str(error.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        second.save()
    assert CustomerGroup.objects.filter(is_default=True).count() == 1


def test_external_id_is_unique_when_set(db):
    make_customer(first_name="A", external_id="K-1")
    make_customer(first_name="B")
    make_customer(first_name="C")  # several customers without an external id are fine
    duplicate = Customer(first_name="D", external_id="K-1")
    with pytest.raises(ValidationError) as error:
        duplicate.full_clean()
    assert "already has this external ID" in str(error.value)
    with pytest.raises(IntegrityError), transaction.atomic():
        duplicate.save()


def test_local_customer_cannot_be_shared_with_all_branches(db, branch_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        make_customer(first_name="A", home_branch=branch_a, shared_with_all_branches=True)


def test_appointment_must_end_after_start(db, branch_a):
    customer = make_customer(first_name="A")
    appointment = make_appointment(customer, branch_a)
    appointment.end = appointment.start - datetime.timedelta(minutes=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        appointment.save()


def test_customer_with_appointments_cannot_be_deleted_directly(db, branch_a):
    from django.db.models import ProtectedError

    customer = make_customer(first_name="A")
    make_appointment(customer, branch_a, days=-3)
    with pytest.raises(ProtectedError):
        customer.delete()
    assert Appointment.objects.filter(customer=customer).exists()


def test_upcoming_appointments(db, branch_a):
    customer = make_customer(first_name="A")
    future = make_appointment(customer, branch_a, days=2)
    make_appointment(customer, branch_a, days=-2)
    make_appointment(customer, branch_a, days=3, status="cancelled")
    assert list(Appointment.objects.upcoming()) == [future]


def test_str_falls_back_to_email_and_phone(db):
    assert str(make_customer(email="x@example.com")) == "x@example.com"
    assert str(make_customer(phone_raw="+49 170 1234567")) == "+49 170 1234567"


def test_bulk_update_writes_every_field_type(db, branch_a):
    from wagtail_clientdb import bulk

    first = make_customer(first_name="A", attributes={"x": 1}, shared_with_all_branches=True)
    second = make_customer(first_name="B", home_branch=branch_a, birthday=datetime.date(1990, 1, 1))
    first.first_name, first.attributes, first.birthday, first.marketing_consent = "Ä'; drop", {"x": [1, "ü"]}, datetime.date(2000, 2, 29), True
    second.first_name, second.attributes, second.birthday, second.home_branch = "B2", {}, None, None
    bulk.bulk_update(Customer, [first, second], ["first_name", "attributes", "birthday", "marketing_consent", "home_branch"])
    first.refresh_from_db(), second.refresh_from_db()
    assert (first.first_name, first.attributes, first.birthday, first.marketing_consent) == ("Ä'; drop", {"x": [1, "ü"]}, datetime.date(2000, 2, 29), True)
    assert (second.first_name, second.attributes, second.birthday, second.home_branch) == ("B2", {}, None, None)


def test_bulk_insert_writes_every_field_type(db, branch_a, admin_user):
    """Values sent as they are (numbers, dates, aware times, nothing) and those Django prepares
    (a naive time, JSON) are stored alike."""
    import warnings

    from django.utils import timezone

    from wagtail_clientdb import bulk

    archived_at = timezone.now().replace(microsecond=0)
    first = Customer(
        first_name="Ä'; drop", attributes={"x": [1, "ü"]}, birthday=datetime.date(2000, 2, 29), home_branch=branch_a,
        archived_at=archived_at, archived_by=admin_user, bookings_total=3, version=2,
    )
    second = Customer(first_name="B", archived_at=datetime.datetime(2026, 1, 2, 3, 4, 5), visits_total=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the naive time, made aware as Django does
        bulk.insert(Customer, [first, second])
    first, second = Customer.objects.get(pk=first.pk), Customer.objects.get(pk=second.pk)
    assert (first.first_name, first.attributes, first.birthday, first.home_branch, first.archived_at, first.archived_by) == (
        "Ä'; drop", {"x": [1, "ü"]}, datetime.date(2000, 2, 29), branch_a, archived_at, admin_user
    )
    assert (first.bookings_total, first.visits_total, first.version) == (3, 0, 2)
    assert (second.birthday, second.attributes, second.visits_total) == (None, {}, 1)
    assert second.archived_at == timezone.make_aware(datetime.datetime(2026, 1, 2, 3, 4, 5))
    assert first.created_at is not None and first.updated_at is not None


def test_rows_inserted_in_bulk_keep_their_own_json_values(db):
    """Rows sharing one value (written once) and rows with their own, in any order."""
    from wagtail_clientdb import audit, bulk
    from wagtail_clientdb.models import ClientDBLogEntry

    shared = {"job": 7}
    rows = [(1, "a", shared), (2, "b", {"fields": ["email"]}), (3, "c", shared), (4, "d", {"job": 7, "x": "ü"})]
    audit.log_rows(Customer, "wagtail.edit", rows)
    assert sorted(ClientDBLogEntry.objects.values_list("object_id", "data")) == [
        ("1", {"job": 7}), ("2", {"fields": ["email"]}), ("3", {"job": 7}), ("4", {"job": 7, "x": "ü"})
    ]
    assert bulk._bigint_array([3, 1, 2]) == "{3,1,2}"
    with pytest.raises(ValueError):
        bulk._bigint_array(["1); drop"])


def test_links_of_many_customers_are_read_by_customer(db, branch_a, branch_b):
    """What an import reads of a chunk's customers: their tags, groups and branches."""
    from wagtail_clientdb import bulk
    from wagtail_clientdb.models import CustomerGroup, TaggedCustomer

    vip = CustomerGroup.objects.create(name="VIP")
    anna, ben, carl = (make_customer(first_name=name) for name in ("Anna", "Ben", "Carl"))
    anna.tags.add("regular", "blonde")
    ben.tags.add("regular")
    anna.groups.add(vip)
    carl.branches.add(branch_a, branch_b)
    tags = bulk.rows_with_values(TaggedCustomer, "content_object", [anna.pk, carl.pk], ("content_object", "tag"))
    groups = bulk.rows_with_values(Customer.groups.through, "customer", [anna.pk, ben.pk], ("customer", "customergroup"))
    branches = bulk.rows_with_values(Customer.branches.through, "customer", [carl.pk], ("customer", "branch"))
    assert sorted(pk for pk, _tag in tags) == [anna.pk, anna.pk]
    assert groups == [(anna.pk, vip.pk)]
    assert sorted(branches) == [(carl.pk, branch_a.pk), (carl.pk, branch_b.pk)]


def test_instances_made_in_bulk_are_new_instances_with_their_own_defaults(db):
    from django.db.models.signals import post_init

    from wagtail_clientdb import bulk

    make = bulk.instance_maker(Customer, source="import")
    first, second = make(), make()
    first.attributes["hair"] = "curly"
    assert second.attributes == {} and first.attributes is not second.attributes
    assert (second.source, second.pk, second.version, second._state.adding) == ("import", None, 1, True)
    first.first_name, second.first_name = "A", "B"
    first.save(), second.save()
    assert sorted(Customer.objects.values_list("first_name", "source", "attributes")) == [
        ("A", "import", {"hair": "curly"}), ("B", "import", {})
    ]

    initialised = []

    def count(sender, instance, **kwargs):
        initialised.append(instance)

    post_init.connect(count, sender=Customer)
    try:
        made = bulk.instance_maker(Customer, source="api")()
    finally:
        post_init.disconnect(count, sender=Customer)
    assert initialised[-1] is made and made.source == "api"
