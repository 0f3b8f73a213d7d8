"""Normalisation of contact data: one place for every entry point.

Text (names, notes, IDs) is stored in Unicode NFC, so that "José" typed with a combining
accent is the same text as "José" typed with one key, and search finds it. Email
addresses are stored trimmed, NFKC-normalised and lower-cased, without invisible format
characters (zero-width spaces, soft hyphens) that would make the same address look like a
second person, so that matching (imports, duplicates, the API) can compare them exactly.
Phone numbers are parsed with the ``phonenumbers`` library and stored in E.164; the input
as typed is kept beside it, so an unparseable number is never lost.
"""

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers
from babel import Locale, UnknownLocaleError
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from . import name_order

PHONE_INVALID_MESSAGE = _(
    "Enter a valid phone number, for example +49 170 1234567 or a national number "
    "of the default phone region (%(region)s)."
)

_PHONE_LIKE = re.compile(r"^[\d\s+()./\-]+$")


#: Half of a character (a UTF-16 surrogate without its pair): JSON can say it ("\\ud800"), no
#: database stores it.
_HALF_A_CHARACTER = re.compile("[\ud800-\udfff]")
HALF_A_CHARACTER_MESSAGE = _("Contains half of a character (an unpaired UTF-16 surrogate), which cannot be stored.")


def has_half_a_character(text):
    return not text.isascii() and _HALF_A_CHARACTER.search(text) is not None


def normalise_text(value):
    """Text as stored: Unicode NFC (``None`` stays ``None``). A text of nothing but spaces and
    invisible characters (zero-width spaces, BOMs, soft hyphens: category Cf) is empty: a
    name of them shows nothing and would pass every "has a name" check."""
    if not value or value.isascii():
        return value
    value = unicodedata.normalize("NFC", value)
    if all(map(is_invisible, value)):
        return ""
    return value


def is_invisible(char):
    """A space (Python's whitespace, Unicode's Zs among it) or an invisible format character
    (category Cf: zero-width spaces, joiners, soft hyphens, BOMs)."""
    return char.isspace() or unicodedata.category(char) == "Cf"


def normalise_email(value):
    if not value:
        return ""
    value = unicodedata.normalize("NFKC", value)
    if not value.isascii():
        # Zero-width spaces, joiners, soft hyphens, BOMs (category Cf) are invisible.
        value = "".join(ch for ch in value if unicodedata.category(ch) != "Cf")
    return value.strip().lower()


@dataclass(frozen=True)
class ParsedPhone:
    raw: str
    e164: str
    #: The extension dialled after the number ("x11"), which E.164 has no place for.
    extension: str = ""

    @property
    def is_valid(self):
        return bool(self.e164) or not self.raw

    @property
    def identity(self):
        """The number as it names a person (:func:`phone_identity`)."""
        return phone_identity(self.e164, self.extension)


def phone_identity(e164, extension=""):
    """The phone number as it names a person: a switchboard's number with an extension names
    the one at that extension, not everyone behind the switchboard ("+49305550000;ext=11",
    RFC 3966's form); ``None`` for no number."""
    if not e164:
        return None
    return f"{e164};ext={extension}" if extension else e164


def number_of(identity):
    """The E.164 number of a :func:`phone_identity` (what the ``phone`` column holds)."""
    return identity.partition(";ext=")[0]


def phone_extension(raw, e164):
    """The extension of a stored number typed as ``raw`` (``""`` for none): only text with
    more than digits and separators can hold one, and only that is parsed again."""
    if not raw or not e164 or _PHONE_LIKE.match(raw):
        return ""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
        return phonenumbers.parse(raw, region).extension or ""
    except phonenumbers.NumberParseException:
        return ""


def parse_phone(raw, region):
    """Parse a phone number typed in any common format.

    Returns the trimmed input and its E.164 form ("" when it cannot be parsed as a
    valid number of ``region`` or of the international prefix it carries).
    """
    raw = unicodedata.normalize("NFKC", raw or "").strip()
    if not raw:
        return ParsedPhone("", "")
    try:
        number = phonenumbers.parse(raw, (region or "").upper() or None)
    except phonenumbers.NumberParseException:
        return ParsedPhone(raw, "")
    if not phonenumbers.is_valid_number(number):
        return ParsedPhone(raw, "")
    return ParsedPhone(raw, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number.extension or "")


def format_phone(e164, raw=""):
    """How a stored phone number is shown to people."""
    if e164:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return e164
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return raw


def spaced_international(e164):
    """A stored number for files: the international format of :func:`format_phone` with
    single spaces between its digit groups ("+49 170 1234567", "+1 201 555 0123": the
    hyphens and dots some countries use become spaces), so that the text holds nothing
    but ``+``, digits and spaces. Read back by any import as the same E.164 number.

    Exports write a number a row, a million rows in a few seconds, and parsing each with
    ``phonenumbers`` would take longer than the whole rest of the export. So the grouping
    is worked out once per country code, length and leading digits — all that
    ``phonenumbers`` chooses a format by — and reused for every number that shares them.
    """
    if not e164 or e164[0] != "+":
        return e164 or ""
    key = _grouping_key(e164)
    spans = _GROUPINGS.get(key) if key else None
    if spans is None:
        spaced = _spaced_by_phonenumbers(e164)
        spans = _spans(spaced, e164)
        if spans is None:  # digits that phonenumbers does not give back as they are
            return _read_back_alike(e164)
        if key:
            if len(_GROUPINGS) > 10_000:
                _GROUPINGS.clear()
            _GROUPINGS[key] = spans
    return "+" + " ".join([e164[start:end] for start, end in spans])


#: (leading digits, length) → the digit groups, as slices of the E.164 text.
_GROUPINGS = {}
#: the first digits of an E.164 text → (length of its country calling code, how many
#: national digits decide its format); ``None`` when unknown.
_DECIDING_PREFIX = {}


def _spaced_by_phonenumbers(e164):
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return "+" + " ".join(re.findall(r"\d+", formatted))


def _read_back_alike(e164):
    """For the rare number whose international format leaves out a digit of its E.164
    form: the calling code and the rest apart, if that reads back as the same number, else
    the E.164 form itself."""
    for size in (1, 2, 3):
        spaced = f"{e164[: 1 + size]} {e164[1 + size :]}"
        try:
            number = phonenumbers.parse(spaced, None)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164) == e164:
            return spaced
    return e164


def _spans(spaced, e164):
    groups = spaced[1:].split(" ")
    if "".join(groups) != e164[1:] or not all(group.isdigit() for group in groups):
        return None
    spans, start = [], 1
    for group in groups:
        spans.append((start, start + len(group)))
        start += len(group)
    return tuple(spans)


def _grouping_key(e164):
    """The part of a number that decides its grouping: its country calling code and as many
    digits after it as the leading-digit patterns of that country look at, and its length.
    ``None`` when unknown (such a number is formatted on its own)."""
    prefix = e164[:4]
    if prefix not in _DECIDING_PREFIX:
        _DECIDING_PREFIX[prefix] = None
        for size in (1, 2, 3):
            code = prefix[1 : 1 + size]
            if code.isdigit() and int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                deciding = _deciding_digits(int(code))
                if deciding is not None:
                    _DECIDING_PREFIX[prefix] = (size, deciding)
                break
    known = _DECIDING_PREFIX[prefix]
    if known is None:
        return None
    size, deciding = known
    return e164[: 1 + size + deciding], len(e164)


def _deciding_digits(country_code):
    """The longest prefix of a national number that the leading-digit patterns of the
    country's formats can look at (``phonenumbers`` uses each format's last one); the
    formats' own patterns are runs of ``\\d`` and look only at the length."""
    region = phonenumbers.region_code_for_country_code(country_code)
    if region == "001":
        metadata = phonenumbers.PhoneMetadata.metadata_for_nongeo_region(country_code)
    else:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        return None
    try:
        from re import _parser  # the width of a regular expression; private, so guarded

        deciding = 0
        for number_format in [*metadata.number_format, *metadata.intl_number_format]:
            if re.sub(r"\\d(\{\d+(,\d*)?\})?|[()|?:]", "", number_format.pattern):
                return None  # a pattern that looks at digits, not only at the length
            if number_format.leading_digits_pattern:
                width = _parser.parse(number_format.leading_digits_pattern[-1]).getwidth()[1]
                deciding = max(deciding, width)
        return deciding
    except Exception:
        return None


def phone_search_terms(query, region):
    """The stored forms a search query may be looking for, if it looks like a phone number.

    Returns ``(e164, digits, start)``: the E.164 form when the query parses as a whole number;
    the significant digits, looked for anywhere ("1234567", the end of a number); and ``start``,
    the beginning of the E.164 form when the query is typed from the number's beginning — with
    its country code ("+49 170", "0049 170") or the region's trunk prefix 0 ("0170") — else
    ``None``. A number typed from its beginning is found from its beginning: "0170" is not
    "170" somewhere in "+49 30 1701234". ``(None, None, None)`` for non-phone queries.
    """
    query = query.strip()
    digits = re.sub(r"\D", "", query)
    if len(digits) < 4 or not _PHONE_LIKE.match(query):
        return None, None, None
    parsed = parse_phone(query, region)
    return (parsed.e164 or None), digits.lstrip("0"), _typed_from_start(query, digits, region)


def _typed_from_start(query, digits, region):
    if query.startswith("+"):
        return "+" + digits
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region or "", None)
    if metadata is None:
        return None
    if metadata.international_prefix == "00" and digits.startswith("00"):
        return "+" + digits[2:]
    # Only a trunk prefix of 0: where it is 1 (the United States), "1234" may as well be the
    # end of a number as its beginning.
    if metadata.national_prefix == "0" and digits.startswith("0"):
        return f"+{metadata.country_code}{digits[1:]}"
    return None


def phone_region_choices():
    """Countries by name in the admin's language ("Deutschland (+49)"), sorted by that name."""
    try:
        names = Locale.parse(translation.to_locale(translation.get_language() or "en")).territories
    except (UnknownLocaleError, ValueError):
        names = Locale("en").territories
    choices = [
        (code, f"{names.get(code, code)} (+{phonenumbers.country_code_for_region(code)})")
        for code in phonenumbers.SUPPORTED_REGIONS
    ]
    return sorted(choices, key=lambda choice: name_order.sort_key(choice[1]))
