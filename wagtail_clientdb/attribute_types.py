"""The attribute-type registry: one place that knows, for each type of custom attribute,
its form field, how a value is checked, how it is stored as JSON and how it is shown.

Admin forms, import, the API and the booking form all go through :func:`clean_value`
(typed input) or :func:`parse_text` (text from a file or a request), so a value is
validated the same way wherever it enters. Values are stored in a stable typed form:
text as strings, booleans as ``true``/``false``, integers as numbers, decimals as strings
(never floats), dates as ISO ``YYYY-MM-DD``, choices as the option text.
"""

import datetime
import decimal
import math

import regex
from django import forms
from django.core.exceptions import ValidationError
from django.utils import formats
from django.utils.dateparse import parse_date
from django.utils.translation import gettext_lazy as _
from wagtail.admin.widgets import AdminDateInput

from . import cell_values, times
from .contact import normalise_text
from .models import AttributeType

#: Longest value a regular expression is run against, and how long it may take.
REGEX_MAX_INPUT = 2000
REGEX_TIMEOUT_SECONDS = 0.1
TEXT_MAX_LENGTH = 255
TEXTAREA_MAX_LENGTH = 10_000


def compile_pattern(pattern):
    return regex.compile(pattern)


#: Inputs that make catastrophic backtracking show up within the timeout.
_PROBES = [c * 64 + tail for c in "a1 _-.@A\t" for tail in ("", "!", "\x00")] + ["ab" * 32 + "!", "a1" * 32 + "!"]


def check_pattern(pattern):
    """Refuse a regular expression that does not compile or is too slow on awkward input."""
    try:
        compiled = compile_pattern(pattern)
    except regex.error as error:
        raise ValidationError(_("This is not a valid regular expression: %(error)s"), params={"error": error})
    for probe in _PROBES:
        try:
            compiled.fullmatch(probe, timeout=REGEX_TIMEOUT_SECONDS)
        except TimeoutError:
            raise ValidationError(
                _("This regular expression takes too long on some inputs; please simplify it."),
                code="slow_regex",
            )


def _check_regex(definition, text):
    if not definition.regex or text == "":
        return
    message = definition.regex_error_message or _("Enter a value in the expected format.")
    if len(text) > REGEX_MAX_INPUT:
        raise ValidationError(message, code="regex")
    try:
        matched = compile_pattern(definition.regex).fullmatch(text, timeout=REGEX_TIMEOUT_SECONDS)
    except (TimeoutError, regex.error):
        matched = None
    if not matched:
        raise ValidationError(message, code="regex")


class BaseType:
    form_field_class = forms.CharField

    def form_field(self, definition, required):
        return self.form_field_class(
            label=definition.label, help_text=definition.help_text, required=required, **self.field_kwargs(definition)
        )

    def field_kwargs(self, definition):
        return {}

    def to_json(self, definition, value):
        """A cleaned Python value → its stored JSON form (``None`` for "no value")."""
        return None if value in (None, "") else value

    def from_json(self, definition, stored):
        """The stored value as the form field's initial value."""
        return stored

    def to_python(self, definition, stored):
        """The stored value as a typed Python value (export, API)."""
        return self.from_json(definition, stored)

    def parse_text(self, definition, text):
        """Text (a spreadsheet cell, an API string) → cleaned Python value."""
        return self.form_field(definition, required=False).clean(text)

    def display(self, definition, stored):
        return "" if stored is None else str(stored)


class TextType(BaseType):
    max_length = TEXT_MAX_LENGTH
    widget = forms.TextInput

    def field_kwargs(self, definition):
        return {"max_length": self.max_length, "widget": self.widget}

    def form_field(self, definition, required):
        field = super().form_field(definition, required)
        field.validators.append(lambda value: _check_regex(definition, value))
        return field

    def to_json(self, definition, value):
        # Stored in NFC like names and notes, so that "Zoë" typed two ways is one value.
        return normalise_text(value) or None


class TextareaType(TextType):
    max_length = TEXTAREA_MAX_LENGTH
    widget = forms.Textarea


class BooleanType(BaseType):
    """Yes/no as a choice, so that "required" means "answered" and "no" is a real answer."""

    def form_field(self, definition, required):
        return forms.TypedChoiceField(
            label=definition.label,
            help_text=definition.help_text,
            required=required,
            choices=[("", "—"), ("true", _("Yes")), ("false", _("No"))],
            coerce=lambda value: value == "true",
            empty_value=None,
        )

    def from_json(self, definition, stored):
        return None if stored is None else ("true" if stored else "false")

    def to_python(self, definition, stored):
        return stored

    def parse_text(self, definition, text):
        if isinstance(text, bool):
            return text
        word = str(text if text is not None else "").strip()
        if word == "":
            return None
        value = cell_values.read_yes_no(word)
        if value is not None:
            return value
        raise ValidationError(_("Enter yes or no (or 1 or 0)."), code="invalid_boolean")

    def display(self, definition, stored):
        if stored is None:
            return ""
        return str(_("yes") if stored else _("no"))


class IntegerType(BaseType):
    form_field_class = forms.IntegerField

    def field_kwargs(self, definition):
        return {"min_value": -(2**53), "max_value": 2**53}

    def parse_text(self, definition, text):
        if isinstance(text, float) and text.is_integer():
            text = int(text)
        return super().parse_text(definition, text)

    def display(self, definition, stored):
        return "" if stored is None else formats.number_format(stored)


class DecimalType(BaseType):
    form_field_class = forms.DecimalField

    def field_kwargs(self, definition):
        return {"max_digits": 20, "decimal_places": 6}

    def to_json(self, definition, value):
        if value is None:
            return None
        return format(value.normalize(), "f")

    def from_json(self, definition, stored):
        return None if stored is None else decimal.Decimal(stored)

    def parse_text(self, definition, text):
        if isinstance(text, float):
            text = repr(text)
        elif isinstance(text, str) and "," in text and "." not in text:
            text = text.replace(",", ".")  # decimal comma, as German and French spreadsheets write it
        return super().parse_text(definition, text)

    def display(self, definition, stored):
        return "" if stored is None else formats.number_format(decimal.Decimal(stored))


class ChoiceType(BaseType):
    def form_field(self, definition, required):
        options = [(option, option) for option in definition.choices or []]
        return forms.ChoiceField(
            label=definition.label,
            help_text=definition.help_text,
            required=required,
            choices=[("", "—"), *options],
            error_messages={
                "invalid_choice": _("“%(value)s” is not one of the options: ") + ", ".join(definition.choices or [])
            },
        )

    def parse_text(self, definition, text):
        text = "" if text is None else str(text).strip()
        for option in definition.choices or []:
            if option.casefold() == text.casefold():
                return option
        return super().parse_text(definition, text)


class DateType(BaseType):
    form_field_class = forms.DateField

    def field_kwargs(self, definition):
        return {"widget": AdminDateInput}

    def to_json(self, definition, value):
        return None if value is None else value.isoformat()

    def from_json(self, definition, stored):
        return None if stored is None else parse_date(stored)

    def parse_text(self, definition, text):
        if isinstance(text, datetime.datetime):
            return text.date()
        if isinstance(text, datetime.date):
            return text
        text = "" if text is None else str(text).strip()
        if not text:
            return None
        value = cell_values.read_date(text, ("%Y-%m-%d", "%d.%m.%Y"))
        if value is not None:
            return value
        raise ValidationError(
            _("“%(value)s” is not a valid date. Write dates as YYYY-MM-DD or DD.MM.YYYY."),
            code="invalid_date",
            params={"value": text},
        )

    def display(self, definition, stored):
        return "" if stored is None else times.day(parse_date(stored))


TYPES = {
    AttributeType.TEXT: TextType(),
    AttributeType.TEXTAREA: TextareaType(),
    AttributeType.BOOLEAN: BooleanType(),
    AttributeType.INTEGER: IntegerType(),
    AttributeType.DECIMAL: DecimalType(),
    AttributeType.CHOICE: ChoiceType(),
    AttributeType.DATE: DateType(),
}


def type_of(definition):
    return TYPES[definition.field_type]


def form_field(definition, *, required=None):
    return type_of(definition).form_field(definition, definition.required if required is None else required)


def initial_value(definition, stored):
    return type_of(definition).from_json(definition, stored)


def to_json(definition, value):
    return type_of(definition).to_json(definition, value)


#: A value given as a list or an object (JSON) where an attribute holds one.
ONE_VALUE = _("Give one value, not a list or an object.")
#: NaN or infinity (JSON allows them as an extension).
NOT_A_NUMBER = _("Give a number, not %(value)s.")


def check_one_value(value):
    """Refuse what no attribute and no cell holds: a list, an object, a number that is none."""
    if isinstance(value, (list, tuple, dict, set)):
        raise ValidationError(ONE_VALUE, code="not_one_value")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(NOT_A_NUMBER, params={"value": value}, code="not_a_number")


def parse_text(definition, text, *, required=False):
    """Check a value given as text (import, API); returns its JSON form or raises ValidationError.
    A client's true or false is a value of a yes/no attribute only (stored as "1" in a text one)."""
    check_one_value(text)
    if isinstance(text, bool) and definition.field_type != AttributeType.BOOLEAN:
        raise ValidationError(_("Give a value of this attribute's type, not true or false."), code="not_yes_no")
    handler = type_of(definition)
    stored = handler.to_json(definition, handler.parse_text(definition, text))
    if stored is None and required:
        raise ValidationError(_("This field is required."), code="required")
    return stored


def to_python(definition, stored):
    return type_of(definition).to_python(definition, stored)


def display(definition, stored):
    return type_of(definition).display(definition, stored)
