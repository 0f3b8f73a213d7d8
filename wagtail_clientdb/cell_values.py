"""Customer values as spreadsheet cells: readable, in the language of the user who exports,
and read back as the same values by the import, whatever language the file was made in.

One place for each of these rules, used by the admin's export, the background export and
the export command (writing) and by the file import and the API's bulk import (reading):

* yes and no ("Yes"/"No", "Ja"/"Nein", "Oui"/"Non"; ``1``/``0``, ``x``, ``true`` … are read
  too);
* "all branches" ("All branches", "Alle Filialen", "Toutes les filiales"; ``*`` is read too);
* a branch by its name, or by its slug where its name would not read back as that branch
  alone;
* phone numbers in the international format with spaces (see
  :func:`wagtail_clientdb.contact.spaced_international`).
"""

import functools

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

#: Characters that separate names listed in one cell ("VIP, Regulars").
NAME_SEPARATORS = ",;"


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
    that name back as this branch alone (no other branch of that name or slug, no
    separator, not a word for "all branches"), otherwise its slug."""
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
            and not any(separator in name for separator in NAME_SEPARATORS)
            and key not in all_branches_words()
        )
        labels[branch.pk] = name if readable else branch.slug
    return labels
