"""Django settings of the example site under load (benchmarks/load_test.py; see docs/performance.md).

The example site's settings, made closer to a production site where that matters to the
measurement:

* DEBUG off (no query log, no debug pages), so a server error is a plain 500;
* the database from DATABASE_URL (default: the ``clientdb_load`` database on 127.0.0.1), with
  persistent connections, as a production site has them;
* server errors logged with their traceback to stderr (gunicorn's error log), to be read
  after a run;
* booking confirmations kept in memory instead of printed (the console backend would write
  every mail to the log);
* the booking page's rate limit raised: every simulated visitor comes from 127.0.0.1, and
  the default (10 bookings per address and hour) would refuse all but the first ten;
* uploaded and private files in a temporary directory (LOAD_MEDIA_ROOT; the load test sets it).
"""

import os
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in (REPO_ROOT, os.path.join(REPO_ROOT, "example_site")):  # the example site first
    if folder not in sys.path:
        sys.path.insert(0, folder)

import dj_database_url

from example_site.settings import *  # noqa: F403

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/clientdb_load"

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL), conn_max_age=600, conn_health_checks=True
    )
}
if "django.contrib.postgres" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS.append("django.contrib.postgres")  # noqa: F405

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

MEDIA_ROOT = os.environ.get("LOAD_MEDIA_ROOT") or os.path.join(tempfile.gettempdir(), "clientdb-load-media")
WAGTAIL_CLIENTDB = {
    "BOOKING_RATE_LIMIT": 1_000_000,
    "PRIVATE_ROOT": os.path.join(os.path.dirname(MEDIA_ROOT), "clientdb-load-private"),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        # Server errors with their traceback; 4xx (a refused form, a 404) are not logged.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
