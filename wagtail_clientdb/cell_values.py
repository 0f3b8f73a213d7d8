"""Customer values as spreadsheet cells: readable, in the language of the user who exports,
and read back as the same values by the import, whatever language the file was made in.

One place for each of these rules, used by the admin's export, the background export and
the export command (writing) and by the file import and the API's bulk import (reading):

* yes and no ("Yes"/"No", "Ja"/"Nein", "Oui"/"Non"; ``1``/``0``, ``x``, ``true`` … are read
  too);
* "all branches" ("All branches", "Alle Filialen", "Toutes les filiales"; ``*`` is read too);
* names listed in one cell (groups, tags, branches): separated by commas or semicolons, a
  name with a separator or a double quote in double quotes (:func:`join_names`,
  :func:`split_names`);
* a branch by its name, or by its slug where its name would not read back as that branch
  alone;
* phone numbers in the international format with spaces (see
  :func:`wagtail_clientdb.contact.spaced_international`).
"""

import csv
import datetime
import functools
import io
import re

from django.utils import translation
from django.utils.translation import gettext_lazy as _

#: The languages the app is translated into; an import reads the words of each.
LANGUAGES = ("en", "de", "fr")

YES = _("Yes")
NO = _("No")
ALL_BRANCHES = _("All branches")

#: Words read as yes or no in any language, besides the translations of YES and NO.
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "ja", "j", "oui", "x", "wahr", "vrai"})
FALSE_WORDS = frozenset({"0", "false", "no", "n", "nein", "non", "falsch", "faux"})
#: Words read as "all branches", besides the translations of ALL_BRANCHES.
ALL_BRANCHES_WORDS = frozenset({"*", "all", "all branches", "alle", "alle filialen", "toutes", "toutes les filiales"})

#: What puts a listed name in double quotes: a separator ("VIP, Regulars"), a double quote,
#: a line break.
_QUOTED = re.compile(r'[,;"\r\n]')


def _in_every_language(word):
    words = set()
    for language in LANGUAGES:
        with translation.override(language):
            words.add(str(word).casefold())
    return words


@functools.cache
def true_words():
    return TRUE_WORDS | _in_every_language(YES) | {"yes"}


@functools.cache
def false_words():
    return FALSE_WORDS | _in_every_language(NO) | {"no"}


@functools.cache
def all_branches_words():
    return ALL_BRANCHES_WORDS | _in_every_language(ALL_BRANCHES)


def read_yes_no(text):
    """``True``, ``False``, or ``None`` for a word that is neither."""
    word = str(text).strip().casefold()
    if word in false_words():
        return False
    if word in true_words():
        return True
    return None


def means_all_branches(text):
    return isinstance(text, str) and text.strip().casefold() in all_branches_words()


#: A time of midnight after a date, as a spreadsheet writes a date cell shown with its time
#: ("17.05.1980 00:00", "1980-05-17 00:00:00", "1980-05-17T00:00:00").
_AT_MIDNIGHT = re.compile(r"[ T]0?0:00(?::00(?:\.0+)?)?$")


def read_date(text, formats):
    """The date ``text`` writes in one of ``formats`` (``strptime``'s), also with a time of
    midnight after it; ``None`` when it writes none."""
    text = _AT_MIDNIGHT.sub("", text.strip())
    for fmt in formats:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def join_names(names):
    """The names as one cell, separated by ", ": a name with a separator, a double quote or a
    line break in double quotes, a double quote inside doubled (``"Hair, long", VIP``), as a
    CSV field is written; the others as they are (``tea lover, VIP``): people read these cells."""
    if _QUOTED.search("".join(names)) is None:  # nearly every cell: nothing to quote
        return ", ".join(names)
    return ", ".join(_quoted(name) if _QUOTED.search(name) else name for name in names)


def _quoted(name):
    return '"' + name.replace('"', '""') + '"'


def split_names(text):
    """The names one cell lists: separated by commas or semicolons, never by spaces, the
    spaces around each taken off, empty ones left out. A name in double quotes may hold
    separators; a doubled double quote in it stands for one (as :func:`join_names` writes,
    and the admin's tag field: ``"tea lover", VIP``).

    A cell with quotes is read by the csv module as a CSV row, by the rules spreadsheets
    write: a quote opens a name only at its start (``Say "hi"`` is that name), one not
    closed runs to the end of the cell, a line break outside quotes ends a name. csv knows
    one separator, so semicolons outside quotes (every other piece between quotes) are made
    commas first. (shlex would drop the quotes in the middle of a name, and doubled ones.)"""
    if '"' in text:
        pieces = text.split('"')
        pieces[::2] = [piece.replace(";", ",") for piece in pieces[::2]]
        rows = csv.reader(io.StringIO('"'.join(pieces), newline=""), skipinitialspace=True)
        try:
            return [name.strip() for row in rows for name in row if name.strip()]
        except csv.Error:  # longer than a CSV field may be: read as if without quotes
            pass
    return [name.strip() for name in text.replace(";", ",").split(",") if name.strip()]


def branch_lookup(branches):
    """How an import finds a branch a cell names: casefolded slug or name → branch. A slug
    wins over another branch's name that reads the same."""
    lookup = {}
    for branch in branches:
        lookup.setdefault(branch.name.strip().casefold(), branch)
    for branch in branches:
        lookup[branch.slug.casefold()] = branch
    return lookup


def branch_labels(branches):
    """What an export writes for each branch (pk → text): its name where the import reads
    that name back as this branch alone (no other branch of that name or slug, read as one
    name from a list cell, not a word for "all branches"), otherwise its slug."""
    branches = list(branches)
    lookup = branch_lookup(branches)
    names = {}
    for branch in branches:
        key = branch.name.strip().casefold()
        names[key] = names.get(key, 0) + 1
    labels = {}
    for branch in branches:
        name = branch.name.strip()
        key = name.casefold()
        readable = (
            name
            and names[key] == 1
            and lookup.get(key) == branch
            and split_names(name) == [name]
            and key not in all_branches_words()
        )
        labels[branch.pk] = name if readable else branch.slug
    return labels
