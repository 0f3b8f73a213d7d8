"""The page of a bulk action on many customers running in the background."""

from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views import View

from ..models import BulkActionJob, BulkActionStatus, Customer
from .imports import ImportViewMixin, job_times


class BulkActionJobView(ImportViewMixin, View):
    """A bulk action on many customers running in the background
    (:func:`~wagtail_clientdb.bulk_edits.start_job`): its progress, then what it did."""

    permission_required = None
    any_permission_required = ["add", "change", "delete", "view"]
    header_icon = "tasks"
    job_model = BulkActionJob

    @cached_property
    def action(self):
        return self.job.action_class(self.request, Customer)

    def get_page_title(self):
        return self.action.action_title

    def get(self, request, job_id):
        job = self.job
        running = job.is_running
        if request.GET.get("status"):
            return JsonResponse(
                {"status": job.status, "running": running, "rows_done": job.rows_done, "rows_total": job.rows_total}
            )
        counts = job.counts or {}
        outcome = []
        if job.status == BulkActionStatus.DONE:
            outcome.append(self.action.get_success_message(counts.get("done", 0), counts.get("queued", 0)))
        if counts.get("left"):
            outcome.append(
                ngettext(
                    "%(count)s customer was added or changed after you opened the confirmation page and was left as it is.",
                    "%(count)s customers were added or changed after you opened the confirmation page and were left as they are.",
                    counts["left"],
                )
                % {"count": number_format(counts["left"], force_grouping=True)}
            )
        return TemplateResponse(
            request,
            "wagtail_clientdb/bulk_actions/job.html",
            self.get_context_data(
                job=job,
                running=running,
                progress=_("%(done)s of %(total)s customers")
                % {
                    "done": number_format(job.rows_done, force_grouping=True),
                    "total": number_format(job.rows_total, force_grouping=True),
                },
                outcome=outcome,
                status_url=request.path + "?status=1",
                listing_url=f"{reverse(Customer.snippet_viewset.get_url_name('list'))}?{job.query}",
                job_times=job_times(self.viewer, (_("Started"), job.created_at), (_("finished at"), job.finished_at)),
            ),
        )
