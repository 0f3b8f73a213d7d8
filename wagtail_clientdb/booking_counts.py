"""How many bookings, visits and no-shows each customer has, company-wide (``Customer``'s
``bookings_total``, ``visits_total``, ``no_shows_total``) and per branch (:class:`BranchBookings`).

"Most bookings" orders the customer listing, and "at least N visits" or "no-shows" filter it.
Counting every customer's appointments on each request read millions of rows; the counts are
kept instead, recounted from the appointments whenever one of a customer's appointments
changes (in the same transaction). A recount locks the customer first, so two changes of the
same customer's appointments at the same time are counted one after the other, and the second
sees the first.

A booking becomes a visit by time passing, which changes no row. So the kept visit counts hold
the visits before a mark (:class:`VisitCounting`), and the filters count the few visits since
the mark from the appointments (:mod:`wagtail_clientdb.visits`); :func:`count_passed_visits`,
run periodically, moves the mark on and adds those visits to the kept counts. A recount reads
the mark under a shared lock, so the mark never moves between a recount's reading it and its
commit.
"""

import datetime
import time

from django.db import OperationalError, connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from .models import Appointment, AppointmentStatus, BranchBookings, Customer, VisitCounting

#: Where nothing is kept yet: every visit is after it.
BEGINNING = datetime.datetime(1, 1, 1, tzinfo=datetime.UTC)
VISIT_STATUSES = (AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED)
MARK = 1


def visits_counted_until(share_lock=False):
    """The mark: the kept visit counts hold the visits that started before it. With
    ``share_lock`` (in a transaction), it cannot move until the transaction ends."""
    if share_lock and connection.features.has_select_for_update:
        table = connection.ops.quote_name(VisitCounting._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT counted_until FROM {table} WHERE id = %s FOR SHARE", [MARK])
            row = cursor.fetchone()
        return row[0] if row else BEGINNING
    mark = VisitCounting.objects.filter(pk=MARK).values_list("counted_until", flat=True).first()
    return mark or BEGINNING


COUNTS = ["count", "visits", "no_shows"]
TOTALS = ["bookings_total", "visits_total", "no_shows_total"]


def recount(customer_ids):
    ids = sorted({pk for pk in customer_ids if pk is not None})
    if not ids:
        return
    with transaction.atomic():
        until = visits_counted_until(share_lock=True)
        # In the order of their keys, so that two recounts never wait for each other in a circle.
        list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
        per_branch = (
            Appointment.objects.filter(customer_id__in=ids)
            .exclude(status=AppointmentStatus.CANCELLED)
            .order_by()
            .values_list("customer_id", "branch_id")
            .annotate(
                count=Count("pk"),
                visits=Count("pk", filter=Q(status__in=VISIT_STATUSES, start__lt=until)),
                no_shows=Count("pk", filter=Q(status=AppointmentStatus.NO_SHOW)),
            )
        )
        totals = {pk: [0, 0, 0] for pk in ids}
        counted = {}
        for customer_id, branch_id, *counts in per_branch:
            totals[customer_id] = [total + count for total, count in zip(totals[customer_id], counts)]
            counted[customer_id, branch_id] = counts
        kept = {
            (customer_id, branch_id): (pk, counts)
            for pk, customer_id, branch_id, *counts in BranchBookings.objects.filter(customer_id__in=ids).values_list(
                "pk", "customer_id", "branch_id", *COUNTS
            )
        }
        # Only the counts that changed are written: a branch's counts stay the same row.
        BranchBookings.objects.filter(pk__in=[pk for key, (pk, _counts) in kept.items() if key not in counted]).delete()
        BranchBookings.objects.bulk_create(
            [
                BranchBookings(customer_id=customer_id, branch_id=branch_id, **dict(zip(COUNTS, counts)))
                for (customer_id, branch_id), counts in counted.items()
                if kept.get((customer_id, branch_id), (None, None))[1] != counts
            ],
            update_conflicts=True,
            unique_fields=["customer", "branch"],
            update_fields=COUNTS,
        )
        Customer.objects.bulk_update(
            [Customer(pk=pk, **dict(zip(TOTALS, counts))) for pk, counts in totals.items()], TOTALS
        )


def recount_all():
    """Every customer's counts, from scratch, with the mark now: after appointments were
    written in bulk (demo data, the scale benchmark's generator)."""
    customer, appointment, counts = Customer._meta, Appointment._meta, BranchBookings._meta
    quote = connection.ops.quote_name
    now = timezone.now()
    with transaction.atomic():
        list(VisitCounting.objects.select_for_update().filter(pk=MARK))
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {quote(counts.db_table)}")
            cursor.execute(
                f"INSERT INTO {quote(counts.db_table)} (customer_id, branch_id, count, visits, no_shows) "
                "SELECT customer_id, branch_id, COUNT(*), "
                "SUM(CASE WHEN status IN (%s, %s) AND start < %s THEN 1 ELSE 0 END), "
                "SUM(CASE WHEN status = %s THEN 1 ELSE 0 END) "
                f"FROM {quote(appointment.db_table)} WHERE customer_id IS NOT NULL AND status <> %s "
                "GROUP BY customer_id, branch_id",
                [
                    *VISIT_STATUSES,
                    connection.ops.adapt_datetimefield_value(now),
                    AppointmentStatus.NO_SHOW,
                    AppointmentStatus.CANCELLED,
                ],
            )
            cursor.execute(
                f"UPDATE {quote(customer.db_table)} SET (bookings_total, visits_total, no_shows_total) = ("
                "SELECT COALESCE(SUM(count), 0), COALESCE(SUM(visits), 0), COALESCE(SUM(no_shows), 0) "
                f"FROM {quote(counts.db_table)} WHERE customer_id = {quote(customer.db_table)}.id)"
            )
        VisitCounting.objects.update_or_create(pk=MARK, defaults={"counted_until": now})


def count_passed_visits(now=None, attempts=5):
    """Move the mark on to ``now``, adding the visits that started since the last mark to the
    kept counts. Returns how many visits were added, or ``None`` when the customers concerned
    stayed locked by other work through every attempt (the mark stays; the filters stay exact,
    and the next run tries again).

    The customers are locked without waiting: a booking holding a customer while it waits for
    the mark would otherwise wait for this, and this for it."""
    until = now or timezone.now()
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return _count_passed_visits(until)
        except OperationalError:
            time.sleep(0.1 * 2**attempt)
    return None


def _count_passed_visits(until):
    mark = VisitCounting.objects.select_for_update().filter(pk=MARK).first()
    since = mark.counted_until if mark else BEGINNING
    if since >= until:
        return 0
    passed = (
        Appointment.objects.filter(
            customer__isnull=False, status__in=VISIT_STATUSES, start__gte=since, start__lt=until
        )
        .order_by()
        .values_list("customer_id", "branch_id")
        .annotate(number=Count("pk"))
    )
    by_branch = {(customer_id, branch_id): number for customer_id, branch_id, number in passed}
    by_customer = {}
    for (customer_id, _branch_id), number in by_branch.items():
        by_customer[customer_id] = by_customer.get(customer_id, 0) + number
    customer_ids = sorted(by_customer)
    added = 0
    for start in range(0, len(customer_ids), 1000):
        chunk = customer_ids[start : start + 1000]
        totals = (
            Customer.objects.select_for_update(nowait=True)
            .filter(pk__in=chunk)
            .order_by("pk")
            .values_list("pk", "visits_total")
        )
        customers = [Customer(pk=pk, visits_total=total + by_customer[pk]) for pk, total in totals]
        rows = [row for row in BranchBookings.objects.filter(customer_id__in=chunk) if (row.customer_id, row.branch_id) in by_branch]
        for row in rows:
            row.visits += by_branch[row.customer_id, row.branch_id]
        BranchBookings.objects.bulk_update(rows, ["visits"])
        Customer.objects.bulk_update(customers, ["visits_total"])
        added += sum(by_customer[customer.pk] for customer in customers)
    VisitCounting.objects.update_or_create(pk=MARK, defaults={"counted_until": until})
    return added
