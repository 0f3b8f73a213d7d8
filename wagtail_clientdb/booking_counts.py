"""How many bookings each customer has: appointments that were not cancelled, company-wide
(``Customer.bookings_total``) and per branch (:class:`BranchBookings`).

"Most bookings" orders the customer listing. Counting every customer's appointments on
each request read millions of rows; the counts are kept instead, recounted from the
appointments whenever one of a customer's appointments changes (in the same transaction).
A recount locks the customer first, so two changes of the same customer's appointments at
the same time are counted one after the other, and the second sees the first.
"""

from django.db import connection, transaction
from django.db.models import Count

from .models import Appointment, AppointmentStatus, BranchBookings, Customer


def recount(customer_ids):
    ids = sorted({pk for pk in customer_ids if pk is not None})
    if not ids:
        return
    with transaction.atomic():
        # In the order of their keys, so that two recounts never wait for each other in a circle.
        list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
        per_branch = (
            Appointment.objects.filter(customer_id__in=ids)
            .exclude(status=AppointmentStatus.CANCELLED)
            .order_by()
            .values_list("customer_id", "branch_id")
            .annotate(count=Count("pk"))
        )
        totals = dict.fromkeys(ids, 0)
        counted = {}
        for customer_id, branch_id, count in per_branch:
            totals[customer_id] += count
            counted[customer_id, branch_id] = count
        kept = dict(
            ((customer_id, branch_id), (pk, count))
            for pk, customer_id, branch_id, count in BranchBookings.objects.filter(customer_id__in=ids).values_list(
                "pk", "customer_id", "branch_id", "count"
            )
        )
        # Only the counts that changed are written: a branch's count stays the same row.
        BranchBookings.objects.filter(pk__in=[pk for key, (pk, _count) in kept.items() if key not in counted]).delete()
        BranchBookings.objects.bulk_create(
            [
                BranchBookings(customer_id=customer_id, branch_id=branch_id, count=count)
                for (customer_id, branch_id), count in counted.items()
                if kept.get((customer_id, branch_id), (None, None))[1] != count
            ],
            update_conflicts=True,
            unique_fields=["customer", "branch"],
            update_fields=["count"],
        )
        Customer.objects.bulk_update([Customer(pk=pk, bookings_total=total) for pk, total in totals.items()], ["bookings_total"])


def recount_all():
    """Every customer's counts, from scratch: after appointments were written in bulk
    (demo data, the scale benchmark's generator, the migration that introduced the counts)."""
    customer, appointment, counts = Customer._meta, Appointment._meta, BranchBookings._meta
    quote = connection.ops.quote_name
    cancelled = AppointmentStatus.CANCELLED.value
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quote(counts.db_table)}")
        cursor.execute(
            f"INSERT INTO {quote(counts.db_table)} (customer_id, branch_id, count) "
            f"SELECT customer_id, branch_id, COUNT(*) FROM {quote(appointment.db_table)} "
            "WHERE customer_id IS NOT NULL AND status <> %s GROUP BY customer_id, branch_id",
            [cancelled],
        )
        cursor.execute(
            f"UPDATE {quote(customer.db_table)} SET bookings_total = COALESCE(("
            f"SELECT SUM(count) FROM {quote(counts.db_table)} WHERE customer_id = {quote(customer.db_table)}.id), 0)"
        )
