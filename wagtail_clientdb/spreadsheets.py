"""Spreadsheet cell safety, shared by export and import.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (after any blanks), or with a tab,
carriage return, line feed or NUL, is run as a formula by spreadsheet programs. In CSV
such text gets a leading apostrophe (the OWASP recommendation; the value stays readable,
``'+49 170 1234567``); import removes that apostrophe again, and only where it stands
before such a trigger, so an export re-imports unchanged. XLSX cells are written as
typed strings, which spreadsheets never run, so they keep their exact value.
"""

import re

FORMULA_TRIGGERS = "=+-@"
CONTROL_TRIGGERS = "\t\r\n\0"
#: Characters XML 1.0 (and so XLSX) cannot hold; openpyxl refuses them.
ILLEGAL_XLSX_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


#: First characters after which a cell may be run as a formula (checked before anything else).
SUSPECT_START = frozenset(FORMULA_TRIGGERS + CONTROL_TRIGGERS + " \x0b\x0c")


def needs_neutralising(text):
    if not text or text[0] not in SUSPECT_START:
        return False
    if text[0] in CONTROL_TRIGGERS:
        return True
    stripped = text.lstrip(" \t\r\n\0\x0b\x0c")
    return bool(stripped) and stripped[0] in FORMULA_TRIGGERS


def neutralise_csv(value):
    if isinstance(value, str) and needs_neutralising(value):
        return "'" + value
    return value


def unneutralise_csv(value):
    """Undo :func:`neutralise_csv` on an imported cell."""
    if isinstance(value, str) and value.startswith("'") and needs_neutralising(value[1:]):
        return value[1:]
    return value


def clean_xlsx_text(value):
    if isinstance(value, str):
        return ILLEGAL_XLSX_CHARACTERS.sub("", value)
    return value
