from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import Column
from wagtail.snippets.views import snippets as snippet_views
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import attributes, conf, groups
from ..models import CustomerGroup, Segment, SegmentVisibility
from ..page_queries import rendered
from .common import ViewerMixin, YesNoColumn
from .scoping import ScopedViewSetMixin


class CustomerGroupForm(WagtailAdminModelForm):
    """A dynamic group takes a company segment whose rule does not depend on the group itself."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.filter(visibility=SegmentVisibility.COMPANY).order_by("name")

    def clean_segment(self):
        segment = self.cleaned_data.get("segment")
        if segment is not None:
            try:
                groups.check_rule(self.instance, segment)
            except ValidationError as error:
                raise ValidationError(error.messages)
        return segment


def rule_label(group):
    return _("Segment: %(segment)s") % {"segment": group.segment} if group.is_dynamic else _("Chosen by hand")


class CustomerGroupIndexView(ViewerMixin, snippet_views.IndexView):
    """Groups belong to the company; each viewer counts the members it can see, those of dynamic
    groups by their rule, as the Segments list counts a segment (exact up to
    ``SEGMENT_LIST_EXACT_COUNT_LIMIT``, then "about …" or "more than …"): one query counting
    every group's members exactly ran for more than fifteen minutes at a million customers."""

    def dispatch(self, request, *args, **kwargs):
        # The dynamic groups' rules read the attribute definitions once, while the page renders.
        with attributes.definitions_read_once():
            return rendered(super().dispatch(request, *args, **kwargs))

    def members_label(self, group):
        return groups.count_members(self.viewer, group, conf.get("SEGMENT_LIST_EXACT_COUNT_LIMIT")).label

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        for group in context["object_list"]:
            group.customer_count = self.members_label(group)
        return context


class CustomerGroupViewSet(ScopedViewSetMixin, SnippetViewSet):
    model = CustomerGroup
    icon = "group"
    menu_label = _("Customer groups")
    menu_order = 200
    copy_view_enabled = False
    list_display = [
        "name",
        Column("segment", label=_("Members"), accessor=rule_label),
        YesNoColumn("is_default", label=_("Default group")),
        Column("customer_count", label=_("Customers")),
    ]
    search_fields = ["name", "description"]
    ordering = ["name"]
    index_view_class = CustomerGroupIndexView
    edit_handler = ObjectList(
        [FieldPanel("name"), FieldPanel("description"), FieldPanel("segment", widget=forms.Select), FieldPanel("is_default")],
        base_form_class=CustomerGroupForm,
    )

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("segment")
