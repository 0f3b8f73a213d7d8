"""Where files with personal data live: uploaded customer lists, refused-rows reports, exports.

Never in the media storage: whatever is under ``MEDIA_ROOT`` is usually served to anyone at
``MEDIA_URL``. The app keeps these files in a storage of their own, served only through its
authenticated download views, under names nobody can guess, and deletes them after
``FILE_RETENTION_DAYS`` (:mod:`wagtail_clientdb.retention`).

Which storage: ``STORAGES["wagtail_clientdb"]`` when the project defines it (for example a
private S3 bucket); otherwise a folder on disk, ``WAGTAIL_CLIENTDB["PRIVATE_ROOT"]``, by
default ``clientdb-private`` beside ``MEDIA_ROOT``.
"""

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.deconstruct import deconstructible
from django.utils.functional import LazyObject, empty

from . import conf

STORAGE_ALIAS = "wagtail_clientdb"


class PrivateFileSystemStorage(FileSystemStorage):
    """A folder on disk whose files have no URL."""

    def url(self, name):
        raise ValueError("Files with personal data have no public URL; the app's download views serve them.")


def private_root():
    """The folder of the default private storage (checked by :func:`wagtail_clientdb.checks.private_files_check`)."""
    configured = conf.get("PRIVATE_ROOT")
    if configured:
        return Path(configured).resolve()
    return Path(settings.MEDIA_ROOT or ".").resolve().parent / "clientdb-private"


def _make_storage():
    if STORAGE_ALIAS in settings.STORAGES:
        return storages[STORAGE_ALIAS]
    return PrivateFileSystemStorage(
        location=private_root(), directory_permissions_mode=0o700, file_permissions_mode=0o600
    )


class _PrivateStorage(LazyObject):
    def _setup(self):
        self._wrapped = _make_storage()


#: The storage of every file field of the app. Lazy, so that settings changed in tests apply.
private_storage = _PrivateStorage()


@receiver(setting_changed)
def _forget_storage(setting, **kwargs):
    if setting in ("WAGTAIL_CLIENTDB", "STORAGES", "MEDIA_ROOT"):
        private_storage._wrapped = empty


def get_private_storage():
    """For ``FileField(storage=...)``: migrations record this callable, not a storage."""
    return private_storage


@deconstructible
class PrivateFileName:
    """``upload_to`` of the app's files: ``<folder>/<random token><extension>``.

    The original file name stays on the job and names the download; the stored name tells
    nothing and cannot be guessed.
    """

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, instance, filename):
        extension = os.path.splitext(filename)[1].lower()[:10]
        return f"{self.folder}/{secrets.token_urlsafe(24)}{extension}"

    def __eq__(self, other):
        return isinstance(other, PrivateFileName) and other.folder == self.folder
