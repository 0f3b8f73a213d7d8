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

from . import bulk
from .contact import phone_search_terms
from .models import Customer, CustomerOverride


#: Up to how many customers with matching local values a search names by id; more are found
#: by a subquery, with the customers whose own values match.
MAX_NAMED_LOCAL_MATCHES = 5000


def customer_search_q(query, phone_region):
    terms = query.split()
    if not terms:
        return Q()
    by_name = Q()
    for term in terms:
        by_name &= (
            Q(eff_first_name__icontains=term) | Q(eff_last_name__icontains=term) | Q(eff_email__icontains=term)
        )
    # Every match contains the longest term somewhere: the most selective way in.
    candidates, exact = _name_q(max(terms, key=len)), by_name
    e164, digits = phone_search_terms(query, phone_region)
    if digits is not None:
        candidates |= _phone_q(query, e164, digits)
        exact |= _phone_q(query, e164, digits, prefix="eff_")
    return _matching(candidates) & exact


def _name_q(term):
    return Q(first_name__icontains=term) | Q(last_name__icontains=term) | Q(email__icontains=term)


def _phone_q(query, e164, digits, prefix=""):
    """The phone number typed in any format: its digits anywhere, as typed, or the number itself."""
    found = Q(**{f"{prefix}phone__contains": digits}) | Q(**{f"{prefix}phone_raw__icontains": query.strip()})
    return found | Q(**{f"{prefix}phone": e164}) if e164 else found


def _matching(q):
    """Customers whose own values match ``q``, or whose local values in some branch do.

    The own values through their indexes, and the few customers with matching local values
    named by id (read first), in one condition the indexes answer together: the matches are
    read once, in the table's order. As ``id IN (own matches UNION local matches)``, a common
    name's 72,000 matches were read twice, and then each one again by its id (0.6 s)."""
    local = CustomerOverride.objects.filter(q).order_by().values("customer_id")
    ids = list(local.values_list("customer_id", flat=True)[: MAX_NAMED_LOCAL_MATCHES + 1])
    if len(ids) > MAX_NAMED_LOCAL_MATCHES:
        return Q(pk__in=Customer.objects.filter(q).order_by().values("pk").union(local))
    return q | Q(bulk.any_of("pk", sorted(set(ids)))) if ids else q
