from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from django.views.decorators.http import require_POST
from wagtail.admin import messages
from wagtail.admin.ui.tables import Column, StatusTagColumn
from wagtail.admin.utils import get_user_display_name
from wagtail.snippets.views import snippets as snippet_views

from .. import deletion, scope
from ..models import DeletionRequest, DeletionStatus
from .common import MomentColumn, PostButton, PostButtonsColumn, redirect_back
from .scoping import ScopedViewSetMixin


def queue_buttons(request):
    """"Try again now" and "Cancel request" for open requests."""
    if not request.is_open:
        return []
    viewset = DeletionRequest.snippet_viewset
    return [
        PostButton(_("Try again now"), reverse(viewset.get_url_name("retry"), args=(request.pk,))),
        PostButton(_("Cancel request"), reverse(viewset.get_url_name("cancel"), args=(request.pk,)), serious=True),
    ]


def blocked_by(request):
    """One line per blocking appointment."""
    return format_html_join(mark_safe("<br>"), "{}", ((line,) for line in deletion.describe_error_lines(request)))


def requested_by(request):
    user = request.requested_by
    return get_user_display_name(user) if user else ""


class DeletionQueueIndexView(snippet_views.IndexView):
    @cached_property
    def no_results_message(self):
        if self.is_searching or self.is_filtering:
            return _("No deletion requests match these filters.")
        return _("No customers are waiting to be deleted.")


class DeletionRequestViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    """The "Customers to delete" queue: open requests with what blocks them, and done ones."""

    model = DeletionRequest
    index_view_class = DeletionQueueIndexView
    icon = "bin"
    menu_label = _("Customers to delete")
    menu_order = 500
    copy_view_enabled = False
    inspect_view_enabled = True
    list_display = [
        Column("customer", label=_("Customer"), accessor=str),
        StatusTagColumn("status", label=_("Status"), accessor="get_status_display"),
        Column("errors", label=_("Blocked by"), accessor=blocked_by),
        MomentColumn("requested_at", label=pgettext_lazy("when", "Requested"), sort_key="requested_at"),
        MomentColumn("last_attempt_at", label=_("Last attempt"), sort_key="last_attempt_at"),
        MomentColumn("completed_at", label=_("Deleted"), sort_key="completed_at"),
        Column("requested_by", label=_("Requested by"), accessor=requested_by),
        Column("reason", label=_("Reason"), accessor="get_reason_display"),
        PostButtonsColumn("actions", queue_buttons, label=_("Actions")),
    ]
    list_filter = ["status", "reason"]
    ordering = ["-requested_at"]
    inspect_view_fields = ["status", "reason", "requested_by", "requested_in_branch", "requested_at", "last_attempt_at", "completed_at"]

    def visible(self, viewer):
        return scope.visible_deletion_requests(viewer)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("customer", "requested_by")

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("retry/<int:pk>/", self.action_view(deletion.process), name="retry"),
            path("cancel/<int:pk>/", self.action_view(deletion.cancel), name="cancel"),
        ]

    def action_view(self, action):
        @require_POST
        def view(request, pk):
            queued = get_object_or_404(self.get_scoped_queryset(request), pk=pk)
            if not queued.is_open:
                messages.error(request, _("This request is no longer open."))
            else:
                result = action(queued)
                messages.success(request, result_message(result))
            return redirect_back(request, reverse(self.get_url_name("list")))

        return view


def result_message(request):
    if request.status == DeletionStatus.DONE:
        return _("The customer was deleted.")
    if request.status == DeletionStatus.CANCELLED:
        return _("Deletion cancelled: the customer is visible again everywhere it was.")
    return _("Still blocked: %(errors)s") % {"errors": deletion.describe_errors(request)}
