"""The import flow on the customer listing (upload → mapping → preview → confirm → result),
and the page of large exports written in the background.

Small files run in the request; larger ones as django-tasks background tasks, whose
progress the pages poll (and which survives reloads: it is kept on the job).
"""

import itertools

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from django.views.generic import FormView, TemplateView, View
from wagtail.admin import messages
from wagtail.admin.utils import get_user_display_name
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin

from .. import conf, groups, import_rollback, scope, stored_text, times
from ..forms.imports import ConfirmForm, MappingForm, UploadForm
from ..imports import columns, runner
from ..imports.reading import FileProblem
from ..models import Customer, ExportJob, ImportBatch, ImportJob, JobStatus
from ..tasks import run_import_job
from .common import ViewerMixin

RUNNING = (JobStatus.PREVIEWING, JobStatus.IMPORTING)


def url(name, job=None):
    return reverse(Customer.snippet_viewset.get_url_name(name), args=(job.pk,) if job else ())


def rollback_url(batch):
    return url("import_rollback", batch)


def job_times(viewer, *moments):
    """``(label, moment)`` of a job's times that are set, on the clock of the view."""
    return [(capfirst(label), times.moment(value, viewer)) for label, value in moments if value]


def start(job, *, dry_run):
    """Run inline for small files (and to report a file gone); queue a background task for larger ones."""
    if not job.file or job.file.size <= conf.get("IMPORT_BACKGROUND_BYTES"):
        runner.execute(job, dry_run=dry_run)
        return
    job.status = JobStatus.PREVIEWING if dry_run else JobStatus.IMPORTING
    job.rows_done = 0
    job.save(update_fields=["status", "rows_done"])
    task = run_import_job.using(queue_name=conf.get("TASK_QUEUE"))
    transaction.on_commit(lambda: task.enqueue(job.pk, dry_run))


class ImportViewMixin(ViewerMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin):
    model = Customer
    permission_required = "add"
    header_icon = "upload"
    page_title = gettext_lazy("Import customers")

    def dispatch(self, request, *args, **kwargs):
        if self.viewer.sees_nothing:
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)

    job_model = ImportJob

    @cached_property
    def job(self):
        """Jobs belong to whoever started them, while they still work in the job's branch;
        anyone else gets 404."""
        job = get_object_or_404(self.job_model, pk=self.kwargs["job_id"], created_by=self.request.user)
        if scope.viewer_for_job(self.request.user, job.branch).sees_nothing:
            raise Http404
        return job

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": url("list"), "label": _("Customers")},
            {"url": "", "label": self.get_page_title()},
        ]


class UploadView(ImportViewMixin, FormView):
    template_name = "wagtail_clientdb/imports/upload.html"
    form_class = UploadForm

    def get_context_data(self, **kwargs):
        return {**super().get_context_data(**kwargs), "history_url": url("import_batches")}

    def form_valid(self, form):
        upload = form.cleaned_data["file"]
        job = ImportJob(
            created_by=self.request.user,
            branch=self.viewer.branch,
            original_name=upload.name[:255],
            encoding=form.cleaned_data["encoding"],
            delimiter=form.cleaned_data["delimiter"],
        )
        job.file.save(upload.name, upload, save=False)
        try:
            job.save()
            sample = runner.inspect_upload(job)
        except FileProblem as problem:
            job.file.delete(save=False)
            job.delete()
            form.add_error("file", str(problem))
            return self.form_invalid(form)
        if runner.needs_mapping(job, sample):
            return redirect(url("import_mapping", job))
        start(job, dry_run=True)
        return redirect(url("import_job", job))


class MappingView(ImportViewMixin, FormView):
    template_name = "wagtail_clientdb/imports/mapping.html"
    page_title = gettext_lazy("Match the columns")

    def get_form(self, form_class=None):
        return MappingForm(**self.get_form_kwargs(), job=self.job, sample_rows=self.sample_rows, is_manager=self.viewer.is_manager)

    @cached_property
    def sample_rows(self):
        rows = runner.data_rows(self.job)
        return [row for _line, row in itertools.islice(rows, 5)]

    def form_valid(self, form):
        job = self.job
        job.targets = form.cleaned_data["targets"]
        job.save(update_fields=["targets"])
        runner.remember_mapping(job)
        start(job, dry_run=True)
        return redirect(url("import_job", job))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # What is wrong with the mapping proposed (columns read as one field twice, a whole name
        # beside its parts) is said before the user changes it, not only after a try.
        proposed = [] if context["form"].is_bound else columns.mapping_problems(self.job.targets, self.job.headers)
        return {**context, "job": self.job, "proposed_problems": proposed}


class JobView(ImportViewMixin, FormView):
    """Preview, confirmation and result of one import."""

    template_name = "wagtail_clientdb/imports/job.html"

    @property
    def is_retry(self):
        """An all-or-nothing import was refused: the valid rows can still be imported."""
        return self.job.status == JobStatus.REFUSED

    @property
    def refused_rows(self):
        return self.job.counts.get("invalid", 0) if self.job.status == JobStatus.PREVIEWED else 0

    def get_form(self, form_class=None):
        return ConfirmForm(
            **self.get_form_kwargs(),
            is_manager=self.viewer.is_manager,
            new=self.job.counts.get("new", 0),
            refused=self.refused_rows,
            retry=self.is_retry,
        )

    def form_valid(self, form):
        job = self.job
        if job.status not in (JobStatus.PREVIEWED, JobStatus.REFUSED) or not self.has_rows_to_import:
            messages.error(self.request, _("This import cannot be confirmed now."))
            return redirect(url("import_job", job))
        job.import_valid_rows = form.cleaned_data.get("import_valid_rows", True)
        if "sharing" in form.fields:
            job.all_branches = form.cleaned_data.get("sharing") == "all"
            job.share_branch_ids = [branch.pk for branch in form.cleaned_data.get("share_branches") or []]
        job.save(update_fields=["import_valid_rows", "all_branches", "share_branch_ids"])
        start(job, dry_run=False)
        return redirect(url("import_job", job))

    @property
    def has_rows_to_import(self):
        return bool(self.job.counts.get("new") or self.job.counts.get("updated"))

    @cached_property
    def batch(self):
        """What the confirmed import changed, while it can still be rolled back or was."""
        return ImportBatch.objects.filter(job=self.job).select_related("rolled_back_by").first()

    def get_context_data(self, **kwargs):
        job = self.job
        batch = self.batch if job.status == JobStatus.IMPORTED else None
        return {
            **super().get_context_data(**kwargs),
            "job": job,
            "viewer": self.viewer,
            "batch": batch,
            "rollback_url": rollback_url(batch) if batch else "",
            "can_roll_back": bool(
                batch and not import_rollback.refusal(batch) and import_rollback.viewer_for(batch, self.request.user)
            ),
            "rolled_back_at": times.moment(batch.rolled_back_at, self.viewer) if batch and batch.rolled_back_at else "",
            "rollback_running": bool(batch and batch.rollback_queued_at and not batch.rolled_back_at),
            "running": job.status in RUNNING,
            "status_url": url("import_status", job),
            "report_url": url("import_report", job) if job.report else "",
            "mapping_url": url("import_mapping", job),
            "listing_url": url("list"),
            "can_confirm": job.status in (JobStatus.PREVIEWED, JobStatus.REFUSED) and self.has_rows_to_import,
            "refused_rows": self.refused_rows,
            "notes": [stored_text.show(note) for note in job.notes],
            "rule_groups": self.rule_groups,
            "invalid_rows": [runner.shown_refused_row(row) for row in job.invalid_rows],
            "possible_duplicates": self.possible_duplicates() if job.status == JobStatus.PREVIEWED else [],
            "job_times": job_times(
                self.viewer,
                (_("uploaded at"), job.created_at),
                (_("checked at"), job.previewed_at),
                (_("finished at"), job.finished_at),
            ),
        }

    @property
    def rule_groups(self):
        """The names of the dynamic groups (by name), when the file has a groups column: an export
        lists them, and an import that changes nothing of them says so rather than leave them out quietly."""
        if columns.GROUPS not in self.job.targets:
            return []
        return [group.name for group in groups.dynamic_groups()]

    def possible_duplicates(self):
        rows = runner.shown_possible_duplicates(self.job, self.viewer)
        for row in rows:
            for match in row["matches"]:
                customer = match["customer"]
                match["name"] = " ".join(p for p in (customer.eff_first_name, customer.eff_last_name) if p) or customer.eff_email
                match["url"] = reverse(Customer.snippet_viewset.get_url_name("inspect"), args=(customer.pk,))
        return rows


class BatchMixin(ImportViewMixin):
    """An import batch the user may roll back: any for branch managers; for branch staff
    their own, of their current branch. Anyone else gets 404."""

    @cached_property
    def batch(self):
        batches = import_rollback.visible_batches(self.viewer).select_related("job", "created_by", "rolled_back_by", "branch")
        return get_object_or_404(batches, pk=self.kwargs["batch_id"])


def batch_label(batch):
    return batch.job.original_name if batch.job_id else _("API bulk import %(number)s") % {"number": batch.pk}


def batch_state(batch, viewer):
    if batch.rolled_back_at:
        return _("Rolled back %(time)s") % {"time": times.moment(batch.rolled_back_at, viewer)}
    if batch.records_deleted_at:
        return _("Can no longer be rolled back")
    return _("Can be rolled back")


class RollbackView(BatchMixin, TemplateView):
    """"Roll back this import": what it will do (a confirmation), then what it did."""

    template_name = "wagtail_clientdb/imports/rollback.html"
    page_title = gettext_lazy("Roll back an import")
    header_icon = "rotate"

    def post(self, request, batch_id):
        if not request.POST.get("confirm"):
            # The import page's button: the confirmation first.
            return self.get(request, batch_id=batch_id)
        try:
            if import_rollback.runs_in_background(self.batch):
                import_rollback.queue_roll_back(self.batch, request.user)
                messages.success(request, _("The rollback has started. This page shows what it did when it is done."))
                return redirect(rollback_url(self.batch))
            batch = import_rollback.roll_back(self.batch, request.user)
        except import_rollback.RollbackRefused as refused:
            messages.error(request, str(refused))
        else:
            report = batch.rollback_report
            messages.success(
                request,
                _("Import rolled back: %(deleted)s customers deleted, %(restored)s restored. The report below says what could not be undone.")
                % {"deleted": report["deleted"], "restored": report["restored"]},
            )
        return redirect(rollback_url(self.batch))

    def get_context_data(self, **kwargs):
        batch, viewer = self.batch, self.viewer
        refusal = import_rollback.refusal(batch, viewer)
        running = bool(batch.rollback_queued_at and not batch.rolled_back_at)
        report = None
        if batch.rolled_back_at:
            report = batch.rollback_report
        elif not refusal:
            try:
                report = import_rollback.preview(batch, self.request.user)
            except PermissionDenied:
                refusal = _("You may not roll back this import.")
        return {
            **super().get_context_data(**kwargs),
            "batch": batch,
            "label": batch_label(batch),
            "done": bool(batch.rolled_back_at),
            "running": running,
            "rollback_error": batch.rollback_error,
            "refusal": "" if batch.rolled_back_at else refusal,
            "report": import_rollback.describe(report, viewer) if report is not None else None,
            "job_url": url("import_job", batch.job) if batch.job_id and batch.job.created_by_id == self.request.user.pk else "",
            "history_url": url("import_batches"),
            "job_times": job_times(
                viewer, (_("imported at"), batch.created_at), (_("rolled back at"), batch.rolled_back_at)
            ),
        }


class BatchListView(ImportViewMixin, TemplateView):
    """Confirmed imports (files and API bulk calls) that the user may roll back."""

    template_name = "wagtail_clientdb/imports/batches.html"
    page_title = gettext_lazy("Earlier imports")
    header_icon = "history"

    def get_context_data(self, **kwargs):
        viewer = self.viewer
        batches = import_rollback.visible_batches(viewer).select_related("job", "created_by", "branch")
        page = Paginator(batches, 50).get_page(self.request.GET.get("p"))
        return {
            **super().get_context_data(**kwargs),
            "page": page,
            "rows": [
                {
                    "label": batch_label(batch),
                    "url": rollback_url(batch),
                    "at": times.moment(batch.created_at, viewer),
                    "by": get_user_display_name(batch.created_by) if batch.created_by else "",
                    "branch": batch.branch.name if batch.branch else "",
                    "created": batch.created,
                    "updated": batch.updated,
                    "state": batch_state(batch, viewer),
                }
                for batch in page
            ],
        }


class StatusView(ImportViewMixin, View):
    def get(self, request, job_id):
        job = self.job
        return JsonResponse(
            {"status": job.status, "rows_done": job.rows_done, "rows_total": job.rows_total, "running": job.status in RUNNING}
        )


class ReportView(ImportViewMixin, View):
    """The refused rows, with their line and reason, as CSV."""

    def get(self, request, job_id):
        job = self.job
        if not job.report:
            raise Http404
        name = job.original_name.rsplit(".", 1)[0] + "-refused-rows.csv"
        # Written as UTF-8 (with a BOM for Excel), which tools that ignore the BOM learn here.
        return FileResponse(job.report.open("rb"), as_attachment=True, filename=name, content_type="text/csv; charset=utf-8")


class ExportJobView(ImportViewMixin, View):
    """A large export being written in the background, then its download."""

    permission_required = None
    any_permission_required = ["add", "change", "delete", "view"]
    page_title = gettext_lazy("Export customers")
    header_icon = "download"
    job_model = ExportJob

    def get(self, request, job_id, download=False):
        job = self.job
        if download:
            if job.status != JobStatus.EXPORTED or not job.file:
                raise Http404
            return FileResponse(job.file.open("rb"), as_attachment=True, filename=job.file_name)
        if request.GET.get("status"):
            running = job.is_running
            return JsonResponse({"status": job.status, "running": running})
        return TemplateResponse(
            request,
            "wagtail_clientdb/imports/export_job.html",
            self.get_context_data(
                job=job,
                download_url=url("export_download", job),
                status_url=request.path + "?status=1",
                job_times=job_times(self.viewer, (pgettext("when", "Created"), job.created_at), (_("finished at"), job.finished_at)),
            ),
        )
