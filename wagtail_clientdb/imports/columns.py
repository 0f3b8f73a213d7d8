"""Which customer field each column of an imported file feeds.

Headers are matched case-, accent-, space- and punctuation-insensitively, in English,
German and French, to fields, to custom attributes (by key or label), and to the columns
our own export writes. A file without a header row in the plain layout — A name, B phone,
C email, D notes, E marketing consent — needs no mapping at all.
"""

import functools
import hashlib
import re
import string
import unicodedata
from dataclasses import dataclass

from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy

from .. import attributes, cell_values
from ..models import AttributeTarget

IGNORE = ""
NAME = "name"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
EMAIL = "email"
PHONE = "phone"
NOTES = "notes"
CONSENT = "marketing_consent"
BIRTHDAY = "birthday"
GROUPS = "groups"
TAGS = "tags"
BRANCHES = "branches"
EXTERNAL_ID = "external_id"
#: The customer's number in this database, as the export writes it: an export re-imports onto
#: the same customers, also those with no external ID, email or phone to be matched by.
RECORD_ID = "record_id"
ATTRIBUTE = "attr:"

FIELD_LABELS = {
    NAME: gettext_lazy("Name (first and last)"),
    FIRST_NAME: gettext_lazy("First name"),
    LAST_NAME: gettext_lazy("Last name"),
    EMAIL: gettext_lazy("Email"),
    PHONE: gettext_lazy("Phone"),
    NOTES: gettext_lazy("Notes"),
    CONSENT: gettext_lazy("Marketing consent"),
    BIRTHDAY: gettext_lazy("Birthday"),
    GROUPS: gettext_lazy("Groups (comma separated)"),
    TAGS: gettext_lazy("Tags (comma separated)"),
    BRANCHES: gettext_lazy("Branches (slugs or names; * for all)"),
    EXTERNAL_ID: gettext_lazy("External ID"),
    RECORD_ID: gettext_lazy("Record ID (the customer's number in this database, from an export)"),
}

#: Headings of our export, by what each column holds; an import recognises them in every
#: language of the admin, so an export re-imports whatever language it was made in.
EXPORT_HEADINGS = {
    FIRST_NAME: gettext_lazy("First name"),
    LAST_NAME: gettext_lazy("Last name"),
    EMAIL: gettext_lazy("Email"),
    PHONE: gettext_lazy("Phone"),
    NOTES: gettext_lazy("Notes"),
    BIRTHDAY: gettext_lazy("Birthday"),
    CONSENT: gettext_lazy("Marketing consent"),
    GROUPS: gettext_lazy("Groups"),
    TAGS: gettext_lazy("Tags"),
    BRANCHES: gettext_lazy("Branches"),
    "local_to": gettext_lazy("Local to"),
    "bookings": gettext_lazy("Bookings"),
    "source": gettext_lazy("Source"),
    EXTERNAL_ID: gettext_lazy("External ID"),
    "created": pgettext_lazy("when", "Created"),
    RECORD_ID: gettext_lazy("Record ID"),
}
#: The refused-rows report's own columns (before and after the file's): a corrected report
#: imports again without a mapping step.
REPORT_HEADINGS = {"report_line": gettext_lazy("Line"), "report_reason": gettext_lazy("Reason")}
#: Columns an import leaves alone: counted or set by the system (a customer local to a branch
#: is made so by that branch's staff, never by a cell), or the report's own.
EXPORT_ONLY_COLUMNS = ("local_to", "bookings", "source", "created", *REPORT_HEADINGS)

#: Columns that identify a person: a file needs at least one of them.
IDENTIFYING = (NAME, FIRST_NAME, LAST_NAME, EMAIL, PHONE, EXTERNAL_ID, RECORD_ID)

#: The layout a file without headers is read in.
PLAIN_LAYOUT = [NAME, PHONE, EMAIL, NOTES, CONSENT]

SYNONYMS = {
    FIRST_NAME: ["first name", "firstname", "given name", "forename", "vorname", "prénom", "prenom"],
    LAST_NAME: ["last name", "lastname", "surname", "family name", "nachname", "familienname", "zuname", "nom", "nom de famille"],
    NAME: ["name", "full name", "customer", "customer name", "client", "kunde", "kundin", "kundenname", "vollständiger name", "nom complet", "nom et prénom", "nom prénom"],
    EMAIL: ["email", "e-mail", "mail", "email address", "e-mail address", "e-mail-adresse", "emailadresse", "courriel", "adresse e-mail", "adresse électronique", "mél"],
    PHONE: ["phone", "telephone", "phone number", "mobile", "mobile phone", "cell", "tel", "telefon", "telefonnummer", "handy", "handynummer", "mobil", "mobilnummer", "téléphone", "numéro de téléphone", "portable"],
    NOTES: ["notes", "note", "comment", "comments", "remarks", "notizen", "notiz", "bemerkung", "bemerkungen", "anmerkungen", "kommentar", "remarques", "remarque", "commentaire", "commentaires"],
    CONSENT: ["marketing consent", "consent", "marketing", "newsletter", "opt-in", "einwilligung", "werbeeinwilligung", "marketing-einwilligung", "consentement", "consentement marketing"],
    BIRTHDAY: ["birthday", "date of birth", "birth date", "dob", "geburtstag", "geburtsdatum", "anniversaire", "date de naissance"],
    GROUPS: ["groups", "group", "customer groups", "gruppen", "gruppe", "kundengruppen", "groupes", "groupe"],
    TAGS: ["tags", "tag", "labels", "schlagworte", "schlagwörter", "stichworte", "étiquettes", "mots-clés"],
    BRANCHES: ["branches", "branch", "locations", "location", "filialen", "filiale", "standorte", "standort", "filiales", "succursales", "agences"],
    # Not a bare "ID": spreadsheets number their rows under it, and row 2's "1" would find the
    # customer whose external ID is 1. Such a column goes to the mapping step.
    EXTERNAL_ID: ["external id", "customer id", "kunden-id", "externe id", "identifiant externe", "référence externe"],
    RECORD_ID: ["record id"],
}


_PHONE_LIKE = re.compile(r"[\d\s+()./\-]{4,}")
CONSENT_WORDS = {"1", "0", "x", "yes", "no", "ja", "nein", "oui", "non", "true", "false"}


def normalise_header(text):
    text = unicodedata.normalize("NFKD", str(text or "")).encode("ascii", "ignore").decode()
    text = re.sub(rf"[{re.escape(string.punctuation)}\s]+", " ", text.casefold())
    return text.strip()


@functools.cache
def _known_headers():
    """Normalised header → target: the synonyms, plus our export headings in every admin language."""
    known = {normalise_header(synonym): target for target, synonyms in SYNONYMS.items() for synonym in synonyms}
    for language in cell_values.LANGUAGES:
        with translation.override(language):
            for target, heading in (*EXPORT_HEADINGS.items(), *REPORT_HEADINGS.items()):
                known.setdefault(normalise_header(str(heading)), target)
    return known


def is_export_only(header):
    """Columns our export writes that an import ignores on purpose (counts, dates, source)."""
    return _known_headers().get(normalise_header(header)) in EXPORT_ONLY_COLUMNS


def column_letter(index):
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


@dataclass
class Layout:
    """How to read a file: the row holding the headers (``None``: no headers) and each column's target."""

    header_row: int | None
    headers: list
    targets: list

    @property
    def first_data_row(self):
        return 0 if self.header_row is None else self.header_row + 1

    def column_names(self):
        return [header or column_letter(i) for i, header in enumerate(self.headers)]


def attribute_targets():
    return {
        ATTRIBUTE + definition.key: definition
        for definition in attributes.active_definitions(AttributeTarget.CUSTOMER)
    }


def target_choices():
    choices = [(IGNORE, _("— ignore this column —"))]
    choices += [(target, str(label)) for target, label in FIELD_LABELS.items()]
    choices += [(target, _("Attribute: %(label)s") % {"label": d.label}) for target, d in attribute_targets().items()]
    return choices


def match_header(header, attribute_lookup=None):
    """The target a header names (IGNORE when unknown or an export-only column): a field by
    its names in English, German and French or its export heading in any language, an
    attribute by its key or label."""
    normalised = normalise_header(header)
    target = _known_headers().get(normalised)
    if not normalised or target in EXPORT_ONLY_COLUMNS:
        return IGNORE
    if target:
        return target
    lookup = attribute_lookup if attribute_lookup is not None else attribute_targets()
    for target, definition in lookup.items():
        if normalised in (normalise_header(definition.key), normalise_header(definition.label)):
            return target
    # "Label (key)": how an export heads an attribute whose label and key both read as another column.
    for target, definition in lookup.items():
        if normalised == normalise_header(_label_and_key(definition)):
            return target
    return IGNORE


def _label_and_key(definition):
    return f"{definition.label} ({definition.key})"


def attribute_headings(definitions):
    """The headings of an export's attribute columns: each attribute's label, unless an
    import would read that label as another column (a field's heading in any language,
    another attribute's key or label); then its key; then "label (key)"."""
    lookup = {ATTRIBUTE + definition.key: definition for definition in definitions}
    headings = []
    for definition in definitions:
        candidates = (definition.label, definition.key, _label_and_key(definition))
        heading = next(
            (text for text in candidates if match_header(text, lookup) == ATTRIBUTE + definition.key),
            candidates[-1],
        )
        headings.append(heading)
    return headings


def detect_layout(first_rows):
    """Find the header row among the first rows (a title row may sit above it), or decide the
    file has none and is in the plain A–E layout. Unrecognised columns map to IGNORE."""
    lookup = attribute_targets()
    best_row, best_targets, best_score = None, None, 0
    for index, row in enumerate(first_rows[:5]):
        if not all(isinstance(cell, str) or cell is None for cell in row):
            continue
        targets = [match_header(cell, lookup) for cell in row]
        score = sum(1 for target in targets if target)
        if score > best_score:
            best_row, best_targets, best_score = index, targets, score
    width = max((len(row) for row in first_rows), default=0)
    if best_row is not None and (best_score >= 2 or width == 1):
        # Cells beyond the header row's last column are ragged rows, reported per row.
        headers = [str(cell or "").strip() for cell in first_rows[best_row]]
        return Layout(best_row, headers, name_beside_its_part(best_targets))
    targets = PLAIN_LAYOUT[:width] + [IGNORE] * max(0, width - len(PLAIN_LAYOUT))
    return Layout(None, [""] * width, targets)


def name_beside_its_part(targets):
    """``targets`` with a "Name" column beside a first-name column read as the last name
    ("Name; Vorname", as German lists have it), beside a last-name column as the first name:
    read as the whole name, it was split and then overwritten by the other column. Beside
    both it stays the whole name, which :func:`mapping_problems` asks the user about."""
    parts = {FIRST_NAME, LAST_NAME} & set(targets)
    if NAME not in targets or len(parts) != 1:
        return targets
    (part,) = parts
    other_part = LAST_NAME if part == FIRST_NAME else FIRST_NAME
    return [other_part if target == NAME else target for target in targets]


def looks_like_plain_layout(layout, first_rows):
    """Whether a headerless file plausibly is name, phone, email, notes, consent."""
    if layout.header_row is not None:
        return True
    if len(layout.targets) > len(PLAIN_LAYOUT):
        return False

    def fits(cell, check):
        return cell is None or (isinstance(cell, str) and not cell.strip()) or check(cell)

    checks = {
        1: lambda cell: isinstance(cell, int) or bool(_PHONE_LIKE.fullmatch(str(cell).strip())),
        2: lambda cell: "@" in str(cell),
        # A spreadsheet's yes/no and number cells (True, 0, 1.0) as well as words.
        4: lambda cell: cell in (0, 1) if isinstance(cell, (bool, int, float)) else normalise_header(cell) in CONSENT_WORDS,
    }
    return all(
        fits(row[index], check) for row in first_rows[:20] for index, check in checks.items() if index < len(row)
    )


def mapping_problems(targets, headers):
    """Why a mapping cannot be imported: duplicate targets, or nothing that identifies a person."""
    problems = []
    seen = {}
    for index, target in enumerate(targets):
        if not target:
            continue
        if target in seen:
            problems.append(
                _("Columns %(first)s and %(second)s both hold “%(field)s”.")
                % {"first": headers[seen[target]], "second": headers[index], "field": dict(target_choices()).get(target, target)}
            )
        seen[target] = index
    if NAME in seen and (parts := [seen[part] for part in (FIRST_NAME, LAST_NAME) if part in seen]):
        problems.append(
            _("Column %(name)s holds the whole name, and %(parts)s a part of it: choose “First name” or “Last name” for %(name)s, or ignore it.")
            % {"name": headers[seen[NAME]], "parts": ", ".join(headers[index] for index in parts)}
        )
    if not any(target in IDENTIFYING for target in targets):
        problems.append(
            _("The file has no column for the name, email, phone or external ID. Missing: %(missing)s.")
            % {"missing": ", ".join(str(FIELD_LABELS[target]) for target in IDENTIFYING)}
        )
    return problems


def headers_key(headers):
    """Identifies a file's header row, to remember the mapping chosen for it."""
    return hashlib.sha256("\x1f".join(normalise_header(h) for h in headers).encode()).hexdigest()
