"""Customer search: by name, email and phone typed in any common format.

Works on querysets annotated by :func:`wagtail_clientdb.overrides.with_effective_values`,
so a branch finds its customers by the values it sees.
"""

from django.db.models import Q

from .contact import phone_search_terms


def customer_search_q(query, phone_region):
    terms = query.split()
    by_name = Q()
    for term in terms:
        by_name &= (
            Q(eff_first_name__icontains=term) | Q(eff_last_name__icontains=term) | Q(eff_email__icontains=term)
        )
    e164, digits = phone_search_terms(query, phone_region)
    if digits is None:
        return by_name
    by_phone = Q(eff_phone__contains=digits) | Q(eff_phone_raw__icontains=query.strip())
    if e164:
        by_phone |= Q(eff_phone=e164)
    return by_name | by_phone
