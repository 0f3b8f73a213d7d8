"""Background work, run by django-tasks (Wagtail's own task framework).

In development the immediate backend runs tasks inline; in production configure the
database backend and a worker (see docs/deployment.md).
"""

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django_tasks import task

from . import booking_counts, deletion, retention
from .models import BulkActionJob, ExportJob, ImportJob


def language_of(user):
    """The admin language of ``user``: background work on their job speaks it (refused rows,
    errors, an export's headings), as the same work done in their request would."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.objects.filter(user=user).first()
    return (profile.preferred_language if profile else "") or settings.LANGUAGE_CODE


@task()
def send_booking_confirmation(subject: str, body: str, to: str):
    """The booking page's confirmation email, sent apart from the visitor's request: a mail
    server that is down costs the email (the task fails and says why), never the page's answer
    to a booking already saved — which the visitor, shown an error, booked again."""
    send_mail(subject, body, None, [to])


@task()
def process_deletion_queue():
    """Retry every open deletion request (for a periodic schedule)."""
    return deletion.process_queue()


@task()
def count_passed_visits():
    """Add the visits since the last run to the kept visit counts (for a periodic schedule, e.g. hourly)."""
    return booking_counts.count_passed_visits()


@task()
def find_duplicates():
    """Look for possible duplicates among all customers (for a periodic schedule, e.g. nightly)."""
    from . import duplicates

    result = duplicates.scan()
    return {"found": result.found, "new": result.new, "gone": result.gone}


@task()
def delete_expired_files():
    """Delete uploads, reports and exports older than the retention period (for a daily schedule)."""
    return retention.delete_expired_files()


@task()
def delete_inactive_customers():
    """Delete, through the deletion queue, customers with no appointment for the years set in the
    Client DB settings (for a daily schedule); does nothing while that setting is empty."""
    years = retention.years_setting()
    if years is None:
        return None
    result = retention.delete_inactive_customers(years)
    return {"years": years, "deleted": result.deleted, "blocked": result.blocked}


@task()
def run_import_job(job_id: int, dry_run: bool):
    """Preview or import an uploaded customer list (large files)."""
    from .imports.runner import execute

    job = ImportJob.objects.select_related("created_by", "branch").get(pk=job_id)
    with translation.override(language_of(job.created_by)):
        return execute(job, dry_run=dry_run).status


@task()
def run_import_rollback(batch_id: int, user_id: int, channel: str):
    """Roll back a large import (see :func:`wagtail_clientdb.import_rollback.queue_roll_back`)."""
    from django.contrib.auth import get_user_model

    from .import_rollback import run_queued

    user = get_user_model().objects.filter(pk=user_id).first()
    with translation.override(language_of(user) if user else settings.LANGUAGE_CODE):
        return run_queued(batch_id, user_id, channel)


@task()
def run_export_job(job_id: int):
    """Write a large listing export to storage and offer it for download."""
    from .exports import run_export_job as run

    # In the language the user saw when asking for it (kept with the job's parameters).
    return run(ExportJob.objects.select_related("created_by", "branch").get(pk=job_id)).status


@task()
def run_bulk_action(job_id: int):
    """Change every customer of a large listing with a bulk action (see :func:`wagtail_clientdb.bulk_edits.start_job`)."""
    from .bulk_edits import run_job

    job = BulkActionJob.objects.select_related("created_by", "branch").get(pk=job_id)
    with translation.override(language_of(job.created_by)):
        return run_job(job).status
