"""Django settings for the benchmarks in this directory (see docs/performance.md).

The test settings, with three differences: the database is PostgreSQL by default
(DATABASE_URL, defaulting to the ``clientdb_bench`` database on 127.0.0.1), uploaded files
go to FileSystemStorages in a temporary directory (the tests' InMemoryStorage would
hold a 100 MB upload in memory and distort peak RSS), and DEBUG is off so no queries
are recorded.
"""

import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

import dj_database_url

from tests.settings import *
from tests.settings import INSTALLED_APPS as _TEST_APPS

DEBUG = False

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/clientdb_bench"), conn_max_age=0
    )
}

INSTALLED_APPS = list(_TEST_APPS)
if "django.contrib.postgres" not in INSTALLED_APPS:
    INSTALLED_APPS.append("django.contrib.postgres")

# benchmarks/run.py sets BENCH_MEDIA_ROOT to its own temporary directory and removes it at the end.
MEDIA_ROOT = os.environ.get("BENCH_MEDIA_ROOT") or os.path.join(tempfile.gettempdir(), "clientdb-bench-media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Uploads and exports beside the media folder, in the same temporary directory.
WAGTAIL_CLIENTDB = {"PRIVATE_ROOT": os.path.join(os.path.dirname(MEDIA_ROOT), "clientdb-private")}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
