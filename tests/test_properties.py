"""Property-based tests (hypothesis): the attribute registry keeps every value it accepts, the
normalisation of text, email and phone is idempotent, names listed in a cell read back as
written, and an export re-imports unchanged whatever the customers hold, in every admin
language."""

import datetime
import decimal
import json
import unicodedata

import phonenumbers
import pytest
from django.utils import translation
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.conftest import make_customer
from tests.test_export_round_trip import export, preview, speak
from wagtail_clientdb import attribute_types, cell_values, contact
from wagtail_clientdb.contact import format_phone, normalise_email, normalise_text, parse_phone, spaced_international
from wagtail_clientdb.models import AttributeDefinition, AttributeType, Customer

#: Text people type: any printable character (no NUL, no lone surrogates), not only blanks or
#: invisible characters (a text of those is stored empty: contact.normalise_text).
typed_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=80
).filter(lambda text: not all(map(contact.is_invisible, text)))

OPTIONS = ["fine", "thick", "Ölig", "très fin"]


def definition(field_type, **extra):
    return AttributeDefinition(label="Attr", key="attr", field_type=field_type, **extra)


VALUES = {
    AttributeType.TEXT: typed_text.map(str.strip),
    AttributeType.TEXTAREA: typed_text.map(str.strip),
    AttributeType.BOOLEAN: st.booleans(),
    AttributeType.INTEGER: st.integers(min_value=-(2**53), max_value=2**53),
    AttributeType.DECIMAL: st.decimals(min_value=-10**13, max_value=10**13, places=6, allow_nan=False, allow_infinity=False),
    AttributeType.CHOICE: st.sampled_from(OPTIONS),
    AttributeType.DATE: st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2100, 12, 31)),
}


@pytest.mark.parametrize("field_type", list(VALUES))
@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_the_attribute_registry_keeps_every_value_it_accepts(field_type, language):
    attr = definition(field_type, choices=OPTIONS if field_type == AttributeType.CHOICE else [])

    @given(VALUES[field_type])
    @settings(max_examples=60, deadline=None)
    def check(value):
        with translation.override(language):
            stored = attribute_types.to_json(attr, value)
            # Stored as JSON and read back: the same value, of its type.
            assert json.loads(json.dumps(stored)) == stored
            loaded = attribute_types.to_python(attr, stored)
            # Text is kept in NFC, as every text of the app.
            assert loaded == (unicodedata.normalize("NFC", value) if isinstance(value, str) else value)
            # Through the admin form: shown, sent back, stored the same.
            field = attribute_types.form_field(attr, required=False)
            shown = field.widget.format_value(attribute_types.initial_value(attr, stored))
            if isinstance(shown, list):  # a select shows its chosen value
                (shown,) = shown
            assert attribute_types.to_json(attr, field.clean(shown)) == stored
            # Rendered for people: readable, and (but for dates, which follow the locale) read back
            # as the same value from a spreadsheet cell or the API.
            rendered = attribute_types.display(attr, stored)
            assert rendered != ""
            if field_type in (AttributeType.INTEGER, AttributeType.DECIMAL):
                # French groups thousands with (narrow) no-break spaces, which a cell may not carry.
                rendered = rendered.replace("\u202f", "").replace("\xa0", "")
            if field_type != AttributeType.DATE:
                assert attribute_types.parse_text(attr, rendered) == stored

    check()


@given(st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_text_normalisation_is_nfc_and_idempotent(text):
    once = normalise_text(text)
    assert normalise_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


@given(st.emails() | st.text(max_size=40))
@settings(max_examples=300, deadline=None)
def test_email_normalisation_is_idempotent_and_case_blind(text):
    once = normalise_email(text)
    assert normalise_email(once) == once
    assert normalise_email(text.upper()) == normalise_email(text.lower()) or not text.isascii()


REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)


@st.composite
def phone_numbers(draw):
    region = draw(st.sampled_from(REGIONS))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE]))
    number = phonenumbers.example_number_for_type(region, kind)
    if number is None:
        number = phonenumbers.example_number(region)
    return region, number


@given(phone_numbers(), st.sampled_from(["DE", "FR", "US", "GB", ""]))
@settings(max_examples=300, deadline=None)
def test_a_phone_in_any_format_reads_as_one_number(example, default_region):
    region, number = example
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    # Idempotent: the stored form reads as itself, whatever the company's phone region.
    assert parse_phone(e164, default_region).e164 == e164
    assert parse_phone(international, default_region).e164 == e164
    # Typed nationally, it needs its own region.
    assert parse_phone(national, region).e164 == e164
    # What the admin shows and what exports write read back as the same number.
    assert parse_phone(format_phone(e164), default_region).e164 == e164
    assert parse_phone(spaced_international(e164), default_region).e164 == e164


#: Names as they are stored: stripped, not empty; any character but NUL (line breaks too).
listed_names = st.lists(
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=20)
    .map(str.strip)
    .filter(bool),
    max_size=5,
)


@given(listed_names)
@settings(max_examples=500, deadline=None)
def test_names_listed_in_a_cell_read_back_as_written(names):
    assert cell_values.split_names(cell_values.join_names(names)) == names


# --- Export → import -------------------------------------------------------------------------


names = st.text(st.characters(whitelist_categories=("Lu", "Ll"), min_codepoint=65, max_codepoint=0x24F), min_size=1, max_size=20)
people = st.lists(
    st.fixed_dictionaries(
        {
            "first_name": names,
            "last_name": names,
            "notes": st.one_of(st.just(""), typed_text.map(str.strip)),
            "marketing_consent": st.booleans(),
            "birthday": st.one_of(st.none(), st.dates(min_value=datetime.date(1920, 1, 1), max_value=datetime.date(2015, 12, 31))),
            "hair": st.one_of(st.none(), st.sampled_from(OPTIONS)),
            "visits": st.one_of(st.none(), st.integers(min_value=0, max_value=10**6)),
            "spend": st.one_of(st.none(), st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False)),
            "quiet": st.one_of(st.none(), st.booleans()),
        }
    ),
    min_size=1,
    max_size=6,
)


@pytest.mark.parametrize("language", ["en", "de", "fr"])
@pytest.mark.parametrize("export_format", ["csv", "xlsx"])
@pytest.mark.django_db
def test_an_export_always_reimports_unchanged(login, manager, branch_a, language, export_format):
    AttributeDefinition.objects.create(label="Hair type", key="hair", field_type="choice", choices=OPTIONS, sort_order=1)
    AttributeDefinition.objects.create(label="Visits", key="visits", field_type="integer", sort_order=2)
    AttributeDefinition.objects.create(label="Spend", key="spend", field_type="decimal", sort_order=3)
    AttributeDefinition.objects.create(label="Quiet", key="quiet", field_type="boolean", sort_order=4)
    speak(manager, language)
    client = login(manager)

    @given(people)
    @settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    def check(generated):
        Customer.objects.all().delete()
        for number, person in enumerate(generated):
            stored = {
                "hair": person["hair"], "visits": person["visits"], "quiet": person["quiet"],
                "spend": None if person["spend"] is None else format(decimal.Decimal(person["spend"]).normalize(), "f"),
            }
            make_customer(
                first_name=person["first_name"], last_name=person["last_name"], notes=person["notes"],
                email=f"person{number}@example.com", phone_raw=f"+49 170 555{number:04d}",
                marketing_consent=person["marketing_consent"], birthday=person["birthday"],
                attributes={key: value for key, value in stored.items() if value is not None},
                shared_with_all_branches=number % 2 == 0, **({} if number % 2 == 0 else {"branches": [branch_a]}),
            )
        job = preview(client, f"export.{export_format}", export(client, export_format))
        assert job.counts == {"new": 0, "updated": 0, "unchanged": len(generated), "invalid": 0}, job.invalid_rows

    check()
