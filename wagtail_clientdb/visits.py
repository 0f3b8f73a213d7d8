"""What the customer listing can filter by besides the record itself: visits, no-shows,
upcoming appointments, birthdays. Conditions on the customers of a queryset, answered by the
database in the listing's own query (a subquery per condition), never by reading customers.

Which appointments count: those of the branch whose values the listing shows — branch staff
their own branch's, the head office every branch's, or one branch's when it chose a
"Location". A branch never learns from a filter that a customer went to another branch,
as its "Bookings here" counts only its own bookings (:mod:`wagtail_clientdb.booking_counts`).

A *visit* is an appointment that has taken place: started before now, and neither
cancelled nor missed (marked completed, or still "booked" — the front desk does not mark
every visit).

How many visits and no-shows a customer has is kept (:mod:`wagtail_clientdb.booking_counts`):
the no-shows exactly, the visits up to a mark, to which the conditions add the visits since.
"""

import calendar
import contextvars
import datetime
from contextlib import contextmanager

from django.db.models import Count, Exists, ExpressionWrapper, F, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import booking_counts, bulk, overrides
from .models import Appointment, BranchBookings, Customer, VisitCounting

#: How far ahead "birthday within N days" looks at most: a year.
MAX_BIRTHDAY_DAYS = 366

_only_customers = contextvars.ContextVar("wagtail_clientdb_visits_only_customers", default=None)


@contextmanager
def only_customers(pks):
    """Conditions made in this context look only at the appointments of the customers ``pks``:
    for a question about a few known customers (which of this page's customers are in a
    dynamic group), whose answer is the same for them, and which otherwise groups the
    appointments of every customer (a second at a million customers)."""
    token = _only_customers.set(list(pks))
    try:
        yield
    finally:
        _only_customers.reset(token)


def counted_appointments(branch):
    """The appointments the conditions look at: of ``branch``, or of every branch (``None``)."""
    appointments = Appointment.objects.filter(customer__isnull=False)
    pks = _only_customers.get()
    if pks is not None:
        appointments = appointments.filter(bulk.any_of("customer_id", pks))
    return appointments if branch is None else appointments.filter(branch=branch)


def visits(branch, now=None):
    return counted_appointments(branch).filter(start__lt=now or timezone.now(), status__in=booking_counts.VISIT_STATUSES)


# A condition that needs a count reads the kept counts, plus, for visits, the few visits since
# their mark grouped once per query — never a count per customer, which the listing's count
# would run for every customer of the company, nor every visit grouped (1 s at a million
# customers). One that needs none ("any visit", "no visit since") is an EXISTS: the database
# joins it either way, probing each customer's appointments through their index while a page
# walks the names, or reading the appointments once for a count — and, negated, as an
# anti-join, where NOT IN would hold every customer with a visit in memory (5 s for "never
# visited" at a million).


def _any(appointments):
    """Customers with one of ``appointments`` at least (``~`` for none)."""
    return Q(Exists(appointments.filter(customer_id=OuterRef("pk"))))


def number_of_visits_q(branch, least=None, most=None, now=None):
    """Customers with at least ``least`` and at most ``most`` visits (either may be ``None``)."""
    condition = Q()
    if least == 1:
        condition &= _any(visits(branch, now))
    if most == 0:
        condition &= ~_any(visits(branch, now))
    if (least is not None and least > 1) or (most is not None and most > 0):
        since_mark = _visits_since_mark(branch, now)
        if least is not None and least > 1:
            condition &= _at_least_visits(branch, least, since_mark)
        if most is not None and most > 0:
            condition &= _fewer_visits(branch, most + 1, since_mark)
    return condition


#: Up to how many visits since the kept counts' mark are read to name the customers who made
#: them in a query's conditions; more (the periodic count has not run for long) are found by a
#: subquery.
MAX_NAMED_SINCE_MARK = 5000


def _visits_since_mark(branch, now=None):
    """The visits since the kept counts' mark, per customer, with the customer's kept count:
    ``[(customer_id, kept, since)]`` read at once, or the query itself when they are many.

    Named, the customers are a list the planner can count: as a subquery, "kept count at least
    N or one of these" was estimated at half of all customers (1 s for a dynamic group's first
    page at a million customers instead of 7 ms). The visits are read one by one, through the
    index on their start, and counted here: grouped, with a limit, PostgreSQL walked every
    appointment in customer order to group them as they come."""
    mark = Coalesce(
        Subquery(VisitCounting.objects.filter(pk=booking_counts.MARK).values("counted_until")),
        Value(booking_counts.BEGINNING),
    )
    if branch is None:
        kept = F("customer__visits_total")
    else:
        kept = Coalesce(
            Subquery(BranchBookings.objects.filter(customer_id=OuterRef("customer_id"), branch=branch).values("visits")), 0
        )
    since_mark = visits(branch, now).filter(start__gte=mark).order_by()
    rows = list(since_mark.values_list("customer_id", kept)[: MAX_NAMED_SINCE_MARK + 1])
    if len(rows) > MAX_NAMED_SINCE_MARK:
        return since_mark.values("customer_id").annotate(
            kept=ExpressionWrapper(kept, output_field=IntegerField()), since=Count("*")
        )
    counted = {}
    for customer_id, kept_count in rows:
        counted[customer_id] = (kept_count, counted.get(customer_id, (0, 0))[1] + 1)
    return [(customer_id, kept_count, since) for customer_id, (kept_count, since) in counted.items()]


def _at_least_visits(branch, number, since_mark):
    """Customers whose kept count of visits says they made ``number`` visits, and those whom
    their visits since the count's mark bring there.

    In a branch, one subquery of both. As "in the branch's kept counts OR one of these", the
    planner took the OR for a share of all customers: a branch's 2,622 customers with three
    visits among a million were listed as "about 260,000", and a dynamic group's first page
    walked the whole name index."""
    brought_there = _brought_there(number, since_mark)
    if branch is None:
        condition = Q(visits_total__gte=number)
        return condition | Q(pk__in=brought_there) if _anyone(brought_there) else condition
    kept = BranchBookings.objects.filter(branch=branch, visits__gte=number).order_by().values("customer_id")
    if not _anyone(brought_there):
        return Q(pk__in=kept)
    if isinstance(brought_there, list):
        brought_there = Customer.objects.filter(bulk.any_of("pk", brought_there)).order_by().values("pk")
    return Q(pk__in=kept.union(brought_there.order_by(), all=True))


def _fewer_visits(branch, number, since_mark):
    """Customers with fewer than ``number`` visits: none of :func:`_at_least_visits`. In a
    branch, ``NOT EXISTS`` a kept count that reaches it, whose share the planner reads from the
    kept counts (it took ``NOT IN`` them for half of all customers), and none of the customers
    brought there since."""
    if branch is None:
        return ~_at_least_visits(branch, number, since_mark)
    condition = ~Exists(BranchBookings.objects.filter(customer_id=OuterRef("pk"), branch=branch, visits__gte=number))
    brought_there = _brought_there(number, since_mark)
    if not _anyone(brought_there):
        return condition
    if isinstance(brought_there, list):
        return condition & ~Q(bulk.any_of("pk", brought_there))
    return condition & ~Q(pk__in=brought_there)


def _brought_there(number, since_mark):
    """The customers whose visits since the kept counts' mark bring them to ``number`` visits:
    their ids, or a subquery when the visits are too many to name (:func:`_visits_since_mark`)."""
    if isinstance(since_mark, list):
        return [customer_id for customer_id, kept, since in since_mark if kept + since >= number]
    return since_mark.filter(kept__gte=number - F("since")).values("customer_id")


def _anyone(brought_there):
    return not isinstance(brought_there, list) or bool(brought_there)


def no_shows_q(branch, least):
    """Customers who missed at least ``least`` (one or more) appointments."""
    if branch is None:
        return Q(no_shows_total__gte=least)
    return Q(pk__in=BranchBookings.objects.filter(branch=branch, no_shows__gte=least).values("customer_id"))


def last_visit_q(branch, since=None, before=None, now=None):
    """Customers whose last visit was at or after ``since`` and before ``before`` (aware
    datetimes; either may be ``None``).

    Without grouping: the last visit is at or after ``since`` when any visit is, and before
    ``before`` when there is a visit and none at or after it. So only the visits of the period
    are read, through the index on their start (or each customer's, through theirs), instead of
    every customer's visits grouped for their latest (at a million customers 1–3 s, and a
    maximum the planner cannot estimate: 35 s for a segment that combined it with others)."""
    condition = Q()
    if since is not None:
        condition &= _any(visits(branch, now).filter(start__gte=since))
    if before is not None:
        if since is None or since >= before:
            condition &= _any(visits(branch, now).filter(start__lt=before))
        condition &= ~_any(visits(branch, now).filter(start__gte=before))
    return condition


def upcoming_appointment_q(branch, now=None):
    """Customers with an upcoming appointment (``~`` for none)."""
    return _any(counted_appointments(branch).upcoming(now))


def birthday_days(today, days):
    """``(month, day)`` of the birthdays from ``today`` to ``days`` days later, across the turn
    of the year. Born on 29 February: celebrated on the 28th in a year without one."""
    found = set()
    for offset in range(min(days, MAX_BIRTHDAY_DAYS) + 1):
        date = today + datetime.timedelta(days=offset)
        found.add((date.month, date.day))
        if (date.month, date.day) == (2, 28) and not calendar.isleap(date.year):
            found.add((2, 29))
    return found


def birthday_q(field, today, days):
    """Customers whose birthday (``field``: a date field or annotation) is within ``days``
    days from ``today``, ``today`` included."""
    by_month = {}
    for month, day in birthday_days(today, days):
        by_month.setdefault(month, []).append(day)
    condition = Q(pk__in=[])
    for month, month_days in sorted(by_month.items()):
        condition |= Q(**{f"{field}__month": month, f"{field}__day__in": sorted(month_days)})
    return condition


def birthday_this_month_q(field, today):
    return Q(**{f"{field}__month": today.month})


#: Up to how many customers with a birthday of a branch's own are named in its birthday
#: conditions; more are found by a subquery.
MAX_NAMED_LOCAL_BIRTHDAYS = 2000


def birthday_as_seen_q(branch, today, days=None):
    """Customers whose birthday, as ``branch`` sees it (``None``: the company), is this month
    (``days=None``) or within ``days`` days from ``today``.

    A branch sees its own birthday of a customer where it keeps one, else the record's. Not
    compared as ``COALESCE(local, record)``, which no index answers (0.6–0.7 s for a branch at
    a million customers), but by :func:`~wagtail_clientdb.overrides.as_branch_sees_q`."""
    if days is None:
        on_record = birthday_this_month_q("birthday", today)

        def matches(birthday):
            return birthday.month == today.month
    else:
        wanted = birthday_days(today, days)
        on_record = birthday_q("birthday", today, days)

        def matches(birthday):
            return (birthday.month, birthday.day) in wanted
    return overrides.as_branch_sees_q(branch, "birthday", on_record, matches, limit=MAX_NAMED_LOCAL_BIRTHDAYS)
