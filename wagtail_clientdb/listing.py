"""The customer listing as a queryset: what a viewer sees, with effective values, filters,
search and ordering. The admin listing, its exports (direct or in the background) and
the export command all build it here.
"""

from django.db.models import Exists, F, FilteredRelation, OuterRef, Q
from django.db.models.functions import Coalesce, Lower

from . import overrides, scope
from .models import ClientDBSettings, DeletionRequest, DeletionStatus
from .search import customer_search_q

#: Sort keys of the listing → the fields they order by (ties broken by pk).
ORDERINGS = {
    "name": [Lower("eff_last_name"), Lower("eff_first_name")],
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
        .prefetch_related("groups", "tags", "branches")
    )


def order(queryset, ordering):
    ordering = ordering if ordering and ordering.lstrip("-") in ORDERINGS else DEFAULT_ORDERING
    descending = ordering.startswith("-")
    key = ordering.lstrip("-")
    fields = [F(f) if isinstance(f, str) else f for f in ORDERINGS[key]]
    if key == "bookings_count":
        # "Most bookings": the count decides, then the name, always A→Z.
        first = fields[0].desc() if descending else fields[0].asc()
        return queryset.order_by(first, *ORDERINGS["name"], "pk")
    fields = [f.desc() if descending else f.asc() for f in fields]
    return queryset.order_by(*fields, "-pk" if descending else "pk")


def search(queryset, query, phone_region=None):
    if not query:
        return queryset
    region = phone_region or ClientDBSettings.load().default_phone_region
    return queryset.filter(customer_search_q(query, region))


def display_branch(viewer, filters):
    """The branch whose values a listing shows: the staff's own, or a manager's chosen location."""
    if not viewer.is_manager:
        return viewer.branch
    if filters is not None and filters.is_valid():
        return filters.form.cleaned_data.get("branch")
    return None


def customers_as_listed(viewer, params):
    """The listing of ``viewer`` for query parameters ``params`` (filters, ``q``, ``ordering``)."""
    from .filters import CustomerFilterSet

    filters = CustomerFilterSet(data=params, viewer=viewer)
    queryset = listing_queryset(viewer, display_branch(viewer, filters))
    if filters.is_valid():
        queryset = filters.filter_queryset(queryset)
    return order(search(queryset, params.get("q", "").strip()), params.get("ordering"))
