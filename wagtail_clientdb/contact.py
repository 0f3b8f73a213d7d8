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


def normalise_text(value):
    """Text as stored: Unicode NFC (``None`` stays ``None``)."""
    if not value or value.isascii():
        return value
    return unicodedata.normalize("NFC", value)


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

    @property
    def is_valid(self):
        return bool(self.e164) or not self.raw


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
    return ParsedPhone(raw, phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def format_phone(e164, raw=""):
    """How a stored phone number is shown to people."""
    if e164:
        try:
            number = phonenumbers.parse(e164, None)
        except phonenumbers.NumberParseException:
            return e164
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return raw


def phone_search_terms(query, region):
    """The stored forms a search query may be looking for, if it looks like a phone number.

    Returns ``(e164, digits)``: the E.164 form when the query parses as a whole number,
    and the significant digits for a partial match; ``(None, None)`` for non-phone queries.
    """
    query = query.strip()
    digits = re.sub(r"\D", "", query)
    if len(digits) < 4 or not _PHONE_LIKE.match(query):
        return None, None
    parsed = parse_phone(query, region)
    return (parsed.e164 or None), digits.lstrip("0")


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
