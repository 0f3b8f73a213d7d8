from django.templatetags.static import static
from django.urls import include, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.admin.menu import MenuItem
from wagtail.permissions import policy_registry
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSetGroup

from . import dashboard, log_formatters, urls
from .models import ClientDBLogEntry, Customer
from .models.log_entry import LogModelsInOrder, logged_models
from .permissions import ANY_ACTION, register_permission_policies
from .views.appointments import AppointmentViewSet
from .views.attributes import AttributeDefinitionViewSet
from .views.branches import BranchViewSet
from .views.bulk_actions import (
    AddTagsBulkAction,
    AddToGroupBulkAction,
    ArchiveBulkAction,
    AttributeDeleteBulkAction,
    ChangeAppointmentStatusBulkAction,
    ExportBulkAction,
    MergeBulkAction,
    RemoveFromGroupBulkAction,
    RemoveTagsBulkAction,
    RequestDeletionBulkAction,
    RestoreBulkAction,
    ScopedDeleteBulkAction,
    ShareWithBranchesBulkAction,
)
from .views.customers import CustomerViewSet
from .views.deletion import DeletionRequestViewSet
from .views.duplicates import DuplicatePairViewSet
from .views.groups import CustomerGroupViewSet
from .views.segments import SegmentViewSet
from .views.services import ServiceViewSet

# Before the viewsets below ask for them: where wagtail.snippets comes before this app in
# INSTALLED_APPS, Wagtail reads these hooks before the app's ready() has run.
register_permission_policies()


class ClientDBViewSetGroup(SnippetViewSetGroup):
    menu_label = _("Client DB")
    menu_icon = "group"
    menu_order = 150
    items = (
        CustomerViewSet,
        SegmentViewSet,
        DuplicatePairViewSet,
        AppointmentViewSet,
        CustomerGroupViewSet,
        ServiceViewSet,
        AttributeDefinitionViewSet,
        BranchViewSet,
        DeletionRequestViewSet,
    )


register_snippet(ClientDBViewSetGroup)


hooks.register("construct_homepage_panels", dashboard.add_panels)


@hooks.register("insert_global_admin_css")
def admin_css():
    return format_html('<link rel="stylesheet" href="{}">', static("wagtail_clientdb/css/admin.css"))


@hooks.register("insert_global_admin_js")
def segment_counts_js():
    # A few lines that do nothing on a page without counts left to fetch (the Segments list).
    return format_html('<script src="{}" defer></script>', static("wagtail_clientdb/js/segment_counts.js"))


@hooks.register("insert_global_admin_js")
def group_names_js():
    # A few lines that do nothing on a page without group names left to fetch (the customer listing).
    return format_html('<script src="{}" defer></script>', static("wagtail_clientdb/js/group_names.js"))


@hooks.register("register_log_actions")
def register_log_entry_model(actions):
    """The app's branch-scoped models keep their history where it is read within the branch rules."""
    actions.log_entry_models = LogModelsInOrder.fromkeys([ClientDBLogEntry, *actions.log_entry_models])
    log_formatters.register(actions)
    for model in logged_models():
        actions.register_model(model, ClientDBLogEntry)


class CustomerHistoryMenuItem(MenuItem):
    def is_shown(self, request):
        return policy_registry.get_by_type(Customer).user_has_any_permission(request.user, ANY_ACTION)


@hooks.register("register_reports_menu_item")
def register_customer_history_menu_item():
    return CustomerHistoryMenuItem(
        _("Customer database history"),
        reverse("wagtail_clientdb:history"),
        name="customer-history",
        icon_name="history",
        order=1050,
    )


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("clientdb/", include(urls, namespace="wagtail_clientdb"))]


for action_class in (
    AddTagsBulkAction,
    RemoveTagsBulkAction,
    AddToGroupBulkAction,
    RemoveFromGroupBulkAction,
    ShareWithBranchesBulkAction,
    ArchiveBulkAction,
    RestoreBulkAction,
    MergeBulkAction,
    ExportBulkAction,
    # After Wagtail's own snippet delete (order 0), so that ours replaces it for our models.
    RequestDeletionBulkAction,
    ScopedDeleteBulkAction,
    AttributeDeleteBulkAction,
    ChangeAppointmentStatusBulkAction,
):
    hooks.register("register_bulk_action", action_class, order=1)
