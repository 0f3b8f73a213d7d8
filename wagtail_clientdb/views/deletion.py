from django.utils.translation import gettext_lazy as _
from wagtail.admin.ui.tables import Column, DateColumn, StatusTagColumn
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import scope
from ..models import DeletionRequest
from .scoping import ScopedViewSetMixin


def describe_errors(request):
    return "; ".join(error.get("message", "") for error in request.errors) or "–"


class DeletionRequestViewSet(ScopedViewSetMixin, SnippetViewSet):
    model = DeletionRequest
    icon = "bin"
    menu_label = _("Customers to delete")
    menu_order = 500
    copy_view_enabled = False
    inspect_view_enabled = True
    list_display = [
        Column("customer", label=_("Customer"), accessor=lambda r: r.customer or _("(deleted)")),
        StatusTagColumn("status", label=_("Status"), accessor="get_status_display"),
        Column("errors", label=_("Blocked by"), accessor=describe_errors),
        DateColumn("requested_at", label=_("Requested"), sort_key="requested_at"),
        DateColumn("last_attempt_at", label=_("Last attempt"), sort_key="last_attempt_at"),
        Column("requested_by", label=_("Requested by")),
    ]
    list_filter = ["status"]
    ordering = ["-requested_at"]

    def get_scoped_queryset(self, request):
        viewer = scope.viewer_for_request(request)
        requests = DeletionRequest.objects.all()
        if viewer.is_manager:
            return requests
        return requests.filter(requested_in_branch__in=viewer.branches)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("customer", "requested_by")
