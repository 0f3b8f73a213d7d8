"""Customer search: by name, email and phone typed in any common format.

Works on querysets annotated by :func:`wagtail_clientdb.overrides.with_effective_values`,
so a branch finds its customers by the values it sees.

The values a branch sees are computed per row (its local value, else the record's), which
no index can search. So a search first narrows the customers to *candidates*: those whose
own values, or some branch's local values, match — a superset of the answer, found through
indexes (trigram indexes on PostgreSQL, migration 0011) — and then checks the values the
branch sees on those few rows only.
"""

from django.db.models import Q

from .contact import phone_search_terms
from .models import Customer, CustomerOverride


def customer_search_q(query, phone_region):
    terms = query.split()
    by_name = Q()
    for term in terms:
        by_name &= (
            Q(eff_first_name__icontains=term) | Q(eff_last_name__icontains=term) | Q(eff_email__icontains=term)
        )
    # Every match contains the longest term somewhere: the most selective way in.
    candidates = _matching_ids(_name_q(max(terms, key=len))) if terms else None
    e164, digits = phone_search_terms(query, phone_region)
    if digits is None:
        return _within(candidates, by_name)
    by_phone = Q(eff_phone__contains=digits) | Q(eff_phone_raw__icontains=query.strip())
    phone_q = Q(phone__contains=digits) | Q(phone_raw__icontains=query.strip())
    if e164:
        by_phone |= Q(eff_phone=e164)
        phone_q |= Q(phone=e164)
    phone_candidates = _matching_ids(phone_q)
    candidates = phone_candidates if candidates is None else candidates.union(phone_candidates)
    return _within(candidates, by_name | by_phone)


def _name_q(term):
    return Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(email__icontains=term)


def _matching_ids(q):
    """Ids of customers whose own values match ``q``, or whose local values in some branch do."""
    own = Customer.objects.filter(q).order_by().values("pk")
    return own.union(CustomerOverride.objects.filter(q).order_by().values("customer_id"))


def _within(candidates, exact):
    return exact if candidates is None else Q(pk__in=candidates) & exact
