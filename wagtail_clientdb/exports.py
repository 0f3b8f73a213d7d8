"""Exports: large ones written by a background task to Django's storage, then downloaded;
every one recorded (who, which filters, how many rows) as an :class:`ExportJob` with an entry in
the audit trail."""

import logging
import tempfile

from django.conf import settings
from django.core.files import File
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from wagtail.log_actions import log

from . import conf, export, listing, scope, times
from .models import Branch, CustomerGroup, CustomerTag, ExportJob, JobStatus

logger = logging.getLogger(__name__)

#: A job's parameter besides the listing's: the language of who asked.
LANGUAGE = "language"
#: Parameters that choose how the file is written, not which customers it holds.
NOT_FILTERS = {LANGUAGE, "export", "delimiter", "p"}


#: Filters whose choices are ids: logged by the names they had (``tags: VIP``, not ``tags: 3``).
NAMED_CHOICES = {"tags": lambda: CustomerTag.all_tags, "groups": lambda: CustomerGroup.objects, "branch": lambda: Branch.objects}


def filters_of(params):
    """The listing's filters of an export, readable: ``q: müller; tags: VIP``."""
    shown = []
    for name, values in sorted(params.lists()):
        if name in NOT_FILTERS or not any(values):
            continue
        if name in NAMED_CHOICES:
            ids = [int(value) for value in values if value.strip().isdigit()]
            names = dict(NAMED_CHOICES[name]().filter(pk__in=ids).values_list("pk", "name"))
            values = [names.get(int(value), value) if value.strip().isdigit() else value for value in values]
        shown.append(f"{name}: {', '.join(values)}")
    return "; ".join(shown)


def log_export(job, rows):
    log(
        job,
        "wagtail_clientdb.export",
        user=job.created_by,
        branch=job.branch,
        data={"rows": rows, "format": job.format, "filters": filters_of(QueryDict(job.query))},
    )


def record_export(user, viewer, params, export_format, rows):
    """An export downloaded at once: kept as a finished job without a file, and logged."""
    params = params.copy()
    params.pop("export", None)
    now = timezone.now()
    job = ExportJob.objects.create(
        created_by=user,
        branch=viewer.branch,
        query=params.urlencode(),
        format=export_format,
        status=JobStatus.EXPORTED,
        rows_total=rows,
        rows_done=rows,
        finished_at=now,
    )
    log_export(job, rows)
    return job


def start_export_job(request, viewer, export_format):
    from .tasks import run_export_job as task

    params = request.GET.copy()
    params.pop("export", None)
    # The file is written later, elsewhere: in the language the user sees now.
    params[LANGUAGE] = translation.get_language() or settings.LANGUAGE_CODE
    job = ExportJob.objects.create(
        created_by=request.user, branch=viewer.branch, query=params.urlencode(), format=export_format
    )
    task.using(queue_name=conf.get("TASK_QUEUE")).enqueue(job.pk)
    return job


def run_export_job(job):
    from .filters import CustomerFilterSet
    from .tasks import language_of

    viewer = scope.viewer_for_job(job.created_by, job.branch)
    params = QueryDict(job.query)
    queryset = listing.customers_as_listed(viewer, params)
    # The language asked in; a job started without one (an older job) speaks its user's.
    language = params.get(LANGUAGE) or language_of(job.created_by)
    # Creation times on the clock of the listing exported (:mod:`wagtail_clientdb.times`).
    zone = times.zone_of(listing.display_branch(viewer, CustomerFilterSet(data=params, viewer=viewer, only_named=True)))
    try:
        with tempfile.TemporaryFile() as output, translation.override(language), timezone.override(zone):
            rows = listing.count_exactly(queryset)
            delimiter = export.delimiter_named(params.get("delimiter"))
            export.write_file(queryset, job.format, output, delimiter, viewer=viewer)
            output.seek(0)
            job.file.save(f"export.{job.format}", File(output), save=False)
    except Exception:
        logger.exception("Customer export %s failed", job.pk)
        with translation.override(language):
            job.status, job.error = JobStatus.FAILED, _("The export failed.")
    else:
        job.status = JobStatus.EXPORTED
        job.rows_total = job.rows_done = rows
        log_export(job, rows)
    job.finished_at = timezone.now()
    job.save()
    return job

