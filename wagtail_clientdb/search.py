"""Customer search: by name, email and phone typed in any common format.

Works on querysets annotated by :func:`wagtail_clientdb.overrides.with_effective_values`,
so a branch finds its customers by the values it sees.

The values a branch sees are computed per row (its local value, else the record's), which
no index can search. So a search first narrows the customers to *candidates*: those whose
own values, or some branch's local values, match — a superset of the answer, found through
indexes (trigram indexes on PostgreSQL, migration 0011, and the customers with matching local
values named by id) — and then checks the values the branch sees on those rows only.
"""

from django.db.models import Q

from . import overrides
from .contact import phone_search_terms


def customer_search_q(query, phone_region):
    terms = query.split()
    if not terms:
        return Q()
    by_name = Q()
    for term in terms:
        by_name &= name_q(term, prefix="eff_")
    phone_terms = phone_search_terms(query, phone_region)
    if phone_terms[1] is not None:
        # A phone number typed in parts ("030 1234567"): its digits find it, not each part.
        phone = _phone_q(query, *phone_terms)
        candidates = overrides.own_or_local_values_match(name_q(longest_word(query)) | phone)
        return candidates & (by_name | _phone_q(query, *phone_terms, prefix="eff_"))
    # Every match holds each word somewhere: the candidates of each word, which the indexes
    # intersect before a row is read. By the longest word alone, "Anna Schmidt" read all
    # 48,000 Schmidts to find 720 Annas among them.
    candidates = Q()
    for term in terms:
        candidates &= overrides.own_or_local_values_match(name_q(looked_up_by(term)))
    return candidates & by_name


def longest_word(query):
    return max(query.split(), key=len)


#: The fewest characters before the "@" of an email address that the candidates are looked up by.
ADDRESS_OWN_PART = 3


def looked_up_by(term):
    """The part of ``term`` that the candidates of a search are looked up by: the term itself,
    but of an email address, its own part up to the "@" (``anna.schmidt@``). Whatever holds the
    address holds that part, so the candidates stay a superset of the matches, which are then
    checked against the whole address. The domain is what every customer of a mail provider
    shares: its trigrams are in most rows, and looking them up took 54 ms of a full address's
    62 at a million customers (8 ms without), for the count and the page alike."""
    own_part, at, _domain = term.partition("@")
    return own_part + at if at and len(own_part) >= ADDRESS_OWN_PART else term


def name_q(term, prefix=""):
    """``term`` anywhere in the first name, last name or email (``prefix="eff_"``: as the branch sees them)."""
    return (
        Q(**{f"{prefix}first_name__icontains": term})
        | Q(**{f"{prefix}last_name__icontains": term})
        | Q(**{f"{prefix}email__icontains": term})
    )


def _phone_q(query, e164, digits, start, prefix=""):
    """The phone number typed in any format (:func:`~wagtail_clientdb.contact.phone_search_terms`):
    from its beginning or its digits anywhere, as typed, or the number itself."""
    by_digits = Q(**{f"{prefix}phone__startswith": start}) if start else Q(**{f"{prefix}phone__contains": digits})
    found = by_digits | Q(**{f"{prefix}phone_raw__icontains": query.strip()})
    return found | Q(**{f"{prefix}phone": e164}) if e164 else found
