"""Background work, run by django-tasks (Wagtail's own task framework).

In development the immediate backend runs tasks inline; in production configure the
database backend and a worker (see docs/deployment.md).
"""

from django_tasks import task

from . import deletion


@task()
def process_deletion_queue():
    """Retry every open deletion request (for a periodic schedule)."""
    return deletion.process_queue()
