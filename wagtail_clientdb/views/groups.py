from django.db.models import Count, Q
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import NumberColumn
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import scope
from ..models import CustomerGroup
from .common import YesNoColumn
from .scoping import ScopedViewSetMixin


class CustomerGroupViewSet(ScopedViewSetMixin, SnippetViewSet):
    model = CustomerGroup
    icon = "group"
    menu_label = _("Customer groups")
    menu_order = 200
    copy_view_enabled = False
    list_display = [
        "name",
        YesNoColumn("is_default", label=_("Default group")),
        NumberColumn("customer_count", label=_("Customers"), sort_key="customer_count"),
    ]
    search_fields = ["name", "description"]
    ordering = ["name"]
    edit_handler = ObjectList([FieldPanel("name"), FieldPanel("description"), FieldPanel("is_default")])

    def get_queryset(self, request):
        # Groups belong to the company; each viewer counts the members it can see.
        visible = scope.visible_customers(scope.viewer_for_request(request)).values("pk")
        return self.get_scoped_queryset(request).annotate(
            customer_count=Count("customers", filter=Q(customers__in=visible))
        )
