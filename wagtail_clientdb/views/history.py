"""The history of the customer database: every log entry of the app's models the user may
reach (the branch rules of :mod:`..models.log_entry`), filterable by the branch it happened in.

Wagtail's site history shows the same entries among the pages' and images'; this report shows
only the customer database's, with the branch filter an audit of one branch needs.
"""

import django_filters
from django.db.models import IntegerField, Value
from django.utils.translation import gettext_lazy as _
from wagtail.admin.views.reports.audit_logging import LogEntriesView, SiteHistoryReportFilterSet

from .. import scope
from ..models import ClientDBLogEntry


def branch_choices(request):
    return scope.visible_branches(scope.viewer_for_request(request)).order_by("name")


class CustomerHistoryFilterSet(SiteHistoryReportFilterSet):
    branch = django_filters.ModelChoiceFilter(
        label=_("Branch"),
        queryset=branch_choices,
        null_label=_("Head office"),
        help_text=_("The branch the change was made in."),
    )
    # Comments are the pages' (Wagtail's page history filters them); customers have none.
    is_commenting_action = None


class CustomerHistoryView(LogEntriesView):
    page_title = _("Customer database history")
    filterset_class = CustomerHistoryFilterSet
    index_url_name = "wagtail_clientdb:history"
    index_results_url_name = "wagtail_clientdb:history_results"

    def get_filename(self):
        return "customer-history-" + super().get_filename().removeprefix("audit-log-")

    def get_filtered_queryset(self):
        self.log_models = [ClientDBLogEntry]
        entries = (
            ClientDBLogEntry.objects.viewable_by_user(self.request.user)
            .values("pk", "timestamp")
            .annotate(log_model_index=Value(0, output_field=IntegerField()))
        )
        return self.filter_queryset(entries).order_by("-timestamp", "-pk")
