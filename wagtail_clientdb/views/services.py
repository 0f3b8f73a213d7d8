from django import forms
from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import Column
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import scope
from ..filters import ServiceFilterSet
from ..forms.services import ServiceForm
from ..models import Service
from .common import ViewerFormMixin, YesNoColumn
from .scoping import ScopedViewSetMixin


class ServiceCreateView(ViewerFormMixin, SnippetViewSet.add_view_class):
    pass


class ServiceEditView(ViewerFormMixin, SnippetViewSet.edit_view_class):
    pass


class ServiceViewSet(ScopedViewSetMixin, SnippetViewSet):
    """The services of the company, each offered by some branches. Branch staff see the services
    of their branches, and of the branches offering them only their own."""

    model = Service
    icon = "tag"
    menu_label = _("Services")
    menu_order = 250
    copy_view_enabled = False
    add_view_class = ServiceCreateView
    edit_view_class = ServiceEditView
    list_display = [
        "name",
        Column("duration", label=_("Minutes"), sort_key="duration"),
        Column("branches", label=_("Offered by"), accessor=lambda s: ", ".join(b.name for b in s.branches.all())),
        YesNoColumn("is_active", label=_("Active")),
    ]
    filterset_class = ServiceFilterSet
    search_fields = ["name"]
    ordering = ["name"]
    edit_handler = ObjectList(
        [
            FieldPanel("name"),
            FieldPanel("duration"),
            FieldPanel("branches", widget=forms.CheckboxSelectMultiple),
            FieldPanel("is_active"),
        ],
        base_form_class=ServiceForm,
    )

    def visible(self, viewer):
        return scope.visible_services(viewer)

    def get_queryset(self, request):
        branches = scope.visible_branches(scope.viewer_for_request(request))
        return self.get_scoped_queryset(request).prefetch_related(Prefetch("branches", queryset=branches.order_by("name")))
