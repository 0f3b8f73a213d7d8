"""Large exports: written by a background task to Django's storage, then downloaded."""

import logging
import tempfile
import zoneinfo

from django.conf import settings
from django.core.files import File
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from . import conf, export, listing, scope
from .models import ExportJob, JobStatus

logger = logging.getLogger(__name__)

#: Parameters of a job besides the listing's: the language and time zone of who asked.
LANGUAGE, TIME_ZONE = "language", "time_zone"


def start_export_job(request, viewer, export_format):
    from .tasks import run_export_job as task

    params = request.GET.copy()
    params.pop("export", None)
    # The file is written later, elsewhere: in the language and time zone the user sees now.
    params[LANGUAGE] = translation.get_language() or settings.LANGUAGE_CODE
    params[TIME_ZONE] = timezone.get_current_timezone_name()
    job = ExportJob.objects.create(
        created_by=request.user, branch=viewer.branch, query=params.urlencode(), format=export_format
    )
    task.using(queue_name=conf.get("TASK_QUEUE")).enqueue(job.pk)
    return job


def run_export_job(job):
    viewer = scope.viewer_for_job(job.created_by, job.branch)
    params = QueryDict(job.query)
    queryset = listing.customers_as_listed(viewer, params)
    language, zone = _language_and_time_zone(params)
    try:
        with tempfile.TemporaryFile() as output, translation.override(language), timezone.override(zone):
            export.write_file(queryset, job.format, output, export.delimiter_named(params.get("delimiter")))
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


def _language_and_time_zone(params):
    """The language and time zone the export was asked in (the site's for a job asked
    before they were kept)."""
    language = params.get(LANGUAGE) or settings.LANGUAGE_CODE
    try:
        zone = zoneinfo.ZoneInfo(params[TIME_ZONE]) if params.get(TIME_ZONE) else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    return language, zone
