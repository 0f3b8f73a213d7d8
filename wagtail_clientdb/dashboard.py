"""Panels of Wagtail's dashboard: what the customer database asks of its user today.

Each panel shows what the user's viewer sees (:mod:`wagtail_clientdb.scope`) and nothing
when the user may not see that kind of object.
"""

import datetime

from django.forms import Media
from django.template.loader import get_template
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.translation import gettext_lazy as _
from laces.components import Component
from wagtail.admin.auth import user_has_any_page_permission
from wagtail.admin.forms.search import SearchForm
from wagtail.permissions import policy_registry

from . import overrides, scope, times
from .archive import ArchivedChoice
from .models import (
    Appointment,
    BulkActionJob,
    Customer,
    DeletionRequest,
    DeletionStatus,
    ExportJob,
    ImportJob,
)
from .permissions import ANY_ACTION

#: How many of today's appointments the panel lists before it links to the rest.
TODAYS_APPOINTMENTS_SHOWN = 12
RECENT_IMPORTS_SHOWN = 5
RECENT_JOBS_SHOWN = 5


def may_view(user, model):
    return policy_registry.get_by_type(model).user_has_any_permission(user, ANY_ACTION)


class DashboardPanel(Component):
    def __init__(self, request):
        self.request = request

    @property
    def viewer(self):
        return scope.viewer_for_request(self.request)

    def render_html(self, parent_context=None):
        # ``None`` from get_context_data: nothing to show this user.
        context = self.get_context_data(parent_context)
        return get_template(self.template_name).render(context) if context is not None else ""


class CustomerSearchPanel(DashboardPanel):
    """A search box for customers. Users without pages (branch staff) see it instead of
    Wagtail's "Search all pages" box, which would only lead them to a refusal."""

    name = "clientdb_customer_search"
    order = 89
    template_name = "wagtail_clientdb/dashboard/customer_search.html"

    @property
    def media(self):
        if user_has_any_page_permission(self.request.user):
            return Media()
        return Media(css={"all": ["wagtail_clientdb/css/dashboard_without_pages.css"]})

    def get_context_data(self, parent_context=None):
        if self.viewer.sees_nothing or not may_view(self.request.user, Customer):
            return None
        return {
            "search_form": SearchForm(placeholder=_("Search customers by name, email or phone…")),
            "listing_url": reverse(Customer.snippet_viewset.get_url_name("list")),
            # Looking someone up finds them archived or not (the listing marks the archived).
            "archived": ArchivedChoice.ANY,
        }


class TodaysAppointmentsPanel(DashboardPanel):
    """Today's appointments of the user's branch (of every branch for the head office), by
    the branch's clock."""

    name = "clientdb_todays_appointments"
    order = 90
    template_name = "wagtail_clientdb/dashboard/todays_appointments.html"

    def get_context_data(self, parent_context=None):
        viewer = self.viewer
        if viewer.sees_nothing or not may_view(self.request.user, Appointment):
            return None
        today = times.today(viewer)
        start = times.start_of_day(today, viewer)
        appointments = scope.visible_appointments(viewer).filter(
            start__gte=start, start__lt=start + datetime.timedelta(days=1)
        )
        shown = overrides.customers_as_their_branches_see_them(
            appointments.select_related("customer", "service", "branch").order_by("start", "pk")[:TODAYS_APPOINTMENTS_SHOWN]
        )
        return {
            "appointments": [
                {
                    "appointment": appointment,
                    "time": times.clock(appointment.start, appointment.branch),
                    "url": reverse(Appointment.snippet_viewset.get_url_name("inspect"), args=(appointment.pk,)),
                }
                for appointment in shown
            ],
            "more": max(0, appointments.count() - len(shown)) if len(shown) == TODAYS_APPOINTMENTS_SHOWN else 0,
            "branch": viewer.branch,
            "show_branch": viewer.branch is None,
            "today": today,
            "listing_url": reverse(Appointment.snippet_viewset.get_url_name("list")),
        }


class BlockedDeletionsPanel(DashboardPanel):
    """Deletion requests an upcoming appointment blocks: someone asked for them to go."""

    name = "clientdb_blocked_deletions"
    order = 91
    template_name = "wagtail_clientdb/dashboard/blocked_deletions.html"

    def get_context_data(self, parent_context=None):
        if not may_view(self.request.user, DeletionRequest):
            return None
        blocked = scope.visible_deletion_requests(self.viewer).filter(status=DeletionStatus.BLOCKED).count()
        if not blocked:
            return None
        return {
            "blocked": blocked,
            "queue_url": reverse(DeletionRequest.snippet_viewset.get_url_name("list")) + f"?status={DeletionStatus.BLOCKED}",
        }


class RecentImportsPanel(DashboardPanel):
    """The user's own latest imports, with how they ended."""

    name = "clientdb_recent_imports"
    order = 92
    template_name = "wagtail_clientdb/dashboard/recent_imports.html"

    def get_context_data(self, parent_context=None):
        if not policy_registry.get_by_type(Customer).user_has_permission(self.request.user, "add"):
            return None
        jobs = list(ImportJob.objects.filter(created_by=self.request.user).order_by("-created_at", "-pk")[:RECENT_IMPORTS_SHOWN])
        if not jobs:
            return None
        return {
            "jobs": [
                {"job": job, "url": reverse(Customer.snippet_viewset.get_url_name("import_job"), args=(job.pk,))}
                for job in jobs
            ],
            "clientdb_zone": times.zone_of(self.viewer),
        }


class RecentJobsPanel(DashboardPanel):
    """The user's own latest exports and bulk changes that ran in the background, with their
    progress: where to find a download, or a change of many customers, after leaving its page.
    Only those whose page the user may still open (the page checks the branch again)."""

    name = "clientdb_recent_jobs"
    order = 93
    template_name = "wagtail_clientdb/dashboard/recent_jobs.html"

    def get_context_data(self, parent_context=None):
        user = self.request.user
        if not may_view(user, Customer):
            return None
        jobs = sorted(
            (
                job
                for model in (ExportJob, BulkActionJob)
                for job in model.objects.filter(created_by=user).select_related("branch").order_by("-created_at", "-pk")[:RECENT_JOBS_SHOWN]
            ),
            key=lambda job: (job.created_at, job.pk),
            reverse=True,
        )
        may_open = {}
        rows = []
        for job in jobs:
            if job.branch_id not in may_open:
                may_open[job.branch_id] = not scope.viewer_for_job(user, job.branch).sees_nothing
            if not may_open[job.branch_id]:
                continue
            if isinstance(job, ExportJob):
                label = _("Customer export %(file)s") % {"file": job.file_name}
                url = reverse(Customer.snippet_viewset.get_url_name("export_job"), args=(job.pk,))
            else:
                label = job.action_class.action_title if job.action_class is not None else job.action
                url = reverse(Customer.snippet_viewset.get_url_name("bulk_action_job"), args=(job.pk,))
            total = number_format(job.rows_total, force_grouping=True)
            if job.is_running:
                customers = _("%(done)s of %(total)s") % {"done": number_format(job.rows_done, force_grouping=True), "total": total}
            else:
                customers = total
            rows.append({"job": job, "label": label, "url": url, "customers": customers})
            if len(rows) == RECENT_JOBS_SHOWN:
                break
        if not rows:
            return None
        return {"rows": rows, "clientdb_zone": times.zone_of(self.viewer)}


def add_panels(request, panels):
    panels += [
        CustomerSearchPanel(request),
        TodaysAppointmentsPanel(request),
        BlockedDeletionsPanel(request),
        RecentImportsPanel(request),
        RecentJobsPanel(request),
    ]
