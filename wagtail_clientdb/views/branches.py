from django import forms
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, FieldRowPanel, InlinePanel, ObjectList, TabbedInterface
from wagtail.admin.ui.tables import Column
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import scope
from ..models import Branch
from .common import ReadableInspectMixin, YesNoColumn
from .scoping import ScopedViewSetMixin


class BranchInspectView(ReadableInspectMixin, SnippetViewSet.inspect_view_class):
    pass


class BranchViewSet(ScopedViewSetMixin, SnippetViewSet):
    model = Branch
    icon = "site"
    menu_label = _("Branches")
    menu_order = 400
    copy_view_enabled = False
    inspect_view_enabled = True
    inspect_view_class = BranchInspectView
    list_display = [
        "name",
        "slug",
        Column("timezone", label=_("Time zone")),
        Column("member_count", label=_("Staff"), accessor=lambda b: len(b.members.all())),
        YesNoColumn("is_active", label=_("Active")),
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "address"]
    ordering = ["name"]
    edit_handler = TabbedInterface(
        [
            ObjectList(
                [
                    FieldPanel("name"),
                    FieldPanel("slug"),
                    FieldPanel("site"),
                    FieldPanel("address"),
                    FieldPanel("timezone"),
                    FieldPanel("is_active"),
                    FieldPanel("members", widget=forms.CheckboxSelectMultiple),
                ],
                heading=_("Branch"),
            ),
            ObjectList(
                [
                    FieldPanel("parallel_bookings"),
                    InlinePanel(
                        "opening_hours",
                        heading=_("Opening hours"),
                        label=_("Opening hours"),
                        panels=[FieldPanel("weekday"), FieldRowPanel([FieldPanel("opens"), FieldPanel("closes")])],
                    ),
                    InlinePanel("closed_days", heading=_("Closed days"), label=_("Closed day")),
                ],
                heading=_("Bookings"),
            ),
        ]
    )

    def visible(self, viewer):
        return scope.visible_branches(viewer)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).prefetch_related("members")
