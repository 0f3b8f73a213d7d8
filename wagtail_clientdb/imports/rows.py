"""One imported row → checked customer values, with the same rules as every other entry point.

Empty cells give no value: they never clear what a customer already has. Text cells are
read in Unicode NFC, lose the apostrophe our CSV export puts before formula-like text (so
an export re-imports unchanged) and must not contain NUL characters.
"""

import datetime
from dataclasses import dataclass, field

import phonenumbers
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext_lazy as _

from .. import attribute_types, cell_values, groups, tags, times
from ..contact import HALF_A_CHARACTER_MESSAGE, has_half_a_character, normalise_email, normalise_text, parse_phone
from ..matching import IdentityKeys
from ..models import Customer
from ..spreadsheets import unneutralise_csv
from . import columns
from .reading import FormulaWithoutValue

NAME_PARTICLES = {"von", "van", "de", "der", "den", "del", "della", "di", "da", "du", "la", "le", "zu", "vom", "zur", "ten", "ter"}
NOTES_MAX_LENGTH = 10_000


@dataclass
class CheckedRow:
    """A row after checking, before it meets the database.

    ``keys``: its :class:`~wagtail_clientdb.matching.IdentityKeys`, taken from the cells even
    when the row is refused (``None`` when empty or unreadable); then either ``values`` or
    ``errors`` (target → messages).
    """

    keys: IdentityKeys
    values: "RowValues | None" = None
    errors: dict | None = None


@dataclass
class RowValues:
    """What a row says about a customer; ``None`` (or absent) means "not given"."""

    fields: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)
    groups: list | None = None
    tags: list | None = None
    #: "all", or a list of branches.
    branches: object = None
    consent: bool | None = None
    phone_unreadable: bool = False
    #: The phone number as it names a person, with its extension (:func:`~wagtail_clientdb.contact.phone_identity`).
    phone_identity: str | None = None
    #: The customer's number in this database (an export's *Record ID*): who the row is.
    record_id: int | None = None


class RowContext:
    """Lookups shared by the rows of one import: phone region, groups, branches, attributes."""

    def __init__(self, phone_region, groups, branches, attribute_definitions, *, from_a_file=True):
        self.phone_region = phone_region
        #: A file's cells may be an export's, whose leading "'" guards a formula; a client's
        #: records (the API) are read as sent.
        self.from_a_file = from_a_file
        self.country_code = str(phonenumbers.country_code_for_region(phone_region))
        self.groups = {group.name.casefold(): group for group in groups}
        self.branches = cell_values.branch_lookup(list(branches))
        self.attribute_definitions = attribute_definitions
        self._phones = {}
        self._tags = {}

    def parse_phone(self, text):
        """Phone parsing is the slowest check; matching and cleaning share one parse per number."""
        return _remembered(self._phones, text, lambda text: parse_phone(text, self.phone_region))

    def parse_tags(self, text):
        """Tag cells repeat ("regular, vip" on many rows): each is parsed once, its names
        cleaned by the tag rule (:func:`wagtail_clientdb.tags.clean_names`). Names are
        separated as in every list cell (:func:`~wagtail_clientdb.cell_values.split_names`),
        never by spaces (taggit's field splits "tea lover" in two, and an export writes that
        one tag so)."""
        return list(_remembered(self._tags, text, lambda text: tags.clean_names(_names(text))))


def _remembered(cache, key, make):
    """``make(key)``, kept in ``cache``, which is emptied when it passes 10,000 entries."""
    if key not in cache:
        if len(cache) > 10_000:
            cache.clear()
        cache[key] = make(key)
    return cache[key]


def cell_text(value, from_a_file=True):
    if value is None:
        return ""
    if isinstance(value, FormulaWithoutValue):
        raise ValidationError(
            _("The cell holds a formula (%(formula)s) without a computed value. Open the file in your spreadsheet program, save it, and import it again."),
            params={"formula": value.formula[:60]},
            code="formula",
        )
    attribute_types.check_one_value(value)
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    text = normalise_text(str(value))
    if "\x00" in text:
        raise ValidationError(_("The cell contains a NUL character."), code="nul")
    if has_half_a_character(text):
        raise ValidationError(HALF_A_CHARACTER_MESSAGE, code="half_a_character")
    return unneutralise_csv(text.strip()) if from_a_file else text.strip()


def read_record_id(value):
    """The customer's number an export wrote (a whole number; a spreadsheet may make it 12.0),
    ``None`` for anything else."""
    if isinstance(value, float):
        value = int(value) if value.is_integer() else None
    text = str(value).strip() if value is not None else ""
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 2**63 else None


def split_name(full_name):
    """"Last, First" → (First, Last); otherwise the last word is the last name, together with
    name particles before it ("Ludwig van Beethoven" → "Ludwig", "van Beethoven"); a single
    word is a first name."""
    full_name = " ".join(full_name.split())
    if "," in full_name:
        last, _comma, first = full_name.partition(",")
        return first.strip(), last.strip()
    words = full_name.split(" ")
    if len(words) == 1:
        return words[0], ""
    cut = len(words) - 1
    while cut > 1 and words[cut - 1].casefold() in NAME_PARTICLES:
        cut -= 1
    return " ".join(words[:cut]), " ".join(words[cut:])


def _check_length(text, limit):
    if len(text) > limit:
        raise ValidationError(
            _("Too long: %(length)s characters, at most %(limit)s allowed."), params={"length": len(text), "limit": limit}
        )
    return text


def _limit(name):
    return Customer._meta.get_field(name).max_length


def parse_birthday(value):
    if isinstance(value, datetime.datetime):
        value = value.date()
    if not isinstance(value, datetime.date):
        text = value
        value = cell_values.read_date(text, ("%Y-%m-%d", "%d.%m.%Y", "%d.%m.%y"))
        if value is None:
            if "/" in text:
                raise ValidationError(
                    _("“%(value)s” is ambiguous (day/month or month/day?). Write dates as YYYY-MM-DD or DD.MM.YYYY."),
                    params={"value": text},
                )
            raise ValidationError(_("“%(value)s” is not a valid date. Write dates as YYYY-MM-DD or DD.MM.YYYY."), params={"value": text})
    if not datetime.date(1900, 1, 1) <= value <= datetime.date.today():
        raise ValidationError(_("%(value)s is not a plausible birthday."), params={"value": times.day(value)})
    return value


def parse_consent(text):
    """An explicit yes or no; an empty cell never gets here (it changes nothing, and a new
    customer starts without consent)."""
    value = cell_values.read_yes_no(text)
    if value is not None:
        return value
    raise ValidationError(
        _("Marketing consent must be 1 (yes), 0 (no) or empty (no change), not “%(value)s”."), params={"value": text}
    )


def _names(value):
    """Names listed in one cell ("VIP, Regulars", "VIP; Regulars", ``"Hair, long", VIP``), or
    already a list."""
    if isinstance(value, list):
        return value
    return cell_values.split_names(value)


def clean_row(cells, context):
    """``cells``: target → raw cell value. Returns RowValues, or raises ValidationError
    with the messages per target."""
    values = RowValues()
    errors = {}

    def check(target, clean, accepts_dates=False):
        raw = cells.get(target)
        try:
            is_date = isinstance(raw, (datetime.date, datetime.datetime))
            if isinstance(raw, list):  # names given one by one (the API), not in one cell
                value = [text for text in (cell_text(name, context.from_a_file) for name in raw) if text]
            else:
                value = raw if accepts_dates and is_date else cell_text(raw, context.from_a_file)
            if value in ("", []):
                return
            clean(value)
        except ValidationError as error:
            errors.setdefault(target, []).extend(error.error_list)

    def set_field(name, limit=None):
        def clean(text):
            values.fields[name] = _check_length(text, limit or _limit(name))

        return clean

    if columns.NAME in cells:
        check(columns.NAME, lambda text: values.fields.update(zip(("first_name", "last_name"), split_name(_check_length(text, 300)))))
    if columns.FIRST_NAME in cells:
        check(columns.FIRST_NAME, set_field("first_name"))
    if columns.LAST_NAME in cells:
        check(columns.LAST_NAME, set_field("last_name"))
    for name in ("first_name", "last_name"):
        if len(values.fields.get(name, "")) > _limit(name):
            errors.setdefault(columns.NAME, []).append(_("The name is too long."))

    def clean_email(text):
        email = normalise_email(_check_length(text, _limit("email")))
        validate_email(email)
        values.fields["email"] = email

    def clean_phone(text):
        parsed = context.parse_phone(_check_length(text, _limit("phone_raw")))
        if isinstance(cells.get(columns.PHONE), int) and text.startswith(context.country_code):
            # A number cell lost the "+" of an international number (Excel does that).
            international = context.parse_phone("+" + text)
            parsed = international if international.e164 else parsed
        values.fields["phone_raw"] = parsed.raw
        values.fields["phone"] = parsed.e164
        values.phone_identity = parsed.identity
        values.phone_unreadable = not parsed.is_valid

    def clean_consent(text):
        values.consent = parse_consent(text)

    def clean_birthday(value):
        values.fields["birthday"] = parse_birthday(value)

    def clean_groups(text):
        names = _names(text)
        unknown = [name for name in names if name.casefold() not in context.groups]
        if unknown:
            raise ValidationError(_("Unknown group: %(names)s."), params={"names": ", ".join(unknown)})
        # Dynamic groups are listed by exports but change nothing: their members follow their rule.
        values.groups = groups.settable([context.groups[name.casefold()] for name in names])

    def clean_tags(text):
        # Names with nothing visible are no names: a cell (or list) of only those is empty.
        values.tags = (tags.clean_names(text) if isinstance(text, list) else context.parse_tags(text)) or None

    def clean_branches(text):
        if cell_values.means_all_branches(text):
            values.branches = "all"
            return
        names = _names(text)
        unknown = [name for name in names if name.casefold() not in context.branches]
        if unknown:
            raise ValidationError(_("Unknown branch: %(names)s."), params={"names": ", ".join(unknown)})
        values.branches = [context.branches[name.casefold()] for name in names]

    def clean_record_id(text):
        values.record_id = read_record_id(cells[columns.RECORD_ID])
        if values.record_id is None:
            raise ValidationError(
                _("“%(value)s” is not a record ID: an export writes the customer's number in this database there."),
                params={"value": text},
            )

    simple = {
        columns.RECORD_ID: clean_record_id,
        columns.EMAIL: clean_email,
        columns.PHONE: clean_phone,
        columns.NOTES: set_field("notes", NOTES_MAX_LENGTH),
        columns.CONSENT: clean_consent,
        columns.BIRTHDAY: clean_birthday,
        columns.GROUPS: clean_groups,
        columns.TAGS: clean_tags,
        columns.BRANCHES: clean_branches,
        columns.EXTERNAL_ID: set_field("external_id"),
    }
    for target, clean in simple.items():
        if target in cells:
            check(target, clean, accepts_dates=target == columns.BIRTHDAY)

    for target, definition in context.attribute_definitions.items():
        if target in cells:

            def clean_attribute(value, definition=definition):
                values.attributes[definition.key] = attribute_types.parse_text(definition, value)

            check(target, clean_attribute, accepts_dates=True)

    identifying = ("first_name", "last_name", "email", "phone_raw", "external_id")
    if not errors and not values.record_id and not any(values.fields.get(name) for name in identifying):
        errors[columns.NAME if columns.NAME in cells else next(iter(cells), columns.NAME)] = [
            _("The row has no name, email, phone or external ID.")
        ]
    if errors:
        raise ValidationError(errors)
    return values


def check_row(cells, extra_cells, context):
    """``cells``: target → raw cell value of one row; ``extra_cells``: how many cells the
    row has beyond the header row. Returns a :class:`CheckedRow`."""
    keys = IdentityKeys(
        _key(cells.get(columns.EXTERNAL_ID), str.strip, context),
        _key(cells.get(columns.EMAIL), normalise_email, context),
        _key(cells.get(columns.PHONE), lambda text: context.parse_phone(text).identity, context),
        read_record_id(cells.get(columns.RECORD_ID)),
    )
    if extra_cells > 0:
        message = ValidationError(_("The row has %(count)s more cells than the header row."), params={"count": extra_cells})
        return CheckedRow(keys, errors={"__all__": [message]})
    try:
        return CheckedRow(keys, values=clean_row(cells, context))
    except ValidationError as error:
        # The errors themselves, not their words: a stored refused row is worded when shown.
        return CheckedRow(keys, errors=error.error_dict if hasattr(error, "error_dict") else {"__all__": error.error_list})


def _key(raw, clean, context):
    try:
        return clean(cell_text(raw, context.from_a_file)) or None
    except Exception:  # an unreadable key is reported by row cleaning, not here
        return None
