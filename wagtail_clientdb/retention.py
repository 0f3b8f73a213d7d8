"""How long the company keeps personal data.

**Customers.** With *delete customers with no appointment for (years)* set in the Client DB
settings (:attr:`~wagtail_clientdb.models.ClientDBSettings.anonymise_after_years`), customers
with no appointment (of any status, in any branch) for that many years, entered at least that
long ago, are deleted: :func:`inactive_customers` selects them, :func:`delete_inactive_customers`
requests their deletion through the "Customers to delete" queue
(:func:`wagtail_clientdb.deletion.request_deletions`), whose rules apply: their past
appointments stay without the person, and a customer booked meanwhile is not deleted. The
``clientdb_anonymise_inactive`` command (with a dry run) and the ``delete_inactive_customers``
task run it.

**Files.** Uploaded customer lists, refused-rows reports and exports hold personal data: they
are kept for ``FILE_RETENTION_DAYS`` (default 7), then deleted by :func:`delete_expired_files`,
which the ``clientdb_delete_expired_files`` command and the ``delete_expired_files`` task run.

The jobs stay, with who ran them, when and their counts; the examples and refused rows they
showed, which name customers, go with the files. Merges of customers older than
``MERGE_UNDO_DAYS`` lose the values the merged customers had, kept only for undoing them
(:func:`wagtail_clientdb.merging.forget_expired_snapshots`).

What a confirmed import changed (:class:`~wagtail_clientdb.models.ImportBatchPart`: the
values before and after of the customers it updated) is kept for ``IMPORT_ROLLBACK_DAYS``
(default 30) so that the import can be rolled back, then deleted by
:func:`delete_expired_import_records` (run with the files); the batch stays with its counts.
What the API tells clients of customers removed from their view goes after
``REMOVALS_KEPT_DAYS`` (:func:`wagtail_clientdb.removals.forget_expired`).
"""

import datetime
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from . import audit, conf, deletion, merging, removals, scope
from .models import (
    Appointment,
    ClientDBSettings,
    Customer,
    DeletionReason,
    DeletionRequest,
    DeletionStatus,
    ExportJob,
    ImportBatch,
    ImportBatchPart,
    ImportJob,
)
from .storage import private_storage

logger = logging.getLogger(__name__)

#: Log action (registered in ``wagtail_hooks``) on each customer whose deletion retention requested.
DELETION_ACTION = "wagtail_clientdb.retention_deletion"
#: Customers whose deletion is requested in one transaction.
CHUNK = 1000

# --- Customers with no appointment for years -----------------------------------------------------------


def years_setting():
    """The years after which inactive customers are deleted, ``None`` when the setting is off."""
    return ClientDBSettings.load().anonymise_after_years or None


def years_before(moment, years):
    """The same day and time ``years`` earlier (the 28th for a 29 February)."""
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:
        return moment.replace(year=moment.year - years, day=28)


def inactive_customers(years, now=None):
    """Customers with no appointment that started in the last ``years`` years (of any status, in
    any branch; so none upcoming either) and created before then: one query, whose
    ``NOT EXISTS`` reads the appointments' (customer, start) index.

    ``deletion_requested`` tells those already in the deletion queue (an open request).
    """
    if years < 1:
        raise ValueError("years must be at least 1")
    since = years_before(now or timezone.now(), years)
    recent = Appointment.objects.filter(customer=OuterRef("pk"), start__gte=since)
    queued = DeletionRequest.objects.filter(customer=OuterRef("pk"), status__in=deletion.OPEN)
    return Customer.objects.filter(~Exists(recent), created_at__lt=since).annotate(deletion_requested=Exists(queued))


def with_last_appointment(customers):
    """``customers`` with the start of their latest appointment (``last_appointment``; ``None``
    for those with none), read through the same index per customer."""
    latest = Appointment.objects.filter(customer=OuterRef("pk")).order_by("-start").values("start")[:1]
    return customers.annotate(last_appointment=Subquery(latest))


@dataclass
class InactiveDeletion:
    """What :func:`delete_inactive_customers` did."""

    deleted: int = 0
    #: Booked meanwhile: the request stays in the queue, blocked, until the appointments are over.
    blocked: int = 0


def delete_inactive_customers(years, now=None):
    """Request the deletion of :func:`inactive_customers` through the deletion queue, in chunks
    of ``CHUNK`` customers, one transaction each, as the company (no user) with the reason
    *retention*. Customers already in the queue are tried again, not requested twice. Each
    new request is written to the customer's history.
    """
    now = now or timezone.now()
    company = scope.Viewer(None, True)
    result = InactiveDeletion()
    after = 0
    while True:
        with transaction.atomic():
            customers = list(inactive_customers(years, now).filter(pk__gt=after).order_by("pk")[:CHUNK])
            if not customers:
                break
            after = customers[-1].pk
            requests = deletion.request_deletions(
                company, customers, now=now, reason=DeletionReason.RETENTION, log_action=None
            )
            _log_requests(years, [c for c in customers if not c.deletion_requested and c.pk in requests], requests)
        for request in requests.values():
            if request.status == DeletionStatus.DONE:
                result.deleted += 1
            else:
                result.blocked += 1
    logger.info(
        "Customers with no appointment for %s years: %s deleted, %s blocked", years, result.deleted, result.blocked
    )
    return result


def _log_requests(years, customers, requests):
    """One history entry per customer whose deletion was requested (a deleted customer's entry
    names only its number, as the deletion queue leaves it)."""
    deleted_label = _("Customer #%(number)s (deleted)")

    def label(customer):
        return deleted_label % {"number": customer.pk} if requests[customer.pk].status == DeletionStatus.DONE else str(customer)

    audit.log_many(
        customers,
        DELETION_ACTION,
        label=label,
        data=lambda customer: {"years": years, "deletion": requests[customer.pk].status},
        content_changed=True,
    )


# --- Files ----------------------------------------------------------------------------------------------

#: The folders of the private storage the app writes to (see ``PrivateFileName``).
FOLDERS = ("imports", "import-reports", "exports")


def cutoff(now=None):
    return (now or timezone.now()) - datetime.timedelta(days=conf.get("FILE_RETENTION_DAYS"))


def delete_expired_files(now=None):
    """Delete the files of jobs started before the retention period; returns how many."""
    before = cutoff(now)
    deleted = 0
    for job in ImportJob.objects.filter(created_at__lt=before).exclude(file="", report=""):
        deleted += _delete(job.file) + _delete(job.report)
        job.samples, job.invalid_rows = {}, []
        job.save(update_fields=["file", "report", "samples", "invalid_rows"])
    for job in ExportJob.objects.filter(created_at__lt=before).exclude(file=""):
        deleted += _delete(job.file)
        job.save(update_fields=["file"])
    # Merges past their undo period no longer keep the merged customers' former values.
    merging.forget_expired_snapshots(now)
    delete_expired_import_records(now)
    removals.forget_expired(now)
    return deleted + _delete_unreferenced(before)


def delete_expired_import_records(now=None):
    """Delete the record of what imports older than ``IMPORT_ROLLBACK_DAYS`` changed; they can
    no longer be rolled back. Returns how many batches lost their record."""
    now = now or timezone.now()
    expired = ImportBatch.objects.filter(
        created_at__lt=now - datetime.timedelta(days=conf.get("IMPORT_ROLLBACK_DAYS")), records_deleted_at__isnull=True
    )
    ids = list(expired.values_list("pk", flat=True))
    ImportBatchPart.objects.filter(batch_id__in=ids).delete()
    return ImportBatch.objects.filter(pk__in=ids).update(records_deleted_at=now)


def _delete(field_file):
    if not field_file:
        return 0
    field_file.delete(save=False)
    return 1


def _delete_unreferenced(before):
    """Files no job points at (a job deleted, or a crash between saving a file and its job)."""
    referenced = set(ImportJob.objects.values_list("file", flat=True))
    referenced |= set(ImportJob.objects.values_list("report", flat=True))
    referenced |= set(ExportJob.objects.values_list("file", flat=True))
    deleted = 0
    for folder in FOLDERS:
        try:
            _dirs, names = private_storage.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            path = f"{folder}/{name}"
            if path not in referenced and private_storage.get_modified_time(path) < before:
                private_storage.delete(path)
                deleted += 1
    return deleted
