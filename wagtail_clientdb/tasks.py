"""Background work, run by django-tasks (Wagtail's own task framework).

In development the immediate backend runs tasks inline; in production configure the
database backend and a worker (see docs/deployment.md).
"""

from django_tasks import task

from . import deletion, retention
from .models import ExportJob, ImportJob


@task()
def process_deletion_queue():
    """Retry every open deletion request (for a periodic schedule)."""
    return deletion.process_queue()


@task()
def delete_expired_files():
    """Delete uploads, reports and exports older than the retention period (for a daily schedule)."""
    return retention.delete_expired_files()


@task()
def run_import_job(job_id: int, dry_run: bool):
    """Preview or import an uploaded customer list (large files)."""
    from .imports.runner import execute

    job = ImportJob.objects.select_related("created_by", "branch").get(pk=job_id)
    return execute(job, dry_run=dry_run).status


@task()
def run_export_job(job_id: int):
    """Write a large listing export to storage and offer it for download."""
    from .exports import run_export_job as run

    return run(ExportJob.objects.select_related("created_by", "branch").get(pk=job_id)).status
