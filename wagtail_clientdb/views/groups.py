from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import BooleanColumn, NumberColumn
from wagtail.snippets.views.snippets import SnippetViewSet

from ..models import CustomerGroup


class CustomerGroupViewSet(SnippetViewSet):
    model = CustomerGroup
    icon = "group"
    menu_label = _("Customer groups")
    menu_order = 200
    copy_view_enabled = False
    list_display = [
        "name",
        BooleanColumn("is_default", label=_("Default group")),
        NumberColumn("customer_count", label=_("Customers"), sort_key="customer_count"),
    ]
    search_fields = ["name", "description"]
    ordering = ["name"]
    edit_handler = ObjectList([FieldPanel("name"), FieldPanel("description"), FieldPanel("is_default")])

    def get_queryset(self, request):
        # The count is company-wide: groups belong to the company, not to a branch.
        return CustomerGroup.objects.annotate(customer_count=Count("customers"))
