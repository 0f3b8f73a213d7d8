"""Text kept in the database for later readers (an import's notes): its English source and
parameters, worded when shown, so that each reader sees it in their own language rather than
in the language of whoever ran the import.

The source is marked with ``gettext_noop`` where it is written, so that it is translated.
"""

from django.utils import translation
from django.utils.translation import gettext, ngettext


def keep(source, **params):
    return {"text": str(source), "params": params}


def keep_counted(singular, plural, count, **params):
    """Text whose words follow a number, ``count`` (one phone number, two phone numbers): its
    two English sources, worded by the reader's language's plural rule when shown."""
    return {"text": str(singular), "plural": str(plural), "params": {"count": count, **params}}


def keep_error(error):
    """A :class:`~django.core.exceptions.ValidationError` with one message, kept as its source
    text (untranslated, when the message is lazy) and its parameters."""
    with translation.override(None):
        text = str(error.message)
    params = {name: value if isinstance(value, (int, float)) else str(value) for name, value in (error.params or {}).items()}
    return {"text": text, "params": params}


def show(stored):
    if isinstance(stored, str):
        # Kept as words by an earlier version.
        return stored
    if "plural" in stored:
        text = ngettext(stored["text"], stored["plural"], stored["params"]["count"])
    else:
        text = gettext(stored["text"])
    return text % stored["params"] if stored["params"] else text
