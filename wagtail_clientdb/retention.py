"""Uploaded customer lists, refused-rows reports and exports hold personal data: they are kept
for ``FILE_RETENTION_DAYS`` (default 7), then deleted by :func:`delete_expired_files`, which
the ``clientdb_delete_expired_files`` command and the ``delete_expired_files`` task run.

The jobs stay, with who ran them, when and their counts; the examples and refused rows they
showed, which name customers, go with the files. Merges of customers older than
``MERGE_UNDO_DAYS`` lose the values the merged customers had, kept only for undoing them
(:func:`wagtail_clientdb.merging.forget_expired_snapshots`).

What a confirmed import changed (:class:`~wagtail_clientdb.models.ImportBatchPart`: the
values before and after of the customers it updated) is kept for ``IMPORT_ROLLBACK_DAYS``
(default 30) so that the import can be rolled back, then deleted by
:func:`delete_expired_import_records` (run with the files); the batch stays with its counts.
"""

import datetime

from django.utils import timezone

from . import conf, merging
from .models import ExportJob, ImportBatch, ImportBatchPart, ImportJob
from .storage import private_storage

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
