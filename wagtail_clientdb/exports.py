"""Large exports: written by a background task to Django's storage, then downloaded."""

import logging
import tempfile

from django.conf import settings
from django.core.files import File
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import conf, export, listing, scope, times
from .models import ExportJob, JobStatus

logger = logging.getLogger(__name__)

#: A job's parameter besides the listing's: the language of who asked.
LANGUAGE = "language"


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

    viewer = scope.viewer_for_job(job.created_by, job.branch)
    params = QueryDict(job.query)
    queryset = listing.customers_as_listed(viewer, params)
    language = params.get(LANGUAGE) or settings.LANGUAGE_CODE
    # Creation times on the clock of the listing exported (:mod:`wagtail_clientdb.times`).
    zone = times.zone_of(listing.display_branch(viewer, CustomerFilterSet(data=params, viewer=viewer)))
    try:
        with tempfile.TemporaryFile() as output, translation.override(language), timezone.override(zone):
            delimiter = export.delimiter_named(params.get("delimiter"))
            export.write_file(queryset, job.format, output, delimiter, viewer=viewer)
            output.seek(0)
            job.file.save(f"export.{job.format}", File(output), save=False)
    except Exception:
        logger.exception("Customer export %s failed", job.pk)
        job.status, job.error = JobStatus.FAILED, _("The export failed.")
    else:
        job.status = JobStatus.EXPORTED
    job.finished_at = timezone.now()
    job.save()
    return job

