"""Saved filters (segments): the customer listing's filters, search and order under a name,
private or shared with a branch or with the company.

A segment keeps the listing's query string, not a fixed set of fields, so that it works with
every filter of the listing, those added later too. It is always evaluated in the scope of
whoever looks at it, never in its creator's: :func:`customers` builds the listing of the
viewer (:func:`wagtail_clientdb.listing.customers_as_listed`) with the segment's parameters.
A parameter the viewer's listing does not offer (the "Location" filter for branch staff) is
ignored as the listing ignores it; a filter that does not hold for the viewer (a tag none of
its customers carries) finds nobody. The admin, the export, the API and dynamic customer
groups all read segments here.
"""

import contextvars

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext as _

from . import listing, scope
from .models import Customer, Segment, SegmentVisibility

#: Parameters of the listing that are no filter but belong to a segment: search and order.
SEARCH_AND_ORDER = ("q", "ordering")

#: Segments being evaluated in this context: a rule that reaches itself again (through dynamic
#: groups) finds nobody there instead of recursing without end.
_evaluating = contextvars.ContextVar("wagtail_clientdb_segments_evaluating", default=frozenset())


def listing_param_names():
    """Every query parameter the customer listing reads: its filters (each part of a range
    filter), search and order. Taken from the listing's filters as a manager sees them (all of
    them), so that filters added to the listing later are kept too."""
    from .filters import CustomerFilterSet

    names = set(SEARCH_AND_ORDER)
    for name, field in CustomerFilterSet(viewer=scope.Viewer(None, True)).form.fields.items():
        widget = field.widget
        if getattr(widget, "suffixes", None):
            names.update(widget.suffixed(name, suffix) for suffix in widget.suffixes)
        elif getattr(widget, "widgets_names", None):
            names.update(name + suffix for suffix in widget.widgets_names)
        else:
            names.add(name)
    return names


def clean_query(params):
    """The listing's query parameters of ``params`` (a QueryDict or a query string) as a query
    string: its filters, search and order; paging, exports and anything else left out."""
    if isinstance(params, str):
        params = QueryDict(params)
    known = listing_param_names()
    kept = QueryDict(mutable=True)
    for name in sorted(params):
        if name not in known:
            continue
        values = [value.strip() for value in params.getlist(name) if value.strip()]
        if name == "ordering":
            values = [value for value in values[:1] if value.lstrip("-") in listing.ORDERINGS]
        if values:
            kept.setlist(name, values)
    return kept.urlencode()


def check_query(viewer, query):
    """Refuse a query whose filters the viewer's listing would not accept (a group deleted
    meanwhile, a number where a date belongs), naming each filter and its problem."""
    from .filters import CustomerFilterSet

    filters = CustomerFilterSet(data=QueryDict(query), viewer=viewer)
    if filters.is_valid():
        return
    labels = {name: field.label for name, field in filters.form.fields.items()}
    raise ValidationError(
        [
            _("%(filter)s: %(problem)s") % {"filter": labels.get(name, name), "problem": " ".join(problems)}
            for name, problems in filters.form.errors.items()
        ]
    )


# --- Who sees and changes which segment -------------------------------------------------------------------


def visible_segments(viewer, queryset=None):
    """The viewer's own private segments, those of its branches (all of them for managers),
    and the company's."""
    queryset = Segment.objects.all() if queryset is None else queryset
    seen = Q(visibility=SegmentVisibility.COMPANY)
    if viewer.is_manager:
        seen |= Q(visibility=SegmentVisibility.BRANCH)
    elif viewer.branches:
        seen |= Q(visibility=SegmentVisibility.BRANCH, branch__in=viewer.branches)
    if viewer.user is not None and viewer.user.pk is not None:
        seen |= Q(visibility=SegmentVisibility.PRIVATE, owner=viewer.user)
    return queryset.filter(seen)


def may_change(viewer, segment):
    """Its owner changes a segment; managers change the shared ones too."""
    owner = viewer.user is not None and segment.owner_id is not None and segment.owner_id == viewer.user.pk
    return owner or (viewer.is_manager and segment.visibility != SegmentVisibility.PRIVATE)


def sharing_choices(viewer):
    """The visibilities the viewer may give a segment: staff keep it private or share it with
    their branch; managers share it with any branch or the whole company."""
    if viewer.is_manager:
        return list(SegmentVisibility)
    if viewer.branches:
        return [SegmentVisibility.PRIVATE, SegmentVisibility.BRANCH]
    return [SegmentVisibility.PRIVATE]


def sharing_branches(viewer):
    return scope.visible_branches(viewer).order_by("name")


def check_sharing(viewer, visibility, branch):
    """Refuse a sharing the viewer may not choose; returns the branch to keep (``None`` unless
    shared with a branch)."""
    if visibility not in sharing_choices(viewer):
        raise ValidationError({"visibility": _("You cannot share a segment with the whole company.")})
    if visibility != SegmentVisibility.BRANCH:
        return None
    if branch is None:
        raise ValidationError({"branch": _("Choose the branch to share the segment with.")})
    if not sharing_branches(viewer).filter(pk=branch.pk).exists():
        raise ValidationError({"branch": _("You can only share a segment with your own branch.")})
    return branch


# --- Evaluation -----------------------------------------------------------------------------------------


def listed(viewer, segment, *, location=None):
    """The segment's customers as ``viewer`` lists them (effective values, in the segment's
    order), and the branch whose values they show. ``location``: for a manager, the branch
    whose customers and values to show instead of the segment's (the listing's "Location")."""
    evaluating = _evaluating.get()
    if segment.pk in evaluating:
        return Customer.objects.none(), None
    params = segment.params
    if location is not None:
        params = params.copy()
        params["branch"] = location.pk
    token = _evaluating.set(evaluating | {segment.pk})
    try:
        return listing.listed(viewer, params, strict=True)
    finally:
        _evaluating.reset(token)


def customers(viewer, segment):
    """The segment's customers as ``viewer`` sees them: always the viewer's scope."""
    return listed(viewer, segment)[0]


def count(viewer, segment, limit=None):
    """:class:`~wagtail_clientdb.listing.Counted`: exact up to ``limit`` or the listing's limit,
    as the listing counts."""
    return listing.count(customers(viewer, segment), limit, estimable=listing.planner_can_estimate(segment.params))


def listing_url(segment):
    """The customer listing with the segment's filters, search and order."""
    url = reverse(Customer.snippet_viewset.get_url_name("list"))
    return f"{url}?{segment.query}" if segment.query else url


def export_url(segment, export_format):
    params = segment.params.copy()
    params["export"] = export_format
    return f"{reverse(Customer.snippet_viewset.get_url_name('list'))}?{params.urlencode()}"
