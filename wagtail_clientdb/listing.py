"""The customer listing as a queryset: what a viewer sees, with effective values, filters,
search and ordering. The admin listing, its exports (direct or in the background) and
the export command all build it here.
"""

import json
import sys
from typing import NamedTuple

from django.core.exceptions import EmptyResultSet
from django.core.paginator import EmptyPage, PageNotAnInteger
from django.db import connections
from django.db.models import Case, Exists, F, FilteredRelation, OuterRef, Prefetch, Q, Value, When
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual, LessThan, StartsWith
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from wagtail.admin.paginator import WagtailPaginator

from . import archive, conf, overrides, scope, search
from .models import ClientDBSettings, CustomerOverride, DeletionRequest, DeletionStatus
from .name_order import NameKey
from .page_queries import page_settings

#: Sort keys of the listing → the fields they order by (ties broken by pk).
ORDERINGS = {
    "name": [NameKey("eff_last_name"), NameKey("eff_first_name")],
    "email": ["eff_email"],
    "bookings_count": ["bookings_count"],
    "created_at": ["created_at"],
}
DEFAULT_ORDERING = "name"


def listing_queryset(viewer, branch):
    """Visible customers with what the listing shows, in a constant number of queries.

    ``branch`` is the branch whose values are shown (the viewer's, or the location a
    manager picked); ``None`` shows the company record.
    """
    queryset = overrides.with_effective_values(scope.visible_customers(viewer), branch)
    # "Most bookings": appointments that took or will take place, not the cancelled ones,
    # in the branch whose values are shown, or in all (kept by booking_counts).
    if branch is None:
        bookings = F("bookings_total")
    else:
        queryset = queryset.annotate(
            bookings_here=FilteredRelation("branch_bookings", condition=Q(branch_bookings__branch=branch))
        )
        bookings = Coalesce("bookings_here__count", 0)
    open_deletion = DeletionRequest.objects.filter(
        customer=OuterRef("pk"), status__in=[DeletionStatus.PENDING, DeletionStatus.BLOCKED]
    )
    return (
        queryset.annotate(bookings_count=bookings, is_pending_deletion=Exists(open_deletion))
        .select_related("home_branch")
        # The tags as a list (``listed_tags``): kept as taggit's manager, each row's tags built a
        # query of their own, never run, to hold what the prefetch had read.
        .prefetch_related("groups", Prefetch("tags", to_attr="listed_tags"), "branches")
    )


def tag_names(customer):
    """The names of a listed customer's tags (prefetched by :func:`listing_queryset`), A→Z."""
    return sorted(tag.name for tag in customer.listed_tags)


def order(queryset, ordering, query=""):
    """``queryset`` in ``ordering``; a search (``query``) in name order lists first the customers
    of :func:`listed_first`."""
    ordering = ordering if ordering and ordering.lstrip("-") in ORDERINGS else DEFAULT_ORDERING
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    fields = [F(f) if isinstance(f, str) else f for f in ORDERINGS[key]]
    if key == "bookings_count":
        # "Most bookings": the count decides, then the name, always A→Z.
        first = fields[0].desc() if descending else fields[0].asc()
        return queryset.order_by(first, *ORDERINGS["name"], "pk")
    fields = [f.desc() if descending else f.asc() for f in fields]
    if ordering == "name" and first_word(query):
        fields.insert(0, Case(When(listed_first(query), then=0), default=1).asc())
    return queryset.order_by(*fields, "-pk" if descending else "pk")


def listed_first(query):
    """The matches of a search in name order that are listed first: those whose last name (as
    the branch sees it) starts with the search's longest word, and that match its other words.

    Those ("Schm": Schmid, Schmidt, Schmitz) are what the front desk typed it for, so they come
    first, then every other match (Aschmann, an email address with "schm" in it), each part in name
    order. The first part is read from the name index a page at a time; sorting every match
    first cost a common name's 70,000 rows."""
    return starts_with(NameKey("eff_last_name"), first_word(query)) & _other_words_q(query)


def first_word(query):
    """The word a search looks for at the start of last names (lowercased): its longest, if it
    can start one; a phone number or an email address has no customers listed first."""
    word = search.longest_word(query) if query.split() else ""
    return word.lower() if any(character.isalpha() for character in word) and "@" not in word else None


def _other_words_q(query):
    """Every word of a search but the longest, in the names or email the branch sees."""
    terms = query.split()
    terms.remove(search.longest_word(query))
    condition = Q()
    for term in terms:
        condition &= search.name_q(term, prefix="eff_")
    return condition


def starts_with(key, prefix):
    """``key`` starts with ``prefix``, as a range of the name index (the names from ``prefix`` up
    to the next string of its length) that the index answers, and the exact check within it."""
    condition = Q(GreaterThanOrEqual(key, prefix), StartsWith(key, prefix))
    if ord(prefix[-1]) < sys.maxunicode:
        condition &= Q(LessThan(key, prefix[:-1] + chr(ord(prefix[-1]) + 1)))
    return condition


def searched(queryset, query, phone_region=None):
    if not query:
        return queryset
    region = phone_region or ClientDBSettings.load().default_phone_region
    return queryset.filter(search.customer_search_q(query, region))


def display_branch(viewer, filters):
    """The branch whose values a listing shows: the staff's own, or a manager's chosen location."""
    if not viewer.is_manager:
        return viewer.branch
    if filters is not None and filters.is_valid():
        return filters.form.cleaned_data.get("branch")
    return None


def filtered(filters, queryset, *, strict=False):
    """The filters in force. Filters the form refuses (shown with their errors) are not
    applied, but archived customers stay out all the same, as by default; ``strict`` (a
    saved segment) lists nobody instead, so that a rule never widens to everyone."""
    if filters is not None and filters.is_valid():
        return filters.filter_queryset(queryset)
    if strict:
        return queryset.none()
    return archive.in_list(queryset)


def customers_as_listed(viewer, params, *, strict=False):
    """The listing of ``viewer`` for query parameters ``params`` (filters, ``q``, ``ordering``)."""
    return listed(viewer, params, strict=strict)[0]


def listed(viewer, params, *, strict=False):
    """The listing of ``viewer`` for ``params``, and the branch whose values it shows.

    Filters that do not hold for the viewer (a tag none of its customers carries, a group
    deleted since) are left out, as the admin listing leaves them out; ``strict`` (a saved
    segment) lists nobody instead, so that a rule never widens to everyone.
    """
    from .filters import CustomerFilterSet

    filters = CustomerFilterSet(data=params, viewer=viewer, only_named=True)
    branch = display_branch(viewer, filters)
    queryset = filtered(filters, listing_queryset(viewer, branch), strict=strict)
    query = params.get("q", "").strip()
    return order(searched(queryset, query), params.get("ordering"), query), branch


class Segment:
    """Customers of a listing in one stretch of its order, read a page at a time by their keys.

    ``parts`` are querysets of disjoint customers, each annotated with the sort keys
    ``key_1``, ``key_2`` … and ``key_id``; their union in key order is the segment. Each part
    is read in its own order up to the end of the page — the name index walked until enough
    visible customers are found, or the few customers with local names sorted —, and only
    their keys are merged: paging costs index entries, not the whole scoped table.
    """

    def __init__(self, parts, order):
        """``order``: the sort keys, ``-`` before those that descend, ending with ``key_id``."""
        keys = [key.lstrip("-") for key in order]
        self.parts = [part.order_by(*order).prefetch_related(None).values_list(*keys) for part in parts]
        self.order_by = ", ".join(f"{key[1:]} DESC" if key.startswith("-") else key for key in order)

    def ids(self, offset, limit):
        if limit <= 0:
            return []
        connection = connections[self.parts[0].db]
        selects, params = [], []
        for number, part in enumerate(self.parts):
            part = part[: offset + limit]
            try:
                sql, part_params = part.query.get_compiler(connection=connection).as_sql()
            except EmptyResultSet:
                continue
            selects.append(f"SELECT * FROM ({sql}) part_{number}")
            params += part_params
        if not selects:
            return []
        query = f"SELECT key_id FROM ({' UNION ALL '.join(selects)}) listed ORDER BY {self.order_by} LIMIT %s OFFSET %s"
        with page_settings(connection.alias), connection.cursor() as cursor:
            cursor.execute(query, (*params, limit, offset))
            return [row[0] for row in cursor.fetchall()]

    def count(self):
        return sum(part.count() for part in self.parts)


def _name_keys(queryset, branch, descending, prefix=None):
    """The listing's name order as segments: a branch's local names need their own part.
    ``prefix``: only the customers whose last name, as the branch sees it, starts with it."""
    sign = "-" if descending else ""
    order = [f"{sign}key_1", f"{sign}key_2", f"{sign}key_id"]

    def keyed(part, last_name, first_name):
        part = part.annotate(key_1=NameKey(last_name), key_2=NameKey(first_name), key_id=F("pk"))
        return part.filter(starts_with(F("key_1"), prefix)) if prefix else part

    if branch is None:
        return [Segment([keyed(queryset, "last_name", "first_name")], order)]
    # Annotations, not filters, on the local values: they reuse the listing's join.
    queryset = queryset.annotate(
        local_last_name=F("branch_override__last_name"), local_first_name=F("branch_override__first_name")
    )
    # Customers without a local name here are read from the name index; the few with one
    # (a branch's local values are rare) are sorted by the names the branch sees. The few are
    # left out of the walk by their ids, not by the join of each customer's local values,
    # which PostgreSQL then drops: a probe per customer walked (20,000 for page 1000).
    local_name_ids = CustomerOverride.objects.filter(branch=branch).filter(
        Q(last_name__isnull=False) | Q(first_name__isnull=False)
    )
    own_names = keyed(queryset.exclude(pk__in=local_name_ids.values("customer_id")), "last_name", "first_name")
    local_names = keyed(
        queryset.filter(Q(local_last_name__isnull=False) | Q(local_first_name__isnull=False)),
        "eff_last_name",
        "eff_first_name",
    )
    return [Segment([own_names, local_names], order)]


def _sorted_matches(queryset, descending):
    """A search's matches in name order, sorted. The keys are those of the name index wrapped
    so that it cannot serve them: walking it, PostgreSQL expects the matches of a name spread
    over the alphabet and soon found, but they cluster in one stretch of it ("Schm…": most of
    the table walked, 1.6 s). The names are never null: the order is the listing's."""
    sign = "-" if descending else ""
    keyed = queryset.annotate(
        key_1=NameKey(Coalesce("eff_last_name", Value(""))),
        key_2=NameKey(Coalesce("eff_first_name", Value(""))),
        key_id=F("pk"),
    )
    return Segment([keyed], [f"{sign}key_1", f"{sign}key_2", f"{sign}key_id"])


def _search_segments(queryset, unsearched, branch, descending, query):
    """A search's matches in the order of :func:`order`: those of :func:`listed_first`, read
    from the name index, then the others, sorted. The first are read from the listing before
    the search (``unsearched``): they match it by what they are, and the search's conditions
    only make the planner expect a few and sort them all."""
    if descending or not first_word(query):
        return [_sorted_matches(queryset, descending)]
    first = _listed_first_segments(unsearched, branch, query)
    return [*first, _sorted_matches(queryset.exclude(listed_first(query)), False)]


def _listed_first_segments(unsearched, branch, query):
    """The matches of a search that are listed first (:func:`listed_first`), in name order, read
    from the name index of the listing before the search (``unsearched``)."""
    return _name_keys(unsearched.filter(_other_words_q(query)), branch, False, first_word(query))


def _segments(queryset, branch, ordering, query="", unsearched=None):
    key = ordering.lstrip("-")
    descending = ordering.startswith("-")
    if key == "name":
        if query:
            return _search_segments(queryset, unsearched, branch, descending, query)
        return _name_keys(queryset, branch, descending)
    if query:
        return None
    if key == "bookings_count" and branch is not None:
        # The branch's counts are kept for the customers it has bookings of, read from the
        # (branch, count) index; the others have none and come in name order after them
        # (before them for "fewest bookings").
        queryset = queryset.annotate(bookings_here_count=F("bookings_here__count"))
        counted = queryset.filter(bookings_here_count__gt=0).annotate(
            key_1=F("bookings_here_count"),
            key_2=NameKey("eff_last_name"),
            key_3=NameKey("eff_first_name"),
            key_id=F("pk"),
        )
        with_bookings = Segment([counted], ["-key_1" if descending else "key_1", "key_2", "key_3", "key_id"])
        uncounted = queryset.filter(Q(bookings_here_count__isnull=True) | Q(bookings_here_count=0))
        without = _name_keys(uncounted, branch, False)
        return [with_bookings, *without] if descending else [*without, with_bookings]
    return None


def page_ids(queryset, branch, ordering, offset, limit, *, query="", unsearched=None):
    """Ids of the customers ``offset`` to ``offset + limit`` of a listing in ``ordering``
    (a key of :data:`ORDERINGS`, ``-`` for descending), in order; ``query``: the search the
    listing shows, whose matches come in the order of :func:`order`, and ``unsearched`` the
    listing before it (by default ``queryset``: the same customers, read less directly).

    A search sorts its matches, found through the search indexes, instead of walking the
    name index from "A": the matches of a name cluster in one stretch of the alphabet, which
    such a walk reaches only after most customers.
    """
    ordering = ordering if ordering and ordering.lstrip("-") in ORDERINGS else DEFAULT_ORDERING
    unsearched = queryset if unsearched is None else unsearched
    segments = _segments(queryset, branch, ordering, query.strip(), unsearched)
    if segments is None:
        return list(order(queryset, ordering).values_list("pk", flat=True)[offset : offset + limit])
    ids = []
    for segment in segments:
        found = segment.ids(offset, limit - len(ids))
        ids += found
        if len(ids) == limit or segment is segments[-1]:
            break
        # The page goes on in the next segment: skip what is left of the offset there.
        offset = max(0, offset - segment.count()) if offset and not found else 0
    return ids


class Counted(NamedTuple):
    """How many customers a listing has, and how sure that number is."""

    number: int
    #: Not a count: the planner's estimate, or a number of pages to offer.
    is_estimate: bool = False
    #: What was counted of a listing the planner cannot estimate (:func:`planner_can_estimate`):
    #: there are more than this many.
    more_than: int | None = None

    @property
    def is_lower_bound(self):
        return self.more_than is not None

    @property
    def shown(self):
        """The number as a label shows it, grouped: an estimate to two significant digits
        ("680,000"), a lower bound as counted ("more than 10,000")."""
        if self.is_lower_bound:
            return number_format(self.more_than, force_grouping=True)
        return number_format(round_estimate(self.number) if self.is_estimate else self.number, force_grouping=True)

    @property
    def label(self):
        """The number as a list's column shows it: "about 680,000", "more than 1,000", "47"."""
        if self.is_lower_bound:
            return _("more than %(count)s") % {"count": self.shown}
        if self.is_estimate:
            return _("about %(count)s") % {"count": self.shown}
        return self.shown


def planner_can_estimate(params):
    """Whether PostgreSQL's planner can estimate how many customers the listing of ``params``
    has: one filtered only by :data:`~wagtail_clientdb.filters.ESTIMATED_FILTERS`, whose shares
    it reads from the columns' statistics. Not for a search (a name fragment's matches are
    guessed from a sample of a hundred names: "about 20,000" for 68,739), an attribute's value
    (a value inside the attributes' JSON, guessed from nothing: "about 42,000" for 95,154), a
    rule over visits or appointments ("about 41,000" with an upcoming appointment, for 209,537)
    or a dynamic group (a segment's rules)."""
    from .filters import ATTRIBUTE_FILTER_PREFIX, ESTIMATED_FILTERS, CustomerFilterSet, is_parameter_of
    from .models import CustomerGroup

    if params.get("q", "").strip():
        return False
    for name in params:
        if not any(value.strip() for value in params.getlist(name)):
            continue
        # A range filter's parameters carry a suffix (visits_min, created_after); the page, the
        # order and the columns shown are no filters.
        filter_name = next((f for f in CustomerFilterSet.base_filters if is_parameter_of(name, f)), None)
        if name.startswith(ATTRIBUTE_FILTER_PREFIX) or filter_name not in (None, *ESTIMATED_FILTERS):
            return False
    chosen_groups = [value for value in params.getlist("groups") if value.strip().isdigit()]
    return not (chosen_groups and CustomerGroup.objects.filter(pk__in=chosen_groups, segment__isnull=False).exists())


#: A guess of the planner (a search's matches, a rule over visits) this many times the limit is
#: taken to mean "more than the limit" without counting: twice the highest guess measured against
#: the truth (1.57 times it).
GUESS_WITHOUT_COUNTING = 3


def count(queryset, limit=None, *, estimable=True):
    """How many customers a listing has, as :class:`Counted`.

    Exact up to ``limit`` (by default ``LISTING_EXACT_COUNT_LIMIT``), which costs at most that
    many rows; above it on PostgreSQL, the planner's estimate, as large admin tools do: an exact
    count of a branch's 680,000 customers reads all of them on every page. Where the planner
    expects twice the limit, its estimate is taken without counting at all: read from the
    statistics, it was within 11 % of the exact count for every such listing measured, and
    counting 10,001 of a group's members only to learn that there are more cost 18–40 ms of a
    page.

    A listing the planner can only guess (``estimable`` false, see :func:`planner_can_estimate`)
    has "more than the limit" above it, never the guess; without counting where the guess is
    :data:`GUESS_WITHOUT_COUNTING` times the limit (its guesses were 0.11–1.57 of the exact count:
    too low far more often than too high; counting 10,001 of a branch's 562,704 customers who never
    came cost 100 ms, of a branch's "Schm" matches 46 ms). So has a listing whose estimate
    the count proved too low.
    """
    limit = limit or conf.get("LISTING_EXACT_COUNT_LIMIT")
    pks = keys(queryset)
    connection = connections[pks.db]
    estimate = None
    if pks.query.is_empty():
        return Counted(0)
    if connection.vendor == "postgresql":
        plan = pks.explain(format="json")
        if not plan:
            # Django runs nothing for a condition that holds for nobody (a dynamic group whose
            # rule does not hold for the viewer, inside another condition).
            return Counted(0)
        estimate = round(json.loads(plan)[0]["Plan"]["Plan Rows"])
        if estimable and estimate > 2 * limit:
            return Counted(estimate, is_estimate=True)
        if not estimable and estimate > GUESS_WITHOUT_COUNTING * limit:
            return Counted(limit + 1, is_estimate=True, more_than=limit)
    with page_settings(pks.db):
        counted = pks[: limit + 1].count()
    if counted <= limit:
        return Counted(counted)
    if connection.vendor != "postgresql":
        return Counted(count_exactly(queryset))
    if not estimable or estimate <= limit:
        # An estimate under what was counted is wrong: only the count holds.
        return Counted(limit + 1, is_estimate=True, more_than=limit)
    return Counted(estimate, is_estimate=True)


def in_order(rows, ids):
    """The customers of ``rows`` with ``ids``, in the order of ``ids`` (one query): a page found
    by :func:`page_ids`."""
    found = rows.in_bulk(ids)
    return [found[pk] for pk in ids if pk in found]


def keys(queryset):
    """The pks of a listing's customers, as a subquery (no order, no prefetching)."""
    return queryset.order_by().prefetch_related(None).values("pk")


def count_exactly(queryset):
    return keys(queryset).count()


def has_more_than(queryset, limit):
    return keys(queryset)[: limit + 1].count() > limit


class ListingPaginator(WagtailPaginator):
    """Pages of the customer listing that cost what the page costs, not what the table costs:
    an estimated count above a threshold (labelled "about"), and each page found by its sort
    keys (:func:`page_ids`) before its customers are read in full."""

    def __init__(self, object_list, per_page, *, rows, branch, ordering, query="", unsearched=None, estimable=True, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        #: The listing before filters and search: a page's customers are read from it by id.
        self.rows = rows
        self.branch = branch
        self.ordering = ordering
        #: The search shown, if any, and the listing before it.
        self.query = query
        self.unsearched = unsearched
        #: Whether the planner can estimate the count (:func:`planner_can_estimate`).
        self.estimable = estimable

    @cached_property
    def counted(self):
        if not self.query:
            return count(self.object_list, estimable=self.estimable)
        limit = conf.get("LISTING_SEARCH_EXACT_COUNT_LIMIT")
        if connections[self.object_list.db].vendor == "postgresql" and self._listed_first_exceed(limit):
            return Counted(limit + 1, is_estimate=True, more_than=limit)
        return count(self.object_list, limit, estimable=self.estimable)

    def _listed_first_exceed(self, limit):
        """Whether more than ``limit`` of a search's matches are listed first (:func:`listed_first`),
        counted along the name index: a common name's matches ("Schm": 72,000 last names, 69,000
        email addresses at a million customers) are otherwise all found through the search
        indexes before a count can stop, 28 ms of a page."""
        if not first_word(self.query):
            return False
        unsearched = self.object_list if self.unsearched is None else self.unsearched
        counted = 0
        with page_settings(self.object_list.db):
            for segment in _listed_first_segments(unsearched, self.branch, self.query):
                for part in segment.parts:
                    counted += part[: limit + 1 - counted].count()
                    if counted > limit:
                        return True
        return False

    @cached_property
    def count(self):
        return self.counted.number

    @property
    def count_is_estimate(self):
        return self.counted.is_estimate

    @property
    def count_is_lower_bound(self):
        return self.counted.is_lower_bound

    @property
    def estimated_count(self):
        """The estimate as shown ("680,000"; the "10,000" of "more than 10,000")."""
        return self.counted.shown

    @cached_property
    def items_count_label(self):
        if self.count_is_lower_bound:
            return _("more than %(count)s %(customers)s") % {"count": self.estimated_count, "customers": self.verbose_name_plural}
        if self.count_is_estimate:
            return _("about %(count)s %(customers)s") % {"count": self.estimated_count, "customers": self.verbose_name_plural}
        return super().items_count_label

    def validate_number(self, number):
        # Not a number: refused before the count, which Django 6 asks for first.
        try:
            number = int(number) if str(number).strip().isdecimal() else None
        except ValueError:  # more digits than Python converts
            number = None
        if number is None:
            raise PageNotAnInteger(self.error_messages["invalid_page"])
        if number == 1 and self.allow_empty_first_page:
            # The first page is there however many customers there are: page() counts them
            # only if they fill it.
            return 1
        try:
            return super().validate_number(number)
        except EmptyPage:
            if not self.count_is_estimate or number < 1:
                raise
            # An estimate may be too low (the next page of one that reached it): the page is
            # looked for, and the count corrected by what it holds (page()).
            return number

    def page(self, number):
        number = self.validate_number(number)
        offset = (number - 1) * self.per_page
        ids = page_ids(
            self.object_list, self.branch, self.ordering, offset, self.per_page, query=self.query, unsearched=self.unsearched
        )
        if offset == 0 and len(ids) < self.per_page:
            # The whole listing is on its first page (a phone number, an email address found):
            # that is its count, without asking the search indexes a second time.
            self._set_count(len(ids), estimate=False)
        elif self.count_is_estimate and not self._estimate_holds(offset, ids):
            return self.page(min(number, self.num_pages))
        return self._get_page(in_order(self.rows, ids), number, self)

    def _estimate_holds(self, offset, ids):
        """Correct an estimated count where a page proves it wrong; ``False`` if the page
        asked for lies beyond the real end."""
        if len(ids) == self.per_page:
            if offset + len(ids) >= self.count:
                # More customers than estimated: there is at least one more page.
                self._set_count(offset + len(ids) + 1, estimate=True)
            return True
        if ids:
            self._set_count(offset + len(ids), estimate=False)
            return True
        self._set_count(count_exactly(self.object_list), estimate=False)
        return offset == 0

    def _set_count(self, number, *, estimate):
        # An estimate raised by a page that reaches it keeps what was counted, which still holds.
        self.counted = Counted(number, estimate, self.counted.more_than if estimate else None)
        self.count = number
        for shown in ("num_pages", "items_count_label"):
            self.__dict__.pop(shown, None)


def round_estimate(number):
    """An estimate to two significant digits (679,412 → 680,000): no false precision."""
    return round(number, 2 - len(str(number)))
