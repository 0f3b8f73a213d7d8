"""The "Segments" list: saved filters of the customer listing (:mod:`wagtail_clientdb.segments`),
each with its live count as the viewer sees it, opened and exported through the customer
listing itself."""

import time

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.menus import MenuItem
from wagtail.admin.ui.tables import BulkActionsCheckboxColumn, TitleColumn
from wagtail.admin.utils import get_user_display_name
from wagtail.snippets.views import snippets as snippet_views

from .. import attributes, conf, groups, segments
from ..models import Segment, SegmentVisibility
from ..page_queries import page_view, rendered
from .common import MomentColumn, ProtectedDeleteView, TextColumn, ViewerFormMixin, ViewerMixin
from .scoping import ScopedViewSetMixin


class SegmentForm(WagtailAdminModelForm):
    """Name, rule and sharing of a segment: the rule keeps only the listing's parameters and must
    hold for the listing of whoever saves it; the sharing is one the saver may choose."""

    def __init__(self, *args, viewer=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.viewer = viewer
        allowed = segments.sharing_choices(viewer)
        self.fields["visibility"].choices = [(value, label) for value, label in SegmentVisibility.choices if value in allowed]
        self.fields["branch"].queryset = segments.sharing_branches(viewer)
        if not self.instance.pk and viewer.branch is not None:
            self.fields["branch"].initial = viewer.branch.pk

    def clean_query(self):
        query = segments.clean_query(self.cleaned_data.get("query") or "")
        segments.check_query(self.viewer, query)
        return query

    def clean(self):
        cleaned = super().clean()
        if "visibility" not in cleaned:
            return cleaned
        try:
            cleaned["branch"] = segments.check_sharing(self.viewer, cleaned["visibility"], cleaned.get("branch"))
        except ValidationError as error:
            self.add_error(None, error)
            return cleaned
        if self.instance.pk and "query" in cleaned:
            # The dynamic groups this segment defines must stay well-defined with the new rule.
            changed = Segment(pk=self.instance.pk, visibility=cleaned["visibility"], query=cleaned["query"])
            for group in self.instance.groups.all():
                try:
                    groups.check_rule(group, changed)
                except ValidationError as error:
                    self.add_error(None, error)
        return cleaned

    def save(self, commit=True):
        if not self.instance.pk:
            self.instance.owner = self.viewer.user
        return super().save(commit=commit)


class ChangeRequiredMixin(ViewerMixin):
    """Only who may change a segment edits or deletes it (its owner; managers the shared ones)."""

    def dispatch(self, request, *args, **kwargs):
        if not segments.may_change(self.viewer, self.object):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


class SegmentCreateView(ViewerFormMixin, snippet_views.CreateView):
    def get_initial(self):
        # "Save as segment" on the customer listing brings the listing's query string.
        return {**super().get_initial(), "query": segments.clean_query(self.request.GET.get("query", ""))}


class SegmentEditView(ChangeRequiredMixin, ViewerFormMixin, snippet_views.EditView):
    def get_initial(self):
        # "Update segment" on the customer listing brings the listing's new query string.
        initial = super().get_initial()
        if "query" in self.request.GET:
            initial["query"] = segments.clean_query(self.request.GET["query"])
        return initial

    @cached_property
    def can_delete(self):
        return segments.may_change(self.viewer, self.object)


class SegmentDeleteView(ChangeRequiredMixin, ProtectedDeleteView):
    pass


def sharing_label(segment):
    if segment.visibility == SegmentVisibility.BRANCH:
        return _("Branch: %(branch)s") % {"branch": segment.branch}
    return segment.get_visibility_display()


def count_label(viewer, segment):
    """How many customers the segment finds for ``viewer``, as the Segments list shows it."""
    # Lower than a listing's limit: the list counts every segment it shows.
    return segments.count(viewer, segment, conf.get("SEGMENT_LIST_EXACT_COUNT_LIMIT")).label


class SegmentIndexView(ViewerMixin, snippet_views.IndexView):
    #: The first segments of a page are counted whatever the time: a short list comes complete.
    ALWAYS_COUNTED = 3

    def dispatch(self, request, *args, **kwargs):
        # Each segment's count builds its listing: the attribute definitions are read once for
        # all of them, and the page is rendered (its counts made) meanwhile.
        self.count_labels, self.counting_until = {}, None
        with attributes.definitions_read_once():
            return rendered(super().dispatch(request, *args, **kwargs))

    def count_label(self, segment):
        # Each count costs 10–25 ms at a million customers: after the first few the page counts
        # for a while (SEGMENT_LIST_COUNTING_MS) and leaves the other segments' counts to the
        # browser (SegmentCountView), so that twenty segments do not keep it for half a second.
        if segment.pk not in self.count_labels:
            now = time.perf_counter()
            if self.counting_until is None:
                self.counting_until = now + conf.get("SEGMENT_LIST_COUNTING_MS") / 1000
            if len(self.count_labels) < self.ALWAYS_COUNTED or now < self.counting_until:
                label = count_label(self.viewer, segment)
            else:
                url = reverse(Segment.snippet_viewset.get_url_name("count"), args=[segment.pk])
                label = format_html('<span data-clientdb-segment-count="{}" aria-busy="true">…</span>', url)
            self.count_labels[segment.pk] = label
        return self.count_labels[segment.pk]

    @cached_property
    def columns(self):
        title_class = self._get_title_column_class(TitleColumn)
        return [
            BulkActionsCheckboxColumn("bulk_actions", obj_type="snippet"),
            title_class(
                "name",
                label=_("Name"),
                sort_key="name",
                get_url=segments.listing_url,
                get_title_id=lambda segment: f"snippet_{segment.pk}_title",
            ),
            TextColumn("visibility", label=_("Shared with"), accessor=sharing_label, sort_key="visibility"),
            TextColumn("count", label=_("Customers"), accessor=self.count_label),
            TextColumn("owner", label=_("Saved by"), accessor=lambda segment: get_user_display_name(segment.owner) if segment.owner else "–"),
            MomentColumn("updated_at", label=_("Updated"), sort_key="updated_at"),
        ]

    def get_edit_url(self, instance):
        if segments.may_change(self.viewer, instance):
            return super().get_edit_url(instance)

    def get_delete_url(self, instance):
        if segments.may_change(self.viewer, instance):
            return super().get_delete_url(instance)

    def get_list_more_buttons(self, instance):
        return [
            MenuItem(_("Open in the customer list"), url=segments.listing_url(instance), icon_name="list-ul", priority=5),
            MenuItem(_("Download XLSX"), url=segments.export_url(instance, "xlsx"), icon_name="download", priority=6),
            MenuItem(_("Download CSV"), url=segments.export_url(instance, "csv"), icon_name="download", priority=7),
            *super().get_list_more_buttons(instance),
        ]


class SegmentCountView(ViewerMixin, View):
    """A segment's count as the Segments list shows it, for the counts the list leaves to the
    browser (``static/wagtail_clientdb/js/segment_counts.js``): 404 for a segment the user
    may not see."""

    #: The segments the request may reach (the viewset's scope).
    get_scoped_queryset = None

    def get(self, request, pk):
        segment = get_object_or_404(self.get_scoped_queryset(request), pk=pk)
        return JsonResponse({"label": count_label(self.viewer, segment)})


class SegmentViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = Segment
    icon = "filter"
    menu_label = gettext_lazy("Segments")
    menu_order = 150
    copy_view_enabled = False
    index_view_class = SegmentIndexView
    add_view_class = SegmentCreateView
    edit_view_class = SegmentEditView
    delete_view_class = SegmentDeleteView
    search_fields = ["name"]
    ordering = ["name"]
    edit_handler = ObjectList(
        [
            FieldPanel("name"),
            FieldPanel("query", widget=forms.TextInput),
            FieldPanel("visibility", widget=forms.RadioSelect),
            FieldPanel("branch", widget=forms.Select),
        ],
        base_form_class=SegmentForm,
    )

    def visible(self, viewer):
        return segments.visible_segments(viewer)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("owner", "branch")

    def get_urlpatterns(self):
        count_view = SegmentCountView.as_view(get_scoped_queryset=self.get_scoped_queryset)
        return super().get_urlpatterns() + [path("count/<int:pk>/", page_view(count_view), name="count")]
