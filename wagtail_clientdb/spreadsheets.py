"""Spreadsheet cell safety, shared by export and import.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (after any blanks), or with a tab,
carriage return, line feed or NUL, is run as a formula by spreadsheet programs. In CSV
such text gets a leading apostrophe (the OWASP recommendation; the value stays readable,
``'=HYPERLINK(…)``); import removes that apostrophe again, and only where it stands
before such a trigger, so an export re-imports unchanged. XLSX cells are written as
typed strings, which spreadsheets never run, so they keep their exact value.

One exception, in the phone column only: a number written as the export writes phone
numbers, a ``+`` and digit groups parted by single spaces (``+49 170 1234567``), keeps
its plus and gets no apostrophe. It holds nothing a spreadsheet could run (no name, no
reference, no function, no operator between its groups). LibreOffice Calc opens it as
text (a value with spaces is no number, and it runs formulas only after ``=``); Excel
reads a leading ``+`` as the start of a formula, but digit groups parted by spaces are
none (its space operator intersects ranges), so the cell keeps its text. Without the
spaces, ``+491701234567`` opens as the number 491701234567 in both (4.91702E+11 in
Excel); with an apostrophe, both show the apostrophe. See docs/import-export.md.
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


#: A phone number as the export writes it: "+", then groups of digits parted by single spaces.
SPACED_INTERNATIONAL_NUMBER = re.compile(r"\+[0-9]{1,3}(?: [0-9]+)+")


def neutralise_csv_phone(value):
    """:func:`neutralise_csv` for the phone column, which leaves ``+49 170 1234567`` as it is."""
    if isinstance(value, str) and SPACED_INTERNATIONAL_NUMBER.fullmatch(value):
        return value
    return neutralise_csv(value)


def unneutralise_csv(value):
    """Undo :func:`neutralise_csv` on an imported cell."""
    if isinstance(value, str) and value.startswith("'") and needs_neutralising(value[1:]):
        return value[1:]
    return value


def clean_xlsx_text(value):
    if isinstance(value, str):
        return ILLEGAL_XLSX_CHARACTERS.sub("", value)
    return value
