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
import heapq
import itertools

from django.db import connection
from django.db.models import F, Q
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


def page_of_changes(customers, since, after_id, page, *, branch):
    """The ids of ``page`` (a slice) of :func:`changed_since` of ``customers`` by ``eff_updated_at``
    (:func:`~wagtail_clientdb.overrides.with_effective_values` for ``branch``).

    For a branch that date is the later of the record's change and the branch's local values',
    which no index holds: ordering by it sorted every customer the branch sees for each page.
    The customers whose record changed last are read in the order of its date (the index of
    changes), those whose local values changed last in the order of theirs (a branch's few),
    each as far as the page reaches, and the two merged: each customer is in one of them, dated
    as the branch sees it.
    """
    if branch is None:
        return list(changed_since(customers, since, after_id).values_list("pk", flat=True)[page])
    # The local values' date through the join that gives the effective values (one row at most).
    customers = customers.annotate(local_changed_at=F("branch_override__updated_at"))
    local_is_later = Q(local_changed_at__gt=F("updated_at"))
    record_is_later = Q(local_changed_at__isnull=True) | Q(local_changed_at__lte=F("updated_at"))
    record_changed_last = changed_since(customers.filter(record_is_later), since, after_id)
    local_changed_last = changed_since(customers.filter(local_is_later), since, after_id, field="local_changed_at")
    merged = heapq.merge(
        record_changed_last.values_list("updated_at", "pk")[: page.stop],
        local_changed_last.values_list("local_changed_at", "pk")[: page.stop],
    )
    return [pk for _date, pk in itertools.islice(merged, page.start, page.stop)]
