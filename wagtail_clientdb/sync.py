"""What a client that keeps a copy of the customers or appointments needs from a list of changes
(the API's ``updated_since``): an order that paging cannot skip in, and the moment to ask from
next time.

An order that paging cannot skip in
    Changes are listed oldest first, by ``(updated_at, id)``, and a client pages by moving that
    pair forward (``updated_since`` = the last ``updated_at`` read, ``after_id`` = its id)
    instead of by ``offset``: a customer deleted or changed between two pages moves every later
    row one place back, so the next page by offset starts one row late and that row is never
    read; a page after a pair has no place to lose.

The moment to ask from next time
    A change is dated when it is made and seen when its transaction commits: an import of
    100,000 rows dates them all at its start and commits minutes later. A client that went on
    from the latest change it read would skip everything such a write commits with an earlier
    date. :func:`next_since` is the date no change committed after it is asked for can carry
    an earlier one: the start of the oldest transaction still open in the database (minus a
    margin for a date taken shortly before its first statement), or now.
"""

import datetime

from django.db import connection
from django.db.models import Q
from django.utils import timezone

#: How much earlier than its transaction's first statement a write may date what it changes
#: (an import takes its date, then checks its first rows before it writes).
MARGIN = datetime.timedelta(seconds=10)

_OLDEST_OPEN_TRANSACTION = """
    SELECT min(xact_start) FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
      AND xact_start IS NOT NULL AND state <> 'idle'
"""


def next_since():
    """The ``updated_since`` (and ``since`` of the removals) of a client's next sync, when the
    sync starts now: no change committed from now on is dated earlier.

    On PostgreSQL, the start of the oldest transaction still open in the app's database, as
    ``pg_stat_activity`` shows the app's own database role; on SQLite, which lets one process
    write at a time and shows no one's transactions, now.
    """
    since = timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_OLDEST_OPEN_TRANSACTION)
            (oldest,) = cursor.fetchone()
        if oldest is not None:
            since = min(since, oldest)
    return since - MARGIN


def changed_since(queryset, since, after_id=None, *, field="updated_at"):
    """The rows of ``queryset`` changed at ``since`` or later (``field``), oldest change first;
    with ``after_id``, those changed at ``since`` only with a greater id (a page goes on
    after the row ``(since, after_id)``)."""
    changed = Q(**{f"{field}__gte": since})
    if after_id is not None:
        # The bound above stays: an index of the changes starts its range there instead of
        # reading every change before it to find the ones after (PostgreSQL reads no bound from an OR).
        changed &= Q(**{f"{field}__gt": since}) | Q(**{field: since, "pk__gt": after_id})
    return queryset.filter(changed).order_by(field, "pk")
