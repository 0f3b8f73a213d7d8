"""Customer tag names: one rule, whichever way a tag comes in.

The admin's tag field and its bulk actions, the file import, the API (one customer or the
bulk import), merging and an import's rollback all name tags through here; so does
``customer.tags`` (taggit's manager, :class:`~wagtail_clientdb.models.customer.CustomerTagsManager`),
which the admin's form saves through.

* A name is read in Unicode NFC without the spaces and invisible characters around it (a
  zero-width space, a byte order mark, a soft hyphen: Unicode's categories Cf and Zs, and
  what Python calls whitespace). A name with nothing visible left is no name, as an empty
  one is: it is left out.
* Names are compared casefolded (:func:`fold`): ``Regular``, ``regular`` and ``REGULAR`` are
  one tag. An existing tag is used with its own spelling; a new tag keeps the spelling given
  (the first, when one list, request or file gives several).
* A name has at most :data:`MAX_LENGTH` characters; a longer one is refused, not cut.

Each tag keeps its folded name (``CustomerTag.folded_name``), unique: two tags differing
only in case cannot be made, not even by two requests at the same moment, and the tags of
a whole batch of names are found in one query.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import bulk
from .contact import is_invisible, normalise_text

MAX_LENGTH = 100
TOO_LONG = _("A tag has at most 100 characters.")


def clean(name):
    """``name`` as a tag is named: NFC, without spaces and invisible characters around it
    (``""`` when nothing visible is left). Those inside are kept: a joiner within an emoji is
    part of it."""
    if not name or name.isascii():
        # In ASCII, what is invisible is what Python strips (an import calls this a lot).
        return (name or "").strip()
    text = normalise_text(name)
    start, end = 0, len(text)
    while start < end and is_invisible(text[start]):
        start += 1
    while end > start and is_invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def fold(name):
    """What tag names are compared by: the clean name, casefolded."""
    return clean(name).casefold()


def clean_names(names):
    """``names`` as tags are named (:func:`clean`): empty ones left out, a name given again
    in another spelling left out (the first spelling counts). Raises ValidationError when a
    name is longer than :data:`MAX_LENGTH`."""
    kept = {}
    for name in names:
        name = clean(name)
        if name:
            kept.setdefault(name.casefold(), name)
    if any(len(name) > MAX_LENGTH for name in kept.values()):
        raise ValidationError(TOO_LONG, code="tag_too_long")
    return list(kept.values())


def same(names, other_names):
    """Whether two lists of names name the same tags."""
    names, other_names = set(names), set(other_names)
    return names == other_names or {fold(name) for name in names} == {fold(name) for name in other_names}


def find(names):
    """The existing tags ``names`` name (any case), in one query; none is made."""
    from .models import CustomerTag

    folded = list(dict.fromkeys(filter(None, map(fold, names))))
    if not folded:
        return []
    return list(CustomerTag.all_tags.filter(bulk.any_of("folded_name", folded, "text")))


def resolve(names):
    """The tags ``names`` name, made where missing: ``{folded name: CustomerTag}``, in the
    order of ``names``. One query finds the existing ones (in any case, with their spelling);
    each missing one is made with the first spelling given. Raises ValidationError for a
    name longer than :data:`MAX_LENGTH`."""
    from .models import CustomerTag

    wanted = {name.casefold(): name for name in clean_names(names)}
    if not wanted:
        return {}
    existing = {
        tag.folded_name: tag for tag in CustomerTag.all_tags.filter(bulk.any_of("folded_name", list(wanted), "text"))
    }
    found = {}
    for folded, name in wanted.items():
        tag = existing.get(folded)
        if tag is None:
            # Two requests making the same new tag at once: the second finds the first's.
            tag, _created = CustomerTag.all_tags.get_or_create(folded_name=folded, defaults={"name": name})
        found[folded] = tag
    return found
