"""Who is in a customer group.

A *manual* group has the members people put in it. A *dynamic* group has a segment instead
(:mod:`wagtail_clientdb.segments`): its members are the customers the segment finds, always
up to date, evaluated in the scope of whoever asks, like the segment itself (a branch sees the
members among its customers, with its local values). Nothing is stored for a dynamic group.

Every reader of membership asks here, so that both kinds work alike: the listing's group filter
and column, the export, the inspect view, the API, the group listing's counts, and the booking
page's default group. The number of queries does not grow with the number of customers: one per
dynamic group at most, and a listing's page runs only the rules it has time for
(:func:`attach_names`).
"""

import time

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import QueryDict
from django.utils.translation import gettext as _

from . import attributes, bulk, listing, scope, segments, versions, visits
from .models import Customer, CustomerGroup, Segment, SegmentVisibility

#: The listing's query parameter of the group filter (:class:`~.filters.CustomerFilterSet`).
GROUPS_PARAM = "groups"

Membership = Customer.groups.through


def touch_members(group):
    """A renamed or deleted group changes what its members show (their ``groups``): their
    version and ``updated_at`` move, so a copy kept through the API reads them again. The
    members chosen by hand; a dynamic group's follow its rule, which stores nothing."""
    versions.touch(Membership.objects.filter(customergroup_id=group.pk).values("customer_id"))


def manual_groups():
    return CustomerGroup.objects.filter(segment__isnull=True)


def dynamic_groups():
    return CustomerGroup.objects.filter(segment__isnull=False).select_related("segment").order_by("name")


def settable(groups):
    """The groups of ``groups`` whose members are chosen by hand: a dynamic group named where
    groups are set (an import's Groups column, the API) changes nothing, since its members
    follow its rule (an export lists it, and re-imports unchanged)."""
    return [group for group in groups if not group.is_dynamic]


def member_keys(viewer, group):
    """The pks of the group's members, as a subquery. For a dynamic group, those ``viewer``
    sees; for a manual one, all of them (the callers filter a scoped queryset)."""
    if group.is_dynamic:
        return listing.keys(segments.customers(viewer, group.segment))
    return Membership.objects.filter(customergroup=group).values("customer")


def members(viewer, group):
    """The customers of the group that ``viewer`` sees."""
    return scope.visible_customers(viewer).filter(pk__in=member_keys(viewer, group))


def is_member(viewer, group, customer):
    return members(viewer, group).filter(pk=customer.pk).exists()


def in_any_q(viewer, groups):
    """A filter "in one of ``groups``" on customers: one subquery for the manual groups, one per
    dynamic group."""
    manual = [group for group in groups if not group.is_dynamic]
    with attributes.definitions_read_once():
        conditions = [Q(pk__in=member_keys(viewer, group)) for group in groups if group.is_dynamic]
    if manual:
        conditions.append(Q(pk__in=Membership.objects.filter(customergroup__in=manual).values("customer")))
    found = Q(pk__in=[])
    for condition in conditions:
        found |= condition
    return found


#: The dynamic groups whose rules are always run for a listing's page, however long they take.
ALWAYS_NAMED = 3


def names_by_customer(viewer, pks, *, manual=None, members_of=(), dynamic=None):
    """``{pk: [group names, sorted]}`` of the customers ``pks``, the dynamic groups as ``viewer``
    sees them. ``manual``: the names of the manual groups already read ({pk: names});
    ``members_of``: groups every one of ``pks`` is known to be in (a listing filtered by a
    group), whose rules need not be run again; ``dynamic``: the dynamic groups to name
    (default: all)."""
    names, _left = _names(viewer, pks, manual, members_of, dynamic)
    return names


def _names(viewer, pks, manual, members_of, dynamic, deadline=None):
    """:func:`names_by_customer`, and the dynamic groups whose rules were not run: after the
    first :data:`ALWAYS_NAMED`, none is started once ``time.perf_counter()`` passes ``deadline``."""
    pks = list(pks)
    names = {pk: list(found) for pk, found in (manual or {}).items()}
    if manual is None:
        rows = Membership.objects.filter(bulk.any_of("customer_id", pks), customergroup__segment__isnull=True)
        for pk, name in rows.values_list("customer_id", "customergroup__name"):
            names.setdefault(pk, []).append(name)
    known = {group.pk for group in members_of if group.is_dynamic}
    left = []
    if pks:
        run = 0
        # The rules' conditions on appointments look at these customers' appointments only.
        with attributes.definitions_read_once(), visits.only_customers(pks):
            for group in dynamic_groups() if dynamic is None else dynamic:
                if group.pk in known:
                    found = pks
                elif deadline is not None and run >= ALWAYS_NAMED and time.perf_counter() > deadline:
                    left.append(group)
                    continue
                else:
                    found = member_keys(viewer, group).filter(bulk.any_of("pk", pks)).values_list("pk", flat=True)
                    run += 1
                for pk in found:
                    names.setdefault(pk, []).append(group.name)
    return {pk: sorted(found) for pk, found in names.items()}, left


def attach_names(viewer, customers, *, members_of=(), deadline=None):
    """Set ``group_names`` on each customer (of the listing's queryset, whose manual groups are
    prefetched): the names of the groups it is in, as ``viewer`` sees them. ``members_of``: as
    for :func:`names_by_customer`. With a ``deadline`` (a ``time.perf_counter()`` value) the rules
    of the dynamic groups are run only until then, the first :data:`ALWAYS_NAMED` always: each
    builds its segment's listing (4–8 ms at a million customers), and a page of twenty customers must not wait for
    twenty groups. Returns the customers and the dynamic groups left out of their names."""
    customers = list(customers)
    manual = {c.pk: [g.name for g in c.groups.all() if not g.is_dynamic] for c in customers}
    names, left = _names(viewer, list(manual), manual, members_of, dynamic=None, deadline=deadline)
    for customer in customers:
        customer.group_names = names.get(customer.pk, [])
    return customers, left


def names_of(viewer, customer):
    return names_by_customer(viewer, [customer.pk]).get(customer.pk, [])


def count_members(viewer, group, limit=None):
    """How many members of the group ``viewer`` sees, as a listing counts them
    (:class:`~wagtail_clientdb.listing.Counted`: exact up to ``limit``)."""
    estimable = listing.planner_can_estimate(group.segment.params) if group.is_dynamic else True
    return listing.count(members(viewer, group), limit, estimable=estimable)


def join_default_group(customer):
    """An online booker who is new joins the default group. A dynamic default group needs nothing
    written: the customer is a member whenever it meets the group's rule."""
    group = CustomerGroup.objects.filter(is_default=True).first()
    if group is not None and not group.is_dynamic:
        customer.groups.add(group)


# --- Rules of dynamic groups ------------------------------------------------------------------------------


def group_ids_in(params):
    ids = set()
    for value in params.getlist(GROUPS_PARAM):
        try:
            ids.add(int(value))
        except ValueError:
            pass
    return ids


def check_rule(group, segment, query=None):
    """Refuse a rule by which the group's members would depend on the group itself: its segment
    (with ``query`` instead of the stored one) filtering by the group, directly or through other
    dynamic groups. And a dynamic group belongs to the company: its segment must be shared with
    the whole company, whose rule everyone may read."""
    if segment.visibility != SegmentVisibility.COMPANY:
        raise ValidationError(
            _("“%(segment)s” is not shared with the whole company. A dynamic group needs a company segment.")
            % {"segment": segment}
        )
    if group.pk is None:
        return
    seen = {segment.pk}
    pending = [QueryDict(query) if query is not None else segment.params]
    while pending:
        ids = group_ids_in(pending.pop())
        if group.pk in ids:
            raise ValidationError(
                _(
                    "The members of “%(group)s” cannot depend on the group itself: its segment filters by this "
                    "group, directly or through another dynamic group."
                )
                % {"group": group}
            )
        for other in Segment.objects.filter(groups__pk__in=ids).exclude(pk__in=seen).distinct():
            seen.add(other.pk)
            pending.append(other.params)
