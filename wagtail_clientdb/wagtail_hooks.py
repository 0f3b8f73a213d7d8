from django.templatetags.static import static
from django.urls import include, path
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from wagtail import hooks
from wagtail.log_actions import LogFormatter
from wagtail.snippets.models import register_snippet
from wagtail.snippets.views.snippets import SnippetViewSetGroup

from . import dashboard, urls
from .models import ClientDBLogEntry
from .models.log_entry import LogModelsInOrder, logged_models
from .views.appointments import AppointmentViewSet
from .views.attributes import AttributeDefinitionViewSet
from .views.branches import BranchViewSet
from .views.bulk_actions import (
    AddTagsBulkAction,
    AddToGroupBulkAction,
    AttributeDeleteBulkAction,
    ChangeAppointmentStatusBulkAction,
    MergeBulkAction,
    RequestDeletionBulkAction,
    ScopedDeleteBulkAction,
    ShareWithBranchesBulkAction,
)
from .views.customers import CustomerViewSet
from .views.deletion import DeletionRequestViewSet
from .views.duplicates import DuplicatePairViewSet
from .views.groups import CustomerGroupViewSet
from .views.segments import SegmentViewSet
from .views.services import ServiceViewSet


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


def _numbers(ids):
    return ", ".join(f"#{pk}" for pk in ids or [])


class MergeFormatter(LogFormatter):
    label = _("Merge customers")

    def format_message(self, log_entry):
        return _("Merged with customers %(numbers)s") % {"numbers": _numbers(log_entry.data.get("merged"))}


class MergedIntoFormatter(LogFormatter):
    label = _("Merge into another customer")

    def format_message(self, log_entry):
        return _("Merged into customer #%(number)s") % {"number": log_entry.data.get("survivor")}


class MergeUndoneFormatter(LogFormatter):
    label = _("Undo merge")

    def format_message(self, log_entry):
        return _("Merge undone: customers %(numbers)s restored") % {"numbers": _numbers(log_entry.data.get("restored"))}


@hooks.register("register_log_actions")
def register_log_entry_model(actions):
    """The app's branch-scoped models keep their history where it is read within the branch rules."""
    actions.log_entry_models = LogModelsInOrder.fromkeys([ClientDBLogEntry, *actions.log_entry_models])
    actions.register_action("wagtail_clientdb.create_via_api", _("Create via API"), _("Created via API"))
    actions.register_action("wagtail_clientdb.edit_via_api", _("Edit via API"), _("Changed via API"))
    actions.register_action("wagtail_clientdb.delete_via_api", _("Delete via API"), _("Deletion requested via API"))
    actions.register_action("wagtail_clientdb.booking_block", _("Block from online booking"), _("Blocked from online booking"))
    actions.register_action(
        "wagtail_clientdb.booking_block_changed", _("Change online booking block"), _("Online booking block changed")
    )
    actions.register_action("wagtail_clientdb.booking_unblock", _("Lift online booking block"), _("Online booking allowed again"))
    actions.register_action(
        "wagtail_clientdb.personal_data_export", _("Download personal data"), _("Personal data downloaded")
    )
    actions.register_action("wagtail_clientdb.merge")(MergeFormatter)
    actions.register_action("wagtail_clientdb.merged_into")(MergedIntoFormatter)
    actions.register_action("wagtail_clientdb.merge_undone")(MergeUndoneFormatter)
    actions.register_action(
        "wagtail_clientdb.merge_restored", _("Restore by undoing a merge"), _("Restored by undoing a merge")
    )
    actions.register_action(
        "wagtail_clientdb.not_a_duplicate", _("Mark as not a duplicate"), _("Marked as not a duplicate of another customer")
    )
    actions.register_action(
        "wagtail_clientdb.import_rollback_restore", _("Roll back an import: restore"), _("Values from before an import restored")
    )
    actions.register_action(
        "wagtail_clientdb.import_rollback_delete", _("Roll back an import: delete"), _("Deletion requested: import rolled back")
    )
    for model in logged_models():
        actions.register_model(model, ClientDBLogEntry)


@hooks.register("register_admin_urls")
def register_admin_urls():
    return [path("clientdb/", include(urls, namespace="wagtail_clientdb"))]


for action_class in (
    AddTagsBulkAction,
    AddToGroupBulkAction,
    ShareWithBranchesBulkAction,
    MergeBulkAction,
    # After Wagtail's own snippet delete (order 0), so that ours replaces it for our models.
    RequestDeletionBulkAction,
    ScopedDeleteBulkAction,
    AttributeDeleteBulkAction,
    ChangeAppointmentStatusBulkAction,
):
    hooks.register("register_bulk_action", action_class, order=1)
